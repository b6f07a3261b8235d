"""The reads several of referrals' use cases share: a referral with what is known of its case, newest first, and
the overdue count. Statements only; what to do with the rows is the use cases' (staff, partner, projections)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_
from sqlmodel import Session, func, select

from kit.pagination import keyset_page
from services.referrals.domain import Status
from services.referrals.models import KnownCase, Referral

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
