"""Reports' tables: anonymous aggregates, and the little each referral needs remembered until it ends.

Sized for a year of a million cases: a report reads a few thousand aggregate rows whatever the number of cases.
Counts are kept per month and category (and urgency, status or outcome), money per month, category and currency,
and the days from a referral's sending to its acceptance or completion as histograms in tenths of a day per month
and category, so that a median or 90th percentile is read off a histogram instead of sorting every referral.

No table holds a name, a case id or anything else about a person: `referral_moments` is keyed by the referral's id
and holds its category and three timestamps, what a later event of the same referral needs. To know how many people a
sum of money is about, `aid_people` remembers which people are in which money cell, each as a keyed hash of their case
id (`handlers.PersonIndex`), keyed by a secret of this service's own: the database alone joins to no other service's
case ids, and an erasure deletes the person's rows (`erased_people` keeps the hash alone, so that an event of theirs
arriving late does not write them back).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Text
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from kit.tables import KitTables


class ReportsTable(SQLModel, registry=registry()):
    pass


kit_tables = KitTables(ReportsTable.metadata)


def utc(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every time this service stores is UTC."""
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _when() -> Any:
    return Field(default=None, sa_type=DateTime(timezone=True), nullable=True)


def _counter() -> Any:
    return Field(default=0, sa_type=BigInteger, nullable=False)


class MonthlyCount(ReportsTable, table=True):
    """How many times something happened in a month (UTC): `measure` says what (`cases`, `needs.assessed`,
    `needs.moved`, `referrals`), `category` and `detail` narrow it (a need's category and urgency, a referral's
    category and outcome, a case's `opened`/`closed`/`erased`); empty where a measure has no such dimension."""

    __tablename__ = "monthly_counts"

    month: str = Field(primary_key=True, max_length=7)
    measure: str = Field(primary_key=True, max_length=40)
    category: str = Field(primary_key=True, max_length=40)
    detail: str = Field(primary_key=True, max_length=40)
    count: int = _counter()


class MonthlyAmount(ReportsTable, table=True):
    """Aid approved or paid (`stage`) in a month, per category and currency, in minor units with the number of
    disbursements and of the people (cases) they went to: `basis` `grant` is the amount in the grant's currency (what
    the ledger moved), `paid` the amount in the currency it was paid in (the same unless funds says it paid in
    another).

    `people` is what the disclosure control goes by: one person's five payments are still one person's aid. It grows
    by one when a person is first seen in the cell (`AidPerson`), and stays when their rows are erased. 0 with payments
    in the cell: counted before people were (the migration that added it), not known, and withheld until `rehab
    reports rebuild` counts them."""

    __tablename__ = "monthly_amounts"

    month: str = Field(primary_key=True, max_length=7)
    stage: str = Field(primary_key=True, max_length=16)
    basis: str = Field(primary_key=True, max_length=8)
    category: str = Field(primary_key=True, max_length=40)
    currency: str = Field(primary_key=True, max_length=3)
    amount_minor: int = _counter()
    payments: int = _counter()
    people: int = _counter()


class AidPerson(ReportsTable, table=True):
    """Who is in a money cell of `MonthlyAmount`: one row per cell and person, `person` a keyed hash of the cell and
    the case id together (`handlers.PersonIndex.in_cell`: HMAC under this service's own secret, so the hash is no
    case id any other database holds, without the secret it gives none back, and one person's rows in two cells share
    nothing: no one's history of aid can be read off a copy). Kept for the count of distinct people only; erasing the
    case deletes its rows (each cell's hash computed again), the counts and sums they made stay.

    `person` first in the key: an erasure deletes by person, an event inserts the whole key. (So the cell's columns are
    written out again here rather than inherited from a base with `MonthlyAmount`: inherited, they would come first.)"""

    __tablename__ = "aid_people"

    person: str = Field(primary_key=True, max_length=32)
    month: str = Field(primary_key=True, max_length=7)
    stage: str = Field(primary_key=True, max_length=16)
    basis: str = Field(primary_key=True, max_length=8)
    category: str = Field(primary_key=True, max_length=40)
    currency: str = Field(primary_key=True, max_length=3)


class ErasedPerson(ReportsTable, table=True):
    """A person whose case was erased, by the same keyed hash and nothing else: the streams are read side by side, so
    an aid event of theirs may be applied after the erasure (a consumer catching up); it is then summed but neither
    remembered in `aid_people` nor counted as a person (fewer people, never more: a cell is withheld sooner)."""

    __tablename__ = "erased_people"

    person: str = Field(primary_key=True, max_length=32)


class CaseClose(ReportsTable, table=True):
    """Whether a case's close stands, per month it was closed or reopened in: `case_key` a keyed hash of the month and the
    case id together (`handlers.PersonIndex.case_in_month`: no case id, and one case's rows in two months share
    nothing), `closed` whether its last close or reopening in the month (by `last_at`) was a close. "Cases closed" in
    a month counts the cases whose close stood at its end: closing a case five times counts once, and a reopening in
    the same month undoes it. Erasing the case deletes its rows (each month's hash computed again); the counts stay."""

    __tablename__ = "case_closes"

    case_key: str = Field(primary_key=True, max_length=32)
    month: str = Field(primary_key=True, max_length=7)
    closed: bool = Field(default=False)
    last_at: datetime | None = _when()


class DurationHistogram(ReportsTable, table=True):
    """How many referrals ended a span (`measure`: `sent_to_accepted`, `sent_to_completed`) in a month, per partner
    category, by its length: `buckets` is a JSON list of [tenths of a day, count] pairs (0 is under 2.4 hours; whole
    days from ten days on, `domain.duration_bucket`). One row per month, span and category, not one per bucket: a year's
    report reads 168 rows however spread the spans are."""

    __tablename__ = "duration_histograms"

    month: str = Field(primary_key=True, max_length=7)
    measure: str = Field(primary_key=True, max_length=24)
    category: str = Field(primary_key=True, max_length=40)
    buckets: str = Field(default="[]", sa_type=Text, nullable=False)


class ReferralMoments(ReportsTable, table=True):
    """When a referral was sent, accepted and completed, until both spans are measured: the events of one referral
    may be applied in any order (a redelivery), so whichever comes second measures. No case id."""

    __tablename__ = "referral_moments"

    referral_id: str = Field(primary_key=True, max_length=36)
    category: str = Field(max_length=40)
    partner_category: str = Field(max_length=40)
    sent_at: datetime | None = _when()
    accepted_at: datetime | None = _when()
    completed_at: datetime | None = _when()
    accepted_measured: bool = Field(default=False)
    completed_measured: bool = Field(default=False)


class CurrencyDigits(ReportsTable, table=True):
    """How many minor digits each currency's amounts have, learnt from the amounts funds sends ("300.00": 2), so
    that sums are shown as funds writes them without a copy of funds' currency table."""

    __tablename__ = "currency_digits"

    currency: str = Field(primary_key=True, max_length=3)
    digits: int


# The projection: what `rehab reports rebuild` empties before replaying every stream.
PROJECTION = (MonthlyCount, MonthlyAmount, AidPerson, ErasedPerson, CaseClose, DurationHistogram, ReferralMoments,
              CurrencyDigits)
