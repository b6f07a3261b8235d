"""`rehab audit verify`: check every process's audit trail straight from its database, against its checkpoints.

It needs no running system and no token: the operator who holds the audit key verifies the chains as stored, and
compares each with the signed checkpoints on the stream AUDIT (read as the operator's NATS user, `ops/nats.nk`), as
`/audit/verify` does: the newest checkpoint must be in the trail (else it was truncated), and so must every older
one the stream still holds. Only kit pieces are used; the tables are the kit's own, present in every process's
database.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from kit import errors
from kit.secrets import AUDIT_SIGNING_KEY_FILES, AUDIT_VERIFYING_KEY_FILES
from kit.settings import ServiceSettings, nats_servers
from ops.settings import SupervisorSettings
from ops.supervisor import free_port, port_in_use, port_is_free
from ops.system import nats_spec

PROCESSES = ("gateway", "intake", "referrals", "funds", "reports")

app = typer.Typer(help="Audit trails: verify their hash chains and signed checkpoints; sign the trails a restore put "
                  "back (restored).", no_args_is_help=True)


def database_url(settings: ServiceSettings, name: str) -> str:
    return os.environ.get(f"REHAB_{name.upper()}_DATABASE_URL") or settings.sqlite_url(name)


def public_key_of(settings: ServiceSettings, name: str) -> Any:
    """The process's checkpoint verifying key: its `.pub.pem`, else derived from its private key; None if neither."""
    from kit import checkpoints

    for file in (AUDIT_VERIFYING_KEY_FILES[name], AUDIT_SIGNING_KEY_FILES[name]):
        path = settings.secrets_path / file
        if path.is_file():
            return checkpoints.load_public(path)
    return None


def operator_seed(given: Path | None, settings: ServiceSettings | None = None) -> Path | None:
    """The operator's NATS nkey seed: the one given, else `ops/nats.nk` in the secrets folder when it is there (an
    external NATS may take the URL's own credentials instead)."""
    from kit.secrets import NATS_SEED_FILES

    if given is not None:
        return given
    default = (settings or ServiceSettings()).secrets_path / NATS_SEED_FILES["ops"]
    return default if default.is_file() else None


async def operator_connection(url: str, seed: Path | None) -> Any:
    """A NATS connection as the operator, bounded: nats-py keeps trying a server that refuses the connection."""
    import nats

    options: dict[str, Any] = {"nkeys_seed": str(seed)} if seed is not None else {}
    return await asyncio.wait_for(nats.connect(nats_servers(url), allow_reconnect=False, connect_timeout=3,
                                               max_reconnect_attempts=0, **options), timeout=5)


async def read_checkpoints(url: str, seed: Path | None, names: tuple[str, ...]) -> dict[str, list[dict[str, Any]]]:
    """Every checkpoint the stream holds for each process, oldest first (the operator's user may read them all)."""
    import nats.js.errors

    from kit import checkpoints

    nc = await operator_connection(url, seed)
    try:
        js = nc.jetstream(timeout=5)
        found: dict[str, list[dict[str, Any]]] = {}
        for name in names:
            found[name] = []
            seq = 1
            while True:
                try:
                    message = await js.get_msg(checkpoints.STREAM, seq=seq, subject=checkpoints.subject(name), next=True)
                except nats.js.errors.NotFoundError:
                    break
                found[name].append(checkpoints.decode(message.data) or {"unreadable": True})
                seq = message.seq + 1
        return found
    finally:
        await nc.close()


@contextmanager
def checkpoint_stream(nats_url: str | None, *, purpose: str = "audit-verify") -> Iterator[str]:
    """Where to read the stream AUDIT (or ERASURES: ops.erasures): the NATS named (`--nats-url`, or REHAB_NATS_URL),
    else the one `rehab up` runs; and when the system is stopped, that NATS's own store opened by a nats-server of
    our own on a free port for as long as the reading takes (offline: the checkpoints outlive the processes). Its
    log goes to `logs/nats-<purpose>.log`."""
    system = SupervisorSettings()
    if nats_url or system.external_nats:
        yield nats_url or system.nats_url
        return
    if not port_is_free(system.nats_port):  # the system runs: its NATS answers
        yield system.embedded_nats_url
        return
    state_dir = system.state_dir.resolve()
    offline = system.model_copy(update={"nats_port": free_port(), "nats_monitor_port": free_port()})
    spec = nats_spec(offline, state_dir)
    log = state_dir / "logs"
    log.mkdir(mode=0o700, parents=True, exist_ok=True)  # as `rehab up` makes it: the processes' logs are nobody else's
    with (log / f"nats-{purpose}.log").open("ab") as out:
        server = subprocess.Popen(spec.argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not _ready(spec.ready_url):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the embedded NATS's store could not be opened")
            time.sleep(0.1)
        yield offline.embedded_nats_url
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()


def _ready(url: str | None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as answer:  # noqa: S310 (a loopback URL of ours)
            return answer.status == 200
    except OSError:
        return False


def verify_all(nats_url: str | None = None, nkey_seed: Path | None = None) -> int:
    # Imported here, not at the top: `rehab up` (the supervisor) imports this module and stays a small process.
    from datetime import UTC, datetime

    from sqlalchemy import MetaData

    from kit import checkpoints
    from kit.audit import AuditTrail
    from kit.db import make_engine, make_session_factory, transaction
    from kit import custody
    from kit.tables import KitTables

    settings = ServiceSettings()
    if not any((settings.secrets_path / name / "audit.key").is_file() or (settings.secrets_path / name).is_dir()
               for name in PROCESSES):
        print(f"error: no audit keys under {settings.secrets_path}: nothing to verify the chains with "
              "(has the system started once with this state folder?)", file=sys.stderr)
        return 2
    seed = operator_seed(nkey_seed, settings)
    try:
        with checkpoint_stream(nats_url) as url:
            history = asyncio.run(read_checkpoints(url, seed, PROCESSES))
        unavailable = None
    except Exception as exc:  # NATS away or refusing: say so, and count it as a problem
        history, unavailable = {}, type(exc).__name__
    grace = checkpoints.CheckpointPolicy(every_seconds=settings.audit_checkpoint_seconds).grace
    problems = 0
    for name in PROCESSES:
        url_db = database_url(settings, name)
        if url_db.startswith("sqlite:///") and not Path(url_db.removeprefix("sqlite:///")).exists():
            print(f"{name:10} no database yet")
            continue
        public = public_key_of(settings, name)
        table = KitTables(MetaData()).audit
        try:  # each process's chain under its own audit key (SPEC §8: one keyring per service)
            key = custody.opened(custody.settings_for(name)).secret("audit")
        except (errors.Sealed, errors.KeysUnavailable) as refusal:
            print(f"{name:10} cannot verify: {refusal.detail}", file=sys.stderr)
            problems += 1
            continue
        trail = AuditTrail(KitTables(MetaData()), key)
        found = history.get(name, [])
        engine = make_engine(url_db)
        try:
            with transaction(make_session_factory(engine)) as session:
                chain = trail.verify(session)
                head = checkpoints.head_of(session, table)

                def hash_at_seq(seq: int) -> str | None:
                    return checkpoints.hash_at(session, table, seq)

                verdict = checkpoints.judge(
                    process=name, chain=chain, head=head, checkpoint=found[-1] if found else None,
                    status=checkpoints.UNAVAILABLE if unavailable else None, public=public,
                    hash_at_seq=hash_at_seq, now=datetime.now(UTC), grace=grace)
                # Every older checkpoint the stream still holds must be in the trail too, and signed by this key;
                # but for those of a history a restore replaced (signed after its backup, past what it put back).
                older = []
                if public is not None and not unavailable:
                    for checkpoint in [found[position] for position in checkpoints.to_find_in_the_trail(found)]:
                        if not checkpoints.signature_valid(checkpoint, public, process=name):
                            older.append(f"a checkpoint not signed with {name}'s key is on the stream")
                        elif head.seq is None or head.seq < checkpoint["seq"] \
                                or hash_at_seq(checkpoint["seq"]) != checkpoint["hash"]:
                            older.append(f"the entry signed as seq {checkpoint['seq']} at {checkpoint['at']} is not "
                                         "in the trail")
        finally:
            engine.dispose()
        fine = verdict["ok"] and not older
        state = "ok" if fine else "PROBLEM"
        print(f"{name:10} {verdict['entries']:8} entries  {len(found):6} checkpoints  {state}"
              f"  checkpoint: {verdict['checkpoint_status']}")
        for restore in [c[checkpoints.RESTORED] for c in found if isinstance(c.get(checkpoints.RESTORED), dict)]:
            print(f"{'':10} restored from the backup of {restore.get('backup_made')}; the checkpoints after it up to "
                  f"seq {(restore.get('replaced') or {}).get('seq', '-')} are of the history it replaced")
        if not verdict["ok"] or older:
            if not chain["ok"]:
                print(f"{'':10} chain broken at entry {verdict['first_bad']}")
            for line in ([verdict["problem"]] if verdict["problem"] and verdict["problem"] != "the hash chain is broken" else []) + sorted(set(older)):
                print(f"{'':10} {line}")
        problems += not fine
    if unavailable:
        print(f"error: the checkpoints on {url} could not be read ({unavailable}): truncation not checked",
              file=sys.stderr)
    return 1 if problems else 0


def sign_restored(backup_made: str, names: list[str], nats_url: str | None = None,
                  nkey_seed: Path | None = None) -> dict[str, str]:
    """After a restore: sign, with each named process's own key, a checkpoint of the trail put back, marked
    `restored` (the backup's time, and the newest checkpoint it replaces), and publish it as the operator. Without
    it the process would refuse to sign its trail again (it ends below, or differs from, what was signed after the
    backup) and every verification would say truncated. Per process: "signed at seq N", or why not."""
    from datetime import UTC, datetime

    from sqlalchemy import MetaData

    from kit import checkpoints, custody
    from kit.db import make_engine, make_session_factory, transaction
    from kit.tables import KitTables

    settings = ServiceSettings()
    seed = operator_seed(nkey_seed, settings)
    heads: dict[str, tuple[Any, int, Any]] = {}
    done: dict[str, str] = {}
    for name in names:
        url_db = database_url(settings, name)
        if url_db.startswith("sqlite:///") and not Path(url_db.removeprefix("sqlite:///")).exists():
            done[name] = "not signed: it has no database"
            continue
        table = KitTables(MetaData()).audit
        engine = make_engine(url_db)
        try:
            with transaction(make_session_factory(engine)) as session:
                head = checkpoints.head_of(session, table)
                count = checkpoints.count_up_to(session, table, head.seq) if head.seq is not None else 0
        finally:
            engine.dispose()
        try:
            private = custody.opened(custody.settings_for(name)).signing_key()
        except (errors.Sealed, errors.KeysUnavailable) as refusal:
            done[name] = f"not signed: {refusal.detail}"
            continue
        if private is None:
            done[name] = "not signed: it has no audit signing key"
            continue
        heads[name] = (head, count, private)

    async def publish(url: str) -> None:
        nc = await operator_connection(url, seed)
        try:
            js = nc.jetstream(timeout=5)
            await checkpoints.ensure_stream(js)
            for name, (head, count, private) in heads.items():
                before = await checkpoints.newest(js, name)
                replaced = None if before is None else {k: before.get(k) for k in ("seq", "hash", "at")}
                # An empty trail put back is signed as seq 0: whatever is written next goes on from it.
                signed = checkpoints.sign(private, process=name, seq=head.seq or 0, hash=head.hash or "", count=count,
                                          at=datetime.now(UTC),
                                          restored={"backup_made": backup_made, "replaced": replaced})
                await js.publish(checkpoints.subject(name), checkpoints.encode(signed), stream=checkpoints.STREAM,
                                 headers={"Nats-Msg-Id": f"{name}-restored-{signed['at']}"})
                done[name] = f"signed at seq {head.seq or 0}"
        finally:
            await nc.close()

    if heads:
        with checkpoint_stream(nats_url, purpose="audit-restored") as url:
            asyncio.run(publish(url))
    return done


@app.command("restored")
def restored_command(
    backup_made: Annotated[str, typer.Option(help="When the backup that was restored was made (its manifest's "
                                                  "created_at, as `rehab restore` printed it)")],
    nats_url: Annotated[str | None, typer.Option(help="The NATS holding the stream AUDIT (default: REHAB_NATS_URL)")] = None,
) -> None:
    """After a restore whose checkpoints could not be signed (NATS away): sign, with each process's own key, a
    checkpoint of the trail the restore put back, marked `restored`, so that the processes sign their trails again
    and `rehab audit verify` takes the checkpoints of the replaced history as such. `rehab restore` does this
    itself; the stream keeps every such checkpoint for good."""
    try:  # a time a backup was made, not any text (an outside review's find: `--backup-made 'not a time at all'`)
        made = datetime.fromisoformat(backup_made)
    except ValueError:
        made = None
    if made is None or made.tzinfo is None or made > datetime.now(UTC):
        print("error: --backup-made takes the time the restored backup was made, as `rehab restore` printed it "
              "(an ISO time with its offset, not in the future)", file=sys.stderr)
        raise typer.Exit(2)
    # Only after a restore, before the system answers anyone: signed under a running system, it would take a trail
    # cut just now for one put back (an outside review's find: `verify` then said ok over deleted entries).
    if taken := port_in_use(SupervisorSettings()):
        print(f"error: {taken} is in use: the system seems to be running. `restored` signs a trail a restore put "
              "back, with the system stopped, before it answers anyone", file=sys.stderr)
        raise typer.Exit(1)
    try:
        done = sign_restored(backup_made, list(PROCESSES), nats_url)
    except Exception as exc:  # NATS away or refusing
        print(f"error: the checkpoints could not be published ({type(exc).__name__}: {exc})", file=sys.stderr)
        raise typer.Exit(1) from None
    for name, what in done.items():
        print(f"{name:10} {what}")
    raise typer.Exit(0 if all(what.startswith("signed") or what.endswith("no database") for what in done.values())
                     else 1)


@app.command("verify")
def verify_command(
    nats_url: Annotated[str | None, typer.Option(help="The NATS holding the stream AUDIT (default: REHAB_NATS_URL)")] = None,
    nkey_seed: Annotated[Path | None, typer.Option(help="The operator's nkey seed (default: ops/nats.nk in the "
                                                        "secrets folder, when there)")] = None,
) -> None:
    """Check every process's audit hash chain from its database, and against its signed checkpoints on the stream
    AUDIT: exit 1 naming the first broken entry or the truncation found (or when the checkpoints could not be read),
    2 when there is no audit key to check with."""
    raise typer.Exit(verify_all(nats_url, nkey_seed))
