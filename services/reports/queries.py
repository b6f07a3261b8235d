"""Reports' statements built once per dialect (building an upsert costs more than running it): adding to a counter
row, created at zero if it is new, in one statement with no read first; and remembering a person in a money cell,
which says whether they were new to it."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table, bindparam, delete, select
from sqlmodel import Session

from kit.db import dialect_insert
from services.reports.models import (
    AidPerson,
    CaseClose,
    CurrencyDigits,
    DurationHistogram,
    ErasedPerson,
    MonthlyAmount,
    MonthlyCount,
)


class Counter:
    """`add(session, {key columns…, counted columns…})`: INSERT the row, or add the counted columns to the row
    there already (INSERT … ON CONFLICT DO UPDATE SET n = n + excluded.n)."""

    def __init__(self, table: Table, *, counted: Sequence[str]) -> None:
        self.table = table
        self.key = [column.name for column in table.primary_key.columns]
        self.counted = counted
        self._statements: dict[str, Any] = {}

    def add(self, session: Session, values: Mapping[str, Any]) -> None:
        connection = session.connection()
        connection.execute(self._statement(connection.dialect.name), dict(values))

    def _statement(self, dialect: str) -> Any:
        if dialect not in self._statements:
            statement = dialect_insert(dialect)(self.table)
            self._statements[dialect] = statement.on_conflict_do_update(
                index_elements=self.key,
                set_={name: self.table.c[name] + statement.excluded[name] for name in self.counted})
        return self._statements[dialect]


class Once:
    """`add(session, {columns…})`: INSERT the row unless its key is there (INSERT … ON CONFLICT DO NOTHING RETURNING);
    True when it was not, in the same statement: no read first. Told by the row RETURNING gives back, not by
    `rowcount`, which psycopg leaves at -1 for these statements."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.key = list(table.primary_key.columns)
        self._statements: dict[str, Any] = {}

    def add(self, session: Session, values: Mapping[str, Any]) -> bool:
        connection = session.connection()
        return connection.execute(self._statement(connection.dialect.name), dict(values)).first() is not None

    def _statement(self, dialect: str) -> Any:
        if dialect not in self._statements:
            self._statements[dialect] = dialect_insert(dialect)(self.table).on_conflict_do_nothing(
                index_elements=[column.name for column in self.key]).returning(self.key[0])
        return self._statements[dialect]


counts = Counter(MonthlyCount.__table__, counted=["count"])  # type: ignore[attr-defined]
amounts = Counter(MonthlyAmount.__table__,  # type: ignore[attr-defined]
                  counted=["amount_minor", "payments", "people"])
aid_people = Once(AidPerson.__table__)  # type: ignore[attr-defined]
erased_people = Once(ErasedPerson.__table__)  # type: ignore[attr-defined]
_erased = select(ErasedPerson.person).where(ErasedPerson.person == bindparam("person"))
_forget = delete(AidPerson).where(AidPerson.person.in_(bindparam("people", expanding=True)))  # type: ignore[attr-defined]
_cells = select(AidPerson.month, AidPerson.stage, AidPerson.basis, AidPerson.category, AidPerson.currency).distinct()


def is_erased(session: Session, person: str) -> bool:
    """Whether the person's case was erased (`ErasedPerson`)."""
    return session.connection().execute(_erased, {"person": person}).first() is not None


def aid_cells(session: Session) -> list[dict[str, str]]:
    """Every money cell someone is in (`aid_people`): month, stage, basis, category, currency."""
    return [dict(row._mapping) for row in session.connection().execute(_cells)]


_forget_case = delete(CaseClose).where(CaseClose.case_key.in_(bindparam("cases", expanding=True)))  # type: ignore[attr-defined]
_close_months = select(CaseClose.month).distinct()


def close_months(session: Session) -> list[str]:
    """Every month some case was closed or reopened in (`case_closes`)."""
    return [row[0] for row in session.connection().execute(_close_months)]


def forget_person(session: Session, rows: list[str], marker: str, cases: list[str] = ()) -> None:  # type: ignore[assignment]
    """A person's rows in the money cells (their hashes there) and their case's closes gone, and the person marked
    erased; the counts and sums stay."""
    connection = session.connection()
    for start in range(0, len(rows), 500):
        connection.execute(_forget, {"people": rows[start:start + 500]})
    for start in range(0, len(cases), 500):
        connection.execute(_forget_case, {"cases": list(cases[start:start + 500])})
    erased_people.add(session, {"person": marker})


def add_duration(session: Session, *, month: str, measure: str, category: str, tenths: int) -> None:
    """One more span in its month's histogram: the row made if new (without a race), then locked, read and written
    back, so that two consumers adding to one histogram take turns."""
    key = {"month": month, "measure": measure, "category": category}
    statement = dialect_insert(session.get_bind().dialect.name)(DurationHistogram)
    session.execute(statement.values(**key, buckets="[]").on_conflict_do_nothing(index_elements=list(key)))
    row = session.execute(select(DurationHistogram).filter_by(**key).with_for_update()
                          .execution_options(populate_existing=True)).scalars().one()
    buckets = read_buckets(row.buckets)
    buckets[tenths] = buckets.get(tenths, 0) + 1
    row.buckets = write_buckets(buckets)
    session.add(row)


def read_buckets(text: str) -> dict[int, int]:
    """A histogram as stored: a JSON list of [tenths, count] pairs (integers both, read without a conversion each)."""
    return dict(json.loads(text))


def write_buckets(buckets: Mapping[int, int]) -> str:
    return json.dumps(sorted(buckets.items()), separators=(",", ":"))


def remember_digits(session: Session, currency: str, digits: int) -> None:
    """Keep a currency's minor digits as its amounts show them (the first seen stays)."""
    statement = dialect_insert(session.get_bind().dialect.name)(CurrencyDigits)
    session.execute(statement.values(currency=currency, digits=digits).on_conflict_do_nothing(
        index_elements=["currency"]))
