"""kit.pagination: every list pages the same way — a cursor continues exactly after the last row given, in either
direction, with rows written meanwhile neither repeated nor skipped, and a cursor not given out is a 400."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Field, Session, SQLModel, create_engine, select

from kit.errors import BadCursor
from kit.pagination import cursor_after, keyset_page, page_size, read_cursor, scope_of


class Row(SQLModel, table=True):
    __tablename__ = "pagination_rows"
    id: str = Field(primary_key=True)
    at: datetime
    rank: int


@pytest.fixture
def session(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'p.db'}")
    SQLModel.metadata.create_all(engine, tables=[Row.__table__])
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with Session(engine) as session:
        # Two rows share every moment: the id breaks the tie.
        session.add_all(Row(id=f"r{i:02}", at=start + timedelta(minutes=i // 2), rank=i) for i in range(11))
        session.commit()
        yield session


def walk(session, **how):
    seen, cursor = [], None
    while True:
        rows, cursor = keyset_page(session, select(Row), limit=3, cursor=cursor, **how)
        seen.append([r.id for r in rows])
        if cursor is None:
            return seen


def test_pages_continue_after_the_last_row_in_either_direction(session):
    oldest_first = walk(session, order=[Row.at, Row.id])
    newest_first = walk(session, order=[Row.at, Row.id], descending=True)
    assert [i for page in oldest_first for i in page] == [f"r{i:02}" for i in range(11)]
    assert [i for page in newest_first for i in page] == [f"r{i:02}" for i in reversed(range(11))]
    assert [len(page) for page in oldest_first] == [3, 3, 3, 2]


def test_a_row_written_between_pages_is_neither_repeated_nor_shifting_the_next_page(session):
    first, cursor = keyset_page(session, select(Row), order=[Row.rank, Row.id], limit=4, cursor=None)
    session.add(Row(id="r-early", at=datetime(2025, 1, 1, tzinfo=UTC), rank=-1))  # lands before the cursor
    session.commit()
    second, _ = keyset_page(session, select(Row), order=[Row.rank, Row.id], limit=4, cursor=cursor)
    assert [r.rank for r in first] == [0, 1, 2, 3]
    assert [r.rank for r in second] == [4, 5, 6, 7]


def test_rows_of_several_columns_page_with_a_key(session):
    query = select(Row.id, Row.rank).where(Row.rank >= 5)
    rows, cursor = keyset_page(session, query, order=[Row.rank, Row.id], limit=2, cursor=None)
    rest, _ = keyset_page(session, query, order=[Row.rank, Row.id], limit=10, cursor=cursor)
    assert [r.rank for r in rows] == [5, 6] and [r.rank for r in rest] == [7, 8, 9, 10]


@pytest.mark.parametrize("cursor", [
    "not base64 at all!", cursor_after(("2026-01-01T00:00:00",), "s"), cursor_after(("yesterday", "r01"), "s"),
    cursor_after((5, "r01"), "s"),
    cursor_after(("2026-01-01T00:00:00", "r01"), "s"),  # no time zone: not one we gave out
    cursor_after(("2026-01-01T00:00:00+00:00", "r01"), "another list"),  # of another list (an outside review's)
    "W10",  # []
])
def test_a_cursor_not_given_out_here_is_refused(cursor):
    with pytest.raises(BadCursor):
        read_cursor(cursor, [Row.at, Row.id], "s")


def test_a_cursor_holds_typed_values():
    moment = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    assert read_cursor(cursor_after((moment, "r01"), "s"), [Row.at, Row.id], "s") == (moment, "r01")
    assert read_cursor(cursor_after((7, "r01"), "s"), [Row.rank, Row.id], "s") == (7, "r01")
    with pytest.raises(BadCursor):
        read_cursor(cursor_after((True, "r01"), "s"), [Row.rank, Row.id], "s")


# A cursor is base64 JSON anyone can write: a value the JSON decoder takes but the database cannot (a string it
# cannot encode or store, an integer wider than BIGINT, a moment outside the years UTC can hold) is refused as a
# cursor not given out here, not found out by the query (a 500).
@pytest.mark.parametrize("values", [
    ["2026-01-01T00:00:00+00:00", "\ud800"],  # a lone surrogate: no UTF-8 for it
    ["2026-01-01T00:00:00+00:00", "r01\x00"],  # a NUL: PostgreSQL's text cannot hold it
    ["0001-01-01T00:00:00+14:00", "r01"],  # before year 1 in UTC
    ["9999-12-31T23:59:59-14:00", "r01"],  # after year 9999 in UTC
    ["2026-01-01T00:00:00\ud800+00:00", "r01"],
])
def test_a_cursor_the_database_could_not_take_is_refused_for_a_moment_and_a_string(values):
    with pytest.raises(BadCursor):
        read_cursor(written(values), [Row.at, Row.id], "s")


@pytest.mark.parametrize("rank", [2**63, -2**63 - 1, 10**30])
def test_an_integer_wider_than_bigint_is_refused(rank):
    with pytest.raises(BadCursor):
        read_cursor(written([rank, "r01"]), [Row.rank, Row.id], "s")


def test_the_widest_integers_bigint_holds_are_taken():
    for rank in (2**63 - 1, -2**63):
        assert read_cursor(written([rank, "r01"]), [Row.rank, Row.id], "s") == (rank, "r01")


def test_a_moment_with_an_offset_is_read_as_utc():
    (moment,) = read_cursor(written(["2026-03-04T12:00:00+14:00"]), [Row.at], "s")
    assert moment == datetime(2026, 3, 3, 22, 0, tzinfo=UTC) and moment.utcoffset() == timedelta(0)


@pytest.mark.parametrize("values", [[0, "\ud800"], [0, "r\x00"], [2**63, "r01"], [10**30, "r01"]])
def test_such_a_cursor_is_refused_before_the_query_runs(session, values):
    with pytest.raises(BadCursor):
        keyset_page(session, select(Row), order=[Row.rank, Row.id], limit=3,
                    cursor=written(values, scope_of(select(Row), session)))


def test_a_cursor_nested_past_the_decoders_depth_is_refused():
    with pytest.raises(BadCursor):
        read_cursor(base64.urlsafe_b64encode(b"[" * 100_000).decode(), [Row.at, Row.id], "s")


def written(values: list, scope: str = "s") -> str:
    """A cursor as a client could write it for the list `scope`: base64 of any JSON, escapes included (`\\ud800`,
    `\\u0000`)."""
    return base64.urlsafe_b64encode(json.dumps([scope, *values]).encode()).decode().rstrip("=")


@pytest.mark.parametrize("written", ["1_0", " 10", "10 ", "+10", "10.0", "1e1", "１０", ""])
def test_a_page_size_is_digits_or_refused(written):
    """pydantic alone reads "1_0", " 10", "+10" and "10.0" as 10: a caller who wrote one learns it is not a limit."""
    answer = _sized_client().get("/rows", params={"limit": written})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["query", "limit"]


def test_a_page_size_in_digits_is_taken_within_its_bounds():
    client = _sized_client()
    assert client.get("/rows", params={"limit": "10"}).json() == {"limit": 10}
    assert client.get("/rows").json() == {"limit": 50}
    assert client.get("/rows", params={"limit": "0"}).status_code == 422
    assert client.get("/rows", params={"limit": "201"}).status_code == 422
    schema = {p["name"]: p["schema"] for p in _sized_client().app.openapi()["paths"]["/rows"]["get"]["parameters"]}
    assert schema["limit"]["minimum"] == 1 and schema["limit"]["maximum"] == 200  # the document says so too


def _sized_client():
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    app = FastAPI()

    @app.get("/rows")
    def rows(limit: page_size(200) = 50) -> dict:
        return {"limit": limit}

    return TestClient(app)


def test_a_cursor_of_one_list_or_one_filter_is_refused_by_another(session):
    """An outside review's find: a cursor of a message list paged the referrals, and one of `?status=completed`
    paged `?status=sent`, silently. The same list on its next request, a date it is filtered by computed anew, takes
    it."""
    ranked = select(Row).where(Row.rank >= 1)
    _, cursor = keyset_page(session, ranked, order=[Row.rank, Row.id], limit=2, cursor=None)
    assert cursor is not None
    for other in (select(Row).where(Row.rank >= 2), select(Row), select(Row.id, Row.rank).where(Row.rank >= 1)):
        with pytest.raises(BadCursor):
            keyset_page(session, other, order=[Row.rank, Row.id], limit=2, cursor=cursor)
    rest, _ = keyset_page(session, select(Row).where(Row.rank >= 1), order=[Row.rank, Row.id], limit=2, cursor=cursor)
    assert [r.rank for r in rest] == [3, 4]
    today, tomorrow = (select(Row).where(Row.at >= datetime(2026, 1, d, tzinfo=UTC)) for d in (1, 2))
    assert scope_of(today) == scope_of(tomorrow)
