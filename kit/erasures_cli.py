"""Each service's `erasures apply` (`python -m services.<name>.manage erasures apply`), run by `rehab restore` once
per service after the databases are put back and before any process starts: every erasure of the ledger
(kit.erasures), read as JSON lines on stdin or from a file, re-applied to this service's database by the service's
own erasure (intake's use case, referrals' and funds' `case.erased` projections), offline.

No key-encryption key is needed: an erasure destroys keys and deletes rows, it never opens anything (a sealed keyring
or an OpenBao away does not stop it). The audit key is, for the audit entry each erasure leaves. The database is
brought to the current schema first, as the service would at its start. It prints one JSON line: how many erasures
it read, and how many of them changed something here (the others were erased in the backup already, or are of cases
this database never held).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import typer
from sqlalchemy.engine import make_url
from sqlmodel import Session

from kit import db, migrations
from kit.audit import AuditTrail
from kit.erasures import ErasureRecorded, from_lines
from kit.idempotency import StoredAnswers
from kit import custody
from kit.settings import ServiceSettings
from kit.tables import KitTables

# One erasure re-applied: the session of its transaction, the service's audit trail and keyless stored answers, the
# ledger's entry; True when it changed something.
Apply = Callable[[Session, AuditTrail, StoredAnswers, ErasureRecorded], bool]


def erasures_commands(settings_factory: Callable[[], ServiceSettings], tables: KitTables, migrations_dir: Path,
                      apply: Apply) -> typer.Typer:
    """The `erasures` group of a service's manage module."""
    erasures_app = typer.Typer(help="The erasure ledger: re-apply its erasures after a restore.", no_args_is_help=True)

    @erasures_app.command("apply")
    def apply_command(
        from_file: Path | None = typer.Option(None, "--from-file", exists=True, dir_okay=False,
                                              help="JSON lines of the ledger (default: stdin)"),
    ) -> None:
        """Re-apply the ledger's erasures to this service's database (after `rehab restore` put it back)."""
        settings = settings_factory()
        entries = from_lines(from_file.read_text() if from_file is not None else sys.stdin.read())
        print(json.dumps(reapply(settings, tables, migrations_dir, apply, entries)))

    return erasures_app


def reapply(settings: ServiceSettings, tables: KitTables, migrations_dir: Path, apply: Apply,
            entries: list[ErasureRecorded]) -> dict:
    process = settings.process_name
    url = settings.db_url
    if db.is_sqlite(url) and not Path(make_url(url).database or "").is_file():
        return {"process": process, "database": False, "entries": len(entries), "reapplied": 0}
    engine = db.make_engine(url, pool_size=2)  # SQLite: secure_delete, so destroyed keys do not linger in free pages
    try:
        migrations.upgrade(engine, migrations_dir)
        audit = AuditTrail(tables, custody.opened(settings, ask=False).secret("audit"))
        answers = StoredAnswers(tables)
        factory = db.make_session_factory(engine)
        reapplied = 0
        for entry in entries:  # one transaction each: an interrupted run leaves whole erasures, and is run again
            with db.transaction(factory) as session:
                reapplied += bool(apply(session, audit, answers, entry))
        db.checkpoint_wal(engine)  # the destroyed keys' old page images leave the write-ahead log too
    finally:
        engine.dispose()
    return {"process": process, "database": True, "entries": len(entries), "reapplied": reapplied}
