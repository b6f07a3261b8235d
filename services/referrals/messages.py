"""Messages on a referral: its caseworkers and its partner write to each other about the person inside the system,
not by e-mail or a messenger where such talk leaks (issue #18, SPEC §4 "Messages").

- Who: on the staff side, a caseworker who may act on the referral's case (need-to-know, `staff.admit_to_case`: an
  assignee, or another caseworker stating why, a break-glass opening audited); on the partner side, the partner the
  referral is addressed to, its API clients and its staff alike, known only from the verified token. Another
  partner's referral is refused exactly like an unknown one (`partner.NotAddressed`, 404, the attempt audited by
  `partner.run`).
- What is kept: the text, sealed under the referral's packet key (`vault.seal_message`): it is shared under the same
  consent as the packet, and goes with it. When the packet is destroyed (consent withdrawn or narrowed, the case
  erased), `vault.shred_packet` deletes the messages' rows in the same transaction. From then on reading answers an
  empty list, not an error: the referral is still there and still the partner's to finish, its answer already says
  the packet is gone (`packet_available: false`, for staff `packet_withdrawn`), and a partner's client that polls
  the thread should not break on the ordinary event of a person withdrawing consent. Writing is refused then (409
  `packet-withdrawn`), and on a referral closed more than 30 days ago (409 `referral-closed`): `domain.message_refusal`.
  A referral the caseworkers cancelled, or the partner declined, is no longer the partner's
  (`domain.WITHDRAWN_FROM_PARTNER`): its thread reads empty to the partner and counts nothing unread for it, and takes
  no message from either side (409 `referral-cancelled` / `referral-declined`: nobody would read it); its
  caseworkers keep it to read. A completed referral's thread stays shared: the partner may follow up.
- What is shown of the writer: the side (`caseworker` | `partner`). Who it was (a user id, an API client id) is kept
  on the row and in the audit trail, and never shown to the partner.
- Unread: one mark per side and referral (`MessageMark`), moved to the newest message a read of that side was shown.
  The caseworker side shares one mark among the case's assignees: a case is worked as a team, and once one of them
  has read the partner's message it is no longer news for the case (per-user marks would keep it unread for a
  colleague who will never need it, and stale marks for every reassignment). A break-glass read moves nothing: the
  case's own caseworkers have not seen it.
- Every write publishes `rehab.referrals.referral.message` (ids and the side, never the text) and is audited; every
  read is audited. Like every use case, none commits: the route runs it in a unit of `runtime.uow`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import tuple_
from sqlmodel import Session, select

from kit.db import dialect_insert
from kit.need_to_know import Access
from kit.pagination import keyset_page
from kit.service import Runtime
from services.referrals import domain, events, lifecycle, partner, queries, staff, vault, webhooks
from services.referrals.domain import Side
from services.referrals.lifecycle import now_utc
from services.referrals.models import KnownCase, MessageMark, Referral, ReferralMessage
from services.referrals.webhook_rules import WebhookEvent

# Oldest first: the order of a thread, and of the index on (referral_id, at, id).
OLDEST = (ReferralMessage.at, ReferralMessage.id)
_MARKS = MessageMark.__table__  # type: ignore[attr-defined]


@dataclass
class MessageView:
    id: str
    side: Side
    at: datetime
    text: str


def on_message_written(session: Session, referral: Referral, message: ReferralMessage) -> None:
    """Tell the partner of a caseworker's message through its webhook, if it has one subscribed to
    `referral.message` (ids and status only, never the text), in the unit of work that wrote it. The partner's own
    messages tell it nothing new."""
    if message.sender == Side.CASEWORKER:
        webhooks.enqueue(session, partner_id=referral.partner_id, referral_id=referral.id,
                         event=WebhookEvent.MESSAGE, status=referral.status, now=message.at)


# ---- the caseworker's side -----------------------------------------------------------------------------------


def write_as_caseworker(*, session: Session, runtime: Runtime, referral_id: str, text: str, actor: str,
                        access_reason: str | None = None) -> MessageView:
    """A caseworker who may act on the referral's case writes to its partner."""
    referral, case = _staff_referral(session, referral_id, lock=True)
    staff.admit_to_case(session, runtime.audit, case_id=referral.case_id, actor=actor, access_reason=access_reason)
    return _write(session, runtime, referral, case, Side.CASEWORKER, text, actor=actor,
                  audit_action="referral.message.write")


def read_as_caseworker(*, session: Session, runtime: Runtime, referral_id: str, limit: int, cursor: str | None,
                       actor: str, access_reason: str | None = None) -> tuple[list[MessageView], str | None]:
    """A referral's messages, oldest first, for a caseworker who may act on its case; an assignee's read marks the
    partner's messages shown as read for the case."""
    referral, case = _staff_referral(session, referral_id)
    access = staff.admit_to_case(session, runtime.audit, case_id=referral.case_id, actor=actor,
                                 access_reason=access_reason)
    return _read(session, runtime, referral, case, Side.CASEWORKER, limit=limit, cursor=cursor, actor=actor,
                 audit_action="referral.message.read", marks=access is Access.ASSIGNED)


def _staff_referral(session: Session, referral_id: str, *, lock: bool = False) -> tuple[Referral, KnownCase | None]:
    query = queries.with_case().where(Referral.id == referral_id)
    row = session.execute(query.with_for_update(of=Referral) if lock else query).first()
    if row is None:
        raise staff.no_referral()
    return row[0], row[1]


# ---- the partner's side --------------------------------------------------------------------------------------


def write_as_partner(*, session: Session, runtime: Runtime, partner_id: str, referral_id: str, text: str,
                     actor: str) -> MessageView:
    """The partner a referral is addressed to writes to its caseworkers."""
    referral, case = _partner_referral(session, partner_id, referral_id, lock=True)
    return _write(session, runtime, referral, case, Side.PARTNER, text, actor=actor,
                  audit_action="partner.referral.message.write")


def read_as_partner(*, session: Session, runtime: Runtime, partner_id: str, referral_id: str, limit: int,
                    cursor: str | None, actor: str) -> tuple[list[MessageView], str | None]:
    """A referral's messages, oldest first, for the partner it is addressed to; the caseworkers' messages shown are
    read from now on. None once the caseworkers cancelled it or the partner declined it: either takes back what the
    partner was given (the packet's contents, and the thread, whose messages often speak of the person), while its
    caseworkers keep the thread. An empty list, not an error, as for a destroyed packet: a partner's client polling
    it goes on."""
    referral, case = _partner_referral(session, partner_id, referral_id)
    if not domain.shared_with_partner(referral.status):
        runtime.audit.record(session, actor=actor, action="partner.referral.message.read", target_id=referral.id)
        return [], None
    return _read(session, runtime, referral, case, Side.PARTNER, limit=limit, cursor=cursor, actor=actor,
                 audit_action="partner.referral.message.read", marks=True)


def _partner_referral(session: Session, partner_id: str, referral_id: str, *,
                      lock: bool = False) -> tuple[Referral, KnownCase | None]:
    query = queries.with_case().where(Referral.id == referral_id, Referral.partner_id == partner_id)
    row = session.execute(query.with_for_update(of=Referral) if lock else query).first()
    if row is None:
        raise partner.NotAddressed(referral_id)
    return row[0], row[1]


# ---- both sides ----------------------------------------------------------------------------------------------


def _write(session: Session, runtime: Runtime, referral: Referral, case: KnownCase | None, side: Side, text: str, *,
           actor: str, audit_action: str) -> MessageView:
    """Seal and keep one message, with its event and audit entry, unless the referral takes none now. The referral's
    row is locked (PostgreSQL): a packet destroyed meanwhile takes this message with it, or refuses it."""
    now = now_utc()
    refusal = domain.message_refusal(referral.status, referral.updated_at, now=now,
                                     packet_kept=lifecycle.key_kept(referral, case, now.date()))
    if refusal:
        raise refusal
    message_id = str(uuid.uuid4())
    message = ReferralMessage(id=message_id, referral_id=referral.id, sender=side, author=actor, at=now,
                              text=vault.seal_message(runtime.keyring, referral, message_id, text))
    session.add(message)
    events.publish(session, events.MESSAGE_WRITTEN, events.MessageWritten(
        referral_id=referral.id, partner_id=referral.partner_id, from_=side, message_id=message_id, occurred_at=now,
    ), about=referral.id)
    runtime.audit.record(session, actor=actor, action=audit_action, target_id=referral.id)
    on_message_written(session, referral, message)
    return MessageView(message_id, side, now, text)


def _read(session: Session, runtime: Runtime, referral: Referral, case: KnownCase | None, side: Side, *, limit: int,
          cursor: str | None, actor: str, audit_action: str, marks: bool) -> tuple[list[MessageView], str | None]:
    """One page of the thread, oldest first, opened with the packet key; nothing once that key is gone. A consent
    found expired here destroys the key now (`lifecycle.withdraw`), and the messages with it, as a read of the
    packet would. `marks`: move `side`'s mark to the newest message shown."""
    now = now_utc()
    runtime.audit.record(session, actor=actor, action=audit_action, target_id=referral.id)
    if referral.packet_key is not None and (reason := lifecycle.packet_gap(referral, case, now.date())):
        lifecycle.withdraw(session, runtime.audit, referral, reason, now)
    if referral.packet_key is None:
        return [], None
    rows, next_cursor = keyset_page(session, select(ReferralMessage).where(ReferralMessage.referral_id == referral.id),
                                    order=OLDEST, limit=limit, cursor=cursor)
    texts = vault.open_messages(runtime.keyring, referral, rows)
    if marks and rows:
        _mark_read(session, referral.id, side, rows[-1])
    return [MessageView(m.id, Side(m.sender), m.at, text) for m, text in zip(rows, texts, strict=True)], next_cursor


def _mark_read(session: Session, referral_id: str, side: Side, newest: ReferralMessage) -> None:
    """`side` has been shown the thread up to `newest`: its mark moves there, never back (a read of an earlier page
    after a later one changes nothing). One upsert, no read first."""
    upsert = dialect_insert(session.connection().dialect.name)(_MARKS).values(
        referral_id=referral_id, side=str(side), read_at=newest.at, read_id=newest.id)
    session.execute(upsert.on_conflict_do_update(
        index_elements=["referral_id", "side"],
        set_={"read_at": upsert.excluded.read_at, "read_id": upsert.excluded.read_id},
        where=tuple_(upsert.excluded.read_at, upsert.excluded.read_id) > tuple_(_MARKS.c.read_at, _MARKS.c.read_id),
    ))
