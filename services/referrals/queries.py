"""The reads several of referrals' use cases share: a referral with what is known of its case, newest first, the
overdue count, who a case is assigned to, and how many messages each side has not read. Statements only; what to
do with the rows is the use cases' (staff, partner, projections, messages)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, or_, tuple_
from sqlmodel import Session, func, select

from kit.pagination import keyset_page
from services.referrals.domain import Side, Status
from services.referrals.models import CaseAssignee, KnownCase, MessageMark, Referral, ReferralMessage

# Newest first: the order of every list of referrals, and of the index on (…, created_at) behind each filter.
NEWEST = (Referral.created_at, Referral.id)


def with_case() -> Select:
    """(Referral, KnownCase | None) rows: a referral and its case as intake's events told it."""
    return select(Referral, KnownCase).join(KnownCase, KnownCase.case_id == Referral.case_id, isouter=True)


def newest_first(session: Session, query: Select, *, limit: int, cursor: str | None) -> tuple[list[Any], str | None]:
    """One page of `with_case()` rows, newest referral first, and the cursor of the next page (kit.pagination)."""
    return keyset_page(session, query, order=NEWEST, limit=limit, cursor=cursor, descending=True,
                       key=lambda row: (row[0].created_at, row[0].id))


def overdue(now: datetime, after: timedelta) -> ColumnElement[bool]:
    """A referral nobody has answered for longer than `after` (`domain.is_overdue`, in SQL)."""
    return and_(Referral.status == Status.SENT, Referral.created_at < now - after)


def count_overdue(session: Session, *, now: datetime, after: timedelta) -> int:
    return session.exec(select(func.count()).select_from(Referral).where(overdue(now, after))).one()


def assignees(session: Session, case_id: str) -> frozenset[str]:
    """The user ids a case is assigned to, as intake's newest case.assigned said; empty while none has come."""
    return frozenset(session.exec(select(CaseAssignee.user_id).where(CaseAssignee.case_id == case_id)).all())


def assigned_to(user_id: str) -> ColumnElement[bool]:
    """A referral of one of the cases assigned to `user_id` (one index range of `case_assignees`)."""
    return Referral.case_id.in_(select(CaseAssignee.case_id).where(  # type: ignore[attr-defined]
        CaseAssignee.user_id == user_id))


def unread_messages(session: Session, referral_ids: Collection[str], *, reader: Side) -> dict[str, int]:
    """Per referral, how many messages the other side wrote beyond what `reader`'s side has read (`MessageMark`);
    referrals with none unread are left out. One grouped count over the index on (referral_id, at, id)."""
    if not referral_ids:
        return {}
    mark = and_(MessageMark.referral_id == ReferralMessage.referral_id, MessageMark.side == reader)
    rows = session.execute(
        select(ReferralMessage.referral_id, func.count())
        .join(MessageMark, mark, isouter=True)
        .where(ReferralMessage.referral_id.in_(referral_ids),  # type: ignore[attr-defined]
               ReferralMessage.sender != reader,
               or_(MessageMark.read_at.is_(None),  # type: ignore[union-attr]
                   tuple_(ReferralMessage.at, ReferralMessage.id) > tuple_(MessageMark.read_at, MessageMark.read_id)))
        .group_by(ReferralMessage.referral_id)).all()
    return {referral_id: count for referral_id, count in rows}
