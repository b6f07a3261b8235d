"""Keeping a local copy of another service's state from its events, when events may arrive in any order.

A state that mostly moves forward (a case: open → closed → duplicate → erased) is kept with `ForwardOnly.upsert`:
the row is created with the incoming state if it is new, and otherwise takes the incoming state only if it comes
later in `order`, so an old event arriving late never moves it back. The few moves back a producer makes (a closed
case reopened) are explicit transitions, `ForwardOnly.move_back`: taken only from the state they leave. One
statement, no read first: the projection of an event costs one row written.

Moves back are applied in the order events are applied: a reopening that arrives before the closing it undoes is
not taken (the case stays as the closing left it) — the bus delivers a producer's events in order, except on
redelivery.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table, case
from sqlmodel import Session

from kit.db import dialect_insert


def later_state(order: Sequence[str], current: str | None, incoming: str) -> str:
    """The later of two states in `order` (a state not in it ranks first): what the upsert does, in Python."""
    if current is None:
        return incoming
    rank = {state: i for i, state in enumerate(order)}
    return incoming if rank.get(incoming, -1) > rank.get(current, -1) else current


class ForwardOnly:
    """`upsert(session, {key…, state_column: state, …})` for `table` keyed by `key`, its `state_column` moving only
    forward in `order`; `also` are further columns' rules (`{name: sql expression of table and excluded}`)."""

    def __init__(self, table: Table, *, key: str, state_column: str, order: Sequence[str],
                 also: Mapping[str, Any] | None = None, overwrite: Sequence[str] = ()) -> None:
        self.table = table
        self.key = key
        self.state_column = state_column
        self.order = {str(state): rank for rank, state in enumerate(order)}
        self.also = also or {}
        self.overwrite = overwrite
        self._statements: dict[Any, Any] = {}

    def upsert(self, session: Session, values: Mapping[str, Any]) -> None:
        connection = session.connection()
        connection.execute(self._statement(connection.dialect.name), dict(values))

    def move_back(self, session: Session, values: Mapping[str, Any], *, leaving: str) -> None:
        """An explicit move back (closed → open on reopening): a new row is created with the incoming state, a
        row in state `leaving` takes it (and the `overwrite` columns), a row in any other state stays as it is."""
        connection = session.connection()
        dialect = connection.dialect.name
        key = ("back", dialect, leaving)
        if key not in self._statements:
            statement = dialect_insert(dialect)(self.table)
            new, old = statement.excluded, self.table.c
            rules = {self.state_column: new[self.state_column], **{name: new[name] for name in self.overwrite}}
            self._statements[key] = statement.on_conflict_do_update(
                index_elements=[old[self.key]], set_=rules, where=old[self.state_column] == leaving)
        connection.execute(self._statements[key], dict(values))

    def _statement(self, dialect: str) -> Any:
        # Built once per dialect: building an upsert costs more than running it.
        if dialect not in self._statements:
            statement = dialect_insert(dialect)(self.table)
            new, old = statement.excluded, self.table.c
            state = self.state_column

            def rank(column: Any) -> Any:
                return case(self.order, value=column, else_=-1)

            rules = {state: case((rank(new[state]) > rank(old[state]), new[state]), else_=old[state])}
            rules.update({name: new[name] for name in self.overwrite})
            rules.update({name: rule(old, new) for name, rule in self.also.items()})
            self._statements[dialect] = statement.on_conflict_do_update(index_elements=[old[self.key]], set_=rules)
        return self._statements[dialect]
