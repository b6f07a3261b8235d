"""The `rehab` command: start the system, create its secrets, and hand other commands to the part that owns them."""

from __future__ import annotations

import asyncio
import importlib.machinery
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from kit import keyfiles, nats_auth
from kit.progress import Progress
from kit.secrets import ensure_secrets
from ops import audit, dead_letters, erasures
from ops.passphrase import handing_passphrase, needed_passphrase, unseal_passphrase
from ops import backup as backups
from ops.settings import SupervisorSettings
from ops.supervisor import StartupError, Supervisor, port_in_use
from ops.cluster import cluster_specs, gateway_ports
from ops.system import secrets_folder, system_specs

# Command groups that belong to other parts of the system: `rehab users add alice …` runs
# `python -m gateway.manage users add alice …` and passes its exit code on. A process, not an import: ops never
# imports a service's insides. Each module's typer app names itself `rehab`, so its help (`rehab users --help`,
# `rehab users add --help`) reads as the operator typed it. The line here is all `rehab --help` knows of the group:
# it names every command (tests/ops/test_rehab_cli.py holds it to the module's own list).
DELEGATED: dict[str, tuple[str, str]] = {
    "users": ("gateway.manage", "Staff users: add, list, disable, enable, unlock, reset-password, sign-out-everyone."),
    "clients": ("gateway.manage", "Partner API clients: add, list, revoke."),
    "names": ("services.intake.manage", "The blind index of names: reindex it after an upgrade."),
    "ledger": ("services.funds.manage", "The funds ledger: check that it balances."),
    "reports": ("services.reports.manage", "Programme reports: rebuild the projection from the streams."),
}
# Where the gateway writes the first admin's generated password (SPEC §3, Bootstrap). Its log says so too, but
# the console is the place an operator looks.
ADMIN_PASSWORD_FILE = "admin-password.txt"

app = typer.Typer(
    name="rehab",
    help="Rehab Support: run the system and look after it.",
    no_args_is_help=True,
    add_completion=False,
)
secrets_app = typer.Typer(help="The keys kept under the state folder: init, nats-users.", no_args_is_help=True)
app.add_typer(secrets_app, name="secrets")
keys_app = typer.Typer(help="Field-encryption keys of every service: rotate, status, retire, passphrase, "
                            "move-to-sealed.",
                       no_args_is_help=True)
app.add_typer(keys_app, name="keys")
# The services that store data keys wrapped by the KEK, and the module whose `keys rotate|status` handles each one's
# own tables (kit.keys_cli over its models.WRAPPED_KEYS), run as a process: ops never imports a service's insides.
KEY_HOLDERS: dict[str, str] = {
    "intake": "services.intake.manage",
    "referrals": "services.referrals.manage",
    "funds": "services.funds.manage",
}
app.add_typer(audit.app, name="audit")
app.add_typer(erasures.app, name="erasures")
app.add_typer(dead_letters.app, name="dead-letters")


@app.command()
def up(
    cluster: Annotated[bool, typer.Option(
        "--cluster", help="Several replicas and a NATS cluster on one machine: three NATS nodes (R3 streams), two "
                          "replicas of every service and two gateways (the second on REHAB_GATEWAY_PORT + 1; "
                          "REHAB_CLUSTER_REPLICAS sets how many), on "
                          "PostgreSQL (REHAB_<NAME>_DATABASE_URL, else the machine's at 127.0.0.1:5432).")] = False,
) -> None:
    """Start NATS, the four services (intake, referrals, funds, reports) and the gateway in the foreground; Ctrl-C
    stops them all."""
    # Every file the system writes (databases, logs, NATS's store) is its owner's alone, whatever the shell's umask:
    # the processes started from here inherit it.
    os.umask(0o077)
    settings = _settings()
    state_dir = _state_dir(settings)
    if erasures.owed(state_dir):
        typer.echo("error: the databases were restored, and the erasures made since the backup are not all "
                   "re-applied: people erased since would be back. Run `rehab erasures reapply` (it says what stops "
                   "it), then `rehab up`", err=True)
        raise typer.Exit(1)
    passphrase = unseal_passphrase(settings, state_dir)
    secrets_dir = _ensure_secrets(settings, state_dir, passphrase=passphrase)
    log_dir = state_dir / "logs"
    try:
        specs = cluster_specs(settings, state_dir) if cluster else system_specs(settings, state_dir)
    except StartupError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    if settings.external_nats:
        typer.echo("using the NATS server named by REHAB_NATS_URL")  # not the URL itself: it may hold a password

    def announce() -> None:
        ports = gateway_ports(settings) if cluster else [settings.gateway_port]
        typer.echo("Rehab Support is up: " + ", ".join(f"http://127.0.0.1:{port}" for port in ports))
        typer.echo(f"logs: {log_dir}")
        if (secrets_dir / ADMIN_PASSWORD_FILE).exists():
            typer.echo(f"the first admin's password is in {secrets_dir / ADMIN_PASSWORD_FILE}")

    supervisor = Supervisor(
        specs,
        log_dir=log_dir,
        on_ready=announce,
        startup_timeout=settings.startup_timeout_seconds,
        stop_timeout=settings.stop_timeout_seconds,
        passphrase=passphrase if settings.unseal_passphrase_file is None else None,
        control_socket=state_dir / SUPERVISOR_SOCKET,
    )
    del passphrase
    raise typer.Exit(asyncio.run(supervisor.run()))


SUPERVISOR_SOCKET = "supervisor.sock"  # `rehab unseal` hands a passphrase to the running `rehab up` here


@app.command()
def backup(
    archive: Annotated[Path, typer.Argument(help="The archive file to write (must not exist): an age file.")],
    include_secrets: Annotated[bool, typer.Option(
        "--include-secrets", help="Put the key files in the archive too (keep such an archive like a key).")] = False,
    recipient: Annotated[list[str] | None, typer.Option(
        "--recipient", "-r", metavar="AGE1…",
        help="Encrypt to this age public key (age1…, or an ssh-ed25519/ssh-rsa key) instead of a passphrase; "
             "repeat for several. Only their identity files open the archive.")] = None,
    recipients_file: Annotated[list[Path] | None, typer.Option(
        "--recipients-file", "-R", exists=True, dir_okay=False,
        help="Encrypt to the recipients in this file (age's format: one a line, # comments); repeatable.")] = None,
) -> None:
    """An encrypted copy of every database, taken while the system runs, in one age archive.

    The keys are left out unless asked for: keep var/secrets apart from the backups. Without a recipient, a
    passphrase locks it: REHAB_BACKUP_PASSPHRASE, or asked for on stdin. `age -d ARCHIVE | tar x` opens it too."""
    settings = _backup_settings()
    try:
        recipients = list(recipient or [])
        for path in recipients_file or []:
            recipients += backups.read_recipients_file(path)
        if recipients:
            backups.parse_recipients(recipients)  # a typo is said now, before the databases are copied
        passphrase = None if recipients else _passphrase(
            confirm=True, instead=", or lock it to age public keys with --recipient/--recipients-file")
        with Progress("backup", unit="steps") as progress:
            manifest = backups.backup(settings, archive, passphrase, recipients=recipients,
                                      include_secrets=include_secrets, progress=progress)
    except backups.BackupError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"backed up {len(manifest['members'])} files to {archive}")
    if recipients:
        typer.echo(f"encrypted to {len(recipients)} age recipient(s): only their identity files open it "
                   "(rehab restore --identity FILE)")
    if not include_secrets:
        typer.echo(f"the keys are NOT in it: keep {settings.secrets_path} safe and apart; without them the "
                   "archive's personal data cannot be read")


@app.command()
def restore(
    archive: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="An archive written by `rehab backup`.")],
    yes: Annotated[bool, typer.Option(
        "--yes", "-y", help="Replace the databases without asking (needed where there is no terminal to ask on).",
    )] = False,
    force: Annotated[bool, typer.Option(
        "--force", help="Write even though the system's ports are in use, or over keys that differ from the archive's.",
    )] = False,
    identity: Annotated[list[Path] | None, typer.Option(
        "--identity", "-i", exists=True, dir_okay=False,
        help="An age identity file (AGE-SECRET-KEY-1…, or an SSH private key) of a recipient the archive was made "
             "for; repeatable. Without it, the archive's passphrase is asked for.")] = None,
    without_erasure_ledger: Annotated[bool, typer.Option(
        "--without-erasure-ledger",
        help="Restore even though the erasure ledger can not be read or begins after the backup: people erased "
             "since may come back, and must be erased again by hand. What can be read of it is still re-applied.",
    )] = False,
) -> None:
    """Put every database back from an archive, after checking it is authentic; the system must be stopped.

    It asks before it replaces anything: what the databases hold now is lost. An archive locked with a passphrase
    takes it from REHAB_BACKUP_PASSPHRASE or stdin; one made for recipients needs --identity. Then every erasure of
    the erasure ledger (the stream ERASURES) is made again, so nobody erased since the backup comes back; a ledger
    that can not be read stops the restore before it writes anything, unless --without-erasure-ledger."""
    settings = _backup_settings()
    if not yes and not sys.stdin.isatty():
        typer.echo("error: a restore replaces every database, and there is no terminal to ask on: "
                   "pass --yes to confirm", err=True)
        raise typer.Exit(2)
    try:
        kind = backups.archive_kind(archive)
        if kind == backups.LEGACY:
            typer.echo("note: this archive is in the old REHAB-BACKUP-1 format, from before backups were age files; "
                       "it is read whole into memory. Once restored, take a new backup (`rehab backup`).", err=True)
        backups.check_key_kind(kind, identities_given=bool(identity))  # before any question
        identities: list = []
        for path in identity or []:
            identities += backups.read_identities(path, lambda: _passphrase(confirm=False, what="identity file"))
        passphrase = None if identities else _passphrase(confirm=False)
        with Progress("check", unit="steps", total=1) as progress:
            opened = backups.open_archive(settings, archive, passphrase, identities=identities, force=force,
                                          progress=progress)
            progress.advance()
        with opened:
            # A new machine has no keys yet, and the erasure ledger's NATS opens only with its own: the archive's
            # (made with --include-secrets) are put where none is. They replace nothing, so nothing is lost if the
            # restore stops below.
            placed = backups.put_missing_keys(settings, opened)
            if placed:
                typer.echo(f"the archive's keys were put in {settings.secrets_path}, which lacked them "
                           f"({len(placed)} files)", err=True)
            # Before anything is replaced: a restore that would bring erased people back is refused while it can
            # still change nothing.
            ledger = _erasure_ledger(opened.manifest["created_at"], without=without_erasure_ledger)
            given = _references_given()
            if not yes and not _replace_confirmed(settings, opened):
                typer.echo("nothing was restored", err=True)
                raise typer.Exit(1)
            # What re-applying the erasures needs is had before anything is replaced (a wrong or missing unseal
            # passphrase stopped the restore between the two), and the mark says they are owed until they are done.
            unseal = needed_passphrase() if ledger is not None else None
            if ledger is not None:
                erasures.owe(settings.state_dir.resolve())
            with Progress("restore", unit="steps") as progress:
                manifest = backups.put_back(settings, opened, force=force, progress=progress)
            without_reports = "reports" not in opened.databases
    except backups.BackupError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"restored {len(manifest['members'])} files from the backup of {manifest['created_at']}")
    _sign_restored_trails(manifest["created_at"], list(opened.databases))
    _references_kept(given)
    keyless = _end_sessions_and_count_keys(unseal)
    if without_reports:
        typer.echo("note: this archive was made before backups held the programme report's database; its numbers "
                   "are still today's. Once the system is up, run `rehab reports rebuild` (it counts from the "
                   "streams, events after this backup included)", err=True)
    if ledger is None:
        typer.echo("WARNING: the erasure ledger was NOT replayed: anyone erased after this backup was made is back "
                   "in it. Erase them again before the system is used (`rehab erasures reapply` once the ledger "
                   "can be read).", err=True)
        _refuse_keyless(keyless)
        return
    done = erasures.reapply(ledger, unseal)
    for line in erasures.report(ledger, done):
        typer.echo(line)
    if done.failed:
        for process, why in done.failed.items():
            typer.echo(f"error: {process}: the erasures were NOT re-applied: {why}", err=True)
        typer.echo("error: do not start the system: people erased after this backup are back in it. Fix the cause, "
                   "then run `rehab erasures reapply`", err=True)
        raise typer.Exit(1)
    _refuse_keyless(keyless)


def _references_given() -> str:
    """The last case reference numbers intake gave out, per year (JSON), read from its database before the restore
    replaces it; `{}` when there is none (a new machine) or it can not be read (said)."""
    read = subprocess.run([sys.executable, "-m", "services.intake.manage", "references", "numbers"],
                          capture_output=True, text=True, check=False)
    if read.returncode != 0:
        typer.echo("note: intake's reference numbers could not be read before the restore: a case opened after the "
                   "backup may see its reference given out again", err=True)
        return "{}"
    return read.stdout.strip().splitlines()[-1] if read.stdout.strip() else "{}"


def _references_kept(given: str) -> None:
    """Intake's restored counters raised to what it had given out before the restore, so that no reference of a case
    opened after the backup (lost with it, or erased) names a new case: one reference, one person."""
    if given in ("", "{}"):
        return
    kept = subprocess.run([sys.executable, "-m", "services.intake.manage", "references", "keep-above"],
                          input=given, capture_output=True, text=True, check=False)
    if kept.returncode == 0:
        typer.echo(f"case references go on after the last given out before the restore: {given}")
    else:
        typer.echo(f"WARNING: intake's reference counters were not raised to {given}: before the system is used, "
                   f"run `echo '{given}' | python -m services.intake.manage references keep-above`", err=True)


def _end_sessions_and_count_keys(unseal: str | None) -> list[str]:
    """What the databases just put back need before anything starts, with the passphrase obtained once: every
    session they hold ends (one ended after the backup was made — signed out everywhere, revoked by an admin, its
    user disabled — would be alive again: everyone signs in again); and, per service, the key-encryption keys that
    wrap their data keys but are not in its keyring (`rehab keys retire` dropped them after the backup was made):
    "intake: k1 (12 data keys)"."""
    try:
        with handing_passphrase(unseal) as handing_over:
            ended = handing_over("gateway.manage", ["users", "sign-out-everyone"])
            statuses, _failed = _key_counts(handing_over)  # a count that failed says so itself
    except Exception as error:  # noqa: BLE001 - said, with the commands that do it
        typer.echo(f"WARNING: the restored sessions were not ended and the restored data keys not counted "
                   f"({type(error).__name__}). Before the system is used: rehab users sign-out-everyone; rehab keys "
                   "status", err=True)
        return []
    if ended.returncode == 0:
        typer.echo(ended.stdout.strip())
    else:
        typer.echo("WARNING: the sessions the backup held were not ended: one ended since it was made would be alive "
                   "again. Before the system is used: rehab users sign-out-everyone", err=True)
    return [f"{process}: {kid} ({count} data keys)" for process, status in statuses.items() if status["keyring"]
            for kid, count in sorted(status["counts"].items()) if count and kid not in status["keks"]]


def _refuse_keyless(keyless: list[str]) -> None:
    """A restore whose data its keys no longer open did not succeed: said, and the exit code says so too."""
    if not keyless:
        return
    typer.echo(f"error: the restored databases hold data keys wrapped under key-encryption keys these keyrings no "
               f"longer have ({'; '.join(keyless)}): the personal data under them cannot be opened. They were "
               "retired (`rehab keys retire`) after this backup was made. Put back the secrets folder kept from "
               "before that retirement (or restore an archive made with --include-secrets), check with `rehab keys "
               "status`, and only then start the system.", err=True)
    raise typer.Exit(1)


def _sign_restored_trails(backup_made: str, names: list[str]) -> None:
    """Each restored process's audit trail goes on from what was put back: a checkpoint of it, marked `restored`,
    signed with the process's key (ops.audit.sign_restored). Said when it could not be done, with how to do it."""
    try:
        done = audit.sign_restored(backup_made, names)
    except Exception as error:  # noqa: BLE001 - NATS away or refusing: said, with the command that finishes it
        done = {name: f"not signed ({type(error).__name__})" for name in names}
    for name, what in done.items():
        typer.echo(f"audit checkpoint of the restored trail: {name}: {what}")
    if any(not what.startswith("signed") for what in done.values()):
        typer.echo("WARNING: until their restored trails are signed, those processes sign no audit checkpoint and "
                   "`rehab audit verify` says their trails were truncated. Once NATS can be reached: "
                   f"rehab audit restored --backup-made {backup_made}", err=True)


def _erasure_ledger(backup_made: str, *, without: bool) -> erasures.Ledger | None:
    """The erasure ledger, read before anything is restored; the restore stops here when it can not be read or
    begins after the backup, unless told `--without-erasure-ledger` (then whatever can be read, or None)."""
    try:
        ledger = erasures.read_ledger()
    except erasures.LedgerUnreadable as error:
        problem, ledger = f"the erasure ledger (stream ERASURES) could not be read: {error}", None
    else:
        problem = erasures.gap(ledger, backup_made)
    try:
        pending = erasures.not_yet_sent()  # in the intake database about to be replaced: kept before it goes
    except Exception as error:  # noqa: BLE001 - said, and the ledger read is what counts
        pending = []
        typer.echo(f"note: intake's outbox could not be read for erasures not yet sent ({type(error).__name__})",
                   err=True)
    if ledger is not None:
        ledger = erasures.with_pending(ledger, pending)
    if problem is None:
        return ledger
    if not without:
        secrets_dir = _backup_settings().secrets_path
        keyless = "" if secrets_dir.is_dir() and any(secrets_dir.iterdir()) else (
            f" On a new machine the old system's keys come first: copy its secrets folder to {secrets_dir} (an "
            "archive made with --include-secrets puts them there itself).")
        typer.echo(f"error: {problem}. Restoring without it would bring back people erased since the backup was "
                   "made. Start NATS with its store (or set REHAB_NATS_URL) and try again; or, knowing that erased "
                   f"people may come back and must be erased again by hand, pass --without-erasure-ledger.{keyless} "
                   "Nothing was restored.", err=True)
        raise typer.Exit(1)
    typer.echo(f"WARNING: {problem}; going on (--without-erasure-ledger).", err=True)
    if ledger is None and pending:
        ledger = erasures.with_pending(erasures.Ledger(entries=[], since=None, messages=0), pending)
    return ledger


def _replace_confirmed(settings: backups.BackupSettings, opened: backups.Archive) -> bool:
    """Say what the archive would replace, and ask."""
    typer.echo(f"The backup of {opened.manifest['created_at']} replaces:")
    for process in opened.databases:
        typer.echo(f"  the {process} database, {settings.database_place(process)}")
    if opened.secrets:
        typer.echo(f"  the key files in {settings.secrets_path}: {', '.join(sorted(opened.secrets))}")
    return typer.confirm("What they hold now is lost. Restore?", default=False)


def _backup_settings() -> backups.BackupSettings:
    try:
        return backups.BackupSettings()
    except ValidationError as error:
        typer.echo(f"error: {error.errors()[0]['msg']}", err=True)
        raise typer.Exit(2) from None


def _passphrase(*, confirm: bool, what: str = "backup", instead: str = "") -> str:
    """From REHAB_BACKUP_PASSPHRASE, else typed (twice for a new archive), else the first line of stdin. With none of
    these, said so: a check of its length would speak of characters nobody typed (an outside review's find)."""
    given = os.environ.get("REHAB_BACKUP_PASSPHRASE")
    if given:
        return given
    if sys.stdin.isatty():
        return typer.prompt(f"{what} passphrase", hide_input=True, confirmation_prompt=confirm)
    line = sys.stdin.readline().rstrip("\n")
    if not line:
        typer.echo(f"error: there is no terminal to ask for the {what} passphrase on, and none came on stdin: set "
                   f"REHAB_BACKUP_PASSPHRASE (or give it on stdin's first line){instead}", err=True)
        raise typer.Exit(2)
    return line


@secrets_app.command("init")
def secrets_init() -> None:
    """Create the secrets that are missing (existing ones are never replaced)."""
    settings = _settings()
    _ensure_secrets(settings, _state_dir(settings))


@secrets_app.command("nats-users")
def secrets_nats_users() -> None:
    """Print the nats-server `authorization` block for these keys (public keys and permissions only), for an
    external NATS that should let the services in with their nkeys as the embedded one does."""
    settings = _settings()
    secrets_dir = _ensure_secrets(settings, _state_dir(settings), quiet=True)
    typer.echo(nats_auth.authorization_block(nats_auth.public_keys(secrets_dir)), nl=False)


@keys_app.command("rotate")
def keys_rotate(
    batch_size: Annotated[int, typer.Option(min=1, max=10_000, help="data keys re-wrapped per transaction")] = 500,
    rewrap_only: Annotated[bool, typer.Option(
        "--rewrap-only", help="Add no KEK: finish re-wrapping under the active one (after a rotation that stopped).",
    )] = False,
) -> None:
    """Give every service a new key-encryption key (KEK) of its own and re-wrap every data key under it.

    The services keep running: each reads its keyring again when it changes. The old KEKs stay until
    `rehab keys retire` drops them (once `rehab keys status` shows nothing under them)."""
    failed = []
    with handing_passphrase() as handing_over:
        statuses, unreadable = _key_counts(handing_over)
        missing = [status["note"] for status in statuses.values() if not status["keyring"]]
        if missing or unreadable:  # nothing rotated in one service unless it can be in all
            for note in missing:
                typer.echo(f"error: {note}", err=True)
            raise typer.Exit(1)
        for process, module in KEY_HOLDERS.items():
            # The service's progress goes to stderr as it runs; its one-line result comes back here, named.
            args = ["keys", "rotate", "--batch-size", str(batch_size), *(["--rewrap-only"] if rewrap_only else [])]
            done = handing_over(module, args)
            for line in done.stdout.splitlines():
                typer.echo(f"{process}: {line}")
            if done.returncode != 0:
                failed.append(process)
    if failed:
        typer.echo(f"error: re-wrapping did not finish in {', '.join(failed)}: once the cause is fixed, run "
                   "`rehab keys rotate --rewrap-only`; until then keep every KEK `rehab keys status` shows in use",
                   err=True)
        raise typer.Exit(1)


@keys_app.command("passphrase")
def keys_passphrase(
    new_passphrase_file: Annotated[Path | None, typer.Option(
        "--new-passphrase-file", exists=True, dir_okay=False,
        help="A file holding the new passphrase; without it, it is typed twice on the terminal.")] = None,
) -> None:
    """Seal every process's keys.sealed under a new unseal passphrase, each with a fresh salt (sealed custody; the
    system stopped). After a leaked keys.sealed with a weak passphrase: this, then `rehab keys rotate` and
    `rehab keys retire --yes` (the thief's copy opens under the old passphrase, and holds the old KEKs only)."""
    settings = _settings()
    if settings.key_custody != "sealed":
        typer.echo("error: only sealed custody has an unseal passphrase", err=True)
        raise typer.Exit(2)
    if taken := port_in_use(settings):
        typer.echo(f"error: {taken} is in use: the system seems to be running; stop it first: running processes "
                   "hold the old passphrase's key and write with it", err=True)
        raise typer.Exit(1)
    state_dir = _state_dir(settings)
    old = unseal_passphrase(settings, state_dir, making=False)
    assert old is not None
    if new_passphrase_file is not None:
        new = new_passphrase_file.read_text().rstrip("\r\n")
    elif sys.stdin.isatty():
        new = typer.prompt("new unseal passphrase", hide_input=True, confirmation_prompt=True)
    else:
        typer.echo("error: type the new passphrase on a terminal, or name a file holding it in "
                   "--new-passphrase-file", err=True)
        raise typer.Exit(2)
    if len(new) < 12 or new == old:
        typer.echo("error: the new passphrase must be at least 12 characters, and not the old one", err=True)
        raise typer.Exit(2)
    try:
        changed = keyfiles.change_passphrase(secrets_folder(settings, state_dir), old=old, new=new)
    except keyfiles.WrongPassphrase as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"sealed under the new passphrase: {', '.join(changed) or 'nothing left to change'}")


@keys_app.command("move-to-sealed")
def keys_move_to_sealed() -> None:
    """Move an installation made under `file` custody to `sealed` (the system stopped, REHAB_KEY_CUSTODY=sealed
    set where `rehab up` reads it): each process's plain keys sealed in its keys.sealed under a new unseal passphrase
    (typed twice, or UNSEAL_PASSPHRASE_FILE), then the plain files removed. The keys stay the same: every record
    opens as before. Run it again with the same passphrase should it stop half-way."""
    from kit import secrets as secret_files

    settings = _settings()
    if settings.key_custody != "sealed":
        typer.echo("error: set REHAB_KEY_CUSTODY=sealed first (where `rehab up` reads it: the environment or .env): "
                   "the next start must open the sealed keys, not look for the plain ones", err=True)
        raise typer.Exit(2)
    if taken := port_in_use(settings):
        typer.echo(f"error: {taken} is in use: the system seems to be running; stop it first: running processes "
                   "read the plain keys this removes", err=True)
        raise typer.Exit(1)
    folder = secrets_folder(settings, _state_dir(settings))
    passphrase = unseal_passphrase(settings, _state_dir(settings))
    assert passphrase is not None
    try:
        removed = secret_files.move_to_sealed(folder, passphrase)
    except secret_files.KeysNotMoved as refused:
        typer.echo(f"error: {refused}", err=True)
        raise typer.Exit(1) from None
    except OSError as error:  # a full disk, a folder that cannot be written: some processes may be sealed already
        typer.echo(f"error: the move stopped: {error.filename or ''}: {error.strerror or error}. Mend it, then run "
                   "`rehab keys move-to-sealed` again with the same passphrase; the system does not start under "
                   "`sealed` until the move is done", err=True)
        raise typer.Exit(1) from None
    if not removed:
        typer.echo("no plain keys here: nothing to move")
        return
    typer.echo(f"sealed under the unseal passphrase, and removed: {', '.join(removed)}")
    typer.echo("Copies made before hold the plain keys: backups made with --include-secrets, a disk image. Once the "
               "system runs sealed, `rehab keys rotate` then `rehab keys retire --yes` make those copies' KEKs open "
               "nothing new (README, \"Keys\").")


@keys_app.command("status")
def keys_status() -> None:
    """Per service: its custody, its KEKs and how many data keys each wraps; the active one is marked."""
    with handing_passphrase() as handing_over:
        statuses, failed = _key_counts(handing_over)
    for process, status in statuses.items():
        if not status["keyring"]:
            typer.echo(f"{process}: {status['note']}")
            continue
        typer.echo(f"{process}: custody {status['custody']}, active key-encryption key {status['active']}"
                   + ("" if status["database"] else f" ({status['note']})"))
        known = set(status["keks"])
        for kid in sorted(known | set(status["counts"])):
            mark = " (active)" if kid == status["active"] else ""
            missing = "  NOT IN THE KEYRING: these cannot be opened" if kid not in known else ""
            typer.echo(f"  {kid}: {status['counts'].get(kid, 0)} data keys{mark}{missing}")
    if failed:
        raise typer.Exit(1)


@keys_app.command("retire")
def keys_retire(
    kid: Annotated[str | None, typer.Argument(
        metavar="[KEK_ID]", show_default=False, help="The KEK to drop; without it, every KEK no data key uses (never the active one).")] = None,
    yes: Annotated[bool, typer.Option(
        "--yes", "-y", help="Drop it without asking (needed where there is no terminal to ask on).")] = False,
) -> None:
    """Take key-encryption keys out of the services' keyrings, once no data key uses them.

    With KEK_ID: that KEK, from every service that has it; refused if any data key of any service still uses it
    (run `rehab keys rotate` first). Without: every KEK of every service that no data key uses. Never an active
    one."""
    with handing_passphrase() as handing_over:
        statuses, failed = _key_counts(handing_over)
        if failed:
            typer.echo(f"error: could not count the data keys of {', '.join(failed)}: nothing was retired", err=True)
            raise typer.Exit(1)
        retire: list[tuple[str, str]] = []
        in_use: list[str] = []
        for process, status in statuses.items():
            candidates = [] if not status["keyring"] else [kid] if kid is not None else status["keks"]
            for candidate in candidates:
                if candidate not in status["keks"]:
                    continue
                if candidate == status["active"]:
                    if kid is not None:
                        in_use.append(f"{process}: it is the active key-encryption key")
                    continue
                held = status["counts"].get(candidate, 0)
                if held:
                    in_use.append(f"{process}: {held}")
                    typer.echo(f"{process}: {candidate} still wraps {held} data keys: run `rehab keys rotate` first",
                               err=kid is not None)
                else:
                    retire.append((process, candidate))
        if kid is not None and in_use:
            typer.echo(f"error: {kid} was not retired ({'; '.join(in_use)})", err=True)
            raise typer.Exit(1)
        if kid is not None and not retire:
            typer.echo(f"error: no service has a key-encryption key {kid}", err=True)
            raise typer.Exit(1)
        if not retire:
            typer.echo("no key-encryption key to retire")
            return
        listed = ", ".join(f"{process} {candidate}" for process, candidate in retire)
        if not yes:
            if not sys.stdin.isatty():
                typer.echo("error: retiring a KEK cannot be undone, and there is no terminal to ask on: pass --yes "
                           "to confirm", err=True)
                raise typer.Exit(2)
            if not typer.confirm(f"Drop {listed}? A backup taken before may need them.", default=False):
                typer.echo("nothing was retired", err=True)
                raise typer.Exit(1)
        failures = 0
        for process, candidate in retire:
            done = handing_over(KEY_HOLDERS[process], ["keys", "retire", candidate])
            for line in done.stdout.splitlines():
                typer.echo(line)
            failures += done.returncode != 0
    typer.echo("note: a backup taken before now may hold data keys wrapped under what was retired, and restores "
               "only with it: keep a copy of the secrets folder from before today as long as you keep those backups "
               "(an archive made with --include-secrets carries its own keys)", err=True)
    if failures:
        raise typer.Exit(1)


# ---- seal and unseal (SPEC §8): a signed command on NATS that every process of the system obeys (kit.control) ----

NatsUrlOption = Annotated[str | None, typer.Option(
    "--nats-url", help="The system's NATS (default: REHAB_NATS_URL, else the one `rehab up` runs)")]
SeedOption = Annotated[Path | None, typer.Option(
    "--nkey-seed", help="The operator's nkey seed that signs the command (default: ops/nats.nk in the secrets folder)")]


@app.command()
def seal(nats_url: NatsUrlOption = None, nkey_seed: SeedOption = None) -> None:
    """For a raid or a coerced operator: every process forgets every key within 2 seconds, at once, without asking.
    Whatever needs a key then answers 503 (sealed) until `rehab unseal`; nothing restarts, and a process that does
    (a crash, the supervisor) starts sealed: the mark left in the state folder says so (kit.control)."""
    from kit import control

    control.mark_sealed(_state_dir(_settings()))  # first: even if NATS does not take the command now
    raise typer.Exit(_control("seal", nats_url, nkey_seed))


@app.command()
def unseal(nats_url: NatsUrlOption = None, nkey_seed: SeedOption = None) -> None:
    """Every process loads its keys again, without a restart; a process that cannot stays sealed and says so.

    Under sealed custody it first asks for the unseal passphrase (or reads UNSEAL_PASSPHRASE_FILE), checks that it
    opens the keys, and hands it to the processes `rehab up` runs, through the supervisor's socket."""
    from kit import control

    settings = _settings()
    if settings.key_custody == "sealed":
        _hand_passphrase_to_supervisor(settings)
    done = _control("unseal", nats_url, nkey_seed)
    if done == 0:  # every process that answered has its keys: a restart may load them too (they clear it as well)
        control.clear_seal_mark(_state_dir(settings))
    raise typer.Exit(done)


def _hand_passphrase_to_supervisor(settings: SupervisorSettings) -> None:
    import socket
    import time

    state_dir = _state_dir(settings)
    passphrase = unseal_passphrase(settings, state_dir, making=False)
    assert passphrase is not None
    path = state_dir / SUPERVISOR_SOCKET
    if not path.exists():
        typer.echo("no `rehab up` runs here (no supervisor socket): each process reads UNSEAL_PASSPHRASE_FILE itself")
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as channel:
        channel.settimeout(5)
        channel.connect(str(path))
        channel.sendall(f"unseal\n{passphrase}\n".encode())
        answer = channel.makefile().readline().strip()
    typer.echo(f"supervisor: {answer}")
    time.sleep(1.5)  # each process opens its keys (Argon2id) before the command below asks which are unsealed


def _control(action: str, nats_url: str | None, nkey_seed: Path | None) -> int:
    """Send the signed command and print every process that confirmed within 2 seconds; exit 1 when none did, or
    (unseal) when one is still sealed."""
    from kit import control  # here, not at the top: `rehab up` stays a small process

    settings = _settings()
    seed = nkey_seed or secrets_folder(settings, _state_dir(settings)) / nats_auth.seed_file_name(nats_auth.OPERATOR)
    if not seed.is_file():
        typer.echo(f"error: no operator nkey seed at {seed}: the command must be signed (--nkey-seed)", err=True)
        return 2
    url = nats_url or (settings.nats_url if settings.external_nats else settings.embedded_nats_url)
    try:
        answers = asyncio.run(control.publish_command(url, seed, action))
    except Exception as error:
        if action == "seal":  # the mark is there already (`seal`): the processes of this machine seal from it
            typer.echo(f"NATS did not take the seal command ({type(error).__name__}), but the seal mark is in "
                       f"{_state_dir(settings) / control.SEAL_MARK}: every process on this machine seals from it "
                       "within a second, and one that starts, starts sealed. A replica on another machine is not "
                       "reached: seal it there, or send `rehab seal` again once NATS answers.", err=True)
            return 1
        typer.echo(f"error: NATS did not take the {action} command ({type(error).__name__}): is the system running?",
                   err=True)
        return 1
    for answer in answers:
        state = "sealed" if answer["sealed"] else "unsealed"
        typer.echo(f"{answer['process']:<10} {answer['instance']:<32} {state}")
    if not answers:
        typer.echo(f"no process confirmed the {action} within {control.REPLY_WINDOW:g} s", err=True)
        return 1
    still_sealed = [answer for answer in answers if answer["sealed"]]
    if action == "unseal" and still_sealed:
        typer.echo(f"{len(still_sealed)} process(es) could not load their keys and are still sealed", err=True)
        return 1
    typer.echo(f"{len(answers)} process(es) confirmed: {'sealed' if action == 'seal' else 'unsealed'}")
    return 0


def _key_counts(run: Callable[[str, list[str]], subprocess.CompletedProcess]) -> tuple[dict[str, dict], list[str]]:
    """Each service's `keys status --json`, and the services whose count failed (keys or database out of reach)."""
    statuses: dict[str, dict] = {}
    failed: list[str] = []
    for process, module in KEY_HOLDERS.items():
        done = run(module, ["keys", "status", "--json"])
        if done.returncode != 0:
            failed.append(process)
            typer.echo(f"error: {process}: could not read its keys (exit code {done.returncode})", err=True)
            continue
        statuses[process] = json.loads(done.stdout)
    return statuses, failed


def _settings() -> SupervisorSettings:
    try:
        return SupervisorSettings()
    except ValidationError as error:
        for problem in error.errors():
            setting = "REHAB_" + "_".join(str(part) for part in problem["loc"]).upper()
            typer.echo(f"error: {setting}: {problem['msg']}", err=True)
        raise typer.Exit(2) from None


def _state_dir(settings: SupervisorSettings) -> Path:
    """The state folder as an absolute path (every process gets the same one), created owner-only."""
    state_dir = settings.state_dir.resolve()
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # it holds the databases and the keys
    state_dir.chmod(0o700)  # one the operator made beforehand too
    return state_dir


def _ensure_secrets(settings: SupervisorSettings, state_dir: Path, *, quiet: bool = False,
                    passphrase: str | None = None) -> Path:
    """Create the missing secrets and say so (on stderr when `quiet`); the folder they are in. Under sealed
    custody the keyrings are made only with the passphrase (`rehab up` asks for it)."""
    secrets_dir = secrets_folder(settings, state_dir)
    transit = None
    if settings.key_custody == "openbao":
        from kit.custody import settings_for, transit_client  # here, not at the top: `rehab up` stays small

        def transit(process: str) -> object:  # each process's own Transit key, `rehab-<process>` unless set
            return transit_client(settings_for(process, type(settings)))
    try:
        created = ensure_secrets(secrets_dir, custody=settings.key_custody, passphrase=passphrase, transit=transit)
    except Exception as error:  # OpenBao away or refusing: say so in a line
        detail = getattr(error, "detail", None) or type(error).__name__
        typer.echo(f"error: the keys could not be made: {detail}", err=True)
        raise typer.Exit(1) from None
    if created:
        typer.echo(f"created secrets in {secrets_dir}: {', '.join(created)}", err=quiet)
    elif not quiet:
        typer.echo(f"secrets: using the existing ones in {secrets_dir}")
    return secrets_dir


def _delegate(group: str, module: str, help_text: str) -> None:
    @app.command(
        group,
        help=help_text,
        # Every argument, --help included, belongs to the module that does the work.
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        add_help_option=False,
    )
    def command(ctx: typer.Context) -> None:
        raise typer.Exit(run_module(module, [group, *ctx.args]))


def run_module(module: str, args: list[str]) -> int:
    """Run `python -m module args…` in the foreground; its exit code, or 2 when the module does not exist. It is
    told the NATS `rehab up` runs, as the processes are (`REHAB_NATS_PORT`), unless REHAB_NATS_URL names one:
    `rehab reports rebuild` once looked for it on the default port."""
    if not module_exists(module):
        typer.echo(f"error: {module} does not exist yet in this installation", err=True)
        return 2
    settings = _settings()
    env = None if settings.external_nats else {**os.environ, "REHAB_NATS_URL": settings.embedded_nats_url}
    return subprocess.run([sys.executable, "-m", module, *args], check=False, env=env).returncode


def module_exists(dotted: str) -> bool:
    """Whether `python -m dotted` would find a module, without importing (and so running) any of its packages."""
    top, *rest = dotted.split(".")
    spec = importlib.util.find_spec(top)
    name = top
    for part in rest:
        if spec is None or spec.submodule_search_locations is None:
            return False
        name = f"{name}.{part}"
        spec = importlib.machinery.PathFinder.find_spec(name, list(spec.submodule_search_locations))
    return spec is not None


for _group, (_module, _help) in DELEGATED.items():
    _delegate(_group, _module, _help)


def main() -> None:
    app(prog_name="rehab")  # also as `python -m ops.cli`, which the tests and the benchmarks run


if __name__ == "__main__":
    main()
