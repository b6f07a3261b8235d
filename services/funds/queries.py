"""Funds' statements that are built ahead or by a rule of their own, in one place: building an upsert costs more than
running it, so the use cases reuse these instead of building their own (and keep no caches of their own)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, or_, select
from sqlmodel import Session

from kit.db import dialect_insert
from kit.projection import ForwardOnly
from services.funds import domain
from services.funds.models import CaseView, Disbursement, FundsTable, Grant, Payment


def _keep_reference(old: Any, new: Any) -> Any:
    """A case keeps the reference it has; one without a reference yet takes the incoming one."""
    return case((and_(new.reference.is_not(None), new.reference != "",
                      or_(old.reference.is_(None), old.reference == "")), new.reference),
                else_=old.reference)


# What funds knows of each case: `cases.upsert(session, {"case_id", "status", "reference", "updated_at"})`, one
# statement, no read first; the status only moves forward (domain.CASE_STATES), so an old event arriving late never
# reopens a closed or erased case. Intake's reopening is the one explicit move back (`cases.move_back`).
cases = ForwardOnly(CaseView.__table__, key="case_id", state_column="status",  # type: ignore[attr-defined]
                    order=domain.CASE_STATES, also={"reference": _keep_reference}, overwrite=["updated_at"])


def insert_if_absent(session: Session, model: type[FundsTable], values: dict, *, key: list[str]) -> None:
    """INSERT … ON CONFLICT DO NOTHING, so that two writers racing to create one row never fail each other."""
    insert = dialect_insert(session.get_bind().dialect.name)
    session.execute(insert(model).values(**values).on_conflict_do_nothing(index_elements=key))


# The newest rates another finance officer paid at lately, for a rate typed now to be held against.
RATES_COMPARED = 5


def rates_paid_lately(session: Session, *, paid_currency: str, grant_currency: str, not_by: str,
                      since: datetime) -> list[str]:
    """The rates (as written, newest first, at most `RATES_COMPARED`) of payments made since `since` in
    `paid_currency` from grants in `grant_currency` by anyone but `not_by`: what one officer's rate is compared
    with comes from others."""
    rows = session.execute(
        select(Payment.fx_rate).join(Disbursement, Disbursement.id == Payment.disbursement_id)
        .join(Grant, Grant.id == Disbursement.grant_id)
        .where(Payment.paid_currency == paid_currency, Grant.currency == grant_currency,
               Payment.paid_by != not_by, Payment.paid_at >= since)
        .order_by(Payment.paid_at.desc()).limit(RATES_COMPARED))  # type: ignore[attr-defined]
    return [rate for (rate,) in rows if rate]
