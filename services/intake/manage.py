"""Operator commands for intake's field-encryption keys and name index; `rehab keys rotate|status|retire` runs
`python -m services.intake.manage keys …` (and the same in referrals and funds), `rehab names …` runs
`… manage names …` (their help says `rehab`).

`keys rotate` re-wraps every case's data key (`models.WRAPPED_KEYS`) under the active key-encryption key (KEK), in
small transactions, while the service keeps running (kit.keys_cli): `rehab keys rotate` adds the new KEK to the
keyring file first, once for every service; the running service re-reads the file when it changes, so it opens keys
wrapped either way and wraps new ones under the new KEK. The data keys themselves, and so every ciphertext, stay as
they are. `keys status` shows what each KEK still wraps; `rehab keys retire` drops a KEK no service uses.

`names reindex` writes every case's blind-index terms again from its decrypted names (after an upgrade that added
a kind of term: the terms are keyed hashes of the names, which only the names give), in small transactions, while
the service keeps running; then it deletes the `name_index_pending` rows, and searches use the new terms.

Both show their progress on stderr (kit.progress): counts only, never a name.

`erasures apply` (kit.erasures_cli), run by `rehab restore` after the databases are put back: every erasure of the
ledger, re-applied by `cases.reapply_erasure` (the same erasure as the API's), so a restored backup brings nobody back.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import typer
from sqlalchemy import Engine, delete, func, select
from sqlmodel import Session

from kit import db
from kit.audit import AuditTrail
from kit.crypto import BlindIndex
from kit.erasures import ErasureRecorded
from kit.erasures_cli import erasures_commands
from kit.idempotency import StoredAnswers
from kit.keys_cli import existing_database, keys_commands, no_database
from kit.progress import Progress
from kit import custody
from services.intake import cases, domain, queries
from services.intake.config import IntakeSettings
from services.intake.models import WRAPPED_KEYS, Case, NameIndexPending, kit_tables
from services.intake.protection import CaseVault

app = typer.Typer(name="intake-manage", help="Intake's keys and name index.", no_args_is_help=True,
                  add_completion=False)
app.add_typer(keys_commands(IntakeSettings, WRAPPED_KEYS), name="keys")
names_app = typer.Typer(help="The blind index of names: rebuild it after an upgrade.", no_args_is_help=True)
app.add_typer(names_app, name="names")


def reapply_erasure(session: Session, audit: AuditTrail, answers: StoredAnswers, entry: ErasureRecorded) -> bool:
    # No keyring: erasing opens nothing (the vault's keys are never used on this path).
    vault = CaseVault(None, None, answers)  # type: ignore[arg-type]
    return cases.reapply_erasure(session=session, vault=vault, audit=audit, case_id=entry.case_id,
                                 erased_at=entry.erased_at)


app.add_typer(erasures_commands(IntakeSettings, kit_tables, Path(__file__).parent / "migrations", reapply_erasure),
              name="erasures")


references_app = typer.Typer(help="Case references: one reference names one person, across a restore too.",
                              no_args_is_help=True)
app.add_typer(references_app, name="references")


@references_app.command("numbers")
def numbers_command() -> None:
    """The last reference number given out in each year, as JSON (`{"2026": 6}`); `{}` with no database yet.
    `rehab restore` reads it from the database it is about to replace."""
    settings = IntakeSettings()
    engine = _existing_database(settings)
    numbers: dict[str, int] = {}
    if engine is not None:
        try:
            with db.transaction(db.make_session_factory(engine)) as session:
                numbers = {str(year): number for year, number in queries.reference_numbers(session).items()}
        finally:
            engine.dispose()
    print(json.dumps(numbers))


@references_app.command("keep-above")
def keep_above_command() -> None:
    """Raise each year's counter to at least the number given (JSON on stdin, as `numbers` printed it): a database
    put back by `rehab restore` would otherwise give a case opened now the reference of one opened after the backup
    was made (lost with the restore, or erased), and a note about `BY-2026-00006` would name another person."""
    given = {int(year): int(number) for year, number in json.loads(sys.stdin.read() or "{}").items()}
    settings = IntakeSettings()
    engine = _existing_database(settings)
    if engine is None:
        typer.echo(f"error: {_no_database(settings)}: no counter was raised", err=True)
        raise typer.Exit(1)
    try:
        with db.transaction(db.make_session_factory(engine)) as session:
            raised = queries.keep_reference_numbers_above(session, given)
    finally:
        engine.dispose()
    print(json.dumps({"raised": raised}))


@dataclass
class ReindexReport:
    reindexed: int = 0
    unreadable: list[str] = field(default_factory=list)
    pending_cleared: list[str] = field(default_factory=list)


@names_app.command("reindex")
def reindex_command(
    batch_size: int = typer.Option(200, min=1, max=10_000, help="cases re-indexed per transaction"),
) -> None:
    """Write every case's name terms again from its names, then let searches use every kind of term."""
    settings = IntakeSettings()
    engine = _existing_database(settings)
    if engine is None:
        typer.echo(f"error: {_no_database(settings)}: nothing was re-indexed (has intake started once?)", err=True)
        raise typer.Exit(1)
    try:
        keys = custody.opened(settings)
        vault = CaseVault(keys, BlindIndex(keys.secret_source("blind_index")))
        with Progress("names reindex", unit="cases") as progress:
            report = reindex(engine, vault, batch_size=batch_size, progress=progress)
    finally:
        engine.dispose()
    typer.echo(f"cases re-indexed: {report.reindexed}; parts of the index now complete: "
               f"{', '.join(report.pending_cleared) or 'none were pending'}")
    if report.unreadable:
        typer.echo(f"error: {len(report.unreadable)} cases' names could not be decrypted (case ids below); their "
                   "old terms stay, and the index stays marked pending", err=True)
        for case_id in report.unreadable:
            typer.echo(case_id, err=True)
        raise typer.Exit(1)


def reindex(engine: Engine, vault: CaseVault, *, batch_size: int = 200,
            progress: Progress | None = None) -> ReindexReport:
    """Every case (not erased) gets the terms `CaseVault.name_terms` gives its names now, in place of its old
    ones, batch by batch in id order, each batch's cases locked meanwhile (a rename at the same time is not
    undone). Then, unless some case could not be read, no part of the index is pending any more."""
    progress = progress or Progress.silent()
    report = ReindexReport()
    factory = db.make_session_factory(engine)
    started = datetime.now(UTC)
    to_reindex = select(func.count()).select_from(Case).where(Case.status != domain.ERASED)
    with engine.connect() as conn:
        progress.set_total(conn.execute(to_reindex).scalar_one())
    after = ""
    while True:
        with db.transaction(factory) as session:
            read, unreadable = cases.reindex_names(session=session, vault=vault, after=after, limit=batch_size)
        progress.advance(len(read))
        report.reindexed += len(read) - len(unreadable)
        report.unreadable += unreadable
        if len(read) < batch_size:
            break
        after = read[-1]
    if not report.unreadable:
        with db.transaction(factory) as session:
            # Only what was pending before this pass began: every case opened since has all its terms anyway.
            parts = session.execute(select(NameIndexPending.part).where(NameIndexPending.since <= started)).scalars().all()
            session.execute(delete(NameIndexPending).where(NameIndexPending.part.in_(parts)))
            report.pending_cleared = sorted(parts)
    return report


def _existing_database(settings: IntakeSettings) -> Engine | None:
    return existing_database(settings, WRAPPED_KEYS)


def _no_database(settings: IntakeSettings) -> str:
    return no_database(settings)


def main() -> None:
    app(prog_name="rehab")  # reached as `rehab keys …` and `rehab names …`: its help says so


if __name__ == "__main__":
    main()
