"""Cursor pagination, one way everywhere: `?limit=&cursor=` → `{"items": [...], "next_cursor": null | "..."}`.

A list is ordered by a sort column and a unique id (`order`), and a cursor is the position of the last row given
out: the next page is the rows beyond it, as one range of the index on those two columns (keyset pagination: a
page costs the same on the first page and the thousandth, and a row written meanwhile neither repeats nor hides
another). The cursor is opaque to clients: base64 of the position's values as JSON, after the list it belongs to
(`scope`: a digest of the query and its filters), so that a cursor of one list, or of one filter, given to another
is 400 `invalid-cursor` rather than a page of something else (an outside review's find).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, BeforeValidator
from sqlalchemy import Date, DateTime, Integer, String, TypeDecorator, literal, tuple_
from sqlalchemy.sql import ColumnElement, Select
from sqlmodel import Session

from kit.errors import BadCursor

T = TypeVar("T")
Position = tuple[Any, ...]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


def _digits(value: Any) -> Any:
    # A page size is a count a person or a script writes in digits: pydantic alone also takes "1_0", " 10 ", "+10"
    # and "10.0", and a caller should learn that such a limit is not one rather than get a page of 10.
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError("limit must be a whole number written in digits")
    return value


def page_size(most: int) -> Any:
    """The type of a list's `?limit=`: digits only, from 1 to `most`."""
    return Annotated[int, Query(ge=1, le=most), BeforeValidator(_digits)]


def keyset_page(
    session: Session, query: Select, *, order: Sequence[Any], limit: int, cursor: str | None,
    descending: bool = False, key: Callable[[Any], Position] | None = None, scope: str | None = None,
) -> tuple[list[Any], str | None]:
    """One page of `query` in `order` (ascending, or newest first with `descending`), continuing after `cursor`;
    with the cursor of the next page, or None on the last. Rows are ORM objects when the query selects one entity,
    row tuples otherwise; `key` gives a row's position when it is not the `order` columns' attributes of the row
    (a query of several entities); `scope`: the list's name for its cursors where the query's own (`scope_of`)
    changes between two requests of one list (a filter by a set that may change meanwhile)."""
    scope = scope or scope_of(query, session)
    if cursor:
        query = query.where(beyond(order, read_cursor(cursor, order, scope), descending=descending))
    ordering = [column.desc() if descending else column.asc() for column in order]
    result = session.execute(query.order_by(*ordering).limit(limit + 1))
    rows = list(result.scalars() if _one_entity(query) else result.all())
    position_of = key or (lambda row: tuple(getattr(row, column.key) for column in order))
    return rows[:limit], (cursor_after(position_of(rows[limit - 1]), scope) if len(rows) > limit else None)


def scope_of(query: Select, session: Session | None = None) -> str:
    """Which list a query is, as a short digest of its SQL (in the session's dialect: a construct of its own need
    not compile in another) and its filters' values; not of a date or a moment it is filtered by (`today`, `now`),
    which the next page's request computes anew."""
    compiled = query.compile(dialect=session.get_bind().dialect if session is not None else None)
    kept = {name: value for name, value in compiled.params.items() if not isinstance(value, date)}
    text = json.dumps([str(compiled), sorted(kept.items())], default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def beyond(order: Sequence[Any], position: Position, *, descending: bool = False) -> ColumnElement[bool]:
    """Rows after `position` in `order`, as one row-value comparison an index on the columns answers as a range."""
    values = [literal(value, column.type) for column, value in zip(order, position, strict=True)]
    return (tuple_(*order) < tuple_(*values)) if descending else (tuple_(*order) > tuple_(*values))


def cursor_after(position: Position, scope: str) -> str:
    """The cursor for the page after a row at `position` of the list `scope` (`scope_of`, or a list's own name)."""
    values = [_aware(v).isoformat() if isinstance(v, datetime) else v.isoformat() if isinstance(v, date) else v
              for v in position]
    return base64.urlsafe_b64encode(json.dumps([scope, *values], separators=(",", ":")).encode()).decode().rstrip("=")


def read_cursor(cursor: str, order: Sequence[Any], scope: str) -> Position:
    """The position a cursor of the list `scope` holds, each value of its column's type; BadCursor (400) for one not
    given out here, or given out for another list."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(values, list) or len(values) != len(order) + 1 or values[0] != scope:
            raise BadCursor
        return tuple(_typed(value, column) for value, column in zip(values[1:], order, strict=True))
    except (ValueError, TypeError, UnicodeDecodeError, RecursionError) as error:  # RecursionError: nested too deep
        raise BadCursor from error


# A cursor is JSON anyone can write, and the decoder takes values the database cannot: each is refused here, as a
# cursor not given out, rather than found out by the query (a 500).
_BIGINT = range(-2**63, 2**63)  # the widest integer column; a wider value overflows the driver


def _typed(value: Any, column: Any) -> Any:
    kind = column.type.impl_instance if isinstance(column.type, TypeDecorator) else column.type
    if isinstance(kind, DateTime):
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise BadCursor
        try:  # in UTC, as stored (SQLite compares it as text)
            return moment.astimezone(UTC)
        except OverflowError as error:  # an offset that takes it before year 1 or past 9999
            raise BadCursor from error
    if isinstance(kind, Date) and isinstance(value, str):  # a day (a due date), not a moment
        return date.fromisoformat(value)
    if isinstance(kind, Integer) and isinstance(value, int) and not isinstance(value, bool) and value in _BIGINT:
        return value
    if isinstance(kind, String) and isinstance(value, str) and _storable(value):
        return value
    raise BadCursor


def _storable(text: str) -> bool:
    """Whether a database can take `text`: UTF-8 has no lone surrogate (JSON's `\\ud800`), PostgreSQL's text no NUL."""
    if "\x00" in text:
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # stored as UTC; SQLite gives it back naive


def _one_entity(query: Select) -> bool:
    described = query.column_descriptions
    return len(described) == 1 and isinstance(described[0]["type"], type) and described[0].get("entity") is not None
