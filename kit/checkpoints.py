"""Signed checkpoints of an audit trail's head, kept outside the database: truncation becomes visible.

The hash chain of kit.audit shows any edited, reordered or removed entry *inside* the trail, but not the newest
entries removed (or all of them): what is left is still a valid chain. So each process signs its chain's head
(sequence, hash, entry count, time) with an Ed25519 key of its own (`audit_signing_<process>.pem`, never the token
key) and publishes it to the JetStream stream `AUDIT` (subject `rehab.audit.<process>.checkpoint`, limits retention,
kept for years, no message deletion or purge), at least every `audit_checkpoint_seconds` while the trail grows,
whenever `audit_checkpoint_entries` new entries were written, and once an hour as a heartbeat when nothing changed.
The checkpoints go out directly, not through the outbox, which lives in the very database being protected.

`judge` compares a trail with the newest checkpoint: the trail must hold an entry with the checkpoint's sequence and
exactly its hash; a trail that ends below it, or is empty, was truncated. A checkpoint whose signature, process or
key is not this process's is refused. With NATS away the checkpoint could not be checked, and the verdict says so
(not ok). The same function serves `/audit/verify` and the operator's offline `rehab audit verify`.

A process signs only a head that extends its newest valid checkpoint: a truncated trail is never signed over. A
restore puts an older trail back: `rehab restore` then signs a checkpoint of it with the process's key, marked
`restored` (the backup, and the newest checkpoint it replaces), so the trail goes on from there, and `rehab audit
verify` no longer asks the replaced history's checkpoints to be in it (`replaced_by_restore`), while still showing
the restore.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nats.errors
import nats.js.errors
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from sqlalchemy import func, select
from sqlmodel import Session

from kit import logs

log = logs.get("audit")

STREAM = "AUDIT"
SUBJECTS = ["rehab.audit.>"]
MAX_AGE_SECONDS = 10 * 365 * 86400  # ten years: a checkpoint is evidence for as long as the trail is kept
MAX_BYTES = 1 << 30  # about two and a half million checkpoints; the oldest go first, the newest is what counts
# Entries a process remembers having written, to look for until a checkpoint of its own covers them (one look, one
# query, a second); a checkpoint is due after 100, so this many gather only while nothing can be signed (sealed).
MAX_REMEMBERED = 5000

# Verdicts of the checkpoint part; `ok` needs "matches" or "none".
MATCHES = "matches"  # the trail holds the newest checkpoint's entry, with its hash
NONE = "none"  # no checkpoint yet, and the trail is younger than the checkpoint interval allows
MISSING = "missing"  # no checkpoint, though entries are older than a checkpoint should have been made
TRUNCATED = "truncated"  # the trail ends below the checkpoint (or is empty)
DIVERGED = "diverged"  # the trail reaches the checkpoint's sequence but that entry is not the signed one
FORGED = "forged"  # signature, process or key are not this process's
UNAVAILABLE = "unavailable"  # NATS could not be asked
NO_KEY = "no_key"  # no key to check checkpoints with


def subject(process: str) -> str:
    return f"rehab.audit.{process}.checkpoint"


def stream_config(replicas: int = 1) -> StreamConfig:
    return StreamConfig(
        name=STREAM, subjects=SUBJECTS, storage=StorageType.FILE, retention=RetentionPolicy.LIMITS,
        max_age=MAX_AGE_SECONDS, max_bytes=MAX_BYTES, discard=DiscardPolicy.OLD, num_replicas=replicas,
        duplicate_window=120,
        # The newest checkpoint of one subject is read with a direct get, which a user may be allowed for its own
        # subject alone; individual messages can not be deleted, nor the stream purged.
        allow_direct=True, deny_delete=True, deny_purge=True,
    )


async def ensure_stream(js: JetStreamContext, replicas: int = 1) -> None:
    """Create the AUDIT stream, or bring its config to the wanted one."""
    from kit.bus import provision_stream

    await provision_stream(js, stream_config(replicas))


# ---- keys and signatures -----------------------------------------------------------------------------------------


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_private(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path.name} is not an Ed25519 private key")
    return key


def load_public(path: Path) -> Ed25519PublicKey:
    """The public key from a `.pub.pem` file, or derived from a private key's PEM."""
    data = path.read_bytes()
    if b"PRIVATE KEY" in data:
        return load_private(path).public_key()
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path.name} is not an Ed25519 public key")
    return key


def _canonical(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


FIELDS = {"process", "seq", "hash", "count", "at", "key"}
# A checkpoint signed by `rehab restore` over the trail it put back: it names the backup and the newest checkpoint
# before it, whose entries (and those of every checkpoint after the backup) belong to the history the restore
# replaced. It stays on the stream for good, like every checkpoint: a restore is visible to every auditor.
RESTORED = "restored"
# Every checkpoint a process signs after a restore names the newest restore (`{"backup_made", "at"}`), so that
# whoever verifies the trail from its newest checkpoint alone (an auditor's `GET /audit/verify`) is told the trail
# was put back from a backup, and entries after the backup replaced: a trail cut and then signed as restored is not
# said intact without a word of it.
LAST_RESTORE = "last_restore"


def sign(private: Ed25519PrivateKey, *, process: str, seq: int, hash: str, count: int, at: datetime,
         restored: dict[str, Any] | None = None, last_restore: dict[str, Any] | None = None) -> dict[str, Any]:
    """A checkpoint: the fields, and an Ed25519 signature over their canonical JSON. `restored`: what a restore
    put back, for the checkpoint `rehab restore` signs (`{"backup_made", "replaced"}`); `last_restore`: the newest
    restore before this checkpoint."""
    fields = {"process": process, "seq": seq, "hash": hash, "count": count,
              "at": at.astimezone(UTC).isoformat(), "key": key_id(private.public_key())}
    if restored is not None:
        fields[RESTORED] = restored
    if last_restore is not None:
        fields[LAST_RESTORE] = last_restore
    return {**fields, "signature": base64.b64encode(private.sign(_canonical(fields))).decode()}


def restore_named_by(checkpoint: dict[str, Any] | None) -> dict[str, Any] | None:
    """The newest restore a checkpoint tells of: its own (a restore's checkpoint), or the one it carries on."""
    if checkpoint is None:
        return None
    if isinstance(checkpoint.get(RESTORED), dict):
        return {"backup_made": checkpoint[RESTORED].get("backup_made"), "at": checkpoint.get("at")}
    carried = checkpoint.get(LAST_RESTORE)
    return carried if isinstance(carried, dict) else None


def signature_valid(checkpoint: dict[str, Any], public: Ed25519PublicKey, *, process: str) -> bool:
    """True if `checkpoint` is this process's, under this key, and its signature holds."""
    fields = {k: v for k, v in checkpoint.items() if k != "signature"}
    if not FIELDS <= set(fields) or not set(fields) - FIELDS <= {RESTORED, LAST_RESTORE}:
        return False
    if fields["process"] != process or fields["key"] != key_id(public) or not isinstance(fields["seq"], int):
        return False
    try:
        public.verify(base64.b64decode(str(checkpoint.get("signature", "")), validate=True), _canonical(fields))
    except (InvalidSignature, ValueError):
        return False
    return True


def encode(checkpoint: dict[str, Any]) -> bytes:
    """A checkpoint as it goes on the stream."""
    return _canonical(checkpoint)


def decode(data: bytes | None) -> dict[str, Any] | None:
    try:
        value = json.loads(data or b"")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


# ---- the verdict -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Head:
    """What the trail looks like at the top: its newest entry, and when its oldest was written."""

    seq: int | None
    hash: str | None
    oldest_at: datetime | None


def head_of(session: Session, table: Any) -> Head:
    row = session.execute(select(table.c.seq, table.c.hash).order_by(table.c.seq.desc()).limit(1)).first()
    # The first entry by seq (its primary key), not min(at): that would read the whole trail on every round.
    oldest = session.execute(select(table.c.at).order_by(table.c.seq).limit(1)).scalar()
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    return Head(row.seq if row else None, row.hash if row else None, oldest)


def hash_at(session: Session, table: Any, seq: int) -> str | None:
    return session.execute(select(table.c.hash).where(table.c.seq == seq)).scalar()


def count_up_to(session: Session, table: Any, seq: int) -> int:
    return session.execute(select(func.count()).select_from(table).where(table.c.seq <= seq)).scalar() or 0


def count_between(session: Session, table: Any, after: int, up_to: int) -> int:
    """Entries with `after` < seq <= `up_to` (a range of the primary key: as cheap as the range is short)."""
    return session.execute(select(func.count()).select_from(table)
                           .where(table.c.seq > after, table.c.seq <= up_to)).scalar() or 0


def judge(*, process: str, chain: dict[str, Any], head: Head, checkpoint: dict[str, Any] | None, status: str | None,
          public: Ed25519PublicKey | None, hash_at_seq: Callable[[int], str | None], now: datetime,
          grace: timedelta) -> dict[str, Any]:
    """The whole verdict: the chain's own (`chain`: ok, entries, first_bad) and the newest checkpoint's.

    `status` is UNAVAILABLE when NATS could not be asked, else None (then `checkpoint` is the newest one, or None
    when there is none). `grace`: how long entries may wait for their first checkpoint."""
    answer: dict[str, Any] = {**chain, "truncated": False, "checkpoint": None, "checkpoint_status": None,
                              "problem": None}
    shown = None
    if checkpoint is not None:
        # What a restore left is told of by a checkpoint believed alone (added below): a forged one is shown to the
        # operator as found, but never puts "put back from a backup" beside its verdict.
        shown = {k: checkpoint.get(k) for k in ("seq", "hash", "count", "at", "key")}
        shown[LAST_RESTORE] = None
    if status == UNAVAILABLE:
        verdict, problem = UNAVAILABLE, "the newest checkpoint could not be read (NATS unreachable): truncation not checked"
    elif public is None:
        verdict, problem = NO_KEY, "no audit signing key to check checkpoints with"
    elif checkpoint is None:
        if head.oldest_at is not None and now - head.oldest_at > grace:
            verdict, problem = MISSING, (f"no checkpoint of this trail, though its entries go back to "
                                         f"{head.oldest_at.isoformat()}: the checkpoints were lost or never made")
        else:
            verdict, problem = NONE, None
    elif not signature_valid(checkpoint, public, process=process):
        verdict, problem = FORGED, "the newest checkpoint is not signed with this process's key: refused"
    else:
        if RESTORED in checkpoint:
            shown[RESTORED] = checkpoint[RESTORED]  # type: ignore[index]
        shown[LAST_RESTORE] = restore_named_by(checkpoint)  # type: ignore[index]
        answer["checkpoint"] = shown
        seq, at = checkpoint["seq"], checkpoint["at"]
        if seq == 0 and RESTORED in checkpoint:  # an empty trail was put back: anything written since goes on from it
            verdict, problem = MATCHES, None
        elif head.seq is None or head.seq < seq:
            answer["truncated"] = True
            ends = "is empty" if head.seq is None else f"ends at {head.seq}"
            verdict, problem = TRUNCATED, f"truncated: entries up to seq {seq} were signed at {at} but the trail {ends}"
        elif hash_at_seq(seq) != checkpoint["hash"]:
            answer["truncated"] = True
            verdict, problem = DIVERGED, (f"the entry signed as seq {seq} at {at} is not in the trail: entries were "
                                          f"removed and others written in their place")
        else:
            verdict, problem = MATCHES, None
    if answer["checkpoint"] is None and shown is not None:
        answer["checkpoint"] = shown  # shown even when refused, so an operator sees what was found
    answer["checkpoint_status"] = verdict
    answer["problem"] = problem if problem else (None if chain["ok"] else "the hash chain is broken")
    answer["ok"] = bool(chain["ok"]) and verdict in (MATCHES, NONE)
    return answer


def replaced_by_restore(history: list[dict[str, Any]]) -> set[int]:
    """The positions, in a process's checkpoints oldest first, of those that describe history a restore replaced:
    signed before a restore's checkpoint, over an entry past the trail it put back (any entry up to there was put
    back as it was, so a checkpoint of one must still be in the trail)."""
    replaced: set[int] = set()
    for later, checkpoint in enumerate(history):
        if isinstance(checkpoint.get(RESTORED), dict) and isinstance(checkpoint.get("seq"), int):
            replaced |= {earlier for earlier, before in enumerate(history[:later])
                         if isinstance(before.get("seq"), int) and before["seq"] > checkpoint["seq"]}
    return replaced


def to_find_in_the_trail(history: list[dict[str, Any]]) -> list[int]:
    """The positions, in a process's checkpoints oldest first, of the older ones (all but the newest, which `judge`
    weighs) whose entry must still be in the trail: not those of a history a restore replaced, nor a restore's
    checkpoint of an empty trail (seq 0: there is no entry to find; a second restore of one was said truncated)."""
    replaced = replaced_by_restore(history)
    return [position for position, checkpoint in enumerate(history[:-1]) if position not in replaced
            and not (checkpoint.get("seq") == 0 and isinstance(checkpoint.get(RESTORED), dict))]


# ---- reading the newest checkpoint -------------------------------------------------------------------------------


async def newest(js: JetStreamContext, process: str) -> dict[str, Any] | None:
    """The newest checkpoint of `process` on the stream (a direct get of its subject's last message), or None
    when it has none. Raises when NATS can not answer."""
    return (await newest_with_place(js, process))[0]


async def newest_with_place(js: JetStreamContext, process: str) -> tuple[dict[str, Any] | None, int]:
    """`newest`, and its sequence in the stream (0 when there is none): a checkpoint published on it only if it is
    still the newest (`Nats-Expected-Last-Subject-Sequence`) follows what was read, not one signed meanwhile."""
    try:
        message = await js.get_last_msg(STREAM, subject(process), direct=True)
    except nats.js.errors.NotFoundError:
        return None, 0
    found = decode(message.data)
    return (found if found is not None else {"unreadable": True}), message.seq


# ---- the process's job -------------------------------------------------------------------------------------------


@dataclass
class CheckpointPolicy:
    every_seconds: float = 60.0
    every_entries: int = 100
    heartbeat_seconds: float = 3600.0
    poll_seconds: float = 1.0
    replicas: int = 1
    soonest_seconds: float = 0.5  # an entry signed at once (`Checkpointer.soon`) waits at most this after the last

    @property
    def grace(self) -> timedelta:
        """How long entries may go without a checkpoint before that is suspicious: two rounds and a margin."""
        return timedelta(seconds=2 * self.every_seconds + 30)


class Checkpointer:
    """One process's checkpoints: the job that signs and publishes them, and the verdict of `/audit/verify`."""

    def __init__(self, *, process: str, table: Any, private: Ed25519PrivateKey | None,
                 jetstream: Callable[[], JetStreamContext | None], read: Callable[[], Any],
                 policy: CheckpointPolicy | None = None) -> None:
        self.process = process
        self.table = table
        self.private = private
        self.public = private.public_key() if private is not None else None
        self.jetstream = jetstream  # the process's connection, once there is one
        self.read = read  # a read-only session of committed rows (UnitOfWork.read)
        self.policy = policy or CheckpointPolicy()
        self.last: dict[str, Any] | None = None  # the newest valid checkpoint this process knows of
        self._known = False  # whether `last` was read from the stream since start
        self._last_sent_at = 0.0
        self._stream_ready = False
        self.blocked: str | None = None  # why it refuses to sign, when it does
        self._urgent = False  # an entry signed at once was committed (`soon`)
        # The newest entry of each unit this process committed since a checkpoint of its own covered it: seq → hash
        # (`wrote`); `_checked`, those the last look found in the trail as written.
        self.written: dict[int, str] = {}
        self._checked: set[int] = set()
        self._woken = asyncio.Event()
        self._one_round = asyncio.Lock()  # the job's rounds and a forced one (a test, a command) never overlap

    def use_key(self, private: Ed25519PrivateKey | None) -> None:
        """The signing key from the process's custody (kit.custody): None once sealed, so nothing is signed; the
        public half is kept, so /audit/verify still checks what was signed before."""
        self.private = private
        if private is not None:
            self.public = private.public_key()

    # The job -------------------------------------------------------------------------------------------------

    def soon(self) -> None:
        """An entry of an action signed at once was committed (kit.audit.SIGN_SOON): sign the head now, not when the
        minute is up. On the event loop (a commit hook)."""
        self._urgent = True
        self._woken.set()

    def wrote(self, seq: int, hash: str) -> None:
        """An entry this process wrote was committed (kit.audit.WRITTEN; a commit hook, on the event loop). Each
        round looks for every such entry in the trail until a checkpoint this process signs covers it: deleted
        before then, it would otherwise leave no trace (what is left is still a valid chain, and the process, or
        another replica of it, would sign over it). Every one, not only the newest: under load the next entry is
        written within milliseconds of a deletion, chained onto what the deletion left, and is found in place."""
        # A seq this process already wrote, written again (SQLite gives a deleted newest entry's seq to the next):
        # the first is what was lost, and what is looked for.
        self.written.setdefault(seq, hash)
        while len(self.written) > MAX_REMEMBERED:  # no key to sign with for long (sealed): the newest are kept
            del self.written[next(iter(self.written))]

    async def run(self) -> None:
        """At least every `every_seconds` while the trail grows, at once after `every_entries` new entries, an
        hourly heartbeat otherwise; NATS away: the next round tries again. Never blocks a request."""
        if self.private is None:
            log.warning("no audit signing key (none, or sealed): no audit checkpoints are published until there is")
        while True:
            try:
                await self.round()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("audit checkpoint not published, retrying", error_type=type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), self.policy.poll_seconds)
            self._woken.clear()
            # Woken by a commit soon after the last checkpoint (a burst of money movements): wait out the rest of
            # `soonest_seconds` first, so that the burst costs one look at the trail, not one per commit.
            rest = self.policy.soonest_seconds - (time.monotonic() - self._last_sent_at)
            if self._urgent and rest > 0:
                await asyncio.sleep(rest)

    async def round(self, *, force: bool = False) -> dict[str, Any] | None:
        """One look at the trail's head; publish a checkpoint when one is due. Returns it when published."""
        async with self._one_round:
            return await self._round(force=force)

    async def _round(self, *, force: bool) -> dict[str, Any] | None:
        js = self.jetstream()
        if js is None or self.private is None:
            return None
        if not self._stream_ready:
            await ensure_stream(js, self.policy.replicas)
            self._stream_ready = True
        if not self._known:
            found = await newest(js, self.process)
            if found is not None and not signature_valid(found, self.public, process=self.process):  # type: ignore[arg-type]
                log.error("the newest audit checkpoint on the stream is not this process's: ignored")
                found = None
            self.last, self._known = found, True
            self._last_sent_at = time.monotonic() if found is not None else 0.0
        # Taken now: a `soon` that comes while this round reads or publishes is for an entry it may not see, and
        # makes the next round due.
        urgent, self._urgent = self._urgent, False
        last = self.last
        with self.read() as session:
            due = self._due(session, last, urgent=urgent, force=force)
        if due is None:
            return None
        try:
            # Several replicas of a process sign one trail: what this one signs follows the newest checkpoint on the
            # stream, whoever signed it (one replica's word of a lost entry is not buried under the next one's).
            on_stream, place = await newest_with_place(js, self.process)
            if on_stream is not None and on_stream.get("signature") != (last or {}).get("signature") \
                    and signature_valid(on_stream, self.public, process=self.process):  # type: ignore[arg-type]
                self.last = last = on_stream
                with self.read() as session:
                    due = self._due(session, last, urgent=urgent, force=force)
                if due is None:
                    return None
            seq, hash, count, lost = due
            checkpoint = sign(self.private, process=self.process, seq=seq, hash=hash, count=count,
                              at=datetime.now(UTC), last_restore=restore_named_by(last))
            await js.publish(subject(self.process), encode(checkpoint), stream=STREAM, timeout=2,
                             headers={"Nats-Msg-Id": f"{self.process}-{checkpoint['seq']}-{checkpoint['at']}",
                                      "Nats-Expected-Last-Subject-Sequence": str(place)})
        except BaseException:
            self._urgent = self._urgent or urgent  # not published (or another was, meanwhile): the next round
            raise
        self.last, self._last_sent_at = checkpoint, time.monotonic()
        if lost:  # signed so that verification says so; nothing more is signed over it
            self._refuse(f"the trail does not hold the entry seq {seq} this process wrote (deleted before signed)")
            self.written.clear()
        else:
            self.blocked = None
            for covered in [s for s in self._checked if s <= seq]:  # found in the trail, and now signed
                self.written.pop(covered, None)
        return checkpoint

    def _due(self, session: Session, last: dict[str, Any] | None, *, urgent: bool,
             force: bool) -> tuple[int, str, int, bool] | None:
        """What this round signs, when it signs: the head's seq, hash and entry count, and False; or the newest entry
        this process wrote, when the trail lost it (`_lost_entry`), and True. None when nothing is due, or the trail
        disagrees with the last checkpoint (then `blocked` says why)."""
        head = head_of(session, self.table)
        lost = self._lost_entry(session)
        if lost is not None:
            # Signed as if it were still there: verification finds the trail truncated (or diverged) below a signed
            # entry. The count is of the entries still there up to it: how many more are missing is not known.
            return lost[0], lost[1], count_up_to(session, self.table, lost[0]), True
        empty_put_back = last is not None and last["seq"] == 0 and RESTORED in last
        if head.seq is None:
            if last is not None and not empty_put_back:
                self._refuse(f"the trail is empty, but entries up to seq {last['seq']} were signed")
            return None
        if last is not None and not empty_put_back:
            if head.seq < last["seq"] or hash_at(session, self.table, last["seq"]) != last["hash"]:
                self._refuse(f"the trail does not hold the entry signed as seq {last['seq']}")
                return None
            grown = head.seq - last["seq"]
            elapsed = time.monotonic() - self._last_sent_at
            due = force or grown >= self.policy.every_entries or (grown > 0 and elapsed >= self.policy.every_seconds) \
                or (grown > 0 and urgent and elapsed >= self.policy.soonest_seconds) \
                or elapsed >= self.policy.heartbeat_seconds
            if not due:
                # Woken again too soon after the last one (a burst of money movements): the next round signs
                # them together, so the head is counted and signed at most about twice a second.
                self._urgent = self._urgent or (urgent and grown > 0)
                return None
        if last is not None and not empty_put_back and isinstance(last.get("count"), int):
            # From the last checkpoint on, not the whole trail again: a count of every entry grows with the trail
            # and ran on the event loop up to twice a second. An entry deleted below it breaks the hash chain.
            count = last["count"] + count_between(session, self.table, last["seq"], head.seq)
        else:
            count = count_up_to(session, self.table, head.seq)
        return head.seq, head.hash or "", count, False

    def _lost_entry(self, session: Session) -> tuple[int, str] | None:
        """The newest of the entries this process committed (`written`) that the trail no longer holds as written
        (gone, or another entry at its seq), or None when it holds every one (then they are `_checked`)."""
        written = dict(self.written)
        t = self.table.c
        found = dict(session.execute(select(t.seq, t.hash).where(t.seq.in_(list(written)))).all()) if written else {}
        lost = [seq for seq, hash in written.items() if found.get(seq) != hash]
        self._checked = set() if lost else set(written)
        return (max(lost), written[max(lost)]) if lost else None

    def _refuse(self, why: str) -> None:
        if self.blocked != why:
            log.error("audit trail disagrees with its last checkpoint: not signing it", detail=why)
        self.blocked = why

    # The verdict ---------------------------------------------------------------------------------------------

    async def verify(self, chain_of: Callable[[Session], dict[str, Any]], session: Session | None = None) -> dict[str, Any]:
        """The chain's verdict and the newest checkpoint's. The checkpoint is read first: the trail only grows, so
        whatever was signed before the trail is read must be in it. `session`: a read session that has not read
        yet (a SQLite snapshot begins at its first read; PostgreSQL reads committed rows), else one of its own."""
        status, checkpoint = None, None
        js = self.jetstream()
        for _ in range(20):  # just started, or reconnecting: a moment's patience before saying "unavailable"
            if js is not None:
                break
            await asyncio.sleep(0.1)
            js = self.jetstream()
        try:
            if js is None:
                raise ConnectionError("no NATS connection")
            if not self._stream_ready:  # a direct get on a stream not made yet finds no responder
                await asyncio.wait_for(ensure_stream(js, self.policy.replicas), timeout=3)
                self._stream_ready = True
            checkpoint = await asyncio.wait_for(newest(js, self.process), timeout=3)
        except (asyncio.TimeoutError, nats.errors.Error, ConnectionError, OSError):
            status = UNAVAILABLE
        if session is not None:
            return self._judge(chain_of, session, checkpoint, status)
        with self.read() as own:
            return self._judge(chain_of, own, checkpoint, status)

    def _judge(self, chain_of: Callable[[Session], dict[str, Any]], session: Session,
               checkpoint: dict[str, Any] | None, status: str | None) -> dict[str, Any]:
        chain = chain_of(session)
        head = head_of(session, self.table)
        return judge(process=self.process, chain=chain, head=head, checkpoint=checkpoint, status=status,
                         public=self.public, hash_at_seq=lambda seq: hash_at(session, self.table, seq),
                         now=datetime.now(UTC), grace=self.policy.grace)


def for_process(process: str, settings: Any, *, table: Any, jetstream: Callable[[], JetStreamContext | None],
                read: Callable[[], Any], replicas: int = 1) -> Checkpointer:
    """A process's Checkpointer from its settings (kit.settings.ProcessSettings): its signing key, when there is one
    (without it nothing is signed, and `/audit/verify` says checkpoints can not be checked)."""
    path: Path = settings.audit_signing_key_path
    private = load_private(path) if path.is_file() else None
    policy = CheckpointPolicy(every_seconds=settings.audit_checkpoint_seconds,
                              every_entries=settings.audit_checkpoint_entries,
                              heartbeat_seconds=settings.audit_checkpoint_heartbeat_seconds, replicas=replicas)
    return Checkpointer(process=process, table=table, private=private, jetstream=jetstream, read=read, policy=policy)
