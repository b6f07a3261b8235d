"""Operator commands for intake's field-encryption keys and name index; `rehab keys …` runs
`python -m services.intake.manage keys …`, `rehab names …` runs `… manage names …`.

`keys rotate` adds a new key-encryption key (KEK) to the keyring file and makes it active, then re-wraps every case's
data key under it, in small transactions, while the service keeps running: the service re-reads the keyring file
when it changes, so it can open keys wrapped either way, and wraps new ones under the new KEK. The data keys
themselves, and so every ciphertext, stay as they are. Old KEKs stay in the file until nothing uses them any more
(`keys status` shows what each one still wraps).

`names reindex` writes every case's blind-index terms again from its decrypted names (after an upgrade that added
a kind of term: the terms are keyed hashes of the names, which only the names give), in small transactions, while
the service keeps running; then it deletes the `name_index_pending` rows, and searches use the new terms.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import typer
from sqlalchemy import Engine, delete, func, select, update
from sqlmodel import Session

from kit import db
from kit.crypto import BlindIndex, DecryptionError, WrappedKey, add_key_to_file
from kit.secrets import read_key_file
from services.intake import service
from services.intake.config import IntakeSettings
from services.intake.models import CaseKey, NameIndexPending
from services.intake.protection import CaseVault, KeyEncryptionKeys

app = typer.Typer(name="intake-manage", no_args_is_help=True, add_completion=False)
keys_app = typer.Typer(help="Field-encryption keys: rotate, status.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
names_app = typer.Typer(help="The blind index of names: rebuild it after an upgrade.", no_args_is_help=True)
app.add_typer(names_app, name="names")


@dataclass
class RotationReport:
    kid: str
    rewrapped: int = 0
    unreadable: list[str] = field(default_factory=list)


@keys_app.command("rotate")
def rotate_command(
    batch_size: int = typer.Option(200, min=1, max=10_000, help="data keys re-wrapped per transaction"),
) -> None:
    """Add a new key-encryption key, make it active and re-wrap every case's data key under it."""
    settings = IntakeSettings()
    engine = _engine(settings)
    try:
        report = rotate(engine, KeyEncryptionKeys(settings.kek_path), batch_size=batch_size)
    finally:
        engine.dispose()
    typer.echo(f"active key-encryption key: {report.kid}; data keys re-wrapped: {report.rewrapped}")
    if report.unreadable:
        typer.echo(f"error: {len(report.unreadable)} data keys could not be unwrapped (case ids below); "
                   "they stay under their old key", err=True)
        for case_id in report.unreadable:
            typer.echo(case_id, err=True)
        raise typer.Exit(1)


@keys_app.command("status")
def status_command() -> None:
    """Which key-encryption key is active and how many data keys each one wraps."""
    settings = IntakeSettings()
    engine = _engine(settings)
    try:
        counts = wrapped_counts(engine)
    finally:
        engine.dispose()
    keyring = json.loads(settings.kek_path.read_text())  # kit.crypto's keyring file: {"active", "keys": {kid: …}}
    active = keyring["active"]
    typer.echo(f"active key-encryption key: {active}")
    for kid in sorted(set(counts) | set(keyring["keys"])):
        typer.echo(f"{kid}: {counts.get(kid, 0)} data keys{' (active)' if kid == active else ''}")


def rotate(engine: Engine, keks: KeyEncryptionKeys, *, batch_size: int = 200) -> RotationReport:
    """Add a KEK to the keyring file, then re-wrap under it, batch by batch, every data key wrapped by another."""
    report = RotationReport(kid=add_key_to_file(keks.path))
    factory = db.make_session_factory(engine)
    # Passes repeat until one finds nothing: a service that opened a case while it had not yet seen the new
    # key file wrapped that key under the old KEK, and the next pass picks it up.
    while (done := _rewrap_pass(factory, keks, report, batch_size)) > 0:
        report.rewrapped += done
    return report


def _rewrap_pass(factory, keks: KeyEncryptionKeys, report: RotationReport, batch_size: int) -> int:  # noqa: ANN001
    done, after = 0, ""
    while True:
        with db.transaction(factory) as session:
            batch = session.execute(
                select(CaseKey.case_id, CaseKey.kid, CaseKey.wrapped)
                .where(CaseKey.kid != keks.active, CaseKey.case_id > after)
                .order_by(CaseKey.case_id).limit(batch_size)
            ).all()
            for row in batch:
                if row.case_id not in report.unreadable:
                    done += _rewrap_one(session, keks, row, report)
        if len(batch) < batch_size:
            return done
        after = batch[-1].case_id


def _rewrap_one(session: Session, keks: KeyEncryptionKeys, row, report: RotationReport) -> int:  # noqa: ANN001
    try:
        fresh = keks.rewrap(WrappedKey(row.kid, row.wrapped))
    except DecryptionError:
        report.unreadable.append(row.case_id)
        return 0
    # Only if the row is still the one we read: a case erased meanwhile stays erased.
    changed = session.execute(
        update(CaseKey)
        .where(CaseKey.case_id == row.case_id, CaseKey.kid == row.kid, CaseKey.wrapped == row.wrapped)
        .values(kid=fresh.kid, wrapped=fresh.blob, rewrapped_at=datetime.now(UTC))
    ).rowcount
    return changed


def wrapped_counts(engine: Engine) -> Counter[str]:
    with engine.connect() as conn:
        rows = conn.execute(select(CaseKey.kid, func.count()).group_by(CaseKey.kid)).all()
    return Counter({kid: count for kid, count in rows})


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
    engine = _engine(settings)
    try:
        vault = CaseVault(KeyEncryptionKeys(settings.kek_path), BlindIndex(read_key_file(settings.blind_index_key_path)))
        report = reindex(engine, vault, batch_size=batch_size)
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


def reindex(engine: Engine, vault: CaseVault, *, batch_size: int = 200) -> ReindexReport:
    """Every case (not erased) gets the terms `CaseVault.name_terms` gives its names now, in place of its old
    ones, batch by batch in id order, each batch's cases locked meanwhile (a rename at the same time is not
    undone). Then, unless some case could not be read, no part of the index is pending any more."""
    report = ReindexReport()
    factory = db.make_session_factory(engine)
    started = datetime.now(UTC)
    after = ""
    while True:
        with db.transaction(factory) as session:
            read, unreadable = service.reindex_names(session=session, vault=vault, after=after, limit=batch_size)
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


def _engine(settings: IntakeSettings) -> Engine:
    return db.make_engine(settings.db_url, pool_size=2)  # SQLite: secure_delete, so replaced wrapped keys do not linger


def main() -> None:
    app()


if __name__ == "__main__":
    main()
