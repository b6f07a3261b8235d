"""Intake's storage idioms (`queries`), the search planner's refusals and the timeline's use case, on a SQLite file
of their own: no service running."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, insert, select

from kit import db
from kit.crypto import BlindIndex, Keyring
from kit.errors import BadCursor, Invalid, NotFound, Refused
from kit.problems import status_of
from kit.secrets import BLIND_INDEX_KEY_FILE, KEK_FILE, read_key_file
from services.intake import assignment, cases, domain, queries, search
from services.intake.models import IntakeTable, NameIndexPending, StaffMember, TimelineEntry
from services.intake.protection import NAME_DOB_TERM, PAIR_TERM, CaseVault


@pytest.fixture
def factory(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'intake.db'}")
    IntakeTable.metadata.create_all(engine)
    yield db.make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def vault(secrets_dir) -> CaseVault:
    return CaseVault(Keyring.from_file(secrets_dir / "intake" / KEK_FILE), BlindIndex(read_key_file(secrets_dir / "intake" / BLIND_INDEX_KEY_FILE)))


CALLER = domain.Caller(user_id="cw", username="cw", roles=frozenset({"caseworker"}))


class _NoAudit:
    def record(self, *_args, **_kwargs) -> None:
        raise AssertionError("nothing is audited for a request refused")


def _case(session, case_id: str, *, status: str = domain.OPEN, at: datetime | None = None,
          assignee: str | None = "cw") -> None:
    at = at or datetime.now(UTC)
    session.execute(insert(queries.CASES), {"id": case_id, "reference": f"BY-{case_id}", "status": status,
                                            "opened_at": at, "updated_at": at, "version": 1})
    if assignee:
        session.execute(queries.INSERT_ASSIGNEES, {"case_id": case_id, "user_id": assignee, "username": assignee,
                                                   "position": 0, "opened_at": at, "assigned_at": at})


def test_reference_numbers_count_up_within_each_year(factory):
    with db.transaction(factory) as session:
        assert [queries.next_reference_number(session, 2026) for _ in range(3)] == [1, 2, 3]
        assert queries.next_reference_number(session, 2027) == 1
    with db.transaction(factory) as session:
        assert queries.next_reference_number(session, 2026) == 4


def test_duplicates_are_cases_sharing_a_name_and_birth_term_but_not_erased_nor_the_case_itself(factory):
    at = datetime.now(UTC)
    with db.transaction(factory) as session:
        for case_id, status in (("a", domain.OPEN), ("b", domain.CLOSED), ("gone", domain.ERASED), ("c", domain.OPEN)):
            _case(session, case_id, status=status, at=at)
            at += timedelta(seconds=1)
            queries.add_name_terms(session, case_id, at, [(NAME_DOB_TERM, "same-person"), (PAIR_TERM, case_id)])
        found = search.possible_duplicates(session, {(NAME_DOB_TERM, "same-person"), (PAIR_TERM, "a")}, excluding="c")
        assert [ref.id for ref in found] == ["a", "b"]  # oldest first
        assert search.possible_duplicates(session, {(PAIR_TERM, "a")}) == []  # only name-and-birth terms count


def test_pairs_are_trusted_once_no_part_of_the_index_is_pending(factory):
    with db.transaction(factory) as session:
        session.execute(insert(NameIndexPending.__table__), {"part": PAIR_TERM, "since": datetime.now(UTC)})
    with db.transaction(factory) as session:
        assert queries.pairs_indexed(session) is False
        session.execute(delete(NameIndexPending))
    with db.transaction(factory) as session:
        assert queries.pairs_indexed(session) is True
        session.execute(insert(NameIndexPending.__table__), {"part": PAIR_TERM, "since": datetime.now(UTC)})
        assert queries.pairs_indexed(session) is True  # remembered for the engine: a built part never goes back


def test_a_search_refuses_a_bad_cursor_then_a_query_without_a_word(factory, vault):
    with db.transaction(factory) as session:
        with pytest.raises(BadCursor):
            search.search_cases(session=session, vault=vault, audit=_NoAudit(), caller=CALLER, query="Марыя",
                                status=None, limit=5, cursor="not a cursor")
        with pytest.raises(Invalid) as refused:
            search.search_cases(session=session, vault=vault, audit=_NoAudit(), caller=CALLER, query="-- !!", status=None,
                                limit=5, cursor=None)
        assert status_of(refused.value) == 422 and refused.value.code == "empty-search"


def test_the_list_pages_newest_first_and_its_cursor_continues_it(factory):
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with db.transaction(factory) as session:
        for n in range(5):
            _case(session, f"case-{n}", at=start + timedelta(minutes=n // 2))  # two cases share each minute
        _case(session, "someone-elses", at=start, assignee="cw-2")
    with db.transaction(factory) as session:
        first = cases.list_cases(session=session, caller=CALLER, everyone=False, status=None, limit=3, cursor=None)
        rest = cases.list_cases(session=session, caller=CALLER, everyone=False, status=None, limit=3,
                                cursor=first.next_cursor)
    assert [c.id for c in first.items + rest.items] == ["case-4", "case-3", "case-2", "case-1", "case-0"]
    assert rest.next_cursor is None and {tuple(c.assignees) for c in first.items + rest.items} == {("cw",)}


def test_the_whole_caseload_is_a_supervisor_s_list(factory):
    at = datetime(2026, 1, 1, tzinfo=UTC)
    supervisor = domain.Caller(user_id="sv", username="sv", roles=frozenset({"supervisor"}))
    with db.transaction(factory) as session:
        _case(session, "mine", at=at)
        _case(session, "theirs", at=at + timedelta(minutes=1), assignee="cw-2")
        _case(session, "nobody-s", at=at + timedelta(minutes=2), assignee=None)
    with db.transaction(factory) as session:
        everything = cases.list_cases(session=session, caller=supervisor, everyone=True, status=None, limit=10,
                                      cursor=None)
        assert [(c.id, c.assignees) for c in everything.items] == [("nobody-s", []), ("theirs", ["cw-2"]),
                                                                   ("mine", ["cw"])]
        with pytest.raises(Refused) as refused:
            cases.list_cases(session=session, caller=CALLER, everyone=True, status=None, limit=10, cursor=None)
    assert status_of(refused.value) == 403


def test_reports_about_unknown_or_erased_cases_are_skipped(factory):
    at = datetime.now(UTC)
    with db.transaction(factory) as session:
        _case(session, "known")
        _case(session, "erased", status=domain.ERASED)
        kept = {case_id: cases.note_on_timeline(session, case_id=case_id, at=at, kind="referral.sent",
                                                source="referrals", details={"referral_id": "r"}, event_id="e")
                for case_id in ("known", "erased", "stranger")}
        entries = session.execute(select(TimelineEntry.case_id, TimelineEntry.source)).all()
    assert kept == {"known": True, "erased": False, "stranger": False}
    assert [tuple(e) for e in entries] == [("known", "referrals")]


def test_a_case_that_is_not_there_is_not_found(factory):
    with db.transaction(factory) as session, pytest.raises(NotFound) as missing:
        cases.read_timeline(session=session, vault=None, audit=_NoAudit(), case_id="nope", caller=CALLER, limit=5,
                            cursor=None)
    assert status_of(missing.value) == 404 and missing.value.code == "case-not-found"


def test_the_staff_directory_keeps_the_newest_of_what_the_gateway_said_whatever_order_it_arrives_in(factory):
    t = [datetime(2026, 3, 1, 12, tzinfo=UTC) + timedelta(minutes=n) for n in range(6)]

    def said(session, at: datetime, enabled: bool | None, *roles: str, username: str = "ala") -> None:
        assignment.record_staff(session, user_id="u-1", username=username, roles=list(roles), partner_id=None,
                                enabled=enabled, occurred_at=at)

    def kept() -> tuple:
        with db.transaction(factory) as session:
            row = session.execute(select(StaffMember)).scalar_one()
            return row.username, row.roles, row.enabled

    with db.transaction(factory) as session:
        said(session, t[2], True, "caseworker")  # created
    with db.transaction(factory) as session:
        said(session, t[1], None, "finance", username="old-name")  # an older change of roles, arriving late
    assert kept() == ("ala", ["caseworker"], True)
    with db.transaction(factory) as session:
        said(session, t[4], None, "caseworker", "supervisor")  # roles changed: says nothing of being enabled
        said(session, t[3], False, "caseworker")  # disabled before that change, arriving after it
    assert kept() == ("ala", ["caseworker", "supervisor"], False)
    with db.transaction(factory) as session:
        said(session, t[2], True, "caseworker")  # an old "enabled" again changes nothing
    assert kept() == ("ala", ["caseworker", "supervisor"], False)
    with db.transaction(factory) as session:
        said(session, t[5], True, "caseworker", "supervisor", username="ala.k")
        directory = queries.staff_by_username(session, ["ala.k", "ala"])
    assert kept() == ("ala.k", ["caseworker", "supervisor"], True)
    assert list(directory) == ["ala.k"] and directory["ala.k"].enabled and directory["ala.k"].user_id == "u-1"


def test_someone_first_heard_of_by_a_change_of_roles_counts_as_enabled_until_told_otherwise(factory):
    at = datetime(2026, 3, 1, 12, tzinfo=UTC)
    with db.transaction(factory) as session:
        assignment.record_staff(session, user_id="u-2", username="bo", roles=["caseworker"], partner_id=None,
                                enabled=None, occurred_at=at)
        assignment.record_staff(session, user_id="u-2", username="bo", roles=["caseworker"], partner_id=None,
                                enabled=False, occurred_at=at - timedelta(days=1))  # older, but says it: it counts
        assert queries.staff_by_username(session, ["bo"])["bo"].enabled is False
