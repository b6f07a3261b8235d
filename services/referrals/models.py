"""Referrals' tables, and the shapes its API reads and answers. Its own registry keeps its tables apart.

Request bodies are `StrictModel`s (unknown fields → 422); answers are explicit `...Public` models, never a table.
Personal data (the packet, the partner's decline reason and outcome) is stored only sealed, see `vault.py`.
"""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field as PydanticField, StringConstraints, model_validator
from sqlalchemy import JSON, BigInteger, Column, ForeignKey, Index, String, Text
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from kit.crypto import WrappedKeyColumns
from kit.currencies import decimal_string
from kit.problems import StrictModel
from kit.tables import KitTables
from kit.text import OneLine, Said
from services.referrals import domain
from services.referrals.domain import Category, Side, Status
from services.referrals.webhook_rules import DeliveryState, WebhookEvent


class ReferralsTable(SQLModel, registry=registry()):
    pass


kit_tables = KitTables(ReferralsTable.metadata)


# ---- the partner directory (after Open Referral HSDS: organisation, service category, service area, languages,
# ---- contact, active/inactive, and a free note on capacity such as a waiting time) ---------------------------


class Partner(ReferralsTable, table=True):
    __tablename__ = "partners"

    id: str = Field(primary_key=True, max_length=36)
    name: str = Field(max_length=200)
    category: str = Field(max_length=20, index=True)
    countries: list[str] = Field(sa_type=JSON)
    cities: list[str] = Field(sa_type=JSON)
    languages: list[str] = Field(sa_type=JSON)
    contact_email: str = Field(max_length=254)
    active: bool = Field(index=True)
    capacity_note: str | None = Field(default=None, max_length=500)
    created_at: datetime
    updated_at: datetime


class PartnerFacet(ReferralsTable, table=True):
    """One searchable value of a partner (a country, a city, a language), normalised, so filters use an index."""

    __tablename__ = "partner_facets"
    __table_args__ = (Index("ix_partner_facets_facet_value", "facet", "value"),)

    partner_id: str = Field(
        sa_column=Column(String(36), ForeignKey("partners.id", ondelete="CASCADE"), primary_key=True))
    facet: str = Field(primary_key=True, max_length=10)
    value: str = Field(primary_key=True, max_length=100)


def normal_country(value: str) -> str:
    return value.strip().upper()


def normal_city(value: str) -> str:
    return " ".join(value.split()).casefold()


def normal_language(value: str) -> str:
    return value.strip().lower()


def _country(value: str) -> str:
    value = normal_country(value)
    if not re.fullmatch(r"[A-Z]{2}", value):
        raise ValueError("a country is an ISO 3166 alpha-2 code, e.g. LT")
    return value


def _language(value: str) -> str:
    value = normal_language(value)
    if not re.fullmatch(r"[a-z]{2,3}(-[a-z0-9]{2,8})*", value):
        raise ValueError("a language is a BCP 47 tag, e.g. be, ru, pl")
    return value


def _email(value: str) -> str:
    value = value.strip()
    if not re.fullmatch(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+", value):
        raise ValueError("not an e-mail address")
    return value


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


CountryCode = Annotated[str, AfterValidator(_country)]
LanguageTag = Annotated[str, AfterValidator(_language)]
CityName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
EmailText = Annotated[str, PydanticField(max_length=254), AfterValidator(_email)]
Countries = Annotated[list[CountryCode], PydanticField(max_length=60), AfterValidator(_unique)]
Cities = Annotated[list[CityName], PydanticField(max_length=100), AfterValidator(_unique)]
Languages = Annotated[list[LanguageTag], PydanticField(max_length=30), AfterValidator(_unique)]
PartnerName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), Said, OneLine]
CapacityNote = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]


class PartnerCreate(StrictModel):
    name: PartnerName
    category: Category
    countries: Countries = []
    cities: Cities = []
    languages: Languages = []
    contact_email: EmailText
    capacity_note: CapacityNote | None = None
    active: bool = True


class PartnerUpdate(StrictModel):
    """What an admin may change. Not the category: consent was checked against it for referrals already sent."""

    name: PartnerName | None = None
    countries: Countries | None = None
    cities: Cities | None = None
    languages: Languages | None = None
    contact_email: EmailText | None = None
    capacity_note: CapacityNote | None = None
    active: bool | None = None

    @model_validator(mode="after")
    def _required_fields_stay(self) -> PartnerUpdate:
        emptied = [name for name in self.model_fields_set if getattr(self, name) is None and name != "capacity_note"]
        if emptied:
            raise ValueError(f"{', '.join(sorted(emptied))} cannot be null (leave a field out to keep it)")
        return self


class PartnerPublic(BaseModel):
    id: str
    name: str
    category: Category
    countries: list[str]
    cities: list[str]
    languages: list[str]
    contact_email: str
    active: bool
    capacity_note: str | None
    created_at: datetime
    updated_at: datetime


# ---- cases, as intake's events tell them ----------------------------------------------------------------------


class KnownCase(ReferralsTable, table=True):
    """Intake's case as far as referrals needs it: its status and the consent in force. No personal data."""

    __tablename__ = "cases"

    case_id: str = Field(primary_key=True, max_length=36)
    status: str = Field(max_length=16)
    consent_recorded_at: datetime | None = None
    consent_categories: list[str] = Field(default_factory=list, sa_type=JSON)
    share_contact: bool = False
    share_health: bool = False
    consent_expires_on: date | None = None
    updated_at: datetime

    def view(self) -> domain.CaseView:
        return domain.CaseView(
            status=domain.CaseStatus(self.status), consent_recorded=self.consent_recorded_at is not None,
            categories=frozenset(self.consent_categories or ()), share_contact=self.share_contact,
            share_health=self.share_health, expires_on=self.consent_expires_on,
        )


class CaseAssignment(ReferralsTable, table=True):
    """When the assignment of a case that referrals keeps was made (intake's newest case.assigned): an older one
    arriving later is ignored. Its assignees are the `case_assignees` rows. Staff user ids only, no personal data."""

    __tablename__ = "case_assignments"

    case_id: str = Field(primary_key=True, max_length=36)
    assigned_at: datetime


class CaseAssignee(ReferralsTable, table=True):
    """One caseworker a case is assigned to: need-to-know (SPEC §4), and a caseworker's own referrals."""

    __tablename__ = "case_assignees"
    __table_args__ = (Index("ix_case_assignees_user_case", "user_id", "case_id"),)

    case_id: str = Field(
        sa_column=Column(String(36), ForeignKey("case_assignments.case_id", ondelete="CASCADE"), primary_key=True))
    user_id: str = Field(primary_key=True, max_length=200)


# ---- referrals ------------------------------------------------------------------------------------------------


class Referral(ReferralsTable, table=True):
    __tablename__ = "referrals"
    __table_args__ = (
        Index("ix_referrals_case_created", "case_id", "created_at"),
        Index("ix_referrals_partner_created", "partner_id", "created_at"),
        Index("ix_referrals_status_created", "status", "created_at"),
    )

    id: str = Field(primary_key=True, max_length=36)
    case_id: str = Field(max_length=36)
    partner_id: str = Field(sa_column=Column(String(36), ForeignKey("partners.id"), nullable=False))
    need_category: str = Field(max_length=20)
    status: str = Field(max_length=16)
    created_by: str = Field(max_length=200)
    created_at: datetime
    updated_at: datetime
    # What the packet holds, so consent changes are judged without opening it.
    packet_has_contact: bool
    packet_has_health: bool
    # The packet, sealed under a data key of its own; the key (wrapped by the KEK) is destroyed when consent
    # stops covering the packet or the case is erased, and `packet_withdrawn` says why.
    packet: bytes | None = None
    packet_kid: str | None = Field(default=None, max_length=20)
    packet_key: bytes | None = None
    packet_withdrawn: str | None = Field(default=None, max_length=32)
    packet_withdrawn_at: datetime | None = None
    # What the partner wrote back (decline reason, outcome) may describe the person: sealed under another key,
    # which only erasure destroys (consent governs what we share with partners, not what they report to us).
    reply_kid: str | None = Field(default=None, max_length=20)
    reply_key: bytes | None = None
    decline_reason: bytes | None = None
    outcome: bytes | None = None
    cost_minor: int | None = Field(default=None, sa_type=BigInteger)
    cost_currency: str | None = Field(default=None, max_length=3)


class ReferralMessage(ReferralsTable, table=True):
    """A message between a referral's caseworkers and its partner. The text is sealed under the referral's packet
    key (`vault.seal_message`), and the rows go when that key does (`vault.shred_packet`): what the two sides wrote
    about the person is shared under the same consent as the packet."""

    __tablename__ = "referral_messages"
    __table_args__ = (Index("ix_referral_messages_referral_at", "referral_id", "at", "id"),)

    id: str = Field(primary_key=True, max_length=36)
    referral_id: str = Field(
        sa_column=Column(String(36), ForeignKey("referrals.id", ondelete="CASCADE"), nullable=False))
    sender: str = Field(max_length=10)  # domain.Side: which side wrote it, all that is shown of who
    author: str = Field(max_length=200)  # the user id or API client id that wrote it, for the audit trail
    at: datetime
    text: bytes


class MessageMark(ReferralsTable, table=True):
    """How far one side of a referral has read its messages: the newest one that side was shown (`at`, `id`, the
    order they are listed in). Its unread messages are the other side's beyond this. The caseworker side is one mark
    shared by the case's assignees: one of them having read a partner's message is the case's answer to it."""

    __tablename__ = "referral_message_marks"

    referral_id: str = Field(
        sa_column=Column(String(36), ForeignKey("referrals.id", ondelete="CASCADE"), primary_key=True))
    side: str = Field(primary_key=True, max_length=10)
    read_at: datetime
    read_id: str = Field(max_length=36)


# ---- partners' webhooks (webhooks.py; the worker, webhook_delivery.py) ------------------------------------------


class Webhook(ReferralsTable, table=True):
    """A partner's one webhook: where deliveries go, for which events, and its signing secrets. The secrets are
    credentials: sealed under a data key of their own, wrapped by the KEK (`vault.seal_webhook_secrets`); the
    previous one signs too until `previous_until`, after a rotation."""

    __tablename__ = "webhooks"

    partner_id: str = Field(
        sa_column=Column(String(36), ForeignKey("partners.id", ondelete="CASCADE"), primary_key=True))
    url: str = Field(max_length=2048)
    events: list[str] = Field(sa_type=JSON)
    secret_kid: str = Field(max_length=20)
    secret_key: bytes
    secret: bytes
    previous_secret: bytes | None = None
    previous_until: datetime | None = None
    rotated_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


class WebhookDelivery(ReferralsTable, table=True):
    """One event for one partner's webhook (an outbox row: written in the transaction of the change it tells of),
    and how its delivery goes. Its id is the `webhook-id` of every attempt; `body` is sent unchanged each time.
    A worker claims a row by setting `claimed_until` and `claim_token` in one UPDATE (other replicas skip it until
    then) and records the attempt only while the token is still its own."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
        Index("ix_webhook_deliveries_partner_created", "partner_id", "created_at"),
    )

    id: str = Field(primary_key=True, max_length=36)
    partner_id: str = Field(
        sa_column=Column(String(36), ForeignKey("partners.id", ondelete="CASCADE"), nullable=False))
    event_type: str = Field(max_length=32)
    referral_id: str = Field(max_length=36)
    body: str = Field(sa_type=Text)
    state: str = Field(max_length=16)
    attempts: int = 0
    created_at: datetime
    next_attempt_at: datetime | None = None
    claimed_until: datetime | None = None
    claim_token: str | None = Field(default=None, max_length=36)
    last_attempt_at: datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=64)
    finished_at: datetime | None = None


class WebhookAttempt(ReferralsTable, table=True):
    """One attempt of a delivery: when, the receiver's status code or why there was none, how long it took."""

    __tablename__ = "webhook_attempts"

    delivery_id: str = Field(sa_column=Column(
        String(36), ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), primary_key=True))
    attempt: int = Field(primary_key=True)
    at: datetime
    status_code: int | None = None
    error: str | None = Field(default=None, max_length=64)
    duration_ms: int


# Every wrapped data key referrals stores, in one place (the packet key and the reply key of each referral, NULL
# once destroyed; each webhook's secret key): `rehab keys rotate` re-wraps these, `keys status` and `keys retire`
# count them.
WRAPPED_KEYS = [WrappedKeyColumns(Referral.__table__, "packet_kid", "packet_key"),
                WrappedKeyColumns(Referral.__table__, "reply_kid", "reply_key"),
                WrappedKeyColumns(Webhook.__table__, "secret_kid", "secret_key")]


LongText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]


def _blank_to_none(value: str | None) -> str | None:
    return value or None


class Packet(StrictModel):
    """What the partner will see, written by the caseworker for this partner, stored sealed."""

    display_name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), Said]
    language: LanguageTag | None = None
    note: Annotated[LongText | None, AfterValidator(_blank_to_none)] = None
    # How the partner may reach the person (a phone, a messenger handle, "through her sister"): free text.
    contact: Annotated[ShortText | None, AfterValidator(_blank_to_none)] = None
    health_summary: Annotated[LongText | None, AfterValidator(_blank_to_none)] = None

    def contents(self) -> domain.PacketContents:
        return domain.PacketContents(has_contact=self.contact is not None, has_health=self.health_summary is not None)


def _canonical_uuid(value: uuid.UUID) -> str:
    return str(value)


UuidText = Annotated[uuid.UUID, AfterValidator(_canonical_uuid)]


class ReferralCreate(StrictModel):
    case_id: UuidText
    partner_id: UuidText
    need_category: Category
    packet: Packet


class Money(StrictModel):
    """A positive decimal string with the currency's minor digits, in a currency funds pays in (the estimate is paid
    there); a JSON number is refused."""

    amount: Annotated[str, decimal_string("300.00")]  # which says why a number is refused
    currency: str

    @model_validator(mode="after")
    def _valid_amount(self) -> Money:
        domain.parse_money(self.amount, self.currency)  # InvalidMoney is a ValueError: a 422 naming the rule
        return self

    def minor_units(self) -> int:
        return domain.parse_money(self.amount, self.currency)


class DeclineBody(StrictModel):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000), Said]


class CompleteBody(StrictModel):
    outcome: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000), Said]
    cost_estimate: Money | None = None


class MoneyPublic(BaseModel):
    amount: str
    currency: str


class ReferralPublic(BaseModel):
    """A referral for staff lists: ids, state and flags, no personal data."""

    id: str
    case_id: str
    partner_id: str
    need_category: Category
    status: Status
    created_at: datetime
    updated_at: datetime
    overdue: bool
    packet_available: bool
    packet_withdrawn: str | None = PydanticField(
        description="why the packet's key was destroyed: case-erased, consent-missing, consent-expired, "
                    "consent-category, consent-contact, consent-health; referral-cancelled, referral-declined: its "
                    "contents deleted, the key kept for the caseworkers' thread")
    cost_estimate: MoneyPublic | None
    unread_messages: int = PydanticField(
        0, description="the partner's messages on this referral that none of the case's assignees has read yet")


class ReferralDetail(ReferralPublic):
    """One referral for its caseworker, with what it holds about the person (each read is audited)."""

    packet: Packet | None
    decline_reason: str | None
    outcome: str | None


class PartnerReferralSummary(BaseModel):
    """What a partner sees of a referral addressed to it. Not intake's case id: see api.py."""

    id: str
    status: Status
    need_category: Category
    created_at: datetime
    updated_at: datetime
    packet_available: bool


class PartnerReferral(PartnerReferralSummary):
    packet: Packet | None
    unread_messages: int = PydanticField(0, description="the caseworkers' messages on this referral not read yet")


MessageText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000), Said]


class MessageCreate(StrictModel):
    text: MessageText


class MessagePublic(BaseModel):
    """One message on a referral, as either side reads it: which side wrote it, never which person."""

    model_config = ConfigDict(validate_by_name=True, serialize_by_alias=True)

    id: str
    from_: Side = PydanticField(alias="from")
    at: datetime
    text: str


# ---- webhooks, as admins set and see them ---------------------------------------------------------------------


def _distinct_events(values: list[WebhookEvent]) -> list[WebhookEvent]:
    return list(dict.fromkeys(values))


class WebhookSet(StrictModel):
    """Where a partner's deliveries go (https; http and private addresses only where the setting allows) and which
    events it wants."""

    url: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2048)]
    # Repeats fold into one (`_distinct_events`): the bound is on what is sent, not on the events there are.
    events: Annotated[list[WebhookEvent], PydanticField(min_length=1, max_length=16),
                      AfterValidator(_distinct_events)]


class WebhookSecret(BaseModel):
    """The signing secret, shown this once (Standard Webhooks: `whsec_` and base64)."""

    secret: str


class WebhookRotated(WebhookSecret):
    previous_valid_until: datetime = PydanticField(
        description="until when deliveries are signed with the previous secret too (a second signature)")


class WebhookPublic(BaseModel):
    """A partner's webhook as admins see it: never its secret."""

    partner_id: str
    url: str
    events: list[WebhookEvent]
    created_at: datetime
    updated_at: datetime
    rotated_at: datetime | None
    previous_secret_valid_until: datetime | None = PydanticField(
        description="while a rotation is under way, until when the previous secret signs too; else null")


class WebhookDeliveryPublic(BaseModel):
    """One delivery: its `webhook-id`, what it tells, and how its attempts went. `dead` is a dead letter."""

    id: str
    type: WebhookEvent
    referral_id: str
    state: DeliveryState
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None = PydanticField(
        description="why the last attempt failed without a status code, or a status code's kind: timeout, "
                    "connect-failed, protocol-error, address-refused: <kind>, redirect-not-followed, http-status")
    finished_at: datetime | None


class WebhookAttemptPublic(BaseModel):
    attempt: int
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


class WebhookData(BaseModel):
    referral_id: str = PydanticField(description="the referral: fetch it with `GET /api/partner/referrals/{id}`")
    status: Status = PydanticField(description="its status when the event happened (fetch it for the current one)")


class WebhookPayload(BaseModel):
    """What a partner's webhook receives: ids and a state, never anything about the person. `type` is the event's
    name (`referral.sent` for the event `referral.sent`, …)."""

    type: WebhookEvent
    timestamp: datetime = PydanticField(description="when the event happened, UTC")
    data: WebhookData


class ReferralSentPayload(WebhookPayload):
    type: Literal["referral.sent"]


class ReferralCancelledPayload(WebhookPayload):
    type: Literal["referral.cancelled"]


class ReferralMessagePayload(WebhookPayload):
    type: Literal["referral.message"]


class DeadLettersRedelivered(BaseModel):
    redelivered: int = PydanticField(description="how many dead letters are due again, at once")


class WebhookDeliveryDetail(WebhookDeliveryPublic):
    history: list[WebhookAttemptPublic]
