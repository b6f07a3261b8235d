"""The NATS that `rehab up` starts lets in only the system's own processes, each with a key of its own and allowed
only its own subjects (security issue #13, item 8: "an open broker").

Before, any process on the machine could connect to the embedded NATS and publish `rehab.intake.consent.changed`
or `rehab.intake.case.erased`, and referrals and funds would believe it. Now every service logs in with its own
nkey (seed under the secrets folder, owner-only; the server's config holds only public keys and the permissions
of kit.nats_auth, the same the deployments grant), and a connection without a key is refused.
"""

from __future__ import annotations

import asyncio
import json
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import nats
import nats.errors
import pytest

from kit import nats_auth
from tests.support.nats import free_port
from tests.support.system import System, eventually

pytestmark = pytest.mark.e2e

SERVICES = ("intake", "referrals", "funds", "reports")


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    monitor = free_port()
    running = System(tmp_path_factory.mktemp("nats-auth"), own_nats=True,
                     env={"REHAB_NATS_MONITOR_PORT": str(monitor)})
    running.monitor_port = monitor  # type: ignore[attr-defined]
    try:
        running.start()
        yield running
    finally:
        running.cleanup()


def environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode(errors="replace").split("=", 1) for item in raw if b"=" in item)


def public_key(system: System, user: str) -> str:
    return nats_auth.public_key(system.nats_seed(user).read_bytes())


async def connect(system: System, errors: list[str] | None = None, **options: str) -> nats.NATS:
    async def on_error(exc: Exception) -> None:
        if errors is not None:
            errors.append(str(exc).lower())

    return await nats.connect(system.nats_url, allow_reconnect=False, connect_timeout=3, error_cb=on_error,
                              **options)


def test_each_service_logs_in_with_its_own_key_and_is_told_only_of_it(system: System) -> None:
    secrets_dir = system.nats_seed().parent
    assert stat.S_IMODE(secrets_dir.stat().st_mode) == 0o700
    for user in nats_auth.USERS:
        assert stat.S_IMODE(system.nats_seed(user).stat().st_mode) == 0o600, user

    for name in (*SERVICES, "gateway"):  # the gateway publishes who the staff are: a key of its own too
        env = environ(system.pid(name))
        seeds = {key: value for key, value in env.items() if ".nk" in value}
        assert seeds == {"REHAB_NATS_NKEY_SEED_FILE": str(system.nats_seed(name).resolve())}, name

    # The server's own view: each process's connection is authorized as that process's key, and nothing else
    # is connected. (The services' readiness reports NATS connected once they are logged in; the gateway's
    # readiness does not wait for NATS, so its connection is awaited on the server.)
    def processes_connected() -> dict[str, str] | None:
        for name in SERVICES:
            ready = httpx.get(f"http://127.0.0.1:{system.ports[name]}/readyz", timeout=5).json()
            if ready.get("nats") != "connected":
                return None
        connz = httpx.get(f"http://127.0.0.1:{system.monitor_port}/connz?auth=1", timeout=5).json()  # type: ignore[attr-defined]
        found = {c.get("name", ""): c.get("authorized_user", "") for c in connz.get("connections", [])}
        return found if "gateway" in found else None

    logged_in = eventually(processes_connected, timeout=30)
    assert logged_in == {name: public_key(system, name) for name in (*SERVICES, "gateway")}


async def test_a_connection_without_a_key_is_refused(system: System, tmp_path: Path) -> None:
    with pytest.raises(nats.errors.Error, match="(?i)authorization violation"):
        await connect(system)
    stranger = tmp_path / "stranger.nk"
    stranger.write_bytes(nats_auth.new_seed())
    with pytest.raises(nats.errors.Error, match="(?i)authorization violation"):
        await connect(system, nkeys_seed=str(stranger))
    with pytest.raises(nats.errors.Error, match="(?i)authorization violation"):
        await nats.connect(f"nats://intake:guess@127.0.0.1:{system.ports['nats']}", allow_reconnect=False,
                           connect_timeout=3)


async def forge(system: System, as_user: str, subject: str) -> list[str]:
    """Try to put a made-up event on `subject` logged in as `as_user`; the errors the server reported."""
    errors: list[str] = []
    nc = await connect(system, errors, nkeys_seed=str(system.nats_seed(as_user)))
    try:
        envelope = {"specversion": "1.0", "id": str(uuid.uuid4()), "type": subject, "source": "/intake",
                    "data": {"case_id": str(uuid.uuid4())}}
        with pytest.raises((nats.errors.TimeoutError, asyncio.TimeoutError)):
            await nc.jetstream(timeout=1).publish(subject, json.dumps(envelope).encode(), timeout=1)
        await nc.flush()
    finally:
        await nc.close()
    return errors


async def test_a_service_key_can_not_forge_intakes_events(system: System) -> None:
    ops = await connect(system, nkeys_seed=str(system.nats_seed("ops")))
    try:
        js = ops.jetstream(timeout=3)
        before = (await js.stream_info("INTAKE")).state.last_seq
        for user, subject in [("referrals", "rehab.intake.case.erased"), ("funds", "rehab.intake.consent.changed"),
                              ("referrals", "rehab.intake.consent.changed"), ("funds", "rehab.intake.case.erased")]:
            errors = await forge(system, user, subject)
            assert any(f'permissions violation for publish to "{subject}"' in e for e in errors), (user, errors)
        assert (await js.stream_info("INTAKE")).state.last_seq == before, "nothing reached intake's stream"

        # Nor may a service listen to the whole event stream directly; it reads through its own consumers.
        errors: list[str] = []
        nc = await connect(system, errors, nkeys_seed=str(system.nats_seed("referrals")))
        try:
            await nc.subscribe("rehab.>")
            await nc.flush()
            await asyncio.sleep(0.3)
        finally:
            await nc.close()
        assert any("permissions violation for subscription" in e for e in errors), errors
    finally:
        await ops.close()


def test_the_server_config_holds_no_secret(system: System) -> None:
    text = (system.state / "nats.conf").read_text()
    for user in nats_auth.USERS:
        assert system.nats_seed(user).read_bytes().strip().decode() not in text
        assert public_key(system, user) in text
    assert "password" not in text and "no_auth_user" not in text
