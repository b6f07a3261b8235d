"""The rules of money, with no I/O: the disbursement state machine, four-eyes, what an approval needs, who may act
on a case's aid (need-to-know), what finance sees of a payee before asking for it, how the ledger's accounts move, and
which report cells are too small to show."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from fractions import Fraction
from typing import Literal, get_args

from kit.errors import Conflict, Refused
from kit.need_to_know import Access, need_to_know
from services.funds.money import format_amount, rough_rate

# What aid is for: the one list (request bodies, grants' terms, estimates that can be paid for all read it).
Category = Literal["medical", "psychological", "relocation", "legal", "housing", "employment", "financial"]
CATEGORIES: tuple[str, ...] = get_args(Category)

# What funds knows of a case, in the order a case moves through them; the one move back, a closed case (or one marked
# a duplicate) reopened, is an explicit transition (`projections.reopen_case`, kit.projection.ForwardOnly.move_back).
CASE_STATES = ("open", "closed", "duplicate", "erased")


# ---- disbursements ---------------------------------------------------------------------------------------------

class Status(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    VOIDED = "voided"
    PAID = "paid"


# A status as a request names it (`?status=`).
StatusName = Literal[tuple(s.value for s in Status)]  # type: ignore[valid-type]

# The statuses in which a disbursement holds its referral's cost estimate.
ACTIVE = (Status.REQUESTED, Status.APPROVED, Status.PAID)

# action → (the states it may start from, the state it leads to). Paid, rejected and voided are final.
TRANSITIONS: dict[str, tuple[frozenset[Status], Status]] = {
    "approve": (frozenset({Status.REQUESTED}), Status.APPROVED),
    "reject": (frozenset({Status.REQUESTED, Status.APPROVED}), Status.REJECTED),
    "void": (frozenset({Status.REQUESTED, Status.APPROVED}), Status.VOIDED),
    "pay": (frozenset({Status.APPROVED}), Status.PAID),
}
_PAST = {"approve": "approved", "reject": "rejected", "void": "voided", "pay": "paid"}


def next_status(current: str, action: str) -> Status:
    """The state `action` leads to from `current`, or a Conflict saying why it cannot happen."""
    allowed, target = TRANSITIONS[action]
    if current not in allowed:
        if current == Status.PAID:
            raise Conflict(f"This disbursement is already paid; it cannot be {_PAST[action]} (again).",
                           code="already-paid")
        if current == target:
            raise Conflict(f"This disbursement is already {current}.", code="invalid-transition")
        raise Conflict(f"A disbursement that is {current} cannot be {_PAST[action]}.", code="invalid-transition")
    return target


def releases_commitment(current: str, action: str) -> bool:
    """Rejecting or voiding an approved disbursement gives its committed amount back to the grant."""
    return current == Status.APPROVED and action in ("reject", "void")


def check_four_eyes(*, requester: str, approver: str) -> None:
    if requester == approver:
        raise Refused("Four-eyes rule: the person who requested a disbursement cannot approve it; "
                      "another member of the finance staff must.", code="four-eyes")


def check_not_on_the_case(*, actor: str, assignees: Collection[str], doing: str) -> None:
    """Separation of duties (SPEC §2: a caseworker may not approve or pay aid): someone who is or was assigned to the
    case (`assignees`: everyone ever) — a caseworker who also holds the finance role, as a small organisation may
    give both — neither approves nor pays its aid (`doing`: "approved", "paid"); another member of the finance staff
    does. Outside reviews' finds (and leaving the case a moment, then coming back, was the next one)."""
    if actor in assignees:
        raise Refused(f"You are or were assigned to this case: its aid is {doing} by another member of the finance "
                      "staff, not by one of its caseworkers (separation of duties).", code="own-case")


@dataclass(frozen=True)
class GrantTerms:
    code: str
    currency: str
    starts_on: date
    ends_on: date
    categories: tuple[str, ...]


def check_grant_not_ended(grant: GrantTerms, today: date) -> None:
    """Aid asked for from a grant that has ended could never be approved (`check_approval`): refused when asked. A
    grant yet to start is not: the aid may be approved once it has."""
    if grant.ends_on < today:
        raise Conflict(f"Grant {grant.code} ended on {grant.ends_on}; no aid can be approved from it any more.",
                       code="grant-period")


def check_approval(*, grant: GrantTerms, category: str, amount_minor: int, currency: str, available_minor: int,
                   case_status: str | None, today: date) -> None:
    """Everything an approval needs besides four-eyes; the first rule broken is refused (a Conflict) by name."""
    if case_status is None:
        raise Conflict("The case of this disbursement is not known to funds.", code="case-unknown")
    if case_status in CASE_STATES[1:]:  # closed, a duplicate or erased
        raise Conflict(f"The case of this disbursement is {case_status}; no aid can be approved for it.",
                       code=f"case-{case_status}")
    if not grant.starts_on <= today <= grant.ends_on:
        raise Conflict(f"Grant {grant.code} runs from {grant.starts_on} to {grant.ends_on}; "
                       f"today ({today}) is outside that period.", code="grant-period")
    if category not in grant.categories:
        raise Conflict(f"Grant {grant.code} does not fund {category} aid "
                       f"(it funds: {', '.join(grant.categories)}).", code="grant-category")
    if currency != grant.currency:
        raise Conflict(f"Grant {grant.code} is in {grant.currency}, the disbursement in {currency}.",
                       code="currency-mismatch")
    if available_minor < amount_minor:
        raise Conflict(f"Grant {grant.code} has {format_amount(available_minor, currency)} {currency} available, "
                       f"less than the {format_amount(amount_minor, currency)} {currency} asked for.",
                       code="grant-funds-short")


# ---- paying in another currency ---------------------------------------------------------------------------------

# What the payer decides about a payment that converts to another amount than was approved.
Difference = Literal["release", "approve"]


@dataclass(frozen=True)
class Settlement:
    """How a payment moves the grant's money, in the grant's minor units: `posted` goes committed → paid, `released`
    committed → available, `extra` available → paid. Always posted + released = the approved amount (the whole
    commitment leaves `committed`) and posted + extra = what the payment is worth in the grant's currency."""

    posted: int
    released: int = 0
    extra: int = 0
    decision: Difference | None = None

    @property
    def difference(self) -> int:
        """What the payment is worth beyond (positive) or short of (negative) the approved amount."""
        return self.extra - self.released


# The most a payer alone may add to what was approved, or give back to the grant, in percent of it: what an exchange
# rate moves between an approval and its payment. More is a new decision about money, and needs a second person: a
# new request, approved (four-eyes). Without this bound one finance officer could pay any sum, at a rate they type,
# against a small approval; or, typing a rate up to the yardstick's factor away, record as little as half of what
# left the bank and give the rest back to the grant, to be approved and spent again (an outside review's find).
FX_DIFFERENCE_MAX_PERCENT = 10


# How far a typed exchange rate may be from what other finance officers paid at lately in the same currencies (the
# median of their newest rates), in percent: a bank's spread and a few weeks' drift. With no such payment, from the
# yardstick (money.UNITS_PER_EUR), a factor of `FX_RATE_FAR_FACTOR` either way: only an absurd rate is refused. A
# payer alone otherwise decides what a payment in another currency is worth: at a rate of their choosing 50,000 PLN
# would settle a 100 EUR approval exactly, needing no decision and no second person, or a huge rate would give
# almost all of it back to the grant to be approved and spent again.
FX_RATE_BAND_PERCENT = 10
FX_RATE_FAR_FACTOR = 2


def check_rate_plausible(rate: str, *, paid_currency: str, into: str, others_lately: list[str]) -> None:
    """Refuse (409 `fx-rate-unusual`) a rate far from what others paid at lately (`others_lately`: their newest
    rates for the same pair, newest first), else, with none, far from the yardstick. The answer names the range
    that would be taken; a rate outside it is a mistake to check, or a payment to make in the grant's currency."""
    typed = Fraction(rate)
    if others_lately:
        ordered = sorted(Fraction(other) for other in others_lately)
        reference = ordered[len(ordered) // 2]
        low = reference * (100 - FX_RATE_BAND_PERCENT) / 100
        high = reference * (100 + FX_RATE_BAND_PERCENT) / 100
        basis = (f"within {FX_RATE_BAND_PERCENT}% of {_rate_text(reference)}, the rate other finance staff paid "
                 f"{paid_currency} at lately")
    else:
        reference = rough_rate(paid_currency, into)
        low, high = reference / FX_RATE_FAR_FACTOR, reference * FX_RATE_FAR_FACTOR
        basis = (f"within a factor of {FX_RATE_FAR_FACTOR} of about {_rate_text(reference)} {paid_currency} per "
                 f"{into} (no one else has paid in {paid_currency} from a {into} grant lately)")
    if not low <= typed <= high:
        raise Conflict(f"The rate {rate} {paid_currency} per {into} is far from what is expected: a rate is taken "
                       f"{basis}, from {_rate_text(low)} to {_rate_text(high)}. Check it (units of {paid_currency} "
                       f"for one {into}); if it is right, pay in {into}.",
                       code="fx-rate-unusual", fx_rate=rate, lowest=_rate_text(low), highest=_rate_text(high))


def _rate_text(value: Fraction) -> str:
    return f"{float(value):.6g}"


def check_difference_bound(*, approved_minor: int, converted_minor: int, currency: str) -> None:
    """Refuse a payment worth more than `FX_DIFFERENCE_MAX_PERCENT` above or below the approved amount (409
    `fx-extra-too-large` or `fx-release-too-large`, naming `most`): the payer checks the rate, or the aid is asked
    for and approved again for what is to be paid (the approval voided first when less is to be paid)."""
    gap = abs(converted_minor - approved_minor)
    if gap * 100 <= approved_minor * FX_DIFFERENCE_MAX_PERCENT:
        return
    most = approved_minor * FX_DIFFERENCE_MAX_PERCENT // 100
    figures = {"currency": currency, "approved_amount": format_amount(approved_minor, currency),
               "converted_amount": format_amount(converted_minor, currency),
               "difference": format_amount(gap, currency), "most": format_amount(most, currency)}
    worth = (f"The payment is worth {format_amount(gap, currency)} {currency} "
             f"{'less' if converted_minor < approved_minor else 'more'} than the "
             f"{format_amount(approved_minor, currency)} {currency} approved: ")
    if converted_minor < approved_minor:
        raise Conflict(worth + f"a payer may give back at most {FX_DIFFERENCE_MAX_PERCENT}% of it "
                       f"({format_amount(most, currency)} {currency}) to the grant. Check the rate and the amount; "
                       "if less is to be paid, void this aid and have it requested and approved again for what is "
                       "paid.", code="fx-release-too-large", **figures)
    raise Conflict(worth + f"a payer may approve at most {FX_DIFFERENCE_MAX_PERCENT}% more "
                   f"({format_amount(most, currency)} {currency}). Check the rate; for more, the aid must be "
                   "requested and approved again.", code="fx-extra-too-large", **figures)


def settle_payment(*, approved_minor: int, converted_minor: int, currency: str, decision: Difference | None,
                   payer: str, requester: str, available_minor: int) -> Settlement:
    """How a payment worth `converted_minor` settles an approval of `approved_minor` (both in the grant's currency).

    Equal: the approved amount is posted as paid. A difference of more than `FX_DIFFERENCE_MAX_PERCENT` of the
    approved amount either way is refused, whatever the decision (409 `fx-release-too-large`, `fx-extra-too-large`):
    it is no rate's drift but a new decision about money. Less: refused unless the payer releases the rest back to
    the grant (`release`). More: refused unless the payer approves the extra (`approve`), is not the requester
    (four-eyes, as for approval) and the grant's available money covers it. A difference is never settled silently:
    a refusal (409 `fx-difference`) names both amounts and the decision that would settle it."""
    if converted_minor == approved_minor:
        return Settlement(posted=approved_minor)
    shorter = converted_minor < approved_minor
    needed: Difference = "release" if shorter else "approve"
    gap = abs(converted_minor - approved_minor)
    check_difference_bound(approved_minor=approved_minor, converted_minor=converted_minor, currency=currency)
    if decision != needed:
        said = (f"The payment is worth {format_amount(converted_minor, currency)} {currency}, "
                f"{format_amount(gap, currency)} {currency} {'less' if shorter else 'more'} than the "
                f"{format_amount(approved_minor, currency)} {currency} approved. ")
        said += ("Pay with \"difference\": \"release\" to give the rest back to the grant." if shorter else
                 "Pay with \"difference\": \"approve\" to approve the extra from the grant's available money "
                 "(not as the requester).")
        raise Conflict(said, code="fx-difference", currency=currency,
                       approved_amount=format_amount(approved_minor, currency),
                       converted_amount=format_amount(converted_minor, currency),
                       difference=format_amount(gap, currency), decision_needed=needed)
    if shorter:
        return Settlement(posted=converted_minor, released=gap, decision="release")
    if payer == requester:
        raise Refused("Four-eyes rule: the person who requested a disbursement cannot approve the extra it costs in "
                      "another currency; another member of the finance staff must pay it.", code="four-eyes")
    if available_minor < gap:
        raise Conflict(f"The grant has {format_amount(available_minor, currency)} {currency} available, less than "
                       f"the extra {format_amount(gap, currency)} {currency} this payment costs.",
                       code="grant-funds-short", available=format_amount(available_minor, currency),
                       extra=format_amount(gap, currency))
    return Settlement(posted=approved_minor, extra=gap, decision="approve")


# ---- the payee, masked ---------------------------------------------------------------------------------------

PayeeKind = Literal["iban", "card", "phone", "account"]
_IBAN = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{8,30}")
_CARD = re.compile(r"[0-9]{13,19}")
_PHONE = re.compile(r"\+[0-9]{7,15}")
# An account shorter than this shows nothing of itself: four characters of six would say most of it.
MASK_SHOWS_FROM = 8


def masked_account(account: str) -> tuple[PayeeKind, str]:
    """What finance sees of a payee's account before asking for it (an audited read): what kind of account it looks
    like and its last four characters ("iban", "4821"), or no characters at all for a short one."""
    compact = re.sub(r"[\s\-./]", "", account).upper()
    kind: PayeeKind = ("iban" if _IBAN.fullmatch(compact) else "card" if _CARD.fullmatch(compact)
                       else "phone" if _PHONE.fullmatch(compact) else "account")
    return kind, compact[-4:] if len(compact) >= MASK_SHOWS_FROM else ""


# ---- need-to-know ----------------------------------------------------------------------------------------------

FINANCE = "finance"
# The audit trail's word for a caseworker refused a case's aid (who, which case: never what the request sent).
ACCESS_REFUSED = "case.access_refused"
# Its word for a finance officer refused by four-eyes: approving their own request, or approving the extra of a
# payment in another currency on it. An auditor wants exactly these tries.
FOUR_EYES_REFUSED = "disbursement.four-eyes-refused"
PAY_REFUSED = "disbursement.pay-refused"  # a payment of what is paid already, or not approved
APPROVE_REFUSED = "disbursement.approve-refused"  # by the aid's state, the grant's rules or the case's state


def case_access(*, user: str, roles: Collection[str], assignees: Collection[str], reason: str | None) -> Access | None:
    """May `user` request aid for a case, or see its disbursements? Finance always (None: no opening to record,
    they work every disbursement); anyone else (a caseworker) under the need-to-know rule (kit.need_to_know), with
    `assignees` from intake's newest case.assigned (empty while none has reached funds, so nobody is assigned yet)."""
    if FINANCE in roles:
        return None
    return need_to_know(user, assignees, reason)


# ---- the ledger ------------------------------------------------------------------------------------------------

class Account(StrEnum):
    FUNDING = "funding"      # the donor's side: debited once by the grant's budget
    AVAILABLE = "available"  # not yet promised to anyone
    COMMITTED = "committed"  # reserved by approved disbursements (the pending phase of a two-phase transfer)
    PAID = "paid"            # posted: paid out


# Debit-normal accounts grow by debits (their balance is debits - credits); the others grow by credits.
DEBIT_NORMAL = frozenset({Account.FUNDING})


class Move(StrEnum):
    FUND = "fund"        # grant created: funding → available
    RESERVE = "reserve"  # approved: available → committed
    POST = "post"        # paid: committed → paid
    RELEASE = "release"  # rejected or voided after approval: committed → available (reverses a reserve)
    # Paid in another currency, when the payment converts to less or more than was approved (see `settle_payment`):
    FX_RELEASE = "fx_release"  # the part of the approved amount the payment did not use: committed → available
    FX_EXTRA = "fx_extra"      # the extra approved at payment: available → paid


# move → (account debited, account credited)
MOVES: dict[Move, tuple[Account, Account]] = {
    Move.FUND: (Account.FUNDING, Account.AVAILABLE),
    Move.RESERVE: (Account.AVAILABLE, Account.COMMITTED),
    Move.POST: (Account.COMMITTED, Account.PAID),
    Move.RELEASE: (Account.COMMITTED, Account.AVAILABLE),
    Move.FX_RELEASE: (Account.COMMITTED, Account.AVAILABLE),
    Move.FX_EXTRA: (Account.AVAILABLE, Account.PAID),
}


def balance(account: str, *, debits: int, credits: int) -> int:
    return debits - credits if account in DEBIT_NORMAL else credits - debits


def ledger_breaks(*, budget: int, balances: dict[str, int]) -> list[str]:
    """What is wrong with one grant's balances (empty when it balances): no account below zero, the budget
    fully funded, and budget = available + committed + paid."""
    breaks = [f"{name} is negative ({value})" for name, value in sorted(balances.items()) if value < 0]
    if balances.get(Account.FUNDING, 0) != budget:
        breaks.append(f"funding ({balances.get(Account.FUNDING, 0)}) differs from the budget ({budget})")
    total = sum(balances.get(a, 0) for a in (Account.AVAILABLE, Account.COMMITTED, Account.PAID))
    if total != budget:
        breaks.append(f"available + committed + paid = {total}, not the budget {budget}")
    return breaks


# ---- reports ---------------------------------------------------------------------------------------------------

SMALL_COUNT = 5


def cells_to_suppress(people_per_cell: dict[tuple[str, str], frozenset[str]], *,
                      threshold: int = SMALL_COUNT, also: Collection[tuple[str, str]] = ()) -> set[tuple[str, str]]:
    """The report cells (month, category) a donor must not see.

    Every cell with fewer than `threshold` people is hidden, and every cell of `also` (a cell shown would give away
    what another report withholds); then, while the hidden cells together hold fewer than `threshold` people, the
    smallest visible cell is hidden too, so that subtracting the visible cells from the grant's total reveals
    nothing about fewer than `threshold` people.
    """
    hidden = {cell for cell, people in people_per_cell.items() if len(people) < threshold or cell in also}
    visible = sorted((len(people), cell) for cell, people in people_per_cell.items() if cell not in hidden)
    while hidden and visible and len(frozenset().union(*(people_per_cell[c] for c in hidden))) < threshold:
        hidden.add(visible.pop(0)[1])
    return hidden
