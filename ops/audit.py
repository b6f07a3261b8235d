"""`rehab audit verify`: check every process's audit hash chain straight from its database.

It needs no running system and no token: the operator who holds the audit key verifies the chains as stored.
Only kit pieces are used; the tables are the kit's own, present in every process's database.
"""

from __future__ import annotations

import os
import sys

import typer
from kit.secrets import read_key_file
from kit.settings import ServiceSettings

PROCESSES = ("gateway", "intake", "referrals", "funds")

app = typer.Typer(help="Audit trails: verify their hash chains.", no_args_is_help=True)


def database_url(settings: ServiceSettings, name: str) -> str:
    return os.environ.get(f"REHAB_{name.upper()}_DATABASE_URL") or settings.sqlite_url(name)


def verify_all() -> int:
    # Imported here, not at the top: `rehab up` (the supervisor) imports this module and stays a small process.
    from sqlalchemy import MetaData

    from kit.audit import AuditTrail
    from kit.db import make_engine, make_session_factory, transaction
    from kit.tables import KitTables

    settings = ServiceSettings()
    if not settings.audit_key_path.is_file():
        print(f"error: no audit key at {settings.audit_key_path}: nothing to verify the chains with "
              "(has the system started once with this state folder?)", file=sys.stderr)
        return 2
    key = read_key_file(settings.audit_key_path)
    broken = 0
    for name in PROCESSES:
        url = database_url(settings, name)
        if url.startswith("sqlite") and not (settings.state_dir / f"{name}.db").exists():
            print(f"{name:10} no database yet")
            continue
        engine = make_engine(url)
        trail = AuditTrail(KitTables(MetaData()), key)
        try:
            with transaction(make_session_factory(engine)) as session:
                verdict = trail.verify(session)
        finally:
            engine.dispose()
        state = "ok" if verdict["ok"] else f"BROKEN at entry {verdict['first_bad']}"
        print(f"{name:10} {verdict['entries']:8} entries  {state}")
        broken += not verdict["ok"]
    return 1 if broken else 0


@app.command("verify")
def verify_command() -> None:
    """Check every process's audit hash chain from its database: exit 1 naming the first broken entry, 2 when
    there is no audit key to check with."""
    raise typer.Exit(verify_all())
