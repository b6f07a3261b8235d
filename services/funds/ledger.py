"""The double-entry ledger in the database: accounts per grant, immutable transfers, the grant lock, and the check
that recomputes every grant from its transfers.

Every movement is one transfer row plus the two account totals it changes, written in the caller's transaction
while the caller holds the grant's lock, so the cached totals never disagree with the transfers and no two
movements of one grant interleave. CHECK constraints refuse a negative balance even if a rule above were wrong.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from kit.errors import Conflict
from services.funds import domain
from services.funds.domain import Account, Move
from services.funds.models import (
    Disbursement,
    Grant,
    LedgerAccount,
    Payment,
    Transfer,
    new_id,
)


def open_accounts(session: Session, grant: Grant) -> Transfer:
    """A new grant's four accounts, and the transfer that funds it with its budget."""
    session.execute(insert(LedgerAccount),
                    [{"grant_id": grant.id, "name": a.value, "debits_minor": 0, "credits_minor": 0} for a in Account])
    return move(session, grant_id=grant.id, kind=Move.FUND, amount_minor=grant.budget_minor)


def lock_grant(session: Session, grant_id: str) -> Grant | None:
    """The grant, locked until the transaction ends, so that its money moves one transfer at a time.

    PostgreSQL: FOR NO KEY UPDATE, which serialises movements but lets new disbursements reference the grant.
    SQLite: every write transaction already holds the database's write lock (BEGIN IMMEDIATE).
    """
    query = (select(Grant).where(Grant.id == grant_id).with_for_update(key_share=True)
             .execution_options(populate_existing=True))
    return session.execute(query).scalars().first()


def balances(session: Session, grant_id: str) -> dict[str, int]:
    """Each account's balance, read fresh from the database (never from the session's cache)."""
    rows = session.execute(
        select(LedgerAccount.name, LedgerAccount.debits_minor, LedgerAccount.credits_minor)
        .where(LedgerAccount.grant_id == grant_id)
    ).all()
    return {name: domain.balance(name, debits=debits, credits=credits) for name, debits, credits in rows}


def move(session: Session, *, grant_id: str, kind: Move, amount_minor: int, disbursement_id: str | None = None,
         reverses_id: str | None = None, at: datetime | None = None) -> Transfer:
    """Record one transfer and apply it to the two accounts' totals; `at`: the moment of the decision it carries out
    (its event's), so that reports reading either put it in the same month."""
    debit, credit = domain.MOVES[kind]
    transfer = Transfer(id=new_id(), grant_id=grant_id, kind=kind.value, debit_account=debit.value,
                        credit_account=credit.value, amount_minor=amount_minor, disbursement_id=disbursement_id,
                        reverses_id=reverses_id, created_at=at or datetime.now(UTC))
    session.add(transfer)
    try:
        session.flush()
        for name, column in ((debit, LedgerAccount.debits_minor), (credit, LedgerAccount.credits_minor)):
            session.execute(
                update(LedgerAccount)
                .where(LedgerAccount.grant_id == grant_id, LedgerAccount.name == name.value)
                .values({column: column + amount_minor})
                # Accounts are only ever read as columns (`balances`), never held as objects in a session: nothing
                # to bring up to date, so the ORM's per-statement evaluation of the WHERE is skipped.
                .execution_options(synchronize_session=False)
            )
    except IntegrityError as error:
        raise Conflict("The ledger refused this movement: it would take an account of the grant below zero.",
                       code="ledger-refused") from error
    return transfer


def reserve_of(session: Session, disbursement_id: str) -> Transfer | None:
    """The transfer that committed a disbursement's amount: the one a release reverses."""
    return session.execute(
        select(Transfer).where(Transfer.disbursement_id == disbursement_id, Transfer.kind == Move.RESERVE.value)
        .order_by(Transfer.created_at.desc()).limit(1)
    ).scalars().first()


# ---- the check -------------------------------------------------------------------------------------------------

@dataclass
class GrantCheck:
    grant_id: str
    code: str
    currency: str
    budget_minor: int
    balances: dict[str, int] = field(default_factory=dict)
    breaks: list[str] = field(default_factory=list)


def check(session: Session) -> list[GrantCheck]:
    """Recompute every grant from its transfers and compare: the cached totals, no negative balance, the budget
    equation, and agreement with the disbursements (committed = approved, paid = paid, one payment each)."""
    from_transfers: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for grant_id, account, total in session.execute(
        select(Transfer.grant_id, Transfer.debit_account, func.sum(Transfer.amount_minor))
        .group_by(Transfer.grant_id, Transfer.debit_account)
    ):
        from_transfers[grant_id][account][0] = int(total)
    for grant_id, account, total in session.execute(
        select(Transfer.grant_id, Transfer.credit_account, func.sum(Transfer.amount_minor))
        .group_by(Transfer.grant_id, Transfer.credit_account)
    ):
        from_transfers[grant_id][account][1] = int(total)

    cached: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
    for row in session.execute(select(LedgerAccount.grant_id, LedgerAccount.name, LedgerAccount.debits_minor,
                                      LedgerAccount.credits_minor)):
        cached[row.grant_id][row.name] = (row.debits_minor, row.credits_minor)

    by_status: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for grant_id, status, total in session.execute(
        select(Disbursement.grant_id, Disbursement.status, func.sum(Disbursement.amount_minor))
        .where(Disbursement.status != domain.Status.PAID)
        .group_by(Disbursement.grant_id, Disbursement.status)
    ):
        by_status[grant_id][status] = int(total)
    # What the grant paid for each paid disbursement: its approved amount, or what a payment in another currency was
    # worth in the grant's (converted_minor).
    for grant_id, total in session.execute(
        select(Disbursement.grant_id, func.sum(func.coalesce(Payment.converted_minor, Disbursement.amount_minor)))
        .join(Payment, Payment.disbursement_id == Disbursement.id, isouter=True)
        .where(Disbursement.status == domain.Status.PAID).group_by(Disbursement.grant_id)
    ):
        by_status[grant_id][domain.Status.PAID] = int(total)
    fx_breaks = _fx_breaks(session)
    unpaid_payments = session.execute(
        select(func.count()).select_from(Payment).join(Disbursement, Disbursement.id == Payment.disbursement_id)
        .where(Disbursement.status != domain.Status.PAID)
    ).scalar_one()
    paid_without_payment = session.execute(
        select(func.count()).select_from(Disbursement).outerjoin(Payment, Payment.disbursement_id == Disbursement.id)
        .where(Disbursement.status == domain.Status.PAID, Payment.id.is_(None))
    ).scalar_one()

    results = []
    for grant in session.execute(select(Grant).order_by(Grant.code)).scalars():
        result = GrantCheck(grant_id=grant.id, code=grant.code, currency=grant.currency, budget_minor=grant.budget_minor)
        recomputed = from_transfers.get(grant.id, {})
        for account in Account:
            debits, credits = recomputed.get(account.value, [0, 0])
            if account.value not in cached[grant.id]:
                result.breaks.append(f"account {account.value} is missing")
            elif cached[grant.id][account.value] != (debits, credits):
                result.breaks.append(f"account {account.value}: cached totals {cached[grant.id][account.value]} "
                                     f"differ from its transfers ({debits}, {credits})")
            result.balances[account.value] = domain.balance(account.value, debits=debits, credits=credits)
        result.breaks += domain.ledger_breaks(budget=grant.budget_minor, balances=result.balances)
        statuses = by_status.get(grant.id, {})
        if result.balances[Account.COMMITTED] != statuses.get(domain.Status.APPROVED, 0):
            result.breaks.append(f"committed ({result.balances[Account.COMMITTED]}) differs from the approved "
                                 f"disbursements ({statuses.get(domain.Status.APPROVED, 0)})")
        if result.balances[Account.PAID] != statuses.get(domain.Status.PAID, 0):
            result.breaks.append(f"paid ({result.balances[Account.PAID]}) differs from the paid disbursements "
                                 f"({statuses.get(domain.Status.PAID, 0)})")
        result.breaks += fx_breaks.get(grant.id, [])
        results.append(result)
    if unpaid_payments or paid_without_payment:
        results.append(GrantCheck(grant_id="-", code="(payments)", currency="", budget_minor=0, breaks=[
            (f"{unpaid_payments} payments of disbursements not marked paid, "
             f"{paid_without_payment} paid disbursements without a payment")]))
    return results


def _fx_breaks(session: Session) -> dict[str, list[str]]:
    """Per grant, each paid disbursement whose transfers do not settle it: its commitment must leave `committed`
    whole (post + fx_release = approved) and `paid` must grow by what the payment was worth (post + fx_extra =
    converted, the approved amount for a payment in the grant's own currency)."""
    moved: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for disbursement_id, kind, total in session.execute(
        select(Transfer.disbursement_id, Transfer.kind, func.sum(Transfer.amount_minor))
        .where(Transfer.kind.in_([Move.POST.value, Move.FX_RELEASE.value, Move.FX_EXTRA.value]))
        .group_by(Transfer.disbursement_id, Transfer.kind)
    ):
        moved[disbursement_id][kind] = int(total)
    breaks: dict[str, list[str]] = defaultdict(list)
    for disbursement_id, grant_id, approved, converted in session.execute(
        select(Disbursement.id, Disbursement.grant_id, Disbursement.amount_minor, Payment.converted_minor)
        .join(Payment, Payment.disbursement_id == Disbursement.id)
    ):
        kinds = moved.get(disbursement_id, {})
        worth = approved if converted is None else converted
        if kinds.get(Move.POST, 0) + kinds.get(Move.FX_RELEASE, 0) != approved:
            breaks[grant_id].append(f"disbursement {disbursement_id}: posted {kinds.get(Move.POST, 0)} + released "
                                    f"{kinds.get(Move.FX_RELEASE, 0)} differ from the approved {approved}")
        if kinds.get(Move.POST, 0) + kinds.get(Move.FX_EXTRA, 0) != worth:
            breaks[grant_id].append(f"disbursement {disbursement_id}: posted {kinds.get(Move.POST, 0)} + extra "
                                    f"{kinds.get(Move.FX_EXTRA, 0)} differ from the {worth} it was worth")
    return breaks
