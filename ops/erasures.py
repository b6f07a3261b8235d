"""The erasure ledger at restore time: read it, and re-apply every erasure to the databases put back (SPEC §8).

`rehab restore` reads the stream ERASURES (kit.erasures) before it replaces anything — from the NATS `rehab up` runs,
from REHAB_NATS_URL, or, with the system stopped, from the embedded NATS's own store opened offline on a port of its
own (ops.audit.checkpoint_stream) — as the operator's NATS user. Once the databases are back, each service's own
`manage erasures apply` (a process: ops never imports a service's insides) re-applies them, before any process
answers. A ledger that can not be read, or that begins after the backup was made (erasures in between would be
missing), stops the restore before it writes anything, unless the operator says `--without-erasure-ledger`.
`rehab erasures reapply` does the second half alone: after a restore made by other means (a PostgreSQL
point-in-time recovery, a disk snapshot), or one whose re-application did not finish.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from kit import erasures
from kit.erasures import Ledger, LedgerUnreadable
from kit.settings import ServiceSettings
from ops.settings import SupervisorSettings
from ops.supervisor import port_in_use, port_is_free

# The services that hold something about a case, and the module whose `erasures apply` re-applies erasures there.
HOLDERS: dict[str, str] = {
    "intake": "services.intake.manage",
    "referrals": "services.referrals.manage",
    "funds": "services.funds.manage",
    "reports": "services.reports.manage",  # the keyed hashes that tie a person to the aid sums they are in
}

app = typer.Typer(help="The erasure ledger: reapply it to the databases (after a restore).", no_args_is_help=True)


def read_ledger(nats_url: str | None = None, nkey_seed: Path | None = None) -> Ledger:
    """Every erasure the ledger holds; LedgerUnreadable saying why when it can not be read."""
    from ops.audit import checkpoint_stream, operator_seed  # here: `rehab up` imports this module and stays a small process

    system = SupervisorSettings()
    store = system.state_dir.resolve() / "nats"
    if not (nats_url or system.external_nats) and port_is_free(system.nats_port) and not store.is_dir():
        raise LedgerUnreadable(f"there is no NATS store at {store}, where the embedded NATS keeps the ledger")
    seed = operator_seed(nkey_seed)
    try:
        with checkpoint_stream(nats_url, purpose="erasure-ledger") as url:
            return asyncio.run(erasures.read(url, seed))
    except LedgerUnreadable:
        raise
    except Exception as error:  # the store could not be opened (no NATS keys, a damaged store, …)
        raise LedgerUnreadable(f"the NATS holding it could not be opened ({type(error).__name__}: {error})") from None


def not_yet_sent() -> list[erasures.ErasureRecorded]:
    """Ledger entries still waiting in intake's outbox (the system stopped before its relay sent them): read from
    intake's database as it is now, before the restore replaces it, so that they are not lost with it. Only the
    kit's own outbox table is read."""
    from sqlalchemy import MetaData, inspect, select

    from kit import db
    from kit.events import Envelope
    from kit.tables import KitTables

    url = os.environ.get("REHAB_INTAKE_DATABASE_URL") or ServiceSettings().sqlite_url("intake")
    if db.is_sqlite(url) and not Path(url.removeprefix("sqlite:///")).is_file():
        return []
    outbox = KitTables(MetaData()).outbox
    engine = db.make_engine(url, pool_size=1)
    try:
        if not inspect(engine).has_table(outbox.name):
            return []
        with engine.connect() as conn:
            rows = conn.execute(select(outbox.c.envelope).where(outbox.c.subject == erasures.SUBJECT,
                                                                outbox.c.published_at.is_(None))).scalars().all()
    finally:
        engine.dispose()
    return [erasures.ErasureRecorded.model_validate(Envelope.from_bytes(row.encode()).data) for row in rows]


def with_pending(ledger: Ledger, pending: list[erasures.ErasureRecorded]) -> Ledger:
    known = {entry.case_id for entry in ledger.entries}
    extra = [entry for entry in pending if entry.case_id not in known]
    return Ledger(entries=[*ledger.entries, *extra], since=ledger.since, messages=ledger.messages)


def gap(ledger: Ledger, backup_made: str) -> str | None:
    """Why this ledger may lack erasures made after a backup of `backup_made` (ISO time): it began later."""
    try:
        made = datetime.fromisoformat(backup_made)
    except ValueError:
        return None
    if ledger.since is not None and made.tzinfo is not None and ledger.since > made:
        return (f"the erasure ledger began at {ledger.since.isoformat(timespec='seconds')}, after this backup was "
                f"made ({made.isoformat(timespec='seconds')}): erasures made between the two are not in it")
    return None


@dataclass
class Reapplied:
    counts: dict[str, int]  # per service, erasures that changed something there
    failed: dict[str, str]  # per service that could not apply them, the last line it said


# Left in the state folder by `rehab restore` before it replaces the databases, removed once every erasure of the
# ledger was re-applied: while it is there `rehab up` refuses to start (people erased since the backup are back).
OWED_MARK = "ERASURES_OWED"


def owe(state_dir: Path) -> None:
    (state_dir / OWED_MARK).write_text("the databases were restored; their erasures are not all re-applied yet\n")


def owed(state_dir: Path) -> bool:
    return (state_dir / OWED_MARK).exists()


def settle(state_dir: Path) -> None:
    (state_dir / OWED_MARK).unlink(missing_ok=True)


def reapply(ledger: Ledger, passphrase: str | None = None) -> Reapplied:
    """Each service's `erasures apply` over the whole ledger (ids on its stdin, never on a command line; under
    sealed custody the unseal passphrase — `passphrase`, or obtained now — through a pipe of its own:
    ops.passphrase). Every holder done, the owed mark goes."""
    from ops.passphrase import handing_passphrase

    lines = erasures.to_lines(ledger.entries)
    result = Reapplied({}, {})
    with handing_passphrase(passphrase) as run:
        finished = {process: run(module, ["erasures", "apply"], input=lines) for process, module in HOLDERS.items()}
    for process, done in finished.items():
        try:
            said = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else None
        except (ValueError, IndexError):
            said = None
        if said is None:
            result.failed[process] = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
            continue
        result.counts[process] = int(said["reapplied"])
    if not result.failed:
        settle(SupervisorSettings().state_dir.resolve())
    return result


def report(ledger: Ledger, done: Reapplied) -> list[str]:
    per = ", ".join(f"{process}: {n}" for process, n in done.counts.items())
    return [f"erasure ledger: {len(ledger.entries)} erased cases replayed; changed here: {per}"]


@app.command("reapply")
def reapply_command(
    nats_url: Annotated[str | None, typer.Option(help="The NATS holding the stream ERASURES (default: REHAB_NATS_URL, "
                                                      "else the embedded one's store)")] = None,
    force: Annotated[bool, typer.Option("--force", help="Re-apply under a running system all the same.")] = False,
) -> None:
    """Re-apply every erasure of the ledger to the databases as they are now: after a restore made by other means
    (PostgreSQL point-in-time recovery, a snapshot) or one whose re-application did not finish. Run it with the
    system stopped, before it answers anyone: refused while the system's ports are in use, unless `--force`."""
    if not force and (taken := port_in_use(SupervisorSettings())):
        typer.echo(f"error: {taken} is in use: the system seems to be running. Stop it first (until the erasures are "
                   "re-applied, a restored database shows the people erased since to anyone who asks), then run "
                   "this again; or pass --force", err=True)
        raise typer.Exit(1)
    try:
        ledger = read_ledger(nats_url)
    except LedgerUnreadable as error:
        typer.echo(f"error: the erasure ledger could not be read: {error}", err=True)
        raise typer.Exit(1) from None
    done = reapply(ledger)
    for line in report(ledger, done):
        typer.echo(line)
    if done.failed:
        for process, why in done.failed.items():
            typer.echo(f"error: {process}: the erasures were not re-applied: {why}", err=True)
        raise typer.Exit(1)
