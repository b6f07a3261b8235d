"""Messages on a referral without a broker: the rule for when one may be written, texts sealed under the packet key
and bound to their message, gone with the packet, unread counts per side with marks that never move back, and the
event's `from`. SQLite in memory."""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from kit.audit import AuditTrail
from kit.crypto import DecryptionError, Keyring
from kit.errors import Conflict
from kit.problems import status_of
from services.referrals import domain, events, lifecycle, messages, projections, queries, vault
from services.referrals.domain import Side, Status
from services.referrals.models import (
    KnownCase,
    MessageMark,
    Packet,
    Partner,
    Referral,
    ReferralMessage,
    kit_tables,
)

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture
def runtime(monkeypatch) -> SimpleNamespace:
    monkeypatch.setattr(lifecycle, "clock", lambda: NOW)
    return SimpleNamespace(keyring=Keyring({"k1": os.urandom(32)}, "k1"), audit=AuditTrail(kit_tables, b"k" * 32))


def _referral(session: Session, runtime: SimpleNamespace, *, status: str = "accepted") -> Referral:
    if session.get(Partner, "p1") is None:
        session.add(Partner(id="p1", name="Clinic", category="medical", countries=[], cities=[], languages=[],
                            contact_email="a@b.example", active=True, created_at=NOW, updated_at=NOW))
        session.add(KnownCase(case_id="c1", status="open", consent_recorded_at=NOW, consent_categories=["medical"],
                              updated_at=NOW))
        projections.assign_case(session, case_id="c1", assignees=["cw-1", "cw-3"], assigned_at=NOW)
    referral = Referral(id=str(uuid.uuid4()), case_id="c1", partner_id="p1", need_category="medical", status=status,
                        created_by="cw-1", created_at=NOW, updated_at=NOW, packet_has_contact=False,
                        packet_has_health=False)
    vault.seal_packet(runtime.keyring, referral, Packet(display_name="Алеся"))
    session.add(referral)
    session.flush()
    return referral


# ---- when a message may be written ---------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "closed_ago", "packet_kept", "refused_as"), [
    (Status.SENT, 400 * DAY, True, None),  # open: its age does not matter
    (Status.ACCEPTED, 400 * DAY, True, None),
    (Status.IN_PROGRESS, 400 * DAY, True, None),
    (Status.COMPLETED, timedelta(0), True, None),
    (Status.COMPLETED, 30 * DAY, True, None),  # the 30th day is still within
    (Status.COMPLETED, 30 * DAY + timedelta(seconds=1), True, "referral-closed"),
    (Status.DECLINED, 31 * DAY, True, "referral-declined"),  # the partner refused the person: nothing to write
    (Status.DECLINED, timedelta(0), True, "referral-declined"),
    (Status.CANCELLED, 31 * DAY, True, "referral-cancelled"),  # no longer the partner's: no one to write to
    (Status.CANCELLED, timedelta(0), True, "referral-cancelled"),
    (Status.ACCEPTED, timedelta(0), False, "packet-withdrawn"),  # the packet gone: nothing, open or not
    (Status.COMPLETED, 31 * DAY, False, "packet-withdrawn"),
])
def test_when_a_message_may_be_written(status, closed_ago, packet_kept, refused_as):
    refusal = domain.message_refusal(status, NOW - closed_ago, packet_kept=packet_kept, now=NOW)
    if refused_as is None:
        assert refusal is None
        return
    assert isinstance(refusal, Conflict) and status_of(refusal) == 409 and refusal.code == refused_as
    if refused_as == "referral-closed":
        closed_on = (NOW - closed_ago).date()
        assert refusal.detail.startswith(f"This referral was {status} on {closed_on.isoformat()}")
        assert (closed_on + 30 * DAY).isoformat() in refusal.detail


# ---- sealed under the packet key, gone with it ---------------------------------------------------------------


def test_texts_are_sealed_under_the_packet_key_bound_to_their_message_and_go_with_the_packet(session, runtime,
                                                                                            monkeypatch):
    referral = _referral(session, runtime)
    other = _referral(session, runtime)
    written = []
    for minute, text in enumerate(("first", "second")):
        monkeypatch.setattr(lifecycle, "clock", lambda m=minute: NOW + timedelta(minutes=m))
        written.append(messages.write_as_partner(session=session, runtime=runtime, partner_id="p1",
                                                 referral_id=referral.id, text=text, actor="client-1"))
    messages.write_as_partner(session=session, runtime=runtime, partner_id="p1", referral_id=other.id, text="kept",
                              actor="client-1")
    rows = list(session.exec(select(ReferralMessage).where(ReferralMessage.referral_id == referral.id)
                             .order_by(ReferralMessage.at, ReferralMessage.id)).scalars())
    assert [row.id for row in rows] == [view.id for view in written]
    assert all(b"first" not in row.text and b"second" not in row.text for row in rows)
    assert vault.open_messages(runtime.keyring, referral, rows) == ["first", "second"]

    # A text moved to another message's row (or another referral's) does not open.
    rows[0].text, rows[1].text = rows[1].text, rows[0].text
    with pytest.raises(DecryptionError):
        vault.open_messages(runtime.keyring, referral, rows)
    session.expire_all()
    with pytest.raises(DecryptionError):
        vault.open_messages(runtime.keyring, other, rows)

    messages.read_as_partner(session=session, runtime=runtime, partner_id="p1", referral_id=referral.id, limit=10,
                             cursor=None, actor="client-1")
    vault.shred_packet(session, referral, reason="consent-missing", now=NOW)
    session.flush()
    left = session.execute(select(ReferralMessage.referral_id, func.count()).group_by(ReferralMessage.referral_id))
    assert dict(left.all()) == {other.id: 1}
    assert session.execute(select(MessageMark).where(MessageMark.referral_id == referral.id)).all() == []
    assert vault.open_messages(runtime.keyring, referral, rows) == []
    page = messages.read_as_caseworker(session=session, runtime=runtime, referral_id=referral.id, limit=10,
                                       cursor=None, actor="cw-1")
    assert page == ([], None)
    with pytest.raises(Conflict) as refused:
        messages.write_as_caseworker(session=session, runtime=runtime, referral_id=referral.id, text="hello?",
                                     actor="cw-1")
    assert refused.value.code == "packet-withdrawn"


# ---- unread, per side ----------------------------------------------------------------------------------------


def test_unread_counts_the_other_sides_messages_beyond_a_mark_that_never_moves_back(session, runtime, monkeypatch):
    referral = _referral(session, runtime)
    quiet = _referral(session, runtime)

    def unread(reader: Side) -> dict[str, int]:
        return queries.unread_messages(session, [referral.id, quiet.id], reader=reader)

    def read(reader: Side, actor: str, limit: int = 50, reason: str | None = None) -> None:
        if reader is Side.PARTNER:
            messages.read_as_partner(session=session, runtime=runtime, partner_id="p1", referral_id=referral.id,
                                     limit=limit, cursor=None, actor=actor)
        else:
            messages.read_as_caseworker(session=session, runtime=runtime, referral_id=referral.id, limit=limit,
                                        cursor=None, actor=actor, access_reason=reason)

    assert unread(Side.CASEWORKER) == unread(Side.PARTNER) == {}
    assert queries.unread_messages(session, [], reader=Side.CASEWORKER) == {}
    for minute, text in enumerate(("one", "two", "three")):
        monkeypatch.setattr(lifecycle, "clock", lambda m=minute: NOW + timedelta(minutes=m))
        messages.write_as_partner(session=session, runtime=runtime, partner_id="p1", referral_id=referral.id,
                                  text=text, actor="client-1")
    assert unread(Side.CASEWORKER) == {referral.id: 3} and unread(Side.PARTNER) == {}

    read(Side.CASEWORKER, "cw-2", reason="covering for cw-1 this week")  # break-glass: not the case's read
    assert unread(Side.CASEWORKER) == {referral.id: 3}
    read(Side.CASEWORKER, "cw-3", limit=2)  # any assignee, a page: what was shown
    assert unread(Side.CASEWORKER) == {referral.id: 1}
    read(Side.CASEWORKER, "cw-1")
    assert unread(Side.CASEWORKER) == {}
    read(Side.CASEWORKER, "cw-1", limit=1)  # the first page again: the mark stays at the newest shown
    assert unread(Side.CASEWORKER) == {}
    assert session.get(MessageMark, (referral.id, "caseworker")).read_at == NOW + timedelta(minutes=2)

    monkeypatch.setattr(lifecycle, "clock", lambda: NOW + timedelta(minutes=5))
    messages.write_as_caseworker(session=session, runtime=runtime, referral_id=referral.id, text="noted",
                                 actor="cw-1")
    assert unread(Side.CASEWORKER) == {} and unread(Side.PARTNER) == {referral.id: 1}
    read(Side.PARTNER, "client-1")
    assert unread(Side.PARTNER) == {}


def test_the_event_names_the_side_as_from_and_holds_no_text(session, runtime):
    referral = _referral(session, runtime)
    view = messages.write_as_caseworker(session=session, runtime=runtime, referral_id=referral.id,
                                        text="Q1SecretText", actor="cw-1")
    outbox = kit_tables.outbox
    rows = session.execute(select(outbox)).mappings().all()
    assert len(rows) == 1 and rows[0]["subject"] == events.MESSAGE_WRITTEN
    assert json.loads(rows[0]["envelope"])["data"] == {
        "referral_id": referral.id, "partner_id": "p1", "from": "caseworker", "message_id": view.id,
        "occurred_at": "2026-11-23T12:00:00Z"}
    assert b"Q1SecretText" not in repr(dict(rows[0])).encode()
    assert events.PUBLISHED[events.MESSAGE_WRITTEN] is events.MessageWritten
