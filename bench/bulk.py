"""The bulk loader: many cases straight into an intake database, built by intake's own code.

Going through the API, a million cases would take hours. Instead, each case is built as `services.intake`
builds it (the same request model, the same CaseVault: a data key wrapped by the KEK, every personal field sealed
under it, the same blind-index terms) and the rows go into the database with executemany, thousands per
transaction. Two worker processes build rows while the main process inserts.

What it leaves out, on purpose: the outbox event, the timeline entry and the audit entry of each opening. The
loaded cases are for measuring how search and lists grow; the other services never hear of them, and the audit
trail records only what people did. Run it with the system stopped (or restart the system after it): intake's
reference counter is moved past the loaded cases, and SQLite wants one writer.

`python -m bench.bulk STATE_DIR COUNT [--database-url URL]` loads into a state folder's intake database (creating
the keys when missing), as `rehab up` would find it.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Dialect, Engine, LargeBinary, Table, create_engine, event, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import psycopg as postgresql_psycopg

from bench.population import People
from kit import migrations
from kit.crypto import BlindIndex, Keyring
from kit.db import is_sqlite, make_engine
from kit.secrets import BLIND_INDEX_KEY_FILE, KEK_FILE, ensure_secrets, read_key_file
from services.intake import domain
from services.intake.models import PERSONAL_FIELDS, Case, CaseCreate, CaseKey, CaseNameTerm, ReferenceCounter
from services.intake.protection import CaseVault

MIGRATIONS_DIR = Path(domain.__file__).parent / "migrations"
CHUNK = 5_000  # cases per transaction (and per piece of work for a builder process)
SAMPLE_EVERY = 250  # keep every n-th full name of a chunk, for searches that find people who are really there
OPENED_SINCE = datetime(2021, 1, 1, tzinfo=UTC)


@dataclass
class LoadReport:
    loaded: int
    total: int  # cases in the database afterwards
    seconds: float
    sample_names: list[str] = field(default_factory=list)

    @property
    def cases_per_second(self) -> float:
        return self.loaded / self.seconds if self.seconds else 0.0


def bulk_load(database_url: str, secrets_dir: Path, count: int, *, seed: int = 1, workers: int = 2) -> LoadReport:
    """Add `count` made-up cases to the intake database at `database_url`, sealed with the keys in `secrets_dir`."""
    started = time.perf_counter()
    ensure_secrets(secrets_dir)
    engine = _loader_engine(database_url)
    try:
        migrations.upgrade(engine, MIGRATIONS_DIR)
        with engine.connect() as conn:
            existing = conn.execute(select(func.count()).select_from(Case.__table__)).scalar_one()
            numbers = dict(conn.execute(select(ReferenceCounter.__table__.c.year,
                                               ReferenceCounter.__table__.c.last_number)).all())
        chunks = [(seed * 1_000_003 + existing + start, min(CHUNK, count - start))
                  for start in range(0, count, CHUNK)]
        samples: list[str] = []
        with _builders(secrets_dir, engine.dialect.name, workers) as build:
            for built in build(chunks):
                _insert(engine, built, numbers)
                samples.extend(built.sample_names)
        _save_reference_counters(engine, numbers)
        if not is_sqlite(engine):
            with engine.begin() as conn:  # autovacuum would do it within a minute of such a load; do it now
                conn.exec_driver_sql("ANALYZE")
        total = existing + count
    finally:
        engine.dispose()
    return LoadReport(loaded=count, total=total, seconds=time.perf_counter() - started, sample_names=samples)


# ---- building rows (in worker processes) ----------------------------------------------------------------------------

@dataclass
class BuiltChunk:
    """Rows ready for the driver: one list of column values per row, in the table's column order."""

    cases: list[list[Any]]
    keys: list[list[Any]]
    terms: list[list[Any]]
    opened_years: list[int]  # per case, for numbering references in the one process that knows every number
    sample_names: list[str]


class RowShape:
    """A table's columns and the conversions SQLAlchemy would apply to each value for this database (the same
    stored form as the service's own inserts); bytes go as they are, which every driver accepts."""

    def __init__(self, table: Table, dialect: Dialect) -> None:
        self.table = table
        self.columns = [column.name for column in table.columns]
        self._convert = [None if isinstance(column.type, LargeBinary)
                         else column.type.dialect_impl(dialect).bind_processor(dialect) for column in table.columns]

    def row(self, values: dict[str, Any]) -> list[Any]:
        return [convert(values[name]) if convert else values[name]
                for name, convert in zip(self.columns, self._convert, strict=True)]


class _Builder:
    def __init__(self, secrets_dir: Path, dialect_name: str) -> None:
        self.vault = CaseVault(Keyring.from_file(secrets_dir / "intake" / KEK_FILE),
                               BlindIndex(read_key_file(secrets_dir / "intake" / BLIND_INDEX_KEY_FILE)))
        dialect = sqlite.dialect() if dialect_name == "sqlite" else postgresql_psycopg.dialect()
        self.cases, self.keys, self.terms = (RowShape(t.__table__, dialect) for t in (Case, CaseKey, CaseNameTerm))


_builder: _Builder | None = None


def _start_builder(secrets_dir: Path, dialect_name: str) -> None:
    global _builder
    _builder = _Builder(secrets_dir, dialect_name)


def build_chunk(job: tuple[int, int]) -> BuiltChunk:
    """`count` cases of the made-up people of `seed`, as rows of cases, case_keys and case_name_terms."""
    seed, count = job
    b = _builder
    assert b is not None, "the builder is made by the pool's initializer"
    people, chance = People(seed), random.Random(seed)
    span = (datetime.now(UTC) - OPENED_SINCE).total_seconds()
    built = BuiltChunk([], [], [], [], [])
    for index in range(count):
        body = CaseCreate.model_validate(people.case())  # as the API would take it: validated, normalised
        case_id = str(uuid.uuid4())
        opened_at = OPENED_SINCE + timedelta(seconds=chance.random() * span)
        data_key, wrapped = b.vault.new_case_key()
        personal = body.model_dump(mode="json", include=set(PERSONAL_FIELDS))
        built.cases.append(b.cases.row({
            "id": case_id, "reference": None, "status": domain.OPEN, "country": body.country,
            "opened_at": opened_at, "updated_at": opened_at, "closed_at": None, "erased_at": None, "duplicate_of": None,
            "version": domain.FIRST_VERSION,
            **{f"{name}_sealed": b.vault.seal(data_key, "cases", f"{name}_sealed", case_id, personal[name])
               for name in PERSONAL_FIELDS},
        }))
        built.opened_years.append(opened_at.year)
        built.keys.append(b.keys.row({"case_id": case_id, "kid": wrapped.kid, "wrapped": wrapped.blob,
                                      "created_at": opened_at, "rewrapped_at": None}))
        built.terms.extend(b.terms.row({"case_id": case_id, "kind": kind, "term": term, "opened_at": opened_at})
                           for kind, term in b.vault.name_terms([body.full_name, *body.other_names], body.date_of_birth))
        if index % SAMPLE_EVERY == 0:
            built.sample_names.append(body.full_name)
    return built


class _builders:
    """`build(chunks)` yields built chunks in order: from a pool of processes, or in this process for one worker."""

    def __init__(self, secrets_dir: Path, dialect_name: str, workers: int) -> None:
        self.args, self.workers = (secrets_dir, dialect_name), workers
        self.pool = None

    def __enter__(self):  # noqa: ANN204
        if self.workers <= 1:
            _start_builder(*self.args)
            return lambda chunks: map(build_chunk, chunks)
        # spawn, not fork: the parent holds database connections
        self.pool = multiprocessing.get_context("spawn").Pool(self.workers, initializer=_start_builder,
                                                               initargs=self.args)
        return lambda chunks: self.pool.imap(build_chunk, chunks)

    def __exit__(self, *_exc: object) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()


# ---- storing rows ---------------------------------------------------------------------------------------------------

def _loader_engine(url: str) -> Engine:
    """The service's engine settings, except that a bulk load into SQLite need not wait for the disk at every
    commit (a crash mid-load only loses made-up rows) and may keep a large page cache."""
    if not is_sqlite(url):
        return make_engine(url, pool_size=2)
    engine = create_engine(url)

    @event.listens_for(engine, "connect")
    def _tune(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        for pragma in ("journal_mode=WAL", "synchronous=OFF", "cache_size=-262144", "foreign_keys=ON"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    return engine


def _insert(engine: Engine, built: BuiltChunk, numbers: dict[int, int]) -> None:
    """One transaction per chunk, through the driver: executemany on SQLite, COPY on PostgreSQL. References are
    numbered per year of opening, after those already given out."""
    reference_at = [column.name for column in Case.__table__.columns].index("reference")
    for row, year in zip(built.cases, built.opened_years, strict=True):
        numbers[year] = numbers.get(year, 0) + 1
        row[reference_at] = domain.reference(year, numbers[year])
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for table, rows in ((Case.__table__, built.cases), (CaseKey.__table__, built.keys),
                            (CaseNameTerm.__table__, built.terms)):
            columns = ", ".join(column.name for column in table.columns)
            if is_sqlite(engine):
                marks = ", ".join("?" for _ in table.columns)
                cursor.executemany(f"INSERT INTO {table.name} ({columns}) VALUES ({marks})", rows)
            else:
                with cursor.copy(f"COPY {table.name} ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
        raw.commit()
    finally:
        raw.close()


def _save_reference_counters(engine: Engine, numbers: dict[int, int]) -> None:
    table = ReferenceCounter.__table__
    insert = sqlite.insert if is_sqlite(engine) else postgresql.insert
    with engine.begin() as conn:
        for year, last in numbers.items():
            conn.execute(insert(table).values(year=year, last_number=last)
                         .on_conflict_do_update(index_elements=[table.c.year], set_={"last_number": last}))


def _main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bulk", description=__doc__.split("\n\n")[0])
    parser.add_argument("state_dir", type=Path)
    parser.add_argument("count", type=int)
    parser.add_argument("--database-url", help="the intake database (default: STATE_DIR/intake.db)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{(args.state_dir / 'intake.db').resolve()}"
    args.state_dir.mkdir(parents=True, exist_ok=True)
    report = bulk_load(url, args.state_dir / "secrets", args.count, seed=args.seed, workers=args.workers)
    print(f"loaded {report.loaded} cases in {report.seconds:.1f} s ({report.cases_per_second:.0f}/s); "
          f"{report.total} in the database")


if __name__ == "__main__":
    _main()
