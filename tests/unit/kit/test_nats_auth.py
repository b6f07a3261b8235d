"""kit.nats_auth: one NATS key per process, made once and kept owner-only; the permission table matches what the
services really consume; a service finds its own key and no other."""

from __future__ import annotations

import base64
import importlib
import os
import stat
from datetime import timedelta
from pathlib import Path
from unittest.mock import MagicMock

import nkeys
import pytest

from kit import nats_auth, revocation
from kit.revocation import RevokedAccess
from kit.secrets import NATS_SEED_FILES, ensure_secrets
from kit.settings import ServiceSettings


class OneServiceSettings(ServiceSettings):
    process_name = "referrals"


@pytest.fixture(autouse=True)
def no_rehab_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in [k for k in os.environ if k.startswith("REHAB_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no `.env` of the working folder


@pytest.mark.parametrize("service", nats_auth.SERVICES)
def test_the_table_names_the_durables_each_service_really_consumes_with(service: str) -> None:
    spec = importlib.import_module(f"services.{service}.main").SPEC
    own = spec.subscriptions(MagicMock(name="runtime"))  # handlers only keep what they use
    # …and every service refuses ended sessions, learnt on its durable of the gateway's stream (kit.service).
    subscriptions = RevokedAccess(spec.tables, retention=timedelta(days=1)).subscribe(own, service=service)
    assert any(revocation.SESSIONS_REVOKED in sub.handlers for sub in subscriptions)
    assert {sub.producer: sub.durable for sub in subscriptions} == nats_auth.CONSUMES[service]
    for sub in subscriptions:  # what it takes is on the producer's subjects, which its durable may read
        assert all(subject.startswith(f"rehab.{sub.producer}.") for subject in sub.handlers)


def test_a_service_may_publish_only_its_own_events_and_use_only_its_own_durables() -> None:
    for service in nats_auth.PROCESSES:
        publish, subscribe = nats_auth.permissions(service)
        # Its own events, its own audit checkpoints (kit.checkpoints) into the stream AUDIT; intake the erasure
        # ledger (kit.erasures); the gateway the operator's commands (a seal from /api/admin/seal) and their record.
        extra = {"intake": ["rehab.erasures.case"], "gateway": ["rehab.control.>", "rehab.seal.state"]}.get(service, [])
        assert [s for s in publish if s.startswith("rehab.")] == sorted([f"rehab.{service}.>", f"rehab.audit.{service}.>",
                                                                         *extra])
        # its own newest checkpoint, and the recorded seal state (kit.control): nothing else by a direct get
        assert [s for s in publish if ".DIRECT.GET." in s] == [f"$JS.API.DIRECT.GET.AUDIT.rehab.audit.{service}.checkpoint",
                                                              "$JS.API.DIRECT.GET.CONTROL.rehab.seal.state"]
        others = [d for other, consumed in nats_auth.CONSUMES.items() if other != service for d in consumed.values()]
        assert not any(durable in subject for durable in others for subject in publish + subscribe)
        assert not any(".DELETE." in s or ".PURGE." in s or ".MSG.GET." in s or s == ">" for s in publish)
        # Of the system's subjects, it listens only to the operator's commands (a seal): events come by durables.
        assert [s for s in subscribe if s.startswith("rehab.")] == ["rehab.control.>"]


def test_the_gateway_only_publishes_its_own_events_into_its_own_stream() -> None:
    publish, subscribe = nats_auth.permissions("gateway")
    assert publish == sorted({"rehab.gateway.>", "$JS.API.INFO", "$JS.API.STREAM.INFO.GATEWAY",
                              "$JS.API.STREAM.CREATE.GATEWAY", "$JS.API.STREAM.UPDATE.GATEWAY",
                              "rehab.audit.gateway.>", "$JS.API.STREAM.INFO.AUDIT", "$JS.API.STREAM.CREATE.AUDIT",
                              "$JS.API.STREAM.UPDATE.AUDIT", "$JS.API.DIRECT.GET.AUDIT.rehab.audit.gateway.checkpoint",
                              "rehab.control.>",  # the seal command, from POST /api/admin/seal, and its record:
                              "rehab.seal.state", "$JS.API.DIRECT.GET.CONTROL.rehab.seal.state",
                              "$JS.API.STREAM.INFO.CONTROL", "$JS.API.STREAM.CREATE.CONTROL",
                              "$JS.API.STREAM.UPDATE.CONTROL"})
    assert subscribe == ["_INBOX.>", "rehab.control.>"]  # no consumer of its own, none of anybody else's
    assert "gateway" in nats_auth.PROCESSES and "gateway" not in nats_auth.SERVICES
    # Intake learns who the staff are through a durable of its own on the gateway's stream.
    assert nats_auth.CONSUMES["intake"]["gateway"] == "intake-gateway"
    intake_publish, _ = nats_auth.permissions("intake")
    assert "$JS.API.CONSUMER.MSG.NEXT.GATEWAY.intake-gateway" in intake_publish
    assert "$JS.API.STREAM.CREATE.GATEWAY" in intake_publish and "rehab.gateway.>" not in intake_publish
    with pytest.raises(KeyError):
        nats_auth.permissions("stranger")


def test_only_intake_writes_the_erasure_ledger_and_only_the_gateway_sends_commands() -> None:
    for process in nats_auth.PROCESSES:
        publish, subscribe = nats_auth.permissions(process)
        ledger = {s for s in publish if "erasures" in s.lower()}
        assert ledger == ({"rehab.erasures.case", "$JS.API.STREAM.INFO.ERASURES", "$JS.API.STREAM.CREATE.ERASURES",
                           "$JS.API.STREAM.UPDATE.ERASURES"} if process == "intake" else set())
        assert ("rehab.control.>" in publish) == (process == "gateway")
        assert "rehab.control.>" in subscribe  # every process hears a seal


def test_a_seed_is_a_user_nkey_that_signs_for_its_public_key() -> None:
    seed = nats_auth.new_seed()
    assert seed.startswith(b"SU") and nats_auth.new_seed() != seed
    public = nats_auth.public_key(seed + b"\n")
    assert public.startswith("U") and len(public) == 56
    pair = nkeys.from_seed(bytearray(seed))
    signature = pair.sign(b"nonce")
    assert pair.verify(b"nonce", signature)
    assert pair.public_key.decode() == public
    assert base64.b64encode(signature)  # what nats-py sends


def test_ensure_secrets_makes_one_key_per_nats_user_owner_only_and_never_replaces_it(tmp_path: Path) -> None:
    created = ensure_secrets(tmp_path / "secrets")
    files = {user: tmp_path / "secrets" / name for user, name in NATS_SEED_FILES.items()}
    assert set(files) == {"intake", "referrals", "funds", "reports", "gateway", "ops"}
    assert set(NATS_SEED_FILES.values()) <= set(created)
    seeds = {user: path.read_bytes() for user, path in files.items()}
    assert len(set(seeds.values())) == len(seeds), "a key of its own for each"
    for path in files.values():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_secrets(tmp_path / "secrets") == []
    assert {user: path.read_bytes() for user, path in files.items()} == seeds


def test_a_service_uses_the_seed_it_is_given_else_its_own_when_there_is_one(tmp_path: Path) -> None:
    secrets_dir = tmp_path / "secrets"
    assert OneServiceSettings(secrets_dir=secrets_dir).nats_seed_path is None  # none yet: only what the URL says
    ensure_secrets(secrets_dir)
    assert OneServiceSettings(secrets_dir=secrets_dir).nats_seed_path == secrets_dir / "referrals" / "nats.nk"
    given = tmp_path / "elsewhere.nk"
    assert OneServiceSettings(secrets_dir=secrets_dir, nats_nkey_seed_file=given).nats_seed_path == given


def test_the_gateway_too_uses_the_seed_it_is_given_else_its_own(tmp_path: Path) -> None:
    from gateway.config import GatewaySettings

    secrets_dir = tmp_path / "secrets"
    assert GatewaySettings(secrets_dir=secrets_dir).nats_seed_path is None
    ensure_secrets(secrets_dir)
    assert GatewaySettings(secrets_dir=secrets_dir).nats_seed_path == secrets_dir / "gateway" / "nats.nk"
    given = tmp_path / "elsewhere.nk"
    assert GatewaySettings(secrets_dir=secrets_dir, nats_nkey_seed_file=given).nats_seed_path == given


def test_the_server_config_lists_public_keys_only() -> None:
    seeds = {user: nats_auth.new_seed() for user in nats_auth.USERS}
    text = nats_auth.server_config({user: nats_auth.public_key(seed) for user, seed in seeds.items()})
    for user, seed in seeds.items():
        assert nats_auth.public_key(seed) in text
        assert seed.decode() not in text
    assert "no_auth_user" not in text and "password" not in text


def test_the_audit_stream_overlaps_no_process_stream_and_each_checkpoint_subject_is_its_own() -> None:
    from kit import bus, checkpoints

    assert checkpoints.SUBJECTS == ["rehab.audit.>"] and checkpoints.STREAM == nats_auth.AUDIT_STREAM
    for process in nats_auth.PROCESSES:
        assert not any(s.startswith("rehab.audit.") for s in bus.stream_subjects(process))
        assert checkpoints.subject(process).startswith(f"rehab.audit.{process}.")
        publish, _ = nats_auth.permissions(process)
        others = [p for p in nats_auth.PROCESSES if p != process]
        assert not any(f"rehab.audit.{other}." in s for other in others for s in publish)
