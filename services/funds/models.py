"""Funds' tables and the shapes its API speaks. Its own registry keeps the tables apart from other services' tables
in one Python process.

Tables hold money as integers in minor units; the API speaks decimal strings, so a grant's or disbursement's table
model and its Create/Public models share names but not fields. Personal details (a disbursement's purpose and payee,
a payment's reference and its rate's source) are only ever stored sealed under the case's data key.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ValidationInfo, field_validator
from pydantic import Field as PydanticField
from sqlalchemy import JSON, BigInteger, CheckConstraint, DateTime, Index, LargeBinary, text
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from kit.crypto import WrappedKeyColumns
from kit.currencies import decimal_string
from kit.problems import StrictModel, pattern_in_words
from kit.tables import KitTables
from kit.text import Said
from services.funds import domain, money


class FundsTable(SQLModel, registry=registry()):
    pass


kit_tables = KitTables(FundsTable.metadata)


def utc(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every time this service stores is UTC."""
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def new_id() -> str:
    return str(uuid.uuid4())


def _when(nullable: bool = False) -> Any:
    """A UTC timestamp column."""
    return Field(default=None, sa_type=DateTime(timezone=True), nullable=nullable)


# ---- tables ----------------------------------------------------------------------------------------------------

class Grant(FundsTable, table=True):
    __tablename__ = "grants"
    __table_args__ = (
        CheckConstraint("budget_minor > 0", name="ck_grants_budget_positive"),
        CheckConstraint("ends_on >= starts_on", name="ck_grants_period"),
        # Codes told apart by more than letter case, to the database too (create_grant checks first, in words).
        Index("ux_grants_code_any_case", text("lower(code)"), unique=True),
    )

    id: str = Field(primary_key=True, max_length=36)
    code: str = Field(unique=True, max_length=40)
    donor: str = Field(max_length=200)  # "" once sealed: donors.py (in clear only for grants made before)
    currency: str = Field(max_length=3)
    budget_minor: int = Field(sa_type=BigInteger)
    starts_on: date
    ends_on: date
    categories: list[str] = Field(sa_type=JSON)
    created_by: str = Field(max_length=200)
    created_at: datetime = _when()
    # The donor sealed under the grant's own data key, wrapped by the KEK (donors.py).
    donor_sealed: bytes | None = Field(default=None, sa_type=LargeBinary)
    donor_kid: str | None = Field(default=None, max_length=20)
    donor_key: bytes | None = Field(default=None, sa_type=LargeBinary)

    def terms(self) -> domain.GrantTerms:
        return domain.GrantTerms(code=self.code, currency=self.currency, starts_on=self.starts_on,
                                 ends_on=self.ends_on, categories=tuple(self.categories))


class LedgerAccount(FundsTable, table=True):
    """One account of one grant; its totals are a cache of the transfers, updated in the transfer's transaction."""

    __tablename__ = "ledger_accounts"
    __table_args__ = (
        CheckConstraint("debits_minor >= 0 AND credits_minor >= 0", name="ck_ledger_accounts_totals"),
        # The last wall against overspending: no account's balance may go below zero (TigerBeetle's
        # debits_must_not_exceed_credits, and the reverse for the debit-normal funding account).
        CheckConstraint("(name = 'funding' AND credits_minor <= debits_minor) "
                        "OR (name <> 'funding' AND debits_minor <= credits_minor)",
                        name="ck_ledger_accounts_not_negative"),
    )

    grant_id: str = Field(foreign_key="grants.id", primary_key=True, max_length=36)
    name: str = Field(primary_key=True, max_length=16)
    debits_minor: int = Field(default=0, sa_type=BigInteger)
    credits_minor: int = Field(default=0, sa_type=BigInteger)


class Transfer(FundsTable, table=True):
    """An immutable movement between two accounts of a grant (a database trigger refuses edits and deletes);
    a correction is a new, reversing transfer."""

    __tablename__ = "transfers"
    __table_args__ = (CheckConstraint("amount_minor > 0", name="ck_transfers_amount_positive"),)

    id: str = Field(primary_key=True, max_length=36)
    grant_id: str = Field(foreign_key="grants.id", index=True, max_length=36)
    kind: str = Field(max_length=16)
    debit_account: str = Field(max_length=16)
    credit_account: str = Field(max_length=16)
    amount_minor: int = Field(sa_type=BigInteger)
    disbursement_id: str | None = Field(default=None, foreign_key="disbursements.id", index=True, max_length=36)
    reverses_id: str | None = Field(default=None, foreign_key="transfers.id", max_length=36)
    created_at: datetime = _when()


class Disbursement(FundsTable, table=True):
    __tablename__ = "disbursements"
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="ck_disbursements_amount_positive"),
        CheckConstraint(f"status IN ({', '.join(repr(s.value) for s in domain.Status)})",
                        name="ck_disbursements_status"),
    )

    id: str = Field(primary_key=True, max_length=36)
    case_id: str = Field(index=True, max_length=36)
    grant_id: str = Field(foreign_key="grants.id", index=True, max_length=36)
    referral_id: str | None = Field(default=None, index=True, max_length=36)
    category: str = Field(max_length=20)
    amount_minor: int = Field(sa_type=BigInteger)
    currency: str = Field(max_length=3)
    status: str = Field(index=True, max_length=12)
    purpose_sealed: bytes | None = Field(default=None, sa_type=LargeBinary)
    payee_sealed: bytes | None = Field(default=None, sa_type=LargeBinary)
    shredded: bool = False  # the case was erased: purpose and payee are gone for good
    requested_by: str = Field(max_length=200)
    requested_at: datetime = _when()
    approved_by: str | None = Field(default=None, max_length=200)
    approved_at: datetime | None = _when(nullable=True)
    rejected_by: str | None = Field(default=None, max_length=200)
    rejected_at: datetime | None = _when(nullable=True)
    voided_by: str | None = Field(default=None, max_length=200)
    voided_at: datetime | None = _when(nullable=True)
    paid_by: str | None = Field(default=None, max_length=200)
    paid_at: datetime | None = _when(nullable=True)


class Payment(FundsTable, table=True):
    """At most one per disbursement, by a unique constraint: the database itself refuses a second payment.

    A payment made in another currency than the grant's records what the person received (`paid_amount_minor` in
    `paid_currency`'s minor units), the rate and where it came from, what that is worth in the grant's currency
    (`converted_minor`: what the ledger posted as paid), its difference from the approved amount (converted minus
    approved, in the grant's minor units) and the payer's decision about it; all of them empty for a payment in the
    grant's own currency. Append-only like the ledger (a trigger refuses edits), so the record of the rate used
    cannot change after the money went out."""

    __tablename__ = "payments"
    __table_args__ = (
        # Either no FX at all or the whole of it, and a difference only with its decision. The migration adds these
        # on PostgreSQL only: SQLite cannot add a CHECK to a table without copying it, which would drop its
        # append-only triggers; there the use case is the wall.
        CheckConstraint("(paid_currency IS NULL AND paid_amount_minor IS NULL AND fx_rate IS NULL "
                        "AND fx_source IS NULL AND fx_source_sealed IS NULL AND converted_minor IS NULL "
                        "AND difference_minor IS NULL AND difference_decision IS NULL) OR "
                        "(paid_currency IS NOT NULL AND paid_amount_minor > 0 AND fx_rate IS NOT NULL "
                        "AND (fx_source IS NOT NULL OR fx_source_sealed IS NOT NULL) AND converted_minor > 0 "
                        "AND difference_minor IS NOT NULL)",
                        name="ck_payments_fx_whole"),
        CheckConstraint("(difference_minor IS NULL OR difference_minor = 0) = (difference_decision IS NULL)",
                        name="ck_payments_fx_decided"),
    )

    id: str = Field(primary_key=True, max_length=36)
    disbursement_id: str = Field(foreign_key="disbursements.id", unique=True, max_length=36)
    transfer_id: str = Field(foreign_key="transfers.id", unique=True, max_length=36)
    method: str = Field(max_length=20)
    # The bank's or cash book's reference may carry the payee's name: sealed under the case's data key, gone with it
    # ("" here, as also for a payment whose case was erased before it, which keeps no reference). `reference` in clear
    # holds only payments made before that.
    reference: str = Field(max_length=64)
    reference_sealed: bytes | None = Field(default=None, sa_type=LargeBinary)
    paid_by: str = Field(max_length=200)
    paid_at: datetime = _when()
    paid_amount_minor: int | None = Field(default=None, sa_type=BigInteger)
    paid_currency: str | None = Field(default=None, max_length=3)
    fx_rate: str | None = Field(default=None, max_length=24)
    # Where the rate came from is typed text, meant to name a market and not a person, but kept like text that might:
    # sealed under the case's data key, gone with it. `fx_source` in clear holds only payments made before that.
    fx_source: str | None = Field(default=None, max_length=200)
    fx_source_sealed: bytes | None = Field(default=None, sa_type=LargeBinary)
    converted_minor: int | None = Field(default=None, sa_type=BigInteger)
    difference_minor: int | None = Field(default=None, sa_type=BigInteger)
    difference_decision: str | None = Field(default=None, max_length=8)


class CaseKey(FundsTable, table=True):
    """The data key sealing one case's personal details here, wrapped by the key-encryption key.
    Deleting the row crypto-shreds everything sealed under it."""

    __tablename__ = "case_keys"

    case_id: str = Field(primary_key=True, max_length=36)
    kid: str = Field(max_length=20)
    wrapped: bytes = Field(sa_type=LargeBinary)
    created_at: datetime = _when()


# Every wrapped data key funds stores, in one place: `rehab keys rotate` re-wraps these, `keys status` and
# `keys retire` count them (kit.crypto.rewrap_table, count_by_kek): cases' keys, and grants' donor keys.
WRAPPED_KEYS = [WrappedKeyColumns(CaseKey.__table__, "kid", "wrapped"),
                WrappedKeyColumns(Grant.__table__, "donor_kid", "donor_key")]


class CaseView(FundsTable, table=True):
    """What funds knows of a case, learned from intake's events: enough to refuse aid for a closed or erased case."""

    __tablename__ = "cases"

    case_id: str = Field(primary_key=True, max_length=36)
    reference: str | None = Field(default=None, max_length=20)
    status: str = Field(max_length=12)
    updated_at: datetime = _when()


class CaseAssignment(FundsTable, table=True):
    """When the assignment of a case that funds keeps was made (intake's newest case.assigned): an older one arriving
    later is ignored. Its assignees are the `case_assignees` rows. Staff user ids only, no personal data."""

    __tablename__ = "case_assignments"

    case_id: str = Field(primary_key=True, max_length=36)
    assigned_at: datetime = _when()


class CaseAssignee(FundsTable, table=True):
    """One caseworker a case is assigned to: who may request aid for it and see its disbursements (need-to-know)."""

    __tablename__ = "case_assignees"

    case_id: str = Field(foreign_key="case_assignments.case_id", primary_key=True, max_length=36)
    user_id: str = Field(primary_key=True, max_length=200)


class CaseWorker(FundsTable, table=True):
    """Someone ever assigned to a case, as funds heard of it (`case_assignees` holds who is assigned now): none of
    them approves or pays its aid, however they left it (domain.check_not_on_the_case). Staff user ids only."""

    __tablename__ = "case_workers"

    case_id: str = Field(primary_key=True, max_length=36)
    user_id: str = Field(primary_key=True, max_length=200)


class CostEstimate(FundsTable, table=True):
    """A completed referral's cost estimate, learned from referrals' events; open until a disbursement claims it."""

    __tablename__ = "cost_estimates"
    __table_args__ = (CheckConstraint("amount_minor > 0", name="ck_cost_estimates_amount_positive"),)

    referral_id: str = Field(primary_key=True, max_length=36)
    case_id: str = Field(index=True, max_length=36)
    partner_id: str = Field(max_length=36)
    category: str = Field(max_length=20)
    amount_minor: int = Field(sa_type=BigInteger)
    currency: str = Field(max_length=3)
    completed_at: datetime = _when()
    disbursement_id: str | None = Field(default=None, index=True, max_length=36)


# ---- what the API reads --------------------------------------------------------------------------------------

Category = domain.Category
# The patterns fields take, each with what a 422 says it takes: never the pattern itself (kit.problems).
CURRENCY = pattern_in_words(r"^[A-Z]{3}$", "must be an ISO 4217 code of 3 capital letters, such as EUR")
ONE_LINE = pattern_in_words(r"^[^\x00-\x1f\x7f]+$", "must be one line of text, without control characters")
GRANT_CODE = pattern_in_words(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,39}$",
                              "must be 1-40 letters, digits and . _ / -, starting with a letter or digit")
REFERENCE = pattern_in_words(r"^[A-Za-z0-9][A-Za-z0-9._/#:-]{0,63}$",
                             "must be 1-64 letters, digits and . _ / # : -, starting with a letter or digit")
CurrencyCode = Annotated[str, PydanticField(pattern=CURRENCY, description="ISO 4217, e.g. EUR"),
                         AfterValidator(money.check_currency)]
# strict: a JSON number is refused (422), and said so; money is a decimal string with the currency's minor digits.
MoneyText = Annotated[str, PydanticField(strict=True, min_length=1, max_length=32, examples=["300.00"]),
                      decimal_string("300.00")]
PaymentMethod = Literal["bank_transfer", "card", "cash", "mobile_money", "crypto", "other"]


class _Priced(StrictModel):
    """A body with `currency` and then `amount`: the amount is checked against the currency's minor digits."""

    @field_validator("amount", check_fields=False)
    @classmethod
    def _amount_in_currency(cls, amount: str, info: ValidationInfo) -> str:
        if "currency" in info.data:  # else the currency itself was refused, and says so
            money.parse_amount(amount, info.data["currency"])
        return amount

    @property
    def amount_minor(self) -> int:
        return money.parse_amount(self.amount, self.currency)  # type: ignore[attr-defined]


class GrantCreate(_Priced):
    donor: str = PydanticField(min_length=1, max_length=200, pattern=ONE_LINE)
    code: str = PydanticField(pattern=GRANT_CODE)
    currency: CurrencyCode
    amount: MoneyText
    starts_on: date
    ends_on: date
    categories: list[Category] = PydanticField(min_length=1)

    @field_validator("ends_on")
    @classmethod
    def _not_before_start(cls, ends_on: date, info: ValidationInfo) -> date:
        if "starts_on" in info.data and ends_on < info.data["starts_on"]:
            raise ValueError("a grant cannot end before it starts")
        return ends_on


class GrantPublic(BaseModel):
    id: str
    code: str
    donor: str
    currency: str
    budget: str
    committed: str
    paid: str
    available: str
    starts_on: date
    ends_on: date
    categories: list[str]
    created_at: datetime


class GrantChoice(BaseModel):
    """A grant as a caseworker chooses one for an aid request: what it pays for, in which currency and until when;
    not its donor or its balances (finance's business)."""

    id: str
    code: str
    currency: str
    categories: list[str]
    ends_on: date


class Payee(StrictModel):
    """Who receives the money. Personal data: sealed at rest, shown to finance only, shredded with the case."""

    name: str = PydanticField(min_length=1, max_length=200)
    account: str = PydanticField(min_length=1, max_length=100)


# What the aid is for, in the requester's words: something a reader sees (kit.text).
Purpose = Annotated[str, PydanticField(min_length=1, max_length=2000), Said]


class DisbursementCreate(_Priced):
    case_id: uuid.UUID
    grant_id: uuid.UUID
    category: Category
    currency: CurrencyCode
    amount: MoneyText
    purpose: Purpose
    referral_id: uuid.UUID | None = None
    payee: Payee | None = None


class EstimateRequest(StrictModel):
    """Request aid for an open cost estimate in one step: amount, currency, category and case come from it."""

    grant_id: uuid.UUID
    purpose: Purpose
    payee: Payee | None = None


FxRate = Annotated[str, PydanticField(strict=True, min_length=1, max_length=24, examples=["4.3000"],
                                      description="units of the paid currency for one unit of the grant's"),
                   AfterValidator(money.check_rate), decimal_string("4.3000", loses="digits")]


class PaidInAnotherCurrency(_Priced):
    """What the person received when it was not the grant's currency: the amount in the paid currency's own minor
    digits, the rate (units of the paid currency for one unit of the grant's) and where the rate comes from."""

    currency: CurrencyCode
    amount: MoneyText
    fx_rate: FxRate
    # Where the rate comes from ("NBP table A 2026-12-02"): one line of text, about the market, never the person.
    fx_source: str = PydanticField(min_length=1, max_length=200, pattern=ONE_LINE)


class PaymentCreate(StrictModel):
    method: PaymentMethod
    # A bank or cash-book reference: Latin letters, digits and a few separators. That does not keep a name out
    # ("KAVALEU.ANASTASIA" fits, and bank references often carry the payee's), so it is kept like personal data:
    # sealed under the case's data key, gone with the case's erasure (and not kept at all once the case was erased).
    reference: str = PydanticField(pattern=REFERENCE,
                                   description="The bank's or cash book's reference. It may carry the payee's name: "
                                               "it is sealed with the case and gone with its erasure (not kept when "
                                               "the case was erased already).")
    paid: PaidInAnotherCurrency | None = None
    # What to do when `paid` converts to another amount than was approved: give the rest back (`release`) or take
    # the extra from the grant (`approve`, not by the requester). Without it such a payment is refused (409).
    difference: domain.Difference | None = None

    @field_validator("difference")
    @classmethod
    def _only_with_paid(cls, difference: str | None, info: ValidationInfo) -> str | None:
        if difference is not None and info.data.get("paid") is None:
            raise ValueError("a difference is decided only for a payment in another currency ('paid')")
        return difference


class PaymentPublic(BaseModel):
    """How a disbursement was paid. `paid_amount` in `paid_currency` is what the person received; `converted_amount`
    (in the disbursement's currency) is what the grant paid for it. In the grant's own currency both are the approved
    amount and the FX fields are empty; in another one `fx_rate` and `fx_source` say how it was converted, and
    `difference` (converted minus approved, e.g. "-2.50") and `difference_decision` (`release`, `approve`) how a
    difference was settled. `reference` (like `fx_source`) is kept with the case: null once the case was erased, and
    for a payment made after its case's erasure, which keeps none."""

    method: str
    reference: str | None = PydanticField(description="The bank's or cash book's reference; null once the case was "
                                                       "erased (or when it was erased before the payment)")
    paid_at: datetime
    paid_amount: str | None = None
    paid_currency: str | None = None
    fx_rate: str | None = None
    fx_source: str | None = None
    converted_amount: str | None = None
    difference: str | None = None
    difference_decision: str | None = None

    @classmethod
    def of(cls, payment: Payment, disbursement: Disbursement, opened: dict[str, str] | None = None) -> PaymentPublic:
        """`opened`: the payment's sealed columns (`fx_source`, `reference`) as opened under the case's key; one
        missing is null (the case was erased, or nothing was sealed). A payment made before a column was sealed
        shows its clear value."""
        opened = opened or {}
        currency = disbursement.currency
        reference = opened.get("reference") if payment.reference_sealed is not None else (payment.reference or None)
        if payment.paid_currency is None:  # paid in the grant's currency: exactly the approved amount
            approved = money.format_amount(disbursement.amount_minor, currency)
            return cls(method=payment.method, reference=reference, paid_at=utc(payment.paid_at),
                       paid_amount=approved, paid_currency=currency, converted_amount=approved)
        return cls(method=payment.method, reference=reference, paid_at=utc(payment.paid_at),
                   paid_amount=money.format_amount(payment.paid_amount_minor or 0, payment.paid_currency),
                   paid_currency=payment.paid_currency, fx_rate=payment.fx_rate,
                   fx_source=(opened.get("fx_source") if payment.fx_source_sealed is not None
                              else payment.fx_source or None),
                   converted_amount=money.format_amount(payment.converted_minor or 0, currency),
                   difference=money.format_amount(payment.difference_minor or 0, currency),
                   difference_decision=payment.difference_decision)


class DisbursementPublic(BaseModel):
    """A disbursement without its personal details; its case's reference as intake announced it (None until funds
    has heard of the case)."""

    id: str
    case_id: str
    case_reference: str | None = None
    grant_id: str
    referral_id: str | None
    category: str
    amount: str
    currency: str
    status: str
    has_payee: bool
    shredded: bool
    requested_by: str
    requested_at: datetime
    approved_by: str | None
    approved_at: datetime | None
    rejected_by: str | None
    rejected_at: datetime | None
    voided_by: str | None
    voided_at: datetime | None
    paid_by: str | None
    paid_at: datetime | None
    payment: PaymentPublic | None = None
    # The caller is, or once was, one of the case's caseworkers: they neither approve nor pay its aid (403
    # `own-case`), so a console need not offer those steps to them.
    on_callers_case: bool = False

    @classmethod
    def of(cls, row: Disbursement, payment: Payment | None = None, *, case_reference: str | None = None,
           opened: dict[str, str] | None = None, on_callers_case: bool = False) -> DisbursementPublic:
        """`opened`: the payment's sealed columns opened (PaymentPublic.of)."""
        return cls(
            id=row.id, case_id=row.case_id, case_reference=case_reference, grant_id=row.grant_id, referral_id=row.referral_id, category=row.category,
            amount=money.format_amount(row.amount_minor, row.currency), currency=row.currency, status=row.status,
            has_payee=row.payee_sealed is not None, shredded=row.shredded,
            requested_by=row.requested_by, requested_at=utc(row.requested_at),
            approved_by=row.approved_by, approved_at=utc(row.approved_at),
            rejected_by=row.rejected_by, rejected_at=utc(row.rejected_at),
            voided_by=row.voided_by, voided_at=utc(row.voided_at),
            paid_by=row.paid_by, paid_at=utc(row.paid_at),
            payment=PaymentPublic.of(payment, row, opened) if payment else None, on_callers_case=on_callers_case,
        )


class PayeeMasked(BaseModel):
    """What finance sees of a payee before asking for it: the kind of account and its last four characters (none of
    an account shorter than eight), never the name."""

    kind: domain.PayeeKind
    ending: str


class DisbursementDetail(DisbursementPublic):
    """One disbursement opened: its purpose, and for finance its payee (each such read is audited as `payee.read`)
    or, asked for masked (`?payee=masked`), only `payee_masked` (audited as `disbursement.read`)."""

    purpose: str | None
    payee: Payee | None
    payee_masked: PayeeMasked | None = None


class CostEstimatePublic(BaseModel):
    referral_id: str
    case_id: str
    case_reference: str | None
    partner_id: str
    category: str
    amount: str
    currency: str
    completed_at: datetime

