"""Each service's `keys` commands (`python -m services.<name>.manage keys …`), run by `rehab keys rotate|status|retire`
once per service, in a process of its own (ops never imports a service's insides).

Each service has a keyring of its own (SPEC §8), in whatever custody it is kept (kit.custody: a file, keys.sealed
under the unseal passphrase, or an OpenBao Transit key); these commands open it like the running service does.

- `keys rotate` adds a new KEK to the service's keyring and re-wraps, under it, every data key the service stores
  (the tables its `models.WRAPPED_KEYS` lists), in small transactions, while the service keeps running (its keyring
  reads the custody again when it changes). `--rewrap-only` finishes a rotation that stopped.
- `keys status` counts the data keys under each KEK (`--json` for `rehab keys status|retire`).
- `keys retire KID` drops a KEK that no data key of the service uses any more (never the active one).

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

from kit import custody, db, errors
from kit.crypto import WrappedKeyColumns, count_by_kek, rewrap_table
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


def rewrap_all(engine: Engine, keyring: custody.Custody, wrapped_keys: list[WrappedKeyColumns], *, batch: int = 500,
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
    """The `keys` group of a service's manage module: this service's own keyring (kit.custody), whatever its custody."""
    keys_app = typer.Typer(help="This service's keys: rotate (a new KEK, every data key re-wrapped), status, retire.",
                           no_args_is_help=True)

    def opened(settings: ServiceSettings) -> custody.Custody:
        try:
            return custody.opened(settings)
        except (errors.Sealed, errors.KeysUnavailable) as refusal:
            typer.echo(f"error: {settings.process_name}: {refusal.detail}", err=True)
            raise typer.Exit(1) from None

    @keys_app.command("rotate")
    def rotate_command(
        batch_size: int = typer.Option(500, min=1, max=10_000, help="data keys re-wrapped per transaction"),
        rewrap_only: bool = typer.Option(False, "--rewrap-only", help="Add no KEK: finish re-wrapping under the "
                                         "active one (after a rotation that stopped)."),
    ) -> None:
        """Add a new key-encryption key to this service's keyring, make it active, and re-wrap every data key of
        this service under it, online (the running service picks the new KEK up without a restart)."""
        settings = settings_factory()
        keys = opened(settings)
        if not rewrap_only:
            kid = keys.add_kek()
            typer.echo(f"new key-encryption key: {kid}")
        engine = existing_database(settings, wrapped_keys)
        if engine is None:
            typer.echo(f"{no_database(settings)}: nothing to re-wrap")
            return
        unreadable: list[tuple] = []
        try:
            with Progress(f"keys rotate: {settings.process_name}", unit="data keys") as progress:
                done = rewrap_all(engine, keys, wrapped_keys, batch=batch_size, progress=progress,
                                  unreadable=unreadable)
        finally:
            engine.dispose()
        typer.echo(f"active key-encryption key: {keys.active}; data keys re-wrapped: {done}")
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
        """Which key-encryption key is active, and how many of this service's data keys each one wraps."""
        settings = settings_factory()
        try:
            keys = custody.opened(settings)
        except errors.KeysUnavailable as missing:  # nothing made yet: a line, not a failure
            if as_json:
                typer.echo(json.dumps({"process": settings.process_name, "keyring": False, "note": missing.detail}))
            else:
                typer.echo(missing.detail)
            return
        except errors.Sealed as refusal:
            typer.echo(f"error: {settings.process_name}: {refusal.detail}", err=True)
            raise typer.Exit(1) from None
        engine = existing_database(settings, wrapped_keys)
        counts: Counter[str] = Counter()
        if engine is not None:
            try:
                counts = wrapped_counts(engine, wrapped_keys)
            finally:
                engine.dispose()
        report = {"process": settings.process_name, "keyring": True, "custody": keys.kind,
                  "database": engine is not None,
                  "active": keys.active, "keks": keys.kids, "counts": dict(counts)}
        if engine is None:
            report["note"] = no_database(settings)
        if as_json:
            typer.echo(json.dumps(report))
            return
        typer.echo(f"custody: {keys.kind}; active key-encryption key: {keys.active}")
        for kid in sorted(set(counts) | set(keys.kids)):
            missing = "  NOT IN THE KEYRING: these cannot be opened" if kid not in keys.kids else ""
            typer.echo(f"{kid}: {counts.get(kid, 0)} data keys{' (active)' if kid == keys.active else ''}{missing}")

    @keys_app.command("retire")
    def retire_command(
        kid: str = typer.Argument(..., help="the KEK to drop"),
    ) -> None:
        """Drop a key-encryption key from this service's keyring, once none of its data keys uses it (never the
        active one). `rehab keys retire` asks first; this does not."""
        settings = settings_factory()
        keys = opened(settings)
        if kid == keys.active:
            typer.echo(f"error: {kid} is the active key-encryption key: it is never retired", err=True)
            raise typer.Exit(1)
        if kid not in keys.kids:
            typer.echo(f"{settings.process_name}: no key-encryption key {kid}: nothing to retire")
            return
        engine = existing_database(settings, wrapped_keys)
        if engine is not None:
            try:
                in_use = wrapped_counts(engine, wrapped_keys).get(kid, 0)
            finally:
                engine.dispose()
            if in_use:
                typer.echo(f"error: {kid} still wraps {in_use} data keys of {settings.process_name}: run "
                           "`rehab keys rotate` first", err=True)
                raise typer.Exit(1)
        keys.remove_kek(kid)
        typer.echo(f"{settings.process_name}: retired {kid}")

    return keys_app
