"""Seal and unseal commands (kit.control, SPEC §8): only the operator's signature (the gateway's for a seal), only fresh
commands, each once, and only on their own subject; a process's listener calls its custody and answers."""

from __future__ import annotations

import asyncio

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kit import control, nats_auth
from kit.control import ControlListener, Refused, Verifier, sign_command
from kit.errors import Sealed, Unavailable

OPERATOR_SEED = nats_auth.new_seed()
GATEWAY_SEED = nats_auth.new_seed()
SERVICE_SEED = nats_auth.new_seed()  # intake's, say: a service may never seal anyone
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def verifier() -> Verifier:
    return Verifier({nats_auth.public_key(OPERATOR_SEED): "ops", nats_auth.public_key(GATEWAY_SEED): "gateway"})


def test_the_operator_seals_and_unseals_and_the_gateway_only_seals():
    """The gateway sends an admin's seal; an unseal signed with its key (a gateway broken into) opens nothing."""
    checks = verifier()
    command = checks.verify(sign_command(OPERATOR_SEED, "seal", now=NOW), subject_="rehab.control.seal", now=NOW)
    assert (command.action, command.signer) == ("seal", "ops")
    later = NOW + timedelta(seconds=5)
    command = checks.verify(sign_command(GATEWAY_SEED, "seal", now=NOW), subject_="rehab.control.seal", now=later)
    assert (command.action, command.signer) == ("seal", "gateway")
    command = checks.verify(sign_command(OPERATOR_SEED, "unseal", now=NOW), subject_="rehab.control.unseal", now=later)
    assert (command.action, command.signer) == ("unseal", "ops")
    with pytest.raises(Refused) as refused:
        checks.verify(sign_command(GATEWAY_SEED, "unseal", now=NOW), subject_="rehab.control.unseal", now=later)
    assert refused.value.reason == "may-only-seal"
    with pytest.raises(Refused):  # nor as the seal state recorded for processes that start later
        checks.recorded(sign_command(GATEWAY_SEED, "unseal", now=NOW))


def test_a_command_signed_by_anyone_else_is_refused():
    with pytest.raises(Refused) as refused:
        verifier().verify(sign_command(SERVICE_SEED, "unseal", now=NOW), subject_="rehab.control.unseal", now=NOW)
    assert refused.value.reason == "unknown-signer"


def test_a_forged_signature_under_an_allowed_signers_name_is_refused():
    message = json.loads(sign_command(SERVICE_SEED, "unseal", now=NOW))
    message["signer"] = nats_auth.public_key(OPERATOR_SEED)  # claims to be the operator
    with pytest.raises(Refused) as refused:
        verifier().verify(json.dumps(message).encode(), subject_="rehab.control.unseal", now=NOW)
    assert refused.value.reason == "bad-signature"


def test_a_changed_command_no_longer_matches_its_signature():
    message = json.loads(sign_command(OPERATOR_SEED, "seal", now=NOW))
    message["command"] = message["command"].replace('"seal"', '"unseal"')
    with pytest.raises(Refused) as refused:
        verifier().verify(json.dumps(message).encode(), subject_="rehab.control.unseal", now=NOW)
    assert refused.value.reason == "bad-signature"


def test_a_signed_seal_sent_on_the_unseal_subject_is_refused():
    with pytest.raises(Refused) as refused:
        verifier().verify(sign_command(OPERATOR_SEED, "seal", now=NOW), subject_="rehab.control.unseal", now=NOW)
    assert refused.value.reason == "wrong-subject"


@pytest.mark.parametrize("age", [timedelta(seconds=31), timedelta(minutes=10), -timedelta(seconds=11)])
def test_a_stale_command_or_one_from_the_future_is_refused(age):
    with pytest.raises(Refused) as refused:
        verifier().verify(sign_command(OPERATOR_SEED, "unseal", now=NOW - age), subject_="rehab.control.unseal",
                          now=NOW)
    assert refused.value.reason == "stale"


def test_a_little_clock_skew_is_allowed():
    ahead = NOW + timedelta(seconds=5)  # the sender's clock runs 5 s fast
    assert verifier().verify(sign_command(OPERATOR_SEED, "seal", now=ahead), subject_="rehab.control.seal", now=NOW)


def test_a_replayed_command_is_refused():
    checks = verifier()
    message = sign_command(OPERATOR_SEED, "unseal", now=NOW)
    checks.verify(message, subject_="rehab.control.unseal", now=NOW)
    with pytest.raises(Refused) as refused:
        checks.verify(message, subject_="rehab.control.unseal", now=NOW + timedelta(seconds=3))
    assert refused.value.reason == "replayed"
    # Once the nonce is forgotten the command is too old anyway.
    with pytest.raises(Refused) as refused:
        checks.verify(message, subject_="rehab.control.unseal", now=NOW + timedelta(minutes=5))
    assert refused.value.reason == "stale"


@pytest.mark.parametrize("data", [b"", b"{}", b"not json", b'{"command": "{}", "signer": "x", "signature": "!"}'])
def test_garbage_is_refused(data):
    with pytest.raises(Refused):
        verifier().verify(data, subject_="rehab.control.seal", now=NOW)


def test_signers_come_from_the_setting_or_from_the_public_keys_file(tmp_path: Path):
    operator = nats_auth.public_key(OPERATOR_SEED)
    assert control.allowed_signers(f" {operator} ", None) == {operator: operator}
    with pytest.raises(ValueError):
        control.allowed_signers("U-not-a-key", None)
    assert control.allowed_signers("", tmp_path) == {}  # no file: nobody (and a warning at start)
    listed = {operator: "ops", nats_auth.public_key(GATEWAY_SEED): "gateway",
              nats_auth.public_key(SERVICE_SEED): "intake"}
    (tmp_path / control.SIGNERS_FILE).write_text(json.dumps(listed))
    assert control.allowed_signers("", tmp_path) == {operator: "ops", nats_auth.public_key(GATEWAY_SEED): "gateway"}


# ---- the listener -----------------------------------------------------------------------------------------------


class FakeCustody:
    """Only here: the protocol the real custody (kit/custody.py) keeps."""

    def __init__(self, *, can_unseal: bool = True) -> None:
        self.sealed = False
        self.can_unseal = can_unseal

    def seal(self) -> None:
        self.sealed = True

    def unseal(self) -> None:
        if not self.can_unseal:
            raise Sealed()
        self.sealed = False


class Msg:
    def __init__(self, data: bytes, subject: str, reply: str = "_INBOX.x") -> None:
        self.data, self.subject, self.reply = data, subject, reply
        self.answers: list[dict] = []

    async def respond(self, data: bytes) -> None:
        self.answers.append(json.loads(data))


def test_the_fake_keeps_the_protocol():
    assert isinstance(FakeCustody(), control.Sealable)


async def test_the_listener_seals_unseals_and_answers_and_ignores_what_it_refuses():
    custody = FakeCustody()
    listener = ControlListener("intake", custody, verifier(), instance="host:1")
    seal = Msg(sign_command(OPERATOR_SEED, "seal"), "rehab.control.seal")
    await listener.on_message(seal)
    assert custody.sealed and seal.answers == [{"process": "intake", "instance": "host:1", "sealed": True}]

    forged = Msg(sign_command(SERVICE_SEED, "unseal"), "rehab.control.unseal")
    await listener.on_message(forged)
    assert custody.sealed and forged.answers == []
    await listener.on_message(Msg(seal.data, seal.subject))  # the same seal again: ignored (it is sealed anyway)

    by_the_gateway = Msg(sign_command(GATEWAY_SEED, "unseal"), "rehab.control.unseal")
    await listener.on_message(by_the_gateway)
    assert custody.sealed and by_the_gateway.answers == [], "the gateway may seal, never unseal"
    unseal = Msg(sign_command(OPERATOR_SEED, "unseal"), "rehab.control.unseal")
    await listener.on_message(unseal)
    assert not custody.sealed and unseal.answers[0]["sealed"] is False
    replayed = Msg(unseal.data, unseal.subject)
    custody.seal()
    await listener.on_message(replayed)
    assert custody.sealed and replayed.answers == [], "a replayed unseal opens nothing"


async def test_an_unseal_that_cannot_load_the_keys_answers_still_sealed():
    custody = FakeCustody(can_unseal=False)
    custody.seal()
    listener = ControlListener("funds", custody, verifier(), instance="host:2")
    unseal = Msg(sign_command(OPERATOR_SEED, "unseal"), "rehab.control.unseal")
    await listener.on_message(unseal)
    assert unseal.answers == [{"process": "funds", "instance": "host:2", "sealed": True}]


async def test_a_seal_leaves_the_mark_an_unseal_removes_it_and_a_failed_unseal_keeps_it(tmp_path: Path):
    custody = FakeCustody(can_unseal=False)
    listener = ControlListener("intake", custody, verifier(), state_dir=tmp_path, instance="host:3")
    await listener.on_message(Msg(sign_command(OPERATOR_SEED, "seal"), "rehab.control.seal"))
    mark = tmp_path / control.SEAL_MARK
    assert custody.sealed and mark.exists() and (mark.stat().st_mode & 0o777) == 0o600
    await listener.on_message(Msg(sign_command(OPERATOR_SEED, "unseal"), "rehab.control.unseal"))
    assert custody.sealed and mark.exists(), "an unseal that did not open the keys leaves the system sealed"
    custody.can_unseal = True
    await listener.on_message(Msg(sign_command(OPERATOR_SEED, "unseal"), "rehab.control.unseal"))
    assert not custody.sealed and not mark.exists()


async def test_a_process_finds_the_mark_while_running_and_seals_itself(tmp_path: Path):
    """A seal that reached this process only as the mark (sent while it was starting, or one NATS did not take)."""
    custody = FakeCustody()
    listener = ControlListener("funds", custody, verifier(), state_dir=tmp_path, instance="host:4")
    following = asyncio.create_task(control.follow_commands(listener, lambda: None, every=0.01))
    try:
        await asyncio.sleep(0.05)
        assert not custody.sealed
        control.mark_sealed(tmp_path)
        for _ in range(100):
            if custody.sealed:
                break
            await asyncio.sleep(0.01)
        assert custody.sealed
    finally:
        following.cancel()
        await asyncio.gather(following, return_exceptions=True)


def test_a_recorded_command_counts_however_old_but_only_when_an_allowed_signer_signed_it():
    """The seal state on NATS (kit.control): a seal recorded a week ago still holds; its nonce may have been seen."""
    checks = verifier()
    week_old = sign_command(OPERATOR_SEED, "seal", now=NOW - timedelta(days=7))
    assert checks.recorded(week_old).action == "seal"
    assert checks.recorded(week_old).action == "seal"  # read again every few seconds: not a replay
    for data, reason in ((sign_command(SERVICE_SEED, "seal"), "unknown-signer"), (b"{}", "malformed")):
        with pytest.raises(Refused) as refused:
            checks.recorded(data)
        assert refused.value.reason == reason


class Recorded:
    """A JetStream context's direct get of the recorded seal state, as kit.control reads it."""

    def __init__(self, data: bytes | None) -> None:
        self.data = data

    async def get_last_msg(self, stream: str, subject: str, direct: bool = False):  # noqa: ANN201
        import nats.js.errors

        assert (stream, subject, direct) == (control.STATE_STREAM, control.STATE_SUBJECT, True)
        if self.data is None:
            raise nats.js.errors.NotFoundError()
        return type("RawStreamMsg", (), {"data": self.data})()


async def test_a_recorded_seal_seals_a_process_and_leaves_the_mark_and_a_recorded_unseal_opens_nothing(tmp_path: Path):
    custody = FakeCustody()
    listener = ControlListener("intake", custody, verifier(), state_dir=tmp_path, instance="host:6")
    await listener.read_record(Recorded(None))
    listener.seal_if_marked()
    assert not custody.sealed and listener.recorded is None  # nothing recorded: nothing to do

    await listener.read_record(Recorded(sign_command(OPERATOR_SEED, "seal", now=NOW)))
    listener.seal_if_marked()
    assert custody.sealed and (tmp_path / control.SEAL_MARK).exists()

    await listener.on_message(Msg(sign_command(OPERATOR_SEED, "unseal"), "rehab.control.unseal"))
    assert not custody.sealed and listener.recorded == "unseal"
    await listener.read_record(Recorded(sign_command(OPERATOR_SEED, "unseal", now=NOW)))
    listener.seal_if_marked()
    assert not custody.sealed

    custody.seal()
    await listener.read_record(Recorded(sign_command(OPERATOR_SEED, "unseal", now=NOW)))
    listener.seal_if_marked()
    assert custody.sealed, "a recorded unseal never opens keys: only the command does"
    await listener.read_record(Recorded(sign_command(SERVICE_SEED, "seal", now=NOW)))
    assert listener.recorded is None  # a record signed by anyone else is ignored


async def test_a_record_read_while_an_unseal_was_applied_does_not_seal_again(tmp_path: Path):
    """The read went out before the unseal was recorded and came back after the unseal command: it is older."""
    custody = FakeCustody()
    custody.seal()
    listener = ControlListener("intake", custody, verifier(), state_dir=tmp_path, instance="host:7")

    class Slow(Recorded):
        async def get_last_msg(self, stream: str, subject: str, direct: bool = False):  # noqa: ANN201
            await listener.on_message(Msg(sign_command(OPERATOR_SEED, "unseal"), "rehab.control.unseal"))
            return await super().get_last_msg(stream, subject, direct)

    await listener.read_record(Slow(sign_command(OPERATOR_SEED, "seal", now=NOW)))
    listener.seal_if_marked()
    assert not custody.sealed and listener.recorded == "unseal"


def test_a_process_started_while_the_mark_is_there_stays_sealed(tmp_path: Path):
    custody = FakeCustody()
    custody.seal()
    control.mark_sealed(tmp_path)
    control.start_keys(custody, tmp_path)
    assert custody.sealed
    control.clear_seal_mark(tmp_path)
    control.start_keys(custody, tmp_path)
    assert not custody.sealed


# ---- the kit's custody keeps the protocol -------------------------------------------------------------------------


def test_an_unseal_whose_key_files_are_gone_stays_sealed(tmp_path: Path):
    from kit.custody import Custody, file_loader
    from kit.secrets import ensure_secrets

    ensure_secrets(tmp_path)
    kek = tmp_path / "intake" / "kek.json"
    custody = Custody("file", file_loader(kek, {}), process="intake")
    assert isinstance(custody, control.Sealable)
    custody.unseal()
    custody.seal()
    kek.unlink()
    with pytest.raises(Unavailable):
        custody.unseal()
    assert custody.sealed
    with pytest.raises(Sealed):
        custody.new_wrapped_data_key()


def test_the_signers_are_the_public_keys_in_the_process_s_own_folder(tmp_path: Path):
    from kit import nats_auth
    from kit.secrets import ensure_secrets

    ensure_secrets(tmp_path)
    signers = control.allowed_signers("", tmp_path / "intake")
    ops_key = nats_auth.public_key((tmp_path / "ops" / "nats.nk").read_bytes())
    assert signers[ops_key] == "ops" and set(signers.values()) == {"ops", "gateway"}
    listed = (tmp_path / "intake" / control.SIGNERS_FILE).read_bytes()
    for user in ("ops", "gateway"):  # public keys only: no seed
        assert (tmp_path / user / "nats.nk").read_bytes().strip() not in listed
    assert all(key.startswith("U") for key in signers)


def test_subjects_are_the_actions_only():
    assert control.subject("seal") == "rehab.control.seal"
    with pytest.raises(ValueError):
        control.subject("open")
