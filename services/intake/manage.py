"""Operator commands for intake's field-encryption keys; `rehab keys …` runs `python -m services.intake.manage keys …`.

`keys rotate` adds a new key-encryption key (KEK) to the keyring file and makes it active, then re-wraps every case's
data key under it, in small transactions, while the service keeps running: the service re-reads the keyring file
when it changes, so it can open keys wrapped either way, and wraps new ones under the new KEK. The data keys
themselves, and so every ciphertext, stay as they are. Old KEKs stay in the file until nothing uses them any more
(`keys status` shows what each one still wraps).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import typer
from sqlalchemy import Engine, func, select, update
from sqlmodel import Session

from kit import db
from kit.crypto import DecryptionError, WrappedKey, add_key_to_file
from services.intake.config import IntakeSettings
from services.intake.models import CaseKey
from services.intake.protection import KeyEncryptionKeys

app = typer.Typer(name="intake-manage", no_args_is_help=True, add_completion=False)
keys_app = typer.Typer(help="Field-encryption keys: rotate, status.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


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


def _engine(settings: IntakeSettings) -> Engine:
    return db.make_engine(settings.db_url, pool_size=2)  # SQLite: secure_delete, so replaced wrapped keys do not linger


def main() -> None:
    app()


if __name__ == "__main__":
    main()
