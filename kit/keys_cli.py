"""Each service's `keys` commands (`python -m services.<name>.manage keys …`), run by `rehab keys rotate|status|retire`
once per service, in a process of its own (ops never imports a service's insides).

- `keys rotate` re-wraps, under the active KEK of the keyring file, every data key the service stores (the tables
  its `models.WRAPPED_KEYS` lists), in small transactions, while the service keeps running (its keyring re-reads the
  file when it changes). It adds no KEK: `rehab keys rotate` adds one, once, for every service.
- `keys status` counts the data keys under each KEK (`--json` for `rehab keys status|retire`).

A service database that does not exist yet is said in one line; neither command creates one. Progress goes to
stderr (kit.progress), counts only.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import typer
from sqlalchemy import Engine, inspect
from sqlalchemy.engine import make_url

from kit import db
from kit.crypto import Keyring, WrappedKeyColumns, count_by_kek, rewrap_table
from kit.progress import Progress
from kit.settings import ServiceSettings


def existing_database(settings: ServiceSettings, wrapped_keys: list[WrappedKeyColumns]) -> Engine | None:
    """An engine on the service's database, or None while there is none: no SQLite file yet (none is created by
    looking), or a database the service has not yet migrated."""
    url = settings.db_url
    if db.is_sqlite(url) and not Path(make_url(url).database or "").is_file():
        return None
    engine = db.make_engine(url, pool_size=2)  # SQLite: secure_delete, so replaced wrapped keys do not linger
    tables = inspect(engine)
    if not all(tables.has_table(spec.table.name) for spec in wrapped_keys):
        engine.dispose()
        return None
    return engine


def no_database(settings: ServiceSettings) -> str:
    process = settings.process_name
    if settings.database_url is None:
        return f"no {process} database yet under {settings.state_dir}/"
    if db.is_sqlite(settings.db_url):
        return f"no {process} database yet at {make_url(settings.db_url).database}"
    return f"the {process} database (REHAB_{process.upper()}_DATABASE_URL) has no tables yet"


def wrapped_counts(engine: Engine, wrapped_keys: list[WrappedKeyColumns]) -> Counter[str]:
    """Data keys under each KEK, over every wrapped-key column of the service."""
    counts: Counter[str] = Counter()
    with engine.connect() as conn:
        for spec in wrapped_keys:
            counts.update(count_by_kek(conn, spec))
    return counts


def rewrap_all(engine: Engine, keyring: Keyring, wrapped_keys: list[WrappedKeyColumns], *, batch: int = 500,
               progress: Progress | None = None, unreadable: list[tuple] | None = None) -> int:
    """Every data key of the service under the active KEK (`rewrap_table` over each of its wrapped-key columns)."""
    progress = progress or Progress.silent()
    factory = db.make_session_factory(engine)
    counts = wrapped_counts(engine, wrapped_keys)
    progress.set_total(sum(n for kid, n in counts.items() if kid != keyring.active))
    done = 0
    for spec in wrapped_keys:
        progress.doing(spec.label)
        done += rewrap_table(factory, spec, keyring, batch=batch, progress=progress, unreadable=unreadable)
    return done


def keys_commands(settings_factory: Callable[[], ServiceSettings], wrapped_keys: list[WrappedKeyColumns]) -> typer.Typer:
    """The `keys` group of a service's manage module."""
    keys_app = typer.Typer(help="This service's data keys: rotate (re-wrap under the active KEK), status.",
                           no_args_is_help=True)

    @keys_app.command("rotate")
    def rotate_command(
        batch_size: int = typer.Option(500, min=1, max=10_000, help="data keys re-wrapped per transaction"),
    ) -> None:
        """Re-wrap every data key of this service under the active key-encryption key (`rehab keys rotate` adds
        the new KEK first)."""
        settings = settings_factory()
        engine = existing_database(settings, wrapped_keys)
        if engine is None:
            typer.echo(f"{no_database(settings)}: nothing to re-wrap")
            return
        keyring = Keyring.from_file(settings.kek_path)
        unreadable: list[tuple] = []
        try:
            with Progress(f"keys rotate: {settings.process_name}", unit="data keys") as progress:
                done = rewrap_all(engine, keyring, wrapped_keys, batch=batch_size, progress=progress,
                                  unreadable=unreadable)
        finally:
            engine.dispose()
        typer.echo(f"active key-encryption key: {keyring.active}; data keys re-wrapped: {done}")
        if unreadable:
            typer.echo(f"error: {len(unreadable)} data keys could not be unwrapped (row ids below); "
                       "they stay under their old key", err=True)
            for ident in unreadable:
                typer.echo(" ".join(str(part) for part in ident), err=True)
            raise typer.Exit(1)

    @keys_app.command("status")
    def status_command(
        as_json: bool = typer.Option(False, "--json", help="one JSON object, for `rehab keys status|retire`"),
    ) -> None:
        """Which key-encryption key is active and how many of this service's data keys each one wraps."""
        settings = settings_factory()
        engine = existing_database(settings, wrapped_keys)
        if engine is None:
            if as_json:
                typer.echo(json.dumps({"process": settings.process_name, "database": False, "counts": {},
                                       "note": no_database(settings)}))
            else:
                typer.echo(f"{no_database(settings)}: nothing to report")
            return
        try:
            counts = wrapped_counts(engine, wrapped_keys)
        finally:
            engine.dispose()
        doc = json.loads(settings.kek_path.read_text())  # kit.crypto's keyring file: {"active", "keys": {kid: …}}
        active = doc["active"]
        if as_json:
            typer.echo(json.dumps({"process": settings.process_name, "database": True, "active": active,
                                   "counts": dict(counts)}))
            return
        typer.echo(f"active key-encryption key: {active}")
        for kid in sorted(set(counts) | set(doc["keys"])):
            typer.echo(f"{kid}: {counts.get(kid, 0)} data keys{' (active)' if kid == active else ''}")

    return keys_app
