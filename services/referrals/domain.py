"""The rules of referrals, with no I/O: the lifecycle, need-to-know, what consent allows, money, overdue.

Everything here is decided from plain values, so the rules are tested as tables without a database or a broker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from kit.currencies import MAX_INTEGER_DIGITS, MINOR_DIGITS
from kit.errors import Conflict, Invalid, NotYet


# Referrals' one list of categories: the partner directory, requests, answers and events all name this one.
class Category(StrEnum):
    """Need, consent and partner categories alike (docs/events.md)."""

    MEDICAL = "medical"
    PSYCHOLOGICAL = "psychological"
    RELOCATION = "relocation"
    LEGAL = "legal"
    HOUSING = "housing"
    EMPLOYMENT = "employment"
    FINANCIAL = "financial"


class Status(StrEnum):
    SENT = "sent"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class Action(StrEnum):
    ACCEPT = "accept"
    DECLINE = "decline"
    START = "start"
    COMPLETE = "complete"
    CANCEL = "cancel"


# The FHIR Task-like lifecycle of SPEC §4. Anything not listed here is refused.
TRANSITIONS: dict[tuple[Status, Action], Status] = {
    (Status.SENT, Action.ACCEPT): Status.ACCEPTED,
    (Status.SENT, Action.DECLINE): Status.DECLINED,
    (Status.ACCEPTED, Action.START): Status.IN_PROGRESS,
    (Status.IN_PROGRESS, Action.COMPLETE): Status.COMPLETED,
    (Status.SENT, Action.CANCEL): Status.CANCELLED,
    (Status.ACCEPTED, Action.CANCEL): Status.CANCELLED,
    (Status.IN_PROGRESS, Action.CANCEL): Status.CANCELLED,
}

OPEN_STATUSES = frozenset({Status.SENT, Status.ACCEPTED, Status.IN_PROGRESS})

# The event each step publishes: rehab.referrals.referral.<event>.
EVENT_OF = {
    Status.SENT: "sent",
    Status.ACCEPTED: "accepted",
    Status.DECLINED: "declined",
    Status.IN_PROGRESS: "started",
    Status.COMPLETED: "completed",
    Status.CANCELLED: "cancelled",
}

# Only the caseworker cancels; everything else is the partner's to do.
PARTNER_ACTIONS = (Action.ACCEPT, Action.DECLINE, Action.START, Action.COMPLETE)

# What a referral is once an action is done to it, as a refusal says it.
DONE = {Action.ACCEPT: "accepted", Action.DECLINE: "declined", Action.START: "started",
        Action.COMPLETE: "completed", Action.CANCEL: "cancelled"}


class IllegalTransition(Conflict):
    """An action the lifecycle does not allow from the referral's state (409 `referral-transition`)."""

    def __init__(self, status: Status, action: Action) -> None:
        state = status.replace("_", " ")
        super().__init__(f"This referral is {state}: it cannot be {DONE[action]} now.", code="referral-transition")
        self.status = status
        self.action = action


def next_status(status: Status | str, action: Action | str) -> Status:
    """The state after `action`, or IllegalTransition."""
    current, step = Status(status), Action(action)
    try:
        return TRANSITIONS[(current, step)]
    except KeyError:
        raise IllegalTransition(current, step) from None


# ---- consent -------------------------------------------------------------------------------------------------


class CaseStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    DUPLICATE = "duplicate"
    ERASED = "erased"


# The order a case's status moves in, kept so by `kit.projection` whatever order intake's events come in; the one
# move back, a closed case (or one marked a duplicate) reopened, is an explicit transition (`projections.reopen_case`).
CASE_ORDER = (CaseStatus.OPEN, CaseStatus.CLOSED, CaseStatus.DUPLICATE, CaseStatus.ERASED)


@dataclass(frozen=True)
class CaseView:
    """What referrals knows of a case: its status and the consent in force (from intake's events)."""

    status: CaseStatus
    consent_recorded: bool = False
    categories: frozenset[str] = frozenset()
    share_contact: bool = False
    share_health: bool = False
    expires_on: date | None = None


@dataclass(frozen=True)
class PacketContents:
    """Which kinds of personal data a packet holds, the part of it that consent rules look at."""

    has_contact: bool
    has_health: bool


class Refusal(Conflict):
    """Why a case's referral or its packet is not allowed (409): the rules below return one, a use case raises it."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail, code=kind)

    @property
    def kind(self) -> str:
        """The code, also the reason a withdrawn packet records (`consent-expired`, `case-erased`, …)."""
        return self.code


def consent_gap(case: CaseView, category: str, packet: PacketContents, today: date) -> Refusal | None:
    """Why the case's consent does not cover sharing this packet with a partner of `category`; None if it does.

    Consent is valid through its `expires_on` day (UTC) and over from the next day.
    """
    if not case.consent_recorded or not case.categories:
        return Refusal("consent-missing", "The person has not given consent to share anything with partners "
                                          "(none recorded, or it was withdrawn).")
    if case.expires_on is not None and case.expires_on < today:
        return Refusal("consent-expired", f"The person's consent expired on {case.expires_on.isoformat()}.")
    if category not in case.categories:
        return Refusal("consent-category", f"The person's consent does not cover {category} partners.")
    if packet.has_contact and not case.share_contact:
        return Refusal("consent-contact", "The packet holds contact details, and the person's consent does not "
                                          "allow sharing them.")
    if packet.has_health and not case.share_health:
        return Refusal("consent-health", "The packet holds a health summary, and the person's consent does not "
                                         "allow sharing it.")
    return None


class CaseNotKnownYet(Refusal, NotYet):
    """A refusal that a moment may lift: intake's event about the case is on its way (a retry is done again)."""


def case_unknown() -> Refusal:
    return CaseNotKnownYet("case-unknown", "This case is not known to referrals (yet): intake may still be sending "
                                           "it; check the case id or try again in a moment.")


def refusal_to_send(case: CaseView | None, category: str, packet: PacketContents, today: date) -> Refusal | None:
    """Why a new referral of this case to a partner of `category` with this packet may not be sent."""
    if case is None:
        return case_unknown()
    if case.status == CaseStatus.ERASED:
        return Refusal("case-erased", "This case was erased.")
    if case.status == CaseStatus.CLOSED:
        return Refusal("case-closed", "This case is closed.")
    if case.status == CaseStatus.DUPLICATE:
        return Refusal("case-duplicate", "This case was marked a duplicate of another case: refer from the case "
                                         "that is kept.")
    return consent_gap(case, category, packet, today)


CANCELLED_PACKET = "referral-cancelled"  # why the packet of a cancelled referral went (staff.cancel_referral)
DECLINED_PACKET = "referral-declined"  # why the packet of a declined referral went (partner.act)

# The states in which a referral is no longer the partner's: the caseworkers cancelled it, or the partner declined
# it. Either way the partner has no remaining need for the person's name, contact, health summary or note, so the
# packet's contents are deleted at once (`lifecycle.take_back`, the reason being the value here), and the thread,
# whose messages often speak of the person, is no longer shared with the partner (it reads empty, counts nothing
# unread, takes no message from either side); the packet's key stays, so that the caseworkers can still read it.
# A completed referral stays the partner's: it may follow up (messages for `MESSAGES_AFTER_CLOSING`), and keeps the
# packet it worked from.
WITHDRAWN_FROM_PARTNER: dict[Status, str] = {Status.CANCELLED: CANCELLED_PACKET, Status.DECLINED: DECLINED_PACKET}


def shared_with_partner(status: Status | str) -> bool:
    """Whether the referral's packet and thread are still the partner's to see (not cancelled, not declined)."""
    return Status(status) not in WITHDRAWN_FROM_PARTNER


# Why a packet went that says what it held (a contact, a health summary): once the case is erased such a reason
# would still tie a kind of personal data to the partner, so erasure replaces it (`projections.forget_case`).
REASONS_NAMING_CONTENTS = frozenset({"consent-contact", "consent-health"})


def packet_withdrawal(case: CaseView | None, category: str, packet: PacketContents, today: date) -> str | None:
    """Why a stored packet may no longer be shown (its key must go); None while consent still covers it.

    Closing a case does not withdraw anything: work already under way may go on. Erasure and consent do.
    """
    if case is None:
        return None  # cannot happen for a sent referral; nothing new is learned, so nothing is decided
    if case.status == CaseStatus.ERASED:
        return "case-erased"
    gap = consent_gap(case, category, packet, today)
    return gap.kind if gap else None


# ---- money ---------------------------------------------------------------------------------------------------

# A cost estimate is paid by funds, from the `referral.completed` event: money funds cannot take would be shown to
# staff here and skipped there, so only the currencies and amounts funds holds are taken (kit.currencies, the one
# table both read).
_AMOUNT = re.compile(r"(0|[1-9][0-9]*)(?:\.([0-9]+))?")


class InvalidMoney(Invalid, ValueError):
    """An amount or currency that is not money as the API writes it. A ValueError too: in a request body, pydantic
    answers it as a 422 naming the rule."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, code="invalid-money")


# Before referrals took only funds' currencies it took any three capitals, with these ISO 4217 minor digits where
# they are not 2: an estimate stored then is still shown as it was taken, never rescaled.
_EARLIER_MINOR_DIGITS = {
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
                     "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLF", "UYW"), 4),
}


def minor_digits(currency: str) -> int:
    return MINOR_DIGITS.get(currency, _EARLIER_MINOR_DIGITS.get(currency, 2))


def parse_money(amount: str, currency: str) -> int:
    """A positive decimal string with exactly the currency's minor digits ("120.00" EUR, "5000" JPY) → minor units.

    The messages never quote what was sent (an answer does not echo a request's values)."""
    if currency not in MINOR_DIGITS:
        raise InvalidMoney("currency must be one funds pays in, written as its three capital letters and nothing "
                           f"else: {', '.join(sorted(MINOR_DIGITS))}")
    digits = MINOR_DIGITS[currency]
    if amount.startswith("-") and _AMOUNT.fullmatch(amount[1:]):  # the shape is right: the sign is what is wrong
        raise InvalidMoney("amount must be greater than zero: a cost is written without a sign")
    found = _AMOUNT.fullmatch(amount)
    if found is None or len(found[2] or "") != digits:
        shape = "a whole number" if digits == 0 else f"a decimal with exactly {digits} digits after the point"
        raise InvalidMoney(f"amount must be {shape} for {currency}, written as a string and nothing else")
    if len(found[1]) > MAX_INTEGER_DIGITS:
        raise InvalidMoney(f"amount is too large: at most {MAX_INTEGER_DIGITS} digits before the decimal point")
    minor = int(found[1]) * 10**digits + int(found[2] or "0")
    if minor == 0:
        raise InvalidMoney("amount must be greater than zero: leave the cost estimate out when there is nothing to pay")
    return minor


def format_money(minor: int, currency: str) -> str:
    digits = minor_digits(currency)
    return f"{Decimal(minor).scaleb(-digits):.{digits}f}"


# ---- overdue -------------------------------------------------------------------------------------------------


def is_overdue(status: Status | str, sent_at: datetime, now: datetime, after: timedelta) -> bool:
    """A referral nobody answered: still `sent` longer than `after`."""
    return Status(status) == Status.SENT and now - sent_at > after


# ---- messages on a referral ----------------------------------------------------------------------------------


class Side(StrEnum):
    """Who wrote a message on a referral, as both sides and the events name them: never which person."""

    CASEWORKER = "caseworker"
    PARTNER = "partner"


CLOSED_STATUSES = frozenset({Status.COMPLETED, Status.DECLINED, Status.CANCELLED})
# How long after a referral was completed its two sides may still write to each other (a question about the outcome,
# a late bill); after that the thread is read-only. A cancelled or declined one takes none at all
# (`WITHDRAWN_FROM_PARTNER`).
MESSAGES_AFTER_CLOSING = timedelta(days=30)


def message_refusal(status: Status | str, changed_at: datetime, *, packet_kept: bool, now: datetime) -> Conflict | None:
    """Why no message may be written on a referral now; None while one may.

    `packet_kept`: the packet's key is still there and consent still covers it. Messages are sealed under that key
    and go with it, so once it is destroyed (or about to be) nothing more is written. A closed referral never moves
    again, so `changed_at`, the time of its last change, is when it closed: messages are taken for
    `MESSAGES_AFTER_CLOSING` after that, and not after.
    """
    if not packet_kept:
        return Conflict("The packet of this referral was destroyed (the person's consent was withdrawn or narrowed, "
                        "or the case was erased), and its messages with it: no new message can be written.",
                        code="packet-withdrawn")
    status = Status(status)
    # Cancelled or declined: its thread is no longer the partner's to read (messages.read_as_partner), so nobody
    # would read a new message; neither side writes.
    if status == Status.CANCELLED:
        return Conflict("This referral was cancelled: its thread is no longer shared with the partner, so no message "
                        "can be written; its caseworkers can still read it.", code="referral-cancelled")
    if status == Status.DECLINED:
        return Conflict("This referral was declined: its thread is no longer shared with the partner, so no message "
                        "can be written; its caseworkers can still read it.", code="referral-declined")
    if status in CLOSED_STATUSES and now - changed_at > MESSAGES_AFTER_CLOSING:
        until = (changed_at + MESSAGES_AFTER_CLOSING).date().isoformat()
        return Conflict(f"This referral was {status} on {changed_at.date().isoformat()}: messages could be written "
                        f"until {until}, {MESSAGES_AFTER_CLOSING.days} days after it closed. The thread can still be "
                        f"read.", code="referral-closed")
    return None
