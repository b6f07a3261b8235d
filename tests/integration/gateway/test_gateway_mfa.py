"""A second factor for every person (SPEC §3), with the default setting: a user without one gets a token that opens
only enrolment; enrolled, sign-in needs a current TOTP code, each code works once, and a recovery code works once;
an admin's reset makes the user enrol again."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pyotp
import pytest

from gateway.config import GatewaySettings
from tests.integration.gateway.door import ADMIN_PASSWORD, STAFF_PASSWORD, Door, open_gateway

pytestmark = pytest.mark.integration

DEFAULT_MFA_ROLES = GatewaySettings.model_fields["mfa_required_roles"].default


@pytest.fixture
async def door(gateway_settings, secrets_dir) -> AsyncIterator[Door]:
    """The first admin must have a second factor too: it enrols, then signs in with a recovery code (the app's
    current code was spent on the enrolment)."""
    settings = gateway_settings(secrets_dir, mfa_required_roles=DEFAULT_MFA_ROLES, signin_backoff_seconds=0)
    async with open_gateway(settings) as opened:
        _app, codes = await enrolled(opened, "admin", ADMIN_PASSWORD)
        opened._admin = bearer(await sign_in(opened, "admin", codes[0], ADMIN_PASSWORD))
        yield opened


def bearer(answer) -> dict[str, str]:  # noqa: ANN001
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


async def sign_in(door: Door, username: str, otp: str | None = None, password: str = STAFF_PASSWORD):  # noqa: ANN201
    form = {"grant_type": "password", "username": username, "password": password}
    if otp is not None:
        form["otp"] = otp
    return await door.client.post("/auth/token", data=form)


async def enrolled(door: Door, username: str, password: str = STAFF_PASSWORD) -> tuple[pyotp.TOTP, list[str]]:
    """Sign in with a password, enrol, confirm with the app's code: the app and the recovery codes."""
    first = await sign_in(door, username, password=password)
    assert first.json()["scope"] == "mfa_enrol" and "refresh_token" not in first.json()
    started = await door.client.post("/auth/mfa/totp/enrol", headers=bearer(first))
    assert started.status_code == 200 and started.headers["cache-control"] == "no-store"
    app = pyotp.parse_uri(started.json()["otpauth_uri"])
    assert app.secret == started.json()["secret"] and app.digits == 6 and app.interval == 30
    confirmed = await door.client.post("/auth/mfa/totp/confirm", headers=bearer(first), json={"code": app.now()})
    assert confirmed.status_code == 200, confirmed.text
    codes = confirmed.json()["recovery_codes"]
    assert len(codes) == len(set(codes)) == 10
    return app, codes


def next_code(app: pyotp.TOTP) -> str:
    """The code of the next 30-second step (the one just used no longer works), waiting for it to begin."""
    time.sleep(30 - time.time() % 30 + 0.1)
    return app.now()


async def test_a_user_without_a_factor_gets_a_token_that_opens_only_enrolment(door: Door):
    user = await door.add_user("caseworker")
    answer = await sign_in(door, user["username"])
    token = bearer(answer)

    assert answer.json()["scope"] == "mfa_enrol"
    me = await door.client.get("/auth/me", headers=token)
    assert me.status_code == 200 and me.json()["mfa"] is False and me.json()["scope"] == "mfa_enrol"
    for path in ("/api/intake/cases", "/api/admin/audit"):
        refused = await door.client.get(path, headers=token)
        assert refused.status_code == 403 and refused.json()["type"].endswith("/mfa-enrolment-required"), path
    assert (await door.client.post("/auth/sessions/revoke-all", headers=token)).status_code == 403


async def test_enrolled_sign_in_needs_a_current_code_and_each_code_works_once(door: Door):
    user = await door.add_user("finance")
    app, _codes = await enrolled(door, user["username"])

    missing = await sign_in(door, user["username"])
    wrong = await sign_in(door, user["username"], "000000" if app.now() != "000000" else "111111")
    # The code that confirmed the enrolment was used: the same step's code does not open a session.
    replayed = await sign_in(door, user["username"], app.now())

    for answer in (missing, wrong, replayed):
        assert (answer.status_code, answer.json()["error"]) == (400, "invalid_grant")
    assert missing.json() == (await sign_in(door, "no.such.user", "123456")).json()  # nothing tells which was wrong
    code = next_code(app)
    signed_in = await sign_in(door, user["username"], code)
    assert signed_in.status_code == 200 and "scope" not in signed_in.json()
    me = (await door.client.get("/auth/me", headers=bearer(signed_in))).json()
    assert me["mfa"] is True and me["username"] == user["username"]
    assert (await sign_in(door, user["username"], code)).status_code == 400  # a code works once


async def test_a_recovery_code_works_once_instead_of_the_phone(door: Door):
    user = await door.add_user("caseworker")
    _app, codes = await enrolled(door, user["username"])

    assert (await sign_in(door, user["username"], codes[3])).status_code == 200
    assert (await sign_in(door, user["username"], codes[3])).status_code == 400
    assert (await sign_in(door, user["username"], codes[4].upper().replace("-", " "))).status_code == 200


async def test_an_admin_resets_a_lost_factor_and_the_user_enrols_again(door: Door):
    admin = await door.admin()
    user = await door.client.post("/api/admin/users", headers=admin, json={
        "username": "katsiaryna.novik", "password": STAFF_PASSWORD, "roles": ["caseworker"]})
    _app, codes = await enrolled(door, "katsiaryna.novik")
    session = await sign_in(door, "katsiaryna.novik", codes[0])

    reset = await door.client.post(f"/api/admin/users/{user.json()['id']}/reset-mfa", headers=admin)

    assert reset.status_code == 200 and reset.json()["status"] == "active"
    assert (await door.client.get("/auth/me", headers=bearer(session))).status_code == 401  # its sessions ended
    again = await sign_in(door, "katsiaryna.novik")
    assert again.status_code == 200 and again.json()["scope"] == "mfa_enrol"
    own = await door.client.post(f"/api/admin/users/{(await door.client.get('/auth/me', headers=admin)).json()['sub']}"
                                 "/reset-mfa", headers=admin)
    assert own.status_code == 403
