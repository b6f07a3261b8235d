"""What the split of referrals' use cases added: domain refusals as kit domain errors, the case projection kept
forward-only by kit.projection, newest-first pages of (referral, case) rows, and a partner's refused attempt
audited although its unit is rolled back. SQLite in memory, no broker."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select
from sqlmodel import Session

from kit.audit import AuditTrail
from kit.errors import BadCursor, Conflict, Invalid, NotFound, Refused
from kit.problems import status_of
from services.referrals import domain, partner, projections, queries, staff
from services.referrals.domain import Action, CaseStatus, Status
from services.referrals.models import KnownCase, Referral, kit_tables

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


@pytest.fixture
def audit() -> AuditTrail:
    return AuditTrail(kit_tables, b"k" * 32)


def _audited(session: Session) -> list[tuple[str, str, str | None]]:
    table = kit_tables.audit
    rows = session.execute(select(table.c.actor, table.c.action, table.c.target_id).order_by(table.c.seq)).all()
    return [tuple(row) for row in rows]


# ---- refusals are domain errors, answered by the kit ----------------------------------------------------------


def test_an_illegal_step_is_a_conflict_in_the_words_of_the_api():
    with pytest.raises(domain.IllegalTransition) as refused:
        domain.next_status(Status.IN_PROGRESS, Action.ACCEPT)
    assert isinstance(refused.value, Conflict) and status_of(refused.value) == 409
    assert refused.value.code == "referral-transition"
    assert refused.value.detail == "This referral is in progress: it cannot be accepted now."
    assert set(domain.DONE) == set(Action)


def test_refusals_of_the_rules_and_bad_money_are_domain_errors():
    refusal = domain.refusal_to_send(None, "medical", domain.PacketContents(False, False), NOW.date())
    assert isinstance(refusal, Conflict) and status_of(refusal) == 409
    assert refusal.code == refusal.kind == "case-unknown" and refusal.extra == {}
    with pytest.raises(domain.InvalidMoney) as bad:
        domain.parse_money("1.0", "EUR")
    assert isinstance(bad.value, Invalid) and isinstance(bad.value, ValueError) and status_of(bad.value) == 422
    assert str(bad.value) == bad.value.detail


# ---- the case projection -------------------------------------------------------------------------------------


def test_a_case_status_only_moves_forward_whatever_order_events_come_in(session):
    projections.note_case_status(session, case_id="c1", status=CaseStatus.CLOSED, now=NOW)
    projections.note_case_status(session, case_id="c1", status=CaseStatus.OPEN, now=NOW + timedelta(seconds=1))
    projections.note_case_status(session, case_id="c2", status=CaseStatus.OPEN, now=NOW)
    projections.note_case_status(session, case_id="c2", status=CaseStatus.CLOSED, now=NOW)
    assert session.get(KnownCase, "c1").status == "closed"
    assert session.get(KnownCase, "c2").status == "closed"


def test_erasure_takes_the_consent_with_it_and_a_late_consent_changes_nothing(session, audit):
    answers = SimpleNamespace(forget=lambda _session, _case_id: 0)
    consent = {"categories": ["medical"], "share_contact": True, "share_health": True,
               "expires_on": date(2027, 1, 1), "recorded_at": NOW}
    projections.apply_consent(session, audit, case_id="known", **consent, now=NOW)
    session.flush()
    for case_id in ("known", "never-heard-of"):
        projections.forget_case(session, audit, case_id=case_id, answers=answers, now=NOW)
        projections.apply_consent(session, audit, case_id=case_id, **{**consent, "recorded_at": NOW + timedelta(1)},
                                  now=NOW)
        projections.note_case_status(session, case_id=case_id, status=CaseStatus.OPEN, now=NOW)
        session.expire_all()
        case = session.get(KnownCase, case_id)
        assert case.status == "erased", case_id
        assert (case.consent_recorded_at, case.consent_categories, case.share_contact, case.share_health,
                case.consent_expires_on) == (None, [], False, False, None), case_id


# ---- assignments and need-to-know ------------------------------------------------------------------------------


def _referral(case_id: str) -> Referral:
    return Referral(id=str(uuid.uuid4()), case_id=case_id, partner_id="p1", need_category="medical", status="sent",
                    created_by="cw", created_at=NOW, updated_at=NOW, packet_has_contact=False, packet_has_health=False)


def test_the_newest_assignment_wins_whatever_order_assignments_come_in(session):
    later = NOW + timedelta(minutes=1)
    assert projections.assign_case(session, case_id="c1", assignees=["cw-2"], assigned_at=later)
    assert not projections.assign_case(session, case_id="c1", assignees=["cw-1"], assigned_at=NOW)  # older, late
    assert queries.assignees(session, "c1") == {"cw-2"}
    assert projections.assign_case(session, case_id="c1", assignees=["cw-1", "cw-3", "cw-1"],
                                   assigned_at=later + timedelta(minutes=1))
    assert queries.assignees(session, "c1") == {"cw-1", "cw-3"}
    assert queries.assignees(session, "never-assigned") == frozenset()

    projections.assign_case(session, case_id="c2", assignees=["cw-2"], assigned_at=NOW)
    mine, theirs = _referral("c1"), _referral("c2")
    session.add_all([mine, theirs])
    session.flush()
    rows, _ = queries.newest_first(session, queries.with_case().where(queries.assigned_to("cw-1")), limit=10,
                                   cursor=None)
    assert [referral.id for referral, _case in rows] == [mine.id]


def test_need_to_know_lets_assignees_in_audits_a_break_glass_and_refuses_the_rest(session, audit):
    projections.assign_case(session, case_id="c1", assignees=["cw-1"], assigned_at=NOW)
    staff.admit_to_case(session, audit, case_id="c1", actor="cw-1", access_reason=None)
    staff.admit_to_case(session, audit, case_id="c1", actor="cw-2", access_reason="covering for cw-1 today")
    for reason in (None, "too short"):
        with pytest.raises((Refused, Invalid)):
            staff.admit_to_case(session, audit, case_id="c1", actor="cw-2", access_reason=reason)
    assert _audited(session) == [("cw-2", "case.break_glass", "c1")]


# ---- newest first ---------------------------------------------------------------------------------------------


def test_referrals_come_newest_first_page_after_page(session):
    ids = []
    for minutes in (0, 5, 5, 5, 10):  # three at the same moment: the id decides
        referral_id = str(uuid.uuid4())
        ids.append((NOW + timedelta(minutes=minutes), referral_id))
        session.add(Referral(id=referral_id, case_id="c1", partner_id="p1", need_category="medical", status="sent",
                             created_by="cw", created_at=NOW + timedelta(minutes=minutes), updated_at=NOW,
                             packet_has_contact=False, packet_has_health=False))
    session.add(KnownCase(case_id="c1", status="open", updated_at=NOW))
    session.flush()
    seen, cursor = [], None
    while True:
        rows, cursor = queries.newest_first(session, queries.with_case(), limit=2, cursor=cursor)
        assert all(case.case_id == "c1" for _referral, case in rows)
        seen += [referral.id for referral, _case in rows]
        if cursor is None:
            break
    assert seen == [referral_id for _at, referral_id in sorted(ids, reverse=True)]
    with pytest.raises(BadCursor):
        queries.newest_first(session, queries.with_case(), limit=2, cursor="garbage")


# ---- a partner's refused attempt ------------------------------------------------------------------------------


async def test_a_referral_not_addressed_to_the_partner_is_not_found_and_the_attempt_stays_audited(session, audit):
    units = []

    async def run(work):
        savepoint = session.begin_nested()
        units.append(work)
        try:
            result = work(session)
        except Exception:
            savepoint.rollback()  # as the unit of work does with a unit that raises
            raise
        savepoint.commit()
        return result

    runtime = SimpleNamespace(uow=SimpleNamespace(run=run), audit=audit)
    someone_elses = str(uuid.uuid4())
    for referral_id in (someone_elses, "not-an-id"):
        with pytest.raises(partner.NotAddressed) as refused:
            await partner.run(runtime, "client-1", lambda s, rid=referral_id: partner.read(
                session=s, runtime=runtime, partner_id="p1", referral_id=rid, actor="client-1"))
        assert isinstance(refused.value, NotFound) and status_of(refused.value) == 404
        assert (refused.value.code, refused.value.detail, refused.value.extra) == (
            "referral-not-found", partner.NOT_ADDRESSED, {})
    assert len(units) == 4
    assert _audited(session) == [("client-1", "partner.referral.denied", someone_elses),
                                 ("client-1", "partner.referral.denied", None)]
