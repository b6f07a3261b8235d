"""Seal and unseal (SPEC §8): a signed command on core NATS that makes every process forget its keys, or load them again.

`rehab seal` (ops/cli.py) and `POST /api/admin/seal` (the gateway) publish a small signed command on
`rehab.control.seal` (`rehab.control.unseal` to undo it); every process — each service and the gateway, every replica
of each — holds a subscription to `rehab.control.>` (`follow_commands`, started in kit/service.py and
gateway/main.py), checks the command and calls its key custody (`runtime.custody`, a `Sealable`). Whatever then needs
a key answers 503 problem `/sealed` (kit.errors.Sealed); routes that need none (/healthz, /readyz) keep answering.

Why NATS and not the supervisor's channel to its children: NATS reaches every replica on every machine — under
Kubernetes too, where no supervisor exists — and the gateway's admin route can send it like any operator tool.
Core NATS, not JetStream: every replica must receive the command (a JetStream durable hands each message to one
member of a consumer group), and a seal must never be stored and replayed to a process that starts later.

What a receiver accepts:
  - signed (Ed25519, the sender's NATS nkey) by one of the allowed signers: the `ops` (operator) and `gateway`
    NATS users' public keys (`REHAB_CONTROL_SIGNERS`, or derived from their seed files in the secrets folder);
  - fresh: issued at most `FRESH_FOR` ago, and not more than `SKEW` ahead of this machine's clock;
  - each nonce once: a command seen again (a replay, or the same message by two routes) is ignored;
  - its signed `action` must be the subject's, so a signed seal can not be re-sent as an unseal.
Anything else is ignored and logged as one line with the reason (never the message). A process answers a command
it applied on the message's reply subject with `{"process", "instance", "sealed"}`; the sender collects the
answers for `REPLY_WINDOW` seconds and shows who confirmed.

A seal outlives a restart. The command itself is not stored, so a process that crashed, was killed or restarted
after a seal would load its keys again at start and serve personal data in the middle of a raid. Two things remember
it instead:
  - a mark in the state folder (`SEALED`: `rehab seal`, the gateway's route, and every process that applies a seal):
    a process that finds it starts sealed (`start_keys`), and looks for it every second; only an unseal removes it.
    It reaches the processes of one machine (and a container restarted in its pod), not a new pod elsewhere;
  - the seal state on NATS: the sender records the signed command it sends on `rehab.seal.state` in the stream
    CONTROL (the newest one only), an unseal before it is sent and a seal right after. Every process reads it (a
    direct get, its one permission there) before it serves its first request, for as long as NATS answers within a
    moment, and again every few seconds: a recorded seal, signed by an allowed signer, seals it, whenever it was
    signed. A process that was away from NATS when the command went (a partition, a pod rescheduled) seals itself
    from it; the record never unseals anything (only the command does).
"""

from __future__ import annotations

import asyncio
import contextlib
import base64
import binascii
import json
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import nkeys
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kit import logs, nats_auth
from kit import secrets as secret_files
from kit.errors import Sealed
from kit.settings import nats_servers

log = logs.get("control")

SUBJECTS = "rehab.control.>"
SEAL, UNSEAL = "seal", "unseal"
ACTIONS = (SEAL, UNSEAL)
# Who may seal and unseal: the operator's tools and the gateway (its admin route). Never a service.
SIGNERS = (nats_auth.OPERATOR, "gateway")
# The gateway sends an admin's `POST /api/admin/seal`, and nothing else: the process that faces the internet may
# close the system, never open it (its key taken, a system sealed in a raid stays sealed).
SEAL_ONLY = frozenset({"gateway"})
SIGNERS_FILE = secret_files.CONTROL_SIGNERS_FILE
FRESH_FOR = timedelta(seconds=30)
SKEW = timedelta(seconds=10)  # clocks of different machines disagree a little
REPLY_WINDOW = 2.0  # seconds: SPEC §8, every process forgets its keys within 2 seconds
SEAL_MARK = "SEALED"  # in the state folder, while the system is sealed
STATE_STREAM = nats_auth.CONTROL_STREAM  # the newest seal or unseal sent, for processes that start later
STATE_SUBJECT = nats_auth.SEAL_STATE_SUBJECT
RECORD_EVERY = 5.0  # seconds between two looks at the recorded state


def mark_sealed(state_dir: Path) -> None:
    """Leave the mark that keeps a restarted process sealed (owner-only; written whole or not at all)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    mark = state_dir / SEAL_MARK
    partial = mark.with_name(f"{SEAL_MARK}.{os.getpid()}.tmp")
    partial.write_text(f"sealed at {datetime.now(UTC).isoformat()}: every process starts sealed until `rehab unseal`\n")
    partial.chmod(0o600)
    partial.replace(mark)


def clear_seal_mark(state_dir: Path) -> None:
    (state_dir / SEAL_MARK).unlink(missing_ok=True)


def start_keys(custody: Sealable, state_dir: Path) -> None:
    """At a process's start: load its keys, unless the system was sealed (the mark): then it starts sealed, and an
    unseal command opens it like every other process."""
    if (state_dir / SEAL_MARK).exists():
        log.warning("keys kept sealed: the system was sealed (`rehab seal`); they load at `rehab unseal`")
        return
    with contextlib.suppress(Sealed):  # sealed custody before its passphrase has come: it comes later
        custody.unseal()


def subject(action: str) -> str:
    if action not in ACTIONS:
        raise ValueError(f"unknown control action {action!r}")
    return f"rehab.control.{action}"


@runtime_checkable
class Sealable(Protocol):
    """A process's key custody, as seal and unseal need it (the real one: kit/custody.py)."""

    @property
    def sealed(self) -> bool: ...

    def seal(self) -> None:
        """Forget every key held in memory (sync, quick)."""

    def unseal(self) -> None:
        """Load the keys again from their custody; raises kit.errors.Sealed if it cannot."""


# ---- the command: signed by the sender, checked by every receiver -------------------------------------------------


@dataclass(frozen=True)
class Command:
    action: str
    issued_at: datetime
    nonce: str
    signer: str  # the signer's user name (`ops`, `gateway`), or its public key when configured by key alone


class Refused(Exception):
    """A command that is not acted upon; `reason` is a short word for the log, never the message's content."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _canonical(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def sign_command(seed: bytes, action: str, *, now: datetime | None = None, nonce: str | None = None) -> bytes:
    """The message to publish on `subject(action)`: the command, the signer's public key and the signature."""
    subject(action)  # a known action only
    issued = (now or datetime.now(UTC)).astimezone(UTC)
    body = _canonical({"action": action, "issued_at": issued.isoformat(), "nonce": nonce or secrets.token_hex(16)})
    pair = nkeys.from_seed(bytearray(seed.strip()))
    try:
        signature = pair.sign(body)
        signer = pair.public_key.decode()
    finally:
        pair.wipe()
    return json.dumps({"command": body.decode(), "signer": signer,
                       "signature": base64.b64encode(signature).decode()}).encode()


def raw_public_key(public: str) -> bytes:
    """The 32 bytes of a NATS user's public key (`U…`: base32 of prefix, key and CRC-16); ValueError if it is not one."""
    try:
        decoded = base64.b32decode(public.strip())
    except (binascii.Error, ValueError):
        raise ValueError("not a NATS public key") from None
    if len(decoded) != 35 or decoded[0] != nkeys.PREFIX_BYTE_USER:
        raise ValueError("not a NATS user's public key")
    if nkeys.crc16_checksum(decoded[:-2]) != decoded[-2:]:
        raise ValueError("the public key's checksum is wrong")
    return decoded[1:33]


@dataclass
class Verifier:
    """Checks commands against the allowed signers, their age and the nonces already seen."""

    signers: dict[str, str]  # public key → name
    fresh_for: timedelta = FRESH_FOR
    skew: timedelta = SKEW
    _keys: dict[str, Ed25519PublicKey] = field(default_factory=dict)
    _seen: dict[str, datetime] = field(default_factory=dict)  # nonce → when it may be forgotten

    def __post_init__(self) -> None:
        self._keys = {public: Ed25519PublicKey.from_public_bytes(raw_public_key(public)) for public in self.signers}

    def verify(self, data: bytes, *, subject_: str, now: datetime | None = None) -> Command:
        now = now or datetime.now(UTC)
        command = self._signed(data)
        if subject_ != subject(command.action):
            raise Refused("wrong-subject")
        if command.issued_at < now - self.fresh_for or command.issued_at > now + self.skew:
            raise Refused("stale")
        self._forget_old(now)
        if command.nonce in self._seen:
            raise Refused("replayed")
        # Remembered for as long as the command could still pass as fresh: after that its age refuses it.
        self._seen[command.nonce] = command.issued_at + self.fresh_for + self.skew
        return command

    def recorded(self, data: bytes) -> Command:
        """A command as recorded on `STATE_SUBJECT`: signed by an allowed signer, of a known action; its age and
        nonce do not matter (a seal recorded a week ago still holds until an unseal is recorded after it)."""
        return self._signed(data)

    def _signed(self, data: bytes) -> Command:
        """The command in a message, signed by an allowed signer and of a known action; Refused otherwise."""
        try:
            message = json.loads(data)
            body = str(message["command"]).encode()
            signer = str(message["signer"])
            signature = base64.b64decode(str(message["signature"]), validate=True)
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise Refused("malformed") from None
        key = self._keys.get(signer)
        if key is None:
            raise Refused("unknown-signer")
        try:
            key.verify(signature, body)
        except InvalidSignature:
            raise Refused("bad-signature") from None
        try:
            fields = json.loads(body)
            action, nonce = str(fields["action"]), str(fields["nonce"])
            issued_at = datetime.fromisoformat(str(fields["issued_at"]))
        except (ValueError, KeyError, TypeError):
            raise Refused("malformed") from None
        if issued_at.tzinfo is None:
            raise Refused("malformed")
        if action not in ACTIONS:
            raise Refused("wrong-subject")
        if action != "seal" and self.signers[signer] in SEAL_ONLY:
            raise Refused("may-only-seal")
        return Command(action=action, issued_at=issued_at, nonce=nonce, signer=self.signers[signer])

    def _forget_old(self, now: datetime) -> None:
        self._seen = {nonce: until for nonce, until in self._seen.items() if until >= now}


def allowed_signers(configured: str, secrets_dir: Path | None) -> dict[str, str]:
    """Public key → name of who may seal and unseal.

    `configured` (REHAB_CONTROL_SIGNERS): comma-separated public keys, as a deployment gives them. Unset: the
    `ops` and `gateway` users' public keys from `control_signers.json` in the process's own secrets folder, which
    `rehab secrets init` writes there (public keys only: no process reads another's seed)."""
    keys = [key.strip() for key in configured.split(",") if key.strip()]
    if keys:
        for key in keys:
            raw_public_key(key)  # a typo is refused at start, not discovered during a raid
        return {key: key for key in keys}
    listed = secrets_dir / SIGNERS_FILE if secrets_dir is not None else None
    if listed is None or not listed.is_file():
        return {}
    return {key: user for key, user in json.loads(listed.read_text()).items() if user in SIGNERS}


# ---- the receiving side: every process ---------------------------------------------------------------------------


def instance_name() -> str:
    """Which replica answered: host and process id (no secret, and enough to tell replicas apart)."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class ControlListener:
    process: str
    custody: Sealable
    verifier: Verifier
    state_dir: Path | None = None  # where the seal mark goes (None: nowhere, a test's listener)
    instance: str = field(default_factory=instance_name)
    # The newest action recorded on NATS as far as this process knows (None: none, or not read yet).
    recorded: str | None = None
    _unsealing: bool = False  # between an unseal's keys and its clearing the mark, the mark is not a seal
    _applied: int = 0  # commands applied so far: a record read while one was applied may be older than it

    async def on_message(self, msg: Any) -> None:
        """The NATS callback. One subscription delivers in order, so a seal sent after an unseal is applied after
        it, even while the unseal is still loading keys."""
        try:
            command = self.verifier.verify(msg.data, subject_=msg.subject)
        except Refused as refused:
            log.warning("control command ignored", reason=refused.reason)
            return
        await self.apply(command)
        if msg.reply:
            try:
                await msg.respond(json.dumps(self.state()).encode())
            except Exception as exc:  # the answer is a courtesy: the command is applied either way
                log.warning("control answer not sent", error_type=type(exc).__name__)

    async def apply(self, command: Command) -> None:
        self._applied += 1
        if command.action == SEAL:
            self.custody.seal()
            self.recorded = SEAL
            log.warning("keys sealed: every key forgotten until unsealed", by=command.signer)
            self._mark(mark_sealed)
            return
        self.recorded = UNSEAL  # an unseal is recorded before it is sent (`send_command`)
        self._unsealing = True
        try:
            # Loading keys may take a while (a passphrase's KDF, OpenBao): off the event loop.
            await asyncio.to_thread(self.custody.unseal)
        except Sealed:
            log.warning("unseal asked, but the keys could not be loaded: still sealed", by=command.signer)
            return
        except Exception as exc:
            log.error("unseal failed: still sealed", by=command.signer, error_type=type(exc).__name__)
            return
        finally:
            if self.custody.sealed:
                self._unsealing = False
        log.warning("keys unsealed", by=command.signer)
        self._mark(clear_seal_mark)
        self._unsealing = False

    def seal_if_marked(self) -> None:
        """Seal now if the system is sealed (the mark, or the seal recorded on NATS) and this process is not."""
        if self._unsealing or self.custody.sealed:
            return
        if self.state_dir is not None and (self.state_dir / SEAL_MARK).exists():
            self.custody.seal()
            log.warning("keys sealed: the seal mark is there (`rehab seal`); every key forgotten until unsealed")
        elif self.recorded == SEAL:
            self.custody.seal()
            log.warning("keys sealed: a seal is recorded on NATS (`rehab seal`); every key forgotten until unsealed")
            self._mark(mark_sealed)

    async def read_record(self, js: Any) -> None:
        """Look at the seal state recorded on NATS (see the module's note); keeps what it knew when NATS does not
        answer. Raises nothing."""
        import nats.errors
        import nats.js.errors

        applied = self._applied
        try:
            message = await js.get_last_msg(STATE_STREAM, STATE_SUBJECT, direct=True)
        except (nats.js.errors.NotFoundError, nats.errors.NoRespondersError):  # nothing recorded (or no stream yet)
            message = None
        except Exception as exc:
            log.info("seal state not read", error_type=type(exc).__name__)
            return
        if applied != self._applied:  # a command came meanwhile: it is newer than what was read
            return
        if message is None:
            self.recorded = None
            return
        try:
            self.recorded = self.verifier.recorded(message.data or b"").action
        except Refused as refused:
            log.warning("recorded seal state ignored", reason=refused.reason)
            self.recorded = None

    def _mark(self, change: Callable[[Path], None]) -> None:
        if self.state_dir is None:
            return
        try:
            change(self.state_dir)
        except OSError as exc:  # the keys are forgotten (or loaded) either way; say the mark did not follow
            log.error("seal mark not changed", error_type=type(exc).__name__)

    def state(self) -> dict[str, Any]:
        return {"process": self.process, "instance": self.instance, "sealed": bool(self.custody.sealed)}


async def look_before_serving(listener: ControlListener, bus: Any, *, wait: float = 2.0) -> None:
    """At start, before the first request: wait for the bus's first attempt to connect to NATS (it connects in the
    background; at most `wait` seconds: a refused connection ends the wait at once, a server that does not answer
    after `wait`) and read the recorded seal state; a recorded seal, or the mark, seals the process now. NATS not
    there: the process starts, and `follow_commands` reads the state once NATS answers."""
    deadline = asyncio.get_running_loop().time() + wait
    while not bus.tried and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)
    nc = bus.nc
    if nc is not None and nc.is_connected:
        await listener.read_record(nc.jetstream(timeout=min(2.0, wait)))
    else:
        log.warning("seal state not read before serving: NATS is not there yet")
    listener.seal_if_marked()


async def follow_commands(listener: ControlListener, connection: Callable[[], Any], *, every: float = 0.05,
                          mark_every: float = 1.0, record_every: float = RECORD_EVERY) -> None:
    """A background job of every process: once its NATS connection is there (the bus connects in the background),
    subscribe to `rehab.control.>`; the NATS client subscribes again by itself after a reconnection.

    And, from the start, look at the seal mark every `mark_every` seconds, and at the seal state recorded on NATS
    every `record_every`: a seal sent while this process was starting (after it looked at start, before it
    subscribed), or while it was away from NATS, reached it only as the mark or the record, and so does a `rehab
    seal` whose command NATS did not take; a process that finds either while unsealed seals itself."""
    if not listener.verifier.signers:
        log.error("no control signers known (REHAB_CONTROL_SIGNERS, or the ops and gateway seeds in the secrets "
                  "folder): seal and unseal commands will be ignored")
    subscription = None
    loop = asyncio.get_running_loop()
    next_record = loop.time()
    try:
        while True:
            listener.seal_if_marked()
            nc = connection()
            if nc is not None and nc.is_connected:
                if subscription is None:
                    subscription = await nc.subscribe(SUBJECTS, cb=listener.on_message)
                    next_record = loop.time()  # what came between the last look and the subscription
                if loop.time() >= next_record:
                    await listener.read_record(nc.jetstream(timeout=2))
                    next_record = loop.time() + record_every
                    listener.seal_if_marked()
            await asyncio.sleep(every if subscription is None else mark_every)
    finally:
        if subscription is not None:
            try:
                await subscription.unsubscribe()
            except Exception:
                pass


def listener_for(process: str, custody: Sealable, settings: Any) -> ControlListener:
    """A process's listener from its settings (kit.settings.ProcessSettings)."""
    return ControlListener(process=process, custody=custody,
                           verifier=Verifier(allowed_signers(settings.control_signers, settings.own_secrets_path)),
                           state_dir=settings.state_dir)


# ---- the sending side: `rehab seal`, the gateway's admin route ----------------------------------------------------


def state_stream_config(replicas: int = 1) -> Any:
    from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

    return StreamConfig(
        name=STATE_STREAM, subjects=[STATE_SUBJECT], storage=StorageType.FILE, retention=RetentionPolicy.LIMITS,
        max_msgs_per_subject=1, discard=DiscardPolicy.OLD, num_replicas=replicas,
        # Read with a direct get, which every process is allowed for this one subject; no message deleted by hand.
        allow_direct=True, deny_delete=True,
    )


async def ensure_state_stream(js: Any, replicas: int = 1) -> None:
    """Create the stream CONTROL, or bring its config to the wanted one (the gateway, at start: kit.bus provisions)."""
    from kit.bus import provision_stream

    await provision_stream(js, state_stream_config(replicas))


async def record_command(nc: Any, message: bytes) -> None:
    """Record a signed command as the system's seal state (the stream made first if no gateway has yet)."""
    import nats.errors
    import nats.js.errors

    js = nc.jetstream(timeout=3)
    try:
        await js.publish(STATE_SUBJECT, message, stream=STATE_STREAM)
    except (nats.js.errors.NoStreamResponseError, nats.js.errors.NotFoundError, nats.errors.NoRespondersError):
        await ensure_state_stream(js)
        await js.publish(STATE_SUBJECT, message, stream=STATE_STREAM)


async def send_command(nc: Any, seed: bytes, action: str, *, wait: float = REPLY_WINDOW) -> list[dict[str, Any]]:
    """Publish a signed command on an open connection and collect the processes' answers for `wait` seconds.

    The command is recorded as the seal state too: an unseal before it is sent (not recorded, not sent: the record
    would seal again whatever it unsealed), a seal right after (a seal goes out first, whatever befalls the record;
    a record not made is logged: a process that starts elsewhere would not know)."""
    answers: list[dict[str, Any]] = []
    message = sign_command(seed, action)
    if action == UNSEAL:
        await record_command(nc, message)

    async def collect(msg: Any) -> None:
        try:
            said = json.loads(msg.data)
        except ValueError:
            return
        if isinstance(said, dict):
            answers.append({"process": str(said.get("process")), "instance": str(said.get("instance")),
                            "sealed": bool(said.get("sealed"))})

    inbox = nc.new_inbox()
    replies = await nc.subscribe(inbox, cb=collect)
    try:
        await nc.publish(subject(action), message, reply=inbox)
        await nc.flush(timeout=2)
        if action == SEAL:
            try:
                await record_command(nc, message)
            except Exception as exc:
                log.error("seal sent but not recorded on NATS: a process that starts elsewhere does not know",
                          error_type=type(exc).__name__)
        await asyncio.sleep(wait)
    finally:
        await replies.unsubscribe()
    return sorted(answers, key=lambda answer: (answer["process"], answer["instance"]))


async def publish_command(nats_url: str, seed_file: Path, action: str, *,
                          wait: float = REPLY_WINDOW) -> list[dict[str, Any]]:
    """Connect as the owner of `seed_file`, send the command, and return who confirmed within `wait` seconds."""
    import nats

    seed = seed_file.read_bytes()

    async def said_by_the_caller(_error: Exception) -> None:
        """nats-py would log the error with its traceback; the caller says in one line that NATS did not take it."""

    # Bounded: nats-py keeps trying a server that refuses the connection.
    nc = await asyncio.wait_for(nats.connect(nats_servers(nats_url), allow_reconnect=False, connect_timeout=3,
                                             max_reconnect_attempts=0, nkeys_seed=str(seed_file),
                                             error_cb=said_by_the_caller), timeout=5)
    try:
        return await send_command(nc, seed, action, wait=wait)
    finally:
        await nc.close()
