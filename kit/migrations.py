"""Alembic, one environment per service, run at start-up; `python -m kit.migrations` writes new revisions.

Each service keeps `migrations/` beside its code with an `env.py` that calls `run_env(metadata)`.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, MetaData, text

from kit.db import is_sqlite, make_engine

_MIGRATION_LOCK = 0x3161A7


def config_for(script_location: Path, url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, script_location: Path) -> None:
    """Bring the database to the newest revision; replicas starting together take turns on PostgreSQL."""
    cfg = config_for(script_location, str(engine.url.render_as_string(hide_password=False)))
    with engine.begin() as conn:
        if not is_sqlite(engine):
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def check(engine: Engine, script_location: Path) -> None:
    """Raise when the models and the newest revision disagree (alembic check)."""
    cfg = config_for(script_location, str(engine.url.render_as_string(hide_password=False)))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.check(cfg)


def current_is_head(engine: Engine, script_location: Path) -> bool:
    """Whether the database is at the newest revision this code knows (asked by every /readyz: kept cheap)."""
    from alembic.runtime.migration import MigrationContext

    # Read-only: on SQLite a plain BEGIN, so a readiness probe never queues for the write lock.
    with engine.connect().execution_options(read_only=True) as conn:
        heads = set(MigrationContext.configure(conn).get_current_heads())
    return heads == _code_heads(script_location)


@functools.cache
def _code_heads(script_location: Path) -> frozenset[str]:
    """The revisions the code's migration scripts end at: read once per process (reading them loads every script,
    milliseconds of work a readiness probe once a second per replica would repeat for nothing; the code does not
    change under a running process)."""
    from alembic.script import ScriptDirectory

    return frozenset(ScriptDirectory.from_config(config_for(script_location, "sqlite://")).get_heads())


def run_env(target_metadata: MetaData) -> None:
    """The body of every service's migrations/env.py."""
    from alembic import context

    config = context.config
    connection = config.attributes.get("connection")
    if connection is None:
        engine = make_engine(config.get_main_option("sqlalchemy.url"))
        with engine.begin() as conn:
            _run(context, conn, target_metadata)
        engine.dispose()
    else:
        _run(context, connection, target_metadata)


def _run(context, connection, target_metadata: MetaData) -> None:  # noqa: ANN001
    context.configure(
        connection=connection, target_metadata=target_metadata, render_as_batch=True, compare_type=True
    )
    with context.begin_transaction():
        context.run_migrations()


def _main(argv: list[str]) -> int:
    """`python -m kit.migrations revision services/intake "message"`: autogenerate against a scratch SQLite db."""
    import importlib
    import tempfile

    if len(argv) != 3 or argv[0] != "revision":
        print("usage: python -m kit.migrations revision services/<name> MESSAGE", file=sys.stderr)
        return 2
    service_dir = Path(argv[1])
    importlib.import_module(".".join(service_dir.parts) + ".models")
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/scratch.db")
        upgrade(engine, service_dir / "migrations")
        cfg = config_for(service_dir / "migrations", str(engine.url))
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.revision(cfg, message=argv[2], autogenerate=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
