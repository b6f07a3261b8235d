"""`rehab users …` and `rehab clients …`: operators' commands on the gateway's database, felt at once by a running
gateway."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import pytest
from sqlalchemy import update
from click.testing import Result
from typer.testing import CliRunner

from gateway.manage import app
from gateway.models import User
from kit import db
from tests.integration.gateway.door import CHEAP_HASHING, ROOT, STAFF_PASSWORD, open_gateway

pytestmark = pytest.mark.integration


@pytest.fixture
def operator_env(tmp_path, secrets_dir, database_url_factory) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("REHAB_")}
    env.update({"REHAB_STATE_DIR": str(tmp_path / "state"), "REHAB_SECRETS_DIR": str(secrets_dir),
                "REHAB_GATEWAY_DATABASE_URL": database_url_factory("gateway"), "PYTHONPATH": str(ROOT),
                **{f"REHAB_{name.upper()}": str(value) for name, value in CHEAP_HASHING.items()}})
    return env


def manage(env: dict[str, str], *args: str, stdin: str = "") -> Result:
    """`python -m gateway.manage …` (what `rehab users …` and `rehab clients …` run), in this process: it is quick."""
    return CliRunner().invoke(app, list(args), env=env, input=stdin)


def rehab(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The `rehab` command as an operator runs it: it hands these groups to `python -m gateway.manage`."""
    return subprocess.run([sys.executable, "-m", "ops.cli", *args], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


async def until_status(call, wanted: int, timeout: float = 10.0) -> int:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while (status := (await call()).status_code) != wanted and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    return status


async def test_operators_manage_users_and_clients_and_a_running_gateway_follows(operator_env, gateway_settings,
                                                                               secrets_dir):
    added = manage(operator_env, "users", "add", "Uladzimir.Stsiapanau", "--role", "caseworker", "--role", "auditor",
                   "--password-stdin", stdin=STAFF_PASSWORD + "\n")
    weak = manage(operator_env, "users", "add", "ihar.rybak", "--role", "caseworker", "--password-stdin",
                  stdin="password\n")
    client = manage(operator_env, "clients", "add", "3c9a1f0e-7b2d-4e5a-8c6f-1d2e3f4a5b6c", "Clinic Vilnius")

    assert added.exit_code == 0, added.output
    assert weak.exit_code == 1 and "at least 12 characters" in weak.output
    assert client.exit_code == 0, client.output
    issued = dict(line.split(": ", 1) for line in client.output.splitlines() if ": " in line)
    listed = rehab(operator_env, "clients", "list")  # through the `rehab` command
    assert listed.returncode == 0, listed.stderr
    assert issued["client_id"] in listed.stdout and issued["client_secret"] not in listed.stdout

    settings = gateway_settings(secrets_dir, database_url=operator_env["REHAB_GATEWAY_DATABASE_URL"],
                                signin_backoff_seconds=0, lockout_after_failures=2)
    async with open_gateway(settings) as door:
        for _ in range(2):
            await door.sign_in("uladzimir.stsiapanau", "Wrong-password-123")
        assert (await door.sign_in("uladzimir.stsiapanau", STAFF_PASSWORD)).status_code == 429  # locked
        assert manage(operator_env, "users", "unlock", "uladzimir.stsiapanau").exit_code == 0
        staff = await door.bearer_for(await door.sign_in("uladzimir.stsiapanau", STAFF_PASSWORD))
        # The operator's secret is a setup secret: the partner's system exchanges it for its own, with no code (the
        # operator is not one of the admins who approve each other), as a person replaces a password one gave them.
        assert (await door.client_sign_in(issued["client_id"], issued["client_secret"])).status_code == 400
        activated = await door.activate_client(issued["client_id"], issued["client_secret"])
        assert activated.status_code == 200, activated.text
        partner = await door.bearer_for(await door.client_sign_in(issued["client_id"],
                                                                  activated.json()["client_secret"]))

        async def staff_me():  # noqa: ANN202
            return await door.client.get("/auth/me", headers=staff)

        async def partner_me():  # noqa: ANN202
            return await door.client.get("/auth/me", headers=partner)

        assert (await staff_me()).status_code == 200 and (await partner_me()).status_code == 200
        assert manage(operator_env, "users", "disable", "uladzimir.stsiapanau").exit_code == 0
        assert manage(operator_env, "clients", "revoke", issued["client_id"]).exit_code == 0
        assert await until_status(staff_me, 401) == 401
        assert await until_status(partner_me, 401) == 401

    users = manage(operator_env, "users", "list").output
    assert "uladzimir.stsiapanau\tauditor,caseworker\tdisabled" in users
    assert "admin" not in users  # users existed before the gateway started: no first admin was made


def test_an_enabling_that_waits_for_approval_says_so_and_the_account_stays_disabled(operator_env):
    for name, role in (("maryia.kalesnikava", "caseworker"), ("first.admin", "admin"), ("second.admin", "admin")):
        added = manage(operator_env, "users", "add", name, "--role", role, "--password-stdin",
                       stdin=STAFF_PASSWORD + "\n")
        assert added.exit_code == 0, added.output
    assert manage(operator_env, "users", "disable", "maryia.kalesnikava").exit_code == 0  # at once, from the machine

    enabled = manage(operator_env, "users", "enable", "maryia.kalesnikava")

    assert enabled.exit_code == 0, enabled.output
    assert "waits for an admin's approval" in enabled.output and "enabled maryia" not in enabled.output
    assert "maryia.kalesnikava\tcaseworker\tdisabled" in manage(operator_env, "users", "list").output

    # An account an admin asked for, waiting for the other's approval, is not listed as active (it cannot sign in).
    engine = db.make_engine(operator_env["REHAB_GATEWAY_DATABASE_URL"])
    with engine.begin() as conn:
        conn.execute(update(User).where(User.username == "maryia.kalesnikava")
                     .values(pending_approval=True, disabled=False))
    engine.dispose()
    assert "maryia.kalesnikava\tcaseworker\tpending-approval" in manage(operator_env, "users", "list").output


def test_an_operators_client_takes_effect_at_once_and_waits_only_for_its_partners_activation(operator_env):
    """As `rehab users add` makes an account at once (the operator of the machine is not one of the admins who
    approve each other): no approval, no activation code, but a setup secret the partner's system exchanges."""
    for name in ("first.admin", "second.admin"):
        added = manage(operator_env, "users", "add", name, "--role", "admin", "--password-stdin",
                       stdin=STAFF_PASSWORD + "\n")
        assert added.exit_code == 0, added.output
    partner_id = "3c9a1f0e-7b2d-4e5a-8c6f-1d2e3f4a5b6c"

    client = manage(operator_env, "clients", "add", partner_id, "Clinic Vilnius")

    assert client.exit_code == 0, client.output
    assert "POST /auth/clients/activate" in client.output
    issued = dict(line.split(": ", 1) for line in client.output.splitlines() if ": " in line)
    listed = manage(operator_env, "clients", "list").output
    assert f"{issued['client_id']}\t{partner_id}\tnot-activated\tClinic Vilnius" in listed


async def test_an_operators_password_reset_ends_the_persons_sessions_and_lifts_a_lock(operator_env, gateway_settings,
                                                                                  secrets_dir):
    """What an operator does for a stolen password: whoever holds a session of the account (or its refresh token)
    is out, and the person, locked out by the thief's tries, signs in with the new password."""
    added = manage(operator_env, "users", "add", "katsiaryna.novik", "--role", "caseworker", "--password-stdin",
                   stdin=STAFF_PASSWORD + "\n")
    assert added.exit_code == 0, added.output
    settings = gateway_settings(secrets_dir, database_url=operator_env["REHAB_GATEWAY_DATABASE_URL"],
                                signin_backoff_seconds=0, lockout_after_failures=2)
    async with open_gateway(settings) as door:
        thief = await door.sign_in("katsiaryna.novik", STAFF_PASSWORD)
        held = await door.bearer_for(thief)
        refresh = thief.json()["refresh_token"]
        for _ in range(2):
            await door.sign_in("katsiaryna.novik", "Wrong-password-123")
        assert (await door.sign_in("katsiaryna.novik", STAFF_PASSWORD)).status_code == 429

        reset = manage(operator_env, "users", "reset-password", "katsiaryna.novik", "--password-stdin",
                       stdin="Given at the desk 2026\n")
        assert reset.exit_code == 0, reset.output

        async def held_me():  # noqa: ANN202
            return await door.client.get("/auth/me", headers=held)

        assert await until_status(held_me, 401) == 401
        renewed = await door.client.post("/auth/token", data={"grant_type": "refresh_token",
                                                              "refresh_token": refresh})
        assert renewed.status_code == 400 and renewed.json()["error"] == "invalid_grant"
        assert (await door.sign_in("katsiaryna.novik", "Given at the desk 2026")).status_code == 200  # no lock
