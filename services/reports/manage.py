"""Operator commands for reports, reached as `rehab reports rebuild` (or `python -m services.reports.manage reports
rebuild`).

`rebuild` empties the projection and replays funds', referrals' and intake's streams from their first message
through the same handlers the live consumers run (`handlers.consumed`), with progress on stderr (kit.progress):
the numbers it ends with are the live ones. It opens the service's keys (`kit.custody.opened`, the passphrase asked
for under `sealed` custody) before it empties anything: people are counted in the money cells by a keyed hash of their
case id (`handlers.PersonIndex`), which must be the live service's for a later erasure to find them. Intake's stream
comes last: its erasures then come after the aid they erase, as they do live, and a person erased before is not
counted in a cell again (`projections.aid_moved`). It may run while the service runs: the projection is emptied and the
live consumers' record of applied events forgotten in one transaction, and from then on each event is applied by
whichever of the two takes its inbox row first, so none is counted twice or lost (the report shows partial numbers
until the replay ends). It reads the streams as the operator's NATS user (an ephemeral consumer of its own, which
the service's own user may not make), from `--nkey-seed`, by default the operator's seed in the secrets folder.

Exit 0 when done, 2 when NATS, the database or the keys can not be reached. It prints counts only.
"""

from __future__ import annotations

import asyncio
import functools
import sys
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import delete
from sqlmodel import Session

from kit import custody, db, errors, migrations
from kit.audit import AuditTrail
from kit.bus import Handler, stream_name
from kit.db import dialect_insert
from kit.erasures import ErasureRecorded
from kit.erasures_cli import erasures_commands
from kit.events import Envelope
from kit.idempotency import StoredAnswers
from kit.progress import Progress
from kit.secrets import NATS_SEED_FILES
from services.reports import handlers, projections, queries
from services.reports.config import ReportsSettings
from services.reports.models import PROJECTION, kit_tables

MIGRATIONS = Path(__file__).parent / "migrations"
BATCH = 500


@dataclass
class Replayed:
    applied: dict[str, int] = field(default_factory=dict)  # producer → events applied by the rebuild
    already: int = 0  # applied meanwhile by the live consumers
    skipped: int = 0  # unreadable, or refused by their handler (the live consumer parks those)


class RebuildFailed(Exception):
    """What stopped a rebuild, in words an operator can act on."""


def empty_projection(session: Session) -> None:
    """Every aggregate row gone, and the consumers' record of applied events with them: one transaction."""
    for model in PROJECTION:
        session.execute(delete(model))
    inbox = kit_tables.inbox
    session.execute(delete(inbox).where(inbox.c.consumer.in_(list(handlers.DURABLES.values()))))


def apply_once(session: Session, durable: str, subject: str, envelope: Envelope, handler: Handler) -> bool:
    """Apply one event unless its inbox row exists (the live consumer applied it): the live bus's rule, so the two
    never both count it. False when it was applied already (told by RETURNING: psycopg's `rowcount` is -1 here)."""
    inbox = kit_tables.inbox
    insert = dialect_insert(session.get_bind().dialect.name)(inbox)
    taken = session.execute(insert.values(consumer=durable, event_id=envelope.id, subject=subject,
                                          applied_at=datetime.now(UTC)).on_conflict_do_nothing()
                            .returning(inbox.c.event_id))
    if taken.first() is None:
        return False
    handler(session, envelope)
    return True


def person_index(settings: ReportsSettings) -> handlers.PersonIndex:
    """The live service's `PersonIndex`, from its custody; RebuildFailed when its keys can not be had."""
    try:
        people = handlers.PersonIndex.of(custody.opened(settings))
        people("a case id")  # the key is there, not only the custody
    except (errors.Unavailable, KeyError) as error:
        raise RebuildFailed(f"the reports service's keys could not be opened ({type(error).__name__}): people in "
                            "the money cells are counted by a keyed hash of their case, under its key") from None
    return people


async def replay(settings: ReportsSettings, *, nats_url: str, seed: Path | None,
                 progress: Progress | None = None, people: handlers.PersonIndex | None = None) -> Replayed:
    """Empty the projection, then apply every message of every stream reports consumes, from the first (intake's
    last). `people`: by default the service's own, from its custody."""
    import nats
    import nats.errors
    import nats.js.errors
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

    progress = progress or Progress.silent()
    consumed = handlers.consumed(people or person_index(settings))
    engine = db.make_engine(settings.db_url)
    try:
        migrations.upgrade(engine, MIGRATIONS)
        factory = db.make_session_factory(engine)
        options = {"nkeys_seed": str(seed)} if seed is not None else {}
        try:
            nc = await asyncio.wait_for(nats.connect(nats_url, allow_reconnect=False, connect_timeout=3,
                                                     max_reconnect_attempts=0, **options), timeout=10)
        except (nats.errors.Error, OSError, TimeoutError) as error:
            raise RebuildFailed(f"NATS could not be reached ({type(error).__name__})") from None
        result = Replayed()
        try:
            js = nc.jetstream(timeout=10)
            with db.transaction(factory) as session:
                empty_projection(session)
            readers = []
            # Intake's last: its erasures after the aid they erase, as live (a person erased first is not counted).
            for producer, (durable, subjects) in sorted(consumed.items(), key=lambda item: item[0] == "intake"):
                stream = stream_name(producer)
                try:
                    await js.stream_info(stream)
                except nats.js.errors.NotFoundError:
                    result.applied[producer] = 0  # nothing published yet
                    continue
                name = f"reports-rebuild-{uuid.uuid4().hex[:12]}"
                info = await js.add_consumer(stream, ConsumerConfig(
                    name=name, ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL,
                    filter_subjects=sorted(subjects), inactive_threshold=300))
                readers.append((producer, durable, subjects, stream, name, info.num_pending or 0))
            with progress:
                progress.set_total(sum(reader[-1] for reader in readers))
                for producer, durable, subjects, stream, name, pending in readers:
                    progress.doing(stream)
                    try:
                        await _read(js, factory, durable, subjects, stream, name, pending, producer, result, progress)
                    finally:
                        try:
                            await js.delete_consumer(stream, name)
                        except Exception:
                            pass  # it goes by itself after its inactive threshold
        finally:
            await nc.close()
        return result
    finally:
        engine.dispose()


async def _read(js, factory, durable: str, subjects: dict[str, Handler], stream: str, name: str, pending: int,
                producer: str, result: Replayed, progress: Progress) -> None:
    import nats.errors

    subscription = await js.pull_subscribe_bind(consumer=name, stream=stream)
    result.applied[producer] = 0
    read = 0
    while True:
        try:
            messages = await subscription.fetch(batch=BATCH, timeout=2)
        except (nats.errors.TimeoutError, TimeoutError):
            info = await js.consumer_info(stream, name)
            if (info.num_pending or 0) == 0:
                return  # every message there was when it started, and any published since
            continue
        with db.transaction(factory) as session:
            for message in messages:
                handler = subjects.get(message.subject)
                try:
                    envelope = Envelope.from_bytes(message.data)
                except Exception:
                    result.skipped += 1
                    continue
                if handler is None:
                    continue
                try:
                    with session.begin_nested():
                        if apply_once(session, durable, message.subject, envelope, handler):
                            result.applied[producer] += 1
                        else:
                            result.already += 1
                except Exception:
                    result.skipped += 1
        read += len(messages)
        progress.advance(len(messages))
        if read >= pending and (messages[-1].metadata.num_pending or 0) == 0:
            return


def default_seed(settings: ReportsSettings) -> Path | None:
    """The operator's NATS seed in the secrets folder, when there is one."""
    seed = settings.secrets_path / NATS_SEED_FILES["ops"]
    return seed if seed.is_file() else None


def reapply_erasure(session: Session, _audit: AuditTrail, _answers: StoredAnswers, entry: ErasureRecorded) -> bool:
    """After a restore, a person erased since the backup: their rows in the money cells (the keyed hash beside each
    cell they are in) go again, as the live erasure deleted them (`projections.person_erased`); the counts and sums
    stay. False when that person was marked erased here already."""
    person = _people().person(entry.case_id)
    if queries.is_erased(session, person.marker):
        return False
    projections.person_erased(session=session, person=person)
    return True


@functools.cache
def _people() -> handlers.PersonIndex:
    return person_index(ReportsSettings())


app = typer.Typer(name="reports-manage", help="Programme reports.", no_args_is_help=True, add_completion=False)
reports_app = typer.Typer(help="Programme reports: rebuild the projection from the streams.", no_args_is_help=True)
app.add_typer(reports_app, name="reports")
# `rehab restore` re-applies the erasure ledger here too (ops.erasures.HOLDERS).
app.add_typer(erasures_commands(ReportsSettings, kit_tables, MIGRATIONS, reapply_erasure), name="erasures")


@reports_app.command("rebuild")
def rebuild_command(
    nats_url: Annotated[str | None, typer.Option(
        "--nats-url", help="NATS to read from (default REHAB_NATS_URL).")] = None,
    nkey_seed: Annotated[Path | None, typer.Option(
        "--nkey-seed", help="The operator's NATS nkey seed file (default: the one in the secrets folder).")] = None,
) -> None:
    """Empty the report's projection and replay every stream from its first message (the service may run)."""
    settings = ReportsSettings()
    try:
        result = asyncio.run(replay(settings, nats_url=nats_url or settings.nats_url,
                                    seed=nkey_seed or default_seed(settings),
                                    progress=Progress("reports rebuild", unit="events")))
    except RebuildFailed as failure:
        print(f"error: {failure}", file=sys.stderr)
        raise typer.Exit(2) from None
    applied = ", ".join(f"{producer} {n}" for producer, n in result.applied.items())
    print(f"rebuilt: {sum(result.applied.values())} events applied ({applied}); {result.already} applied by the "
          f"running service meanwhile; {result.skipped} skipped")


def main() -> None:
    app(prog_name="rehab")  # reached as `rehab reports …`: its help says so


if __name__ == "__main__":
    main()
