"""Audit checkpoints (issue #16 item 4, SPEC §8): intake signs its audit chain's head with its own Ed25519 key and
publishes it to the stream AUDIT on a real NATS; deleting the newest entries, or all of them, is reported as a
truncation by `/api/intake/audit/verify` and by `rehab audit verify` (offline, from the database and the stream);
a checkpoint signed with another key is refused; with NATS away the verdict says it could not check."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import nats
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete, func, select
from typer.testing import CliRunner

from kit import checkpoints
from kit.secrets import AUDIT_VERIFYING_KEY_FILES
from ops.cli import app as rehab
from tests.integration.intake.conftest import Intake, eventually
from tests.support.nats import patient_jetstream

runner = CliRunner()


async def checkpointed(intake: Intake) -> dict[str, Any]:
    """Wait for intake's connection to NATS, then make it publish a checkpoint of its head now."""
    return await eventually(lambda: intake.runtime.checkpoints.round(force=True), timeout=20)


async def stream_newest(intake: Intake) -> dict[str, Any]:
    nc = await nats.connect(intake.settings.nats_url)
    try:
        message = await patient_jetstream(nc).get_last_msg(checkpoints.STREAM, checkpoints.subject("intake"))
        return json.loads(message.data)
    finally:
        await nc.close()


async def verify(intake: Intake) -> dict[str, Any]:
    response = await intake.client.get("/api/intake/audit/verify", headers=intake.auditor)
    assert response.status_code == 200, response.text
    return response.json()


def head(intake: Intake) -> tuple[int, str]:
    audit = intake.runtime.tables.audit
    with intake.engine.connect() as conn:
        row = conn.execute(select(audit.c.seq, audit.c.hash).order_by(audit.c.seq.desc()).limit(1)).one()
    return row.seq, row.hash


def delete_entries(intake: Intake, *, above: int) -> None:
    audit = intake.runtime.tables.audit
    with intake.engine.begin() as conn:
        conn.execute(delete(audit).where(audit.c.seq > above))


async def offline_verify(intake: Intake) -> Any:
    """`rehab audit verify` against intake's database and the stream (the test NATS has no users)."""
    env = {"REHAB_STATE_DIR": str(intake.settings.state_dir), "REHAB_SECRETS_DIR": str(intake.settings.secrets_path),
           "REHAB_INTAKE_DATABASE_URL": intake.settings.db_url, "REHAB_NATS_URL": intake.settings.nats_url}
    return await asyncio.to_thread(runner.invoke, rehab, ["audit", "verify"], env=env)


async def test_checkpoints_go_to_the_audit_stream_signed_with_intakes_own_key(intake: Intake):
    for _ in range(3):
        await intake.create()
    published = await checkpointed(intake)
    on_stream = await stream_newest(intake)
    assert on_stream == published
    assert (on_stream["seq"], on_stream["hash"]) == head(intake)
    assert on_stream["process"] == "intake" and on_stream["count"] == on_stream["seq"]
    public = checkpoints.load_public(intake.settings.secrets_path / AUDIT_VERIFYING_KEY_FILES["intake"])
    assert checkpoints.signature_valid(on_stream, public, process="intake")
    assert not checkpoints.signature_valid({**on_stream, "seq": on_stream["seq"] - 1}, public, process="intake")
    # Not the token-signing key, and not anybody else's checkpoint key.
    token_key = checkpoints.load_public(intake.settings.public_key_path)
    assert not checkpoints.signature_valid(on_stream, token_key, process="intake")

    verdict = await verify(intake)
    assert verdict["ok"] is True and verdict["truncated"] is False, verdict
    assert verdict["checkpoint_status"] == "matches"
    assert verdict["checkpoint"]["seq"] == on_stream["seq"]
    assert (await offline_verify(intake)).exit_code == 0

    # Nothing new: no new checkpoint (until the hourly heartbeat); new entries: the next round signs them.
    assert await intake.runtime.checkpoints.round() is None
    await intake.create()
    intake.runtime.checkpoints.policy.every_seconds = 0.01  # the background job's next round (every second)

    async def signed_head() -> bool:
        newest = await stream_newest(intake)
        return (newest["seq"], newest["hash"]) == head(intake)

    await eventually(signed_head, timeout=10)

    # The stream: limits retention, file storage, kept for years, no message deletion or purge.
    nc = await nats.connect(intake.settings.nats_url)
    try:
        info = await patient_jetstream(nc).stream_info(checkpoints.STREAM)
    finally:
        await nc.close()
    assert info.config.subjects == ["rehab.audit.>"] and str(getattr(info.config.retention, "value", info.config.retention)) == "limits"
    assert str(getattr(info.config.storage, "value", info.config.storage)) == "file" and info.config.max_age >= 5 * 365 * 86400
    assert info.config.deny_delete and info.config.deny_purge and info.config.allow_direct


async def test_each_checkpoint_counts_the_whole_trail_though_it_reads_only_what_came_since(intake: Intake):
    await intake.create()
    first = await checkpointed(intake)
    for _ in range(2):
        await intake.create()
    second = await checkpointed(intake)
    audit = intake.runtime.tables.audit
    with intake.engine.connect() as conn:
        entries = conn.execute(select(func.count()).select_from(audit)).scalar()
    assert second["seq"] > first["seq"] and second["count"] == entries == second["seq"]


async def test_deleting_the_newest_entries_is_reported_as_truncation(intake: Intake):
    for _ in range(3):
        await intake.create()
    signed = await checkpointed(intake)
    delete_entries(intake, above=signed["seq"] - 2)

    verdict = await verify(intake)
    assert verdict["ok"] is False and verdict["truncated"] is True, verdict
    assert verdict["checkpoint_status"] == "truncated"
    assert verdict["first_bad"] is None  # what is left is a valid chain: only the checkpoint shows it
    assert verdict["problem"] == (f"truncated: entries up to seq {signed['seq']} were signed at {signed['at']} but "
                                  f"the trail ends at {signed['seq'] - 2}")
    result = await offline_verify(intake)
    assert result.exit_code == 1, result.output
    assert "PROBLEM" in result.output and f"entries up to seq {signed['seq']}" in result.output

    # The process does not sign over the truncation; new entries written in their place do not hide it either.
    assert await intake.runtime.checkpoints.round(force=True) is None
    assert intake.runtime.checkpoints.blocked
    for _ in range(2):
        await intake.create()
    assert await intake.runtime.checkpoints.round(force=True) is None
    assert (await stream_newest(intake))["seq"] == signed["seq"]
    verdict = await verify(intake)
    assert verdict["ok"] is False and verdict["truncated"] is True
    assert verdict["checkpoint_status"] in ("truncated", "diverged")
    assert (await offline_verify(intake)).exit_code == 1


async def test_entries_deleted_before_any_checkpoint_covered_them_are_still_reported_as_truncation(intake: Intake):
    """An outside review deleted the newest entries within the minute before the next checkpoint: the chain left
    verified, and the next checkpoint signed the shortened trail. The process now remembers the newest entry it
    wrote, and signs it when the trail has lost it, within a round (a second), with no checkpoint due yet."""
    await intake.create()
    signed = await checkpointed(intake)
    for _ in range(3):
        await intake.create()
    written, _ = head(intake)
    assert max(intake.runtime.checkpoints.written) == written > signed["seq"]
    delete_entries(intake, above=signed["seq"])  # every entry since the last checkpoint

    async def said_truncated() -> dict[str, Any] | None:
        verdict = await verify(intake)
        return verdict if verdict["truncated"] else None

    verdict = await eventually(said_truncated, timeout=10)  # the background job's round, not a forced one
    assert verdict["ok"] is False and verdict["checkpoint_status"] == "truncated", verdict
    assert verdict["checkpoint"]["seq"] == written and verdict["first_bad"] is None
    assert (await stream_newest(intake))["seq"] == written
    assert intake.runtime.checkpoints.blocked
    result = await offline_verify(intake)
    assert result.exit_code == 1 and f"entries up to seq {written}" in result.output, result.output

    # Entries written in their place do not hide it, and nothing more is signed over it.
    for _ in range(2):
        await intake.create()
    assert await intake.runtime.checkpoints.round(force=True) is None
    assert (await verify(intake))["checkpoint_status"] in ("truncated", "diverged")


async def test_entries_deleted_and_more_written_at_once_by_the_process_itself_are_still_found(intake: Intake):
    """Under load the process writes its next entries within milliseconds of a deletion, chained onto what the
    deletion left: the newest entry it wrote is then in the trail, so every entry it wrote since its last checkpoint
    is looked for, not only the newest (an outside review of the first mend)."""
    await intake.create()
    signed = await checkpointed(intake)
    for _ in range(2):
        await intake.create()
    deleted, deleted_hash = head(intake)
    delete_entries(intake, above=signed["seq"])
    for _ in range(3):  # before the next round: chained onto the signed head, a valid chain
        await intake.create()

    async def said_not_there() -> dict[str, Any] | None:
        verdict = await verify(intake)
        return verdict if verdict["checkpoint_status"] in ("truncated", "diverged") else None

    verdict = await eventually(said_not_there, timeout=10)
    assert verdict["ok"] is False and verdict["first_bad"] is None, verdict  # the chain alone says nothing
    newest = await stream_newest(intake)
    assert newest["seq"] <= deleted and newest["hash"] != head(intake)[1]
    assert intake.runtime.checkpoints.blocked
    assert (await offline_verify(intake)).exit_code == 1


async def test_a_replica_does_not_sign_over_another_replicas_word_of_a_lost_entry(intake: Intake):
    """Two replicas of intake sign one trail. One finds an entry it wrote gone and signs it as it was; the other,
    which knew only its own last checkpoint, signed the shortened trail over it, and `/audit/verify` (which weighs
    the newest checkpoint) said all was well. Each now follows the newest checkpoint on the stream, whoever signed
    it, and publishes only on top of the one it read."""
    other = checkpoints.Checkpointer(process="intake", table=intake.runtime.tables.audit,
                                     private=intake.runtime.checkpoints.private,
                                     jetstream=intake.runtime.checkpoints.jetstream, read=intake.runtime.uow.read)
    await intake.create()
    await checkpointed(intake)
    assert await other.round(force=True) is not None  # the other replica's own checkpoint: its `last`
    await intake.create()
    written, _ = head(intake)
    delete_entries(intake, above=written - 1)

    async def word_of_the_loss() -> dict[str, Any] | None:
        newest = await stream_newest(intake)
        return newest if newest["seq"] == written else None

    await eventually(word_of_the_loss, timeout=10)  # this replica's job signed the lost entry
    assert await other.round(force=True) is None and other.blocked
    assert (await stream_newest(intake))["seq"] == written
    verdict = await verify(intake)
    assert verdict["ok"] is False and verdict["checkpoint_status"] in ("truncated", "diverged"), verdict


async def test_an_entry_deleted_and_another_written_at_its_seq_is_still_found(intake: Intake):
    """The trail's numbering may give a deleted newest entry's seq to the next one (SQLite does): the entry this
    process wrote is looked for by its hash at its seq, so one written in its place does not pass for it."""
    await intake.create()
    await checkpointed(intake)
    await intake.create()
    written, written_hash = head(intake)
    delete_entries(intake, above=written - 1)
    with intake.engine.begin() as conn:  # a forged entry at the same seq
        conn.execute(intake.runtime.tables.audit.insert().values(
            seq=written, id="forged", at=datetime.now(UTC), actor="x", action="x", target_id=None, request_id=None,
            prev_hash="x", hash=written_hash[::-1]))

    published = await intake.runtime.checkpoints.round()
    assert published is not None and (published["seq"], published["hash"]) == (written, written_hash)
    verdict = await verify(intake)
    assert verdict["ok"] is False and verdict["checkpoint_status"] == "diverged", verdict


async def test_after_a_restore_every_checkpoint_and_the_auditors_verdict_name_it(intake: Intake):
    """Signed as restored, a trail cut just before was said intact by `GET /audit/verify` once intake signed its
    next checkpoint, with no word of a restore (an outside review's find): every checkpoint after it names it."""
    for _ in range(3):
        await intake.create()
    signed = await checkpointed(intake)
    delete_entries(intake, above=signed["seq"] - 2)
    seq, hash_ = head(intake)
    made = "2026-12-01T10:00:00+00:00"
    restore = checkpoints.sign(intake.runtime.checkpoints.private, process="intake", seq=seq, hash=hash_, count=seq,
                               at=datetime.now(UTC), restored={"backup_made": made, "replaced": None})
    nc = await nats.connect(intake.settings.nats_url)
    try:
        await patient_jetstream(nc).publish(checkpoints.subject("intake"), json.dumps(restore).encode())
    finally:
        await nc.close()
    # As the process started after the restore: it reads the stream again, and remembers no entry it wrote.
    intake.runtime.checkpoints._known, intake.runtime.checkpoints.written = False, {}

    await intake.create()
    later = await checkpointed(intake)
    assert later["seq"] > seq and later["last_restore"] == {"backup_made": made, "at": restore["at"]}
    verdict = await verify(intake)
    assert verdict["ok"] is True and verdict["checkpoint"]["seq"] == later["seq"]
    assert verdict["checkpoint"]["last_restore"] == {"backup_made": made, "at": restore["at"]}


async def test_deleting_every_entry_is_reported_as_truncation(intake: Intake):
    await intake.create()
    signed = await checkpointed(intake)
    delete_entries(intake, above=0)
    with intake.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(intake.runtime.tables.audit)).scalar() == 0

    verdict = await verify(intake)
    assert verdict["ok"] is False and verdict["truncated"] is True and verdict["entries"] == 0, verdict
    assert verdict["problem"].endswith("but the trail is empty")
    result = await offline_verify(intake)
    assert result.exit_code == 1 and "the trail is empty" in result.output, result.output
    assert signed["seq"] >= 1


async def test_a_checkpoint_signed_with_another_key_is_refused(intake: Intake):
    await intake.create()
    signed = await checkpointed(intake)
    stranger = Ed25519PrivateKey.generate()
    forged = checkpoints.sign(stranger, process="intake", seq=signed["seq"] + 50, hash="f" * 64, count=99,
                              at=datetime.now(UTC))
    forged["key"] = signed["key"]  # claims to be intake's key: the signature does not hold
    nc = await nats.connect(intake.settings.nats_url)
    try:
        await patient_jetstream(nc).publish(checkpoints.subject("intake"), json.dumps(forged).encode())
    finally:
        await nc.close()

    verdict = await verify(intake)
    assert verdict["ok"] is False and verdict["checkpoint_status"] == "forged", verdict
    assert verdict["truncated"] is False  # the forged sequence is not believed
    result = await offline_verify(intake)
    assert result.exit_code == 1 and "forged" in result.output, result.output


async def test_with_nats_away_the_verdict_says_the_checkpoint_was_not_checked(intake: Intake):
    await intake.create()
    await checkpointed(intake)
    intake.runtime.checkpoints.jetstream = lambda: None  # as while the connection is down
    verdict = await verify(intake)
    assert verdict["ok"] is False and verdict["checkpoint_status"] == "unavailable", verdict
    assert "could not be read" in verdict["problem"]
    assert await intake.runtime.checkpoints.round(force=True) is None  # no NATS: retried next round

    result = await offline_verify_at(intake, "nats://127.0.0.1:1")
    assert result.exit_code == 1 and "could not be read" in result.output, result.output


async def offline_verify_at(intake: Intake, url: str) -> Any:
    env = {"REHAB_STATE_DIR": str(intake.settings.state_dir), "REHAB_SECRETS_DIR": str(intake.settings.secrets_path),
           "REHAB_INTAKE_DATABASE_URL": intake.settings.db_url, "REHAB_NATS_URL": url}
    return await asyncio.to_thread(runner.invoke, rehab, ["audit", "verify"], env=env)
