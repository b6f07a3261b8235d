"""The erasure ledger: every erasure, kept outside the databases, so that a restored backup never brings an erased
person back (SPEC §8).

A JetStream stream of its own, `ERASURES` (file storage, limits retention, no maximum age, count or size: kept for
ever; messages can not be deleted nor the stream purged). Intake writes one message per erasure, `rehab.erasures.case`
carrying the case id and when it was erased, nothing else: ids only, never personal data. It goes through intake's
outbox, in the transaction of the erasure itself, so an erasure is never committed without its ledger entry (the
relay sends it once NATS answers). `rehab restore` reads the whole stream (as the operator's NATS user) and
re-applies every erasure to the restored databases before any process starts.

Why a stream and not a table: a table is in a database, and a database is what a restore replaces.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from kit import logs
from kit.settings import nats_servers

if TYPE_CHECKING:  # the NATS client is imported where it is used: `rehab up` imports this module, and stays small
    from nats.js import JetStreamContext
    from nats.js.api import StreamConfig

log = logs.get("erasures")

STREAM = "ERASURES"
SUBJECT = "rehab.erasures.case"
SUBJECTS = ["rehab.erasures.>"]


class ErasureRecorded(BaseModel):
    """An entry of the erasure ledger: which case was erased, and when. Ids only: nothing about the person."""

    model_config = ConfigDict(extra="forbid")

    case_id: str
    erased_at: datetime


def stream_config(replicas: int = 1) -> StreamConfig:
    from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

    return StreamConfig(
        name=STREAM, subjects=SUBJECTS, storage=StorageType.FILE, retention=RetentionPolicy.LIMITS,
        # Kept for ever: an erasure older than the oldest backup still matters to a restore of that backup.
        max_age=0, max_msgs=-1, max_bytes=-1, max_msgs_per_subject=-1,
        # Never full in practice (a few hundred bytes an erasure); were it ever, refuse a new entry (the outbox keeps
        # it and retries) rather than drop an old one.
        discard=DiscardPolicy.NEW, num_replicas=replicas, duplicate_window=120,
        deny_delete=True, deny_purge=True,
    )


async def ensure_stream(js: JetStreamContext, replicas: int = 1) -> None:
    """Create the ERASURES stream, or bring its config to the wanted one."""
    from kit.bus import provision_stream

    await provision_stream(js, stream_config(replicas))


@dataclass(frozen=True)
class Ledger:
    """What the stream holds: each erased case once (its first erasure), oldest first; and since when it exists."""

    entries: list[ErasureRecorded]
    since: datetime | None  # when the stream was created (None when the server does not say)
    messages: int


class LedgerUnreadable(Exception):
    """The ledger could not be read; the message says why, in words an operator can act on."""


async def read(url: str, seed: Path | None = None, *, timeout: float = 5) -> Ledger:
    """Every entry of the ledger, read with direct gets in sequence order (the operator's user may read it all)."""
    import nats
    import nats.errors
    import nats.js.errors

    from kit.events import Envelope

    options: dict[str, Any] = {"nkeys_seed": str(seed)} if seed is not None else {}
    try:
        # Bounded: nats-py keeps trying a server that refuses the connection.
        nc = await asyncio.wait_for(nats.connect(nats_servers(url), allow_reconnect=False, connect_timeout=3,
                                                 max_reconnect_attempts=0, **options), timeout=timeout)
    except (nats.errors.Error, OSError, asyncio.TimeoutError) as error:
        raise LedgerUnreadable(f"NATS could not be reached ({type(error).__name__})") from None
    try:
        js = nc.jetstream(timeout=timeout)
        try:
            info = await js.stream_info(STREAM)
        except nats.js.errors.NotFoundError:
            raise LedgerUnreadable(f"the NATS store holds no stream {STREAM}") from None
        seen: dict[str, ErasureRecorded] = {}
        seq, count = 1, 0
        while True:
            try:
                message = await js.get_msg(STREAM, seq=seq, subject=SUBJECT, next=True)
            except nats.js.errors.NotFoundError:
                break
            count += 1
            seq = message.seq + 1
            try:
                entry = ErasureRecorded.model_validate(Envelope.from_bytes(message.data or b"").data)
            except ValueError:
                raise LedgerUnreadable(f"the entry at sequence {message.seq} of {STREAM} is not an erasure") from None
            seen.setdefault(entry.case_id, entry)
        created = getattr(info, "created", None)
        since = datetime.fromisoformat(created.replace("Z", "+00:00")) if isinstance(created, str) else created
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        return Ledger(entries=list(seen.values()), since=since, messages=count)
    except (nats.errors.Error, asyncio.TimeoutError) as error:
        raise LedgerUnreadable(f"the stream {STREAM} could not be read ({type(error).__name__})") from None
    finally:
        await nc.close()


def to_lines(entries: list[ErasureRecorded]) -> str:
    """The entries as JSON lines, as each service's `erasures apply` reads them on stdin."""
    return "".join(entry.model_dump_json() + "\n" for entry in entries)


def from_lines(text: str) -> list[ErasureRecorded]:
    return [ErasureRecorded.model_validate_json(line) for line in text.splitlines() if line.strip()]
