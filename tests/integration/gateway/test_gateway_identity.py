"""Identity at the gateway: the first admin, OAuth2 tokens, staff users, partner clients, and its audit trail."""

from __future__ import annotations

import asyncio

import base64
import stat

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import delete, select, text, update

from gateway.config import GatewaySettings
from gateway.models import MIGRATIONS_DIR, ApiClient, SignInThrottle, User, kit_tables
from kit import migrations
from tests.integration.gateway.door import ADMIN_PASSWORD, STAFF_PASSWORD, Door, open_gateway

MFA_BY_DEFAULT = GatewaySettings.model_fields["mfa_required_roles"].default

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"
OAUTH_ERROR = "application/json"  # the token endpoint's errors (RFC 6749 §5.2), with the problem's fields beside them


def public_key_from_jwks(jwks: dict) -> Ed25519PublicKey:
    (key,) = jwks["keys"]
    assert key["kty"] == "OKP" and key["crv"] == "Ed25519" and key["alg"] == "EdDSA"
    return Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(key["x"] + "=" * (-len(key["x"]) % 4)))


async def test_the_first_admin_gets_a_short_lived_eddsa_token_that_the_jwks_verifies(door: Door):
    answer = await door.sign_in("admin", ADMIN_PASSWORD)

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token_type"] == "bearer" and 0 < body["expires_in"] <= 900
    assert answer.headers["cache-control"] == "no-store"
    jwks = (await door.client.get("/.well-known/jwks.json")).json()
    header = jwt.get_unverified_header(body["access_token"])
    assert header["alg"] == "EdDSA" and header["kid"] == jwks["keys"][0]["kid"]  # the key is named, for rotation
    claims = jwt.decode(body["access_token"], public_key_from_jwks(jwks), algorithms=["EdDSA"],
                        audience="rehab-api", issuer="rehab-gateway")
    assert {"iss", "aud", "exp", "iat", "jti", "sub", "roles"} <= set(claims)
    assert claims["roles"] == ["admin"] and claims["exp"] - claims["iat"] <= 900
    me = await door.client.get("/auth/me", headers=await door.bearer_for(answer))
    assert me.json() == {"sub": claims["sub"], "username": "admin", "roles": ["admin"], "partner_id": None,
                         "mfa": False, "scope": None, "must_choose_password": False}


async def test_without_a_set_password_the_first_admin_gets_one_in_an_owner_only_file_and_replaces_it_first(
        gateway_settings, secrets_dir, capfd):
    """The generated password lies in clear on the server's disk until replaced: the first sign-in (a second factor
    required, as by default) opens the password's change before anything else, enrolment included."""
    settings = gateway_settings(secrets_dir, admin_password=None, mfa_required_roles=MFA_BY_DEFAULT)
    async with open_gateway(settings) as door:
        password_file = settings.admin_password_path
        password = password_file.read_text().strip()
        assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
        signed_in = await door.sign_in("admin", password)
        assert signed_in.status_code == 200 and signed_in.json()["scope"] == "mfa_enrol"
        given = await door.bearer_for(signed_in)
        assert (await door.client.get("/api/admin/users", headers=given)).status_code == 403
        await door.client.post("/auth/mfa/totp/enrol", headers=given)
        confirm = await door.client.post("/auth/mfa/totp/confirm", headers=given, json={"code": "123456"})
        assert (confirm.status_code, confirm.json()["type"].rsplit("/", 1)[1]) == (409, "password-change-required")
        # Once the admin has chosen a password, the generated one's file opens nothing: it is gone.
        chosen = await door.client.post("/auth/password", headers=given, json={
            "current_password": password, "new_password": "a kettle hums on Zybitskaya street"})
        assert chosen.status_code == 204 and not password_file.exists()
    printed = capfd.readouterr().out
    assert str(password_file.resolve()) in printed
    assert password not in printed


async def test_wrong_credentials_get_one_answer_whether_or_not_the_user_exists(door: Door):
    await door.add_user("caseworker", username="siarhei.marozau")

    wrong_password = await door.sign_in("siarhei.marozau", "Not-the-password-1")
    no_such_user = await door.sign_in("uladzimir.stsiapanau", "Not-the-password-1")

    for answer in (wrong_password, no_such_user):
        assert answer.status_code == 400  # RFC 6749 §5.2: as application/json
        assert answer.headers["content-type"] == OAUTH_ERROR
        assert answer.json()["error"] == "invalid_grant" and answer.json()["error_description"]
    assert wrong_password.json() == no_such_user.json()


async def test_a_json_body_the_gateway_s_own_route_would_refuse_is_refused_unread(door: Door):
    """Checked for flaws, a stranger's megabyte of JSON cost the gateway's loop ~30 ms before its route said 401:
    now a body from a caller without a token signed here is never read (a member named twice, padded past what a
    glance reads, would be the guard's 400 if it were), nor JSON sent to an endpoint that takes a form."""
    twice = b'{"username": "a", ' + b" " * 300_000 + b'"username": "b"}'
    json_type = {"Content-Type": "application/json"}
    forged = jwt.encode({"sub": "x", "roles": ["admin"], "exp": 4_000_000_000}, "not-our-key", algorithm="HS256")
    for path in ("/api/admin/users", "/auth/password", "/auth/mfa/totp/confirm"):
        for token in ({}, {"Authorization": f"Bearer {forged}"}, {"Authorization": "Basic eDp5"}):
            answer = await door.client.post(path, content=twice, headers={**json_type, **token})
            assert answer.status_code == 401, (path, token, answer.text)
            assert answer.json()["type"].rsplit("/", 1)[1] in ("missing-token", "invalid-token")
    admin = await door.admin()
    read = await door.client.post("/api/admin/users", content=twice, headers={**json_type, **admin})
    assert read.status_code == 422 and "json_duplicate_member" in read.text, read.text  # a caller's is still guarded
    for path, media in (("/auth/token", "application/json"), ("/auth/revoke", "application/json"),
                        ("/auth/clients/activate", "application/problem+json")):
        answer = await door.client.post(path, content=twice, headers=json_type)
        assert answer.status_code == 400 and answer.json()["type"].endswith("/invalid-request"), answer.text
        assert "form body" in answer.json()["detail"] and answer.headers["content-type"] == media


async def test_a_malformed_token_request_is_400_and_an_unknown_grant_is_refused(door: Door):
    unknown = await door.client.post("/auth/token", data={"grant_type": "authorization_code", "code": "x"})
    missing = await door.client.post("/auth/token", data={"grant_type": "password", "username": "admin"})
    nothing = await door.client.post("/auth/token", data={})
    as_json = await door.client.post("/auth/token", json={"grant_type": "password", "username": "admin",
                                                          "password": "x"})

    assert (unknown.status_code, unknown.json()["error"]) == (400, "unsupported_grant_type")
    assert (missing.status_code, missing.json()["error"]) == (400, "invalid_request")
    assert (nothing.status_code, nothing.json()["error"]) == (400, "invalid_request")
    # JSON, which OAuth 2 does not take: the answer says what to send instead
    assert (as_json.status_code, as_json.json()["error"]) == (400, "invalid_request")
    assert "application/x-www-form-urlencoded" in as_json.json()["error_description"]
    assert "form" not in nothing.json()["error_description"]
    assert all(a.headers["content-type"] == OAUTH_ERROR for a in (unknown, missing, nothing, as_json))


async def test_admins_create_staff_users_under_a_password_policy(door: Door):
    admin = await door.admin()

    async def create(**body):  # noqa: ANN202
        return await door.client.post("/api/admin/users", headers=admin, json={"roles": ["caseworker"], **body})

    assert (await create(username="mikalai.bahdanovich", password="Short-1")).status_code == 422
    breached = await create(username="mikalai.bahdanovich", password="qwertyuiop123")
    assert breached.status_code == 422 and "breach" in breached.json()["detail"]
    assert (await create(username="mikalai.bahdanovich1", password="Mikalai.Bahdanovich1")).status_code == 422
    assert (await create(username="mikalai.bahdanovich", password=STAFF_PASSWORD, roles=["partner"])).status_code == 422
    assert (await create(username="mikalai.bahdanovich", password=STAFF_PASSWORD, is_admin=True)).status_code == 422
    made = await create(username="Mikalai.Bahdanovich", password=STAFF_PASSWORD)
    assert made.status_code == 201, made.text
    assert made.json()["username"] == "mikalai.bahdanovich" and made.json()["roles"] == ["caseworker"]
    assert (await create(username="mikalai.bahdanovich", password=STAFF_PASSWORD)).status_code == 409

    listed = (await door.client.get("/api/admin/users", headers=admin)).json()["items"]
    assert {u["username"] for u in listed} == {"admin", "mikalai.bahdanovich"}
    assert all(set(u) == {"id", "username", "roles", "partner_id", "pending_approval", "disabled", "locked",
                          "created_at"} for u in listed)
    caseworker = await door.bearer_for(await door.sign_in("mikalai.bahdanovich", STAFF_PASSWORD))
    refused = await door.client.post("/api/admin/users", headers=caseworker,
                                     json={"username": "someone.else", "password": STAFF_PASSWORD, "roles": ["admin"]})
    assert refused.status_code == 403
    with door.runtime.session_factory() as session:
        stored = session.execute(select(User.password_hash).where(User.username == "mikalai.bahdanovich")).scalar_one()
    assert stored.startswith("$argon2id$") and STAFF_PASSWORD not in stored


async def test_a_partner_client_secret_is_shown_once_and_stored_only_as_a_hash(door: Door):
    partner_id = "0f6c2d9a-3b1e-4c57-9a2e-7d4b8e1f6a30"
    issued = await door.add_client(partner_id)

    listed = (await door.client.get("/api/admin/clients", headers=await door.admin())).json()["items"]
    assert [c["client_id"] for c in listed] == [issued["client_id"]]
    assert "client_secret" not in listed[0] and issued["client_secret"] not in str(listed)
    with door.runtime.session_factory() as session:
        client = session.get(ApiClient, issued["client_id"])
        audit_rows = str(list(session.execute(select(kit_tables.audit))))
    assert client.secret_hash.startswith("$argon2id$") and issued["client_secret"] not in client.secret_hash
    assert issued["client_secret"] not in audit_rows

    token = await door.client_sign_in(issued["client_id"], issued["client_secret"])
    me = await door.client.get("/auth/me", headers=await door.bearer_for(token))
    assert me.json() == {"sub": issued["client_id"], "username": issued["client_id"], "roles": ["partner"],
                         "partner_id": partner_id, "mfa": False, "scope": None,
                         "must_choose_password": False}
    basic = base64.b64encode(f"{issued['client_id']}:{issued['client_secret']}".encode()).decode()
    with_basic = await door.client.post("/auth/token", data={"grant_type": "client_credentials"},
                                        headers={"Authorization": f"Basic {basic}"})
    assert with_basic.status_code == 200
    # both ways in one request (RFC 6749 §2.3): refused, never one of them silently taken
    twice = await door.client.post("/auth/token", headers={"Authorization": f"Basic {basic}"}, data={
        "grant_type": "client_credentials", "client_id": "someone-else", "client_secret": "x"})
    assert (twice.status_code, twice.json()["error"]) == (400, "invalid_request")
    wrong = await door.client_sign_in(issued["client_id"], "not-the-secret")
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")


async def test_an_account_or_client_asked_again_under_its_idempotency_key_is_made_once(door: Door):
    """An admin's retry whose answer was lost (a timeout) gets that answer again: one account, one client and its
    one secret, never a second pair of working credentials; another body under the same key is 422."""
    admin = await door.admin()
    account = {"username": "retried-ala", "password": STAFF_PASSWORD, "roles": ["caseworker"]}
    made = [await door.client.post("/api/admin/users", json=account, headers={**admin, "Idempotency-Key": "u-1"})
            for _ in range(2)]
    assert [m.status_code for m in made] == [201, 201] and made[1].json() == made[0].json()
    assert made[1].headers["idempotent-replayed"] == "true"
    other = await door.client.post("/api/admin/users", json={**account, "username": "retried-bo"},
                                   headers={**admin, "Idempotency-Key": "u-1"})
    assert other.status_code == 422 and other.json()["type"].endswith("/idempotency-key-reused")

    partner_id = "5d0c6f7e-2a41-4c3b-8f5e-1b9a7c3d2e10"
    body = {"partner_id": partner_id, "name": "Clinic API"}
    issued = [await door.client.post("/api/admin/clients", json=body, headers={**admin, "Idempotency-Key": "c-1"})
              for _ in range(2)]
    assert [i.status_code for i in issued] == [201, 201] and issued[1].json() == issued[0].json()
    assert all(i.headers["cache-control"] == "no-store" for i in issued)
    listed = (await door.client.get("/api/admin/clients", headers=admin)).json()["items"]
    assert [c["client_id"] for c in listed if c["partner_id"] == partner_id] == [issued[0].json()["client_id"]]
    with door.runtime.session_factory() as session:  # the secret kept for the replay is sealed, never in clear
        stored = str(list(session.execute(select(kit_tables.idempotency))))
    assert issued[0].json()["client_secret"] not in stored and "retried-ala" not in stored


async def test_a_revoked_client_is_refused_at_once(door: Door):
    issued = await door.add_client()
    partner = await door.bearer_for(await door.client_sign_in(issued["client_id"], issued["client_secret"]))
    assert (await door.client.get("/auth/me", headers=partner)).status_code == 200

    revoked = await door.client.post(f"/api/admin/clients/{issued['client_id']}/revoke", headers=await door.admin())

    assert revoked.status_code == 200 and revoked.json()["revoked"] is True
    assert (await door.client.get("/auth/me", headers=partner)).status_code == 401
    assert (await door.client.get("/api/partner/referrals", headers=partner)).status_code == 401
    again = await door.client_sign_in(issued["client_id"], issued["client_secret"])
    assert (again.status_code, again.json()["error"]) == (401, "invalid_client")


async def test_a_disabled_user_is_refused_at_once_and_enabled_again_signs_in_afresh(door: Door):
    user = await door.add_user("caseworker", "auditor")
    token = await door.bearer_for(await door.sign_in(user["username"], STAFF_PASSWORD))
    assert (await door.client.get("/auth/me", headers=token)).status_code == 200

    disabled = await door.client.post(f"/api/admin/users/{user['id']}/disable", headers=await door.admin())

    assert disabled.status_code == 200 and disabled.json()["disabled"] is True
    assert (await door.client.get("/auth/me", headers=token)).status_code == 401
    assert (await door.client.get("/api/admin/audit", headers=token)).status_code == 401
    assert (await door.client.get("/api/intake/cases", headers=token)).status_code == 401
    assert (await door.sign_in(user["username"], STAFF_PASSWORD)).status_code == 400
    await door.client.post(f"/api/admin/users/{user['id']}/enable", headers=await door.admin())
    assert (await door.client.get("/auth/me", headers=token)).status_code == 401  # its session ended with the disable
    await door.runtime.uow.run(lambda session: session.execute(delete(SignInThrottle)))  # the try while disabled
    again = await door.bearer_for(await door.sign_in(user["username"], STAFF_PASSWORD))
    assert (await door.client.get("/auth/me", headers=again)).status_code == 200


async def test_the_last_admin_cannot_be_disabled(door: Door):
    admin = await door.admin()
    me = (await door.client.get("/auth/me", headers=admin)).json()

    answer = await door.client.post(f"/api/admin/users/{me['sub']}/disable", headers=admin)

    assert answer.status_code == 409
    assert (await door.client.get("/auth/me", headers=admin)).status_code == 200


async def test_five_failures_lock_the_name_from_that_address_only_and_a_stranger_looks_the_same(
        gateway_settings, secrets_dir):
    settings = gateway_settings(secrets_dir, signin_backoff_seconds=0, lockout_after_failures=5, lockout_seconds=900)
    async with open_gateway(settings) as door:
        user = await door.add_user("finance")
        attacker = "198.51.100.23"
        for _ in range(5):
            assert (await door.sign_in(user["username"], "Wrong-password-123", address=attacker)).status_code == 400
            assert (await door.sign_in("no.such.user", "Wrong-password-123", address=attacker)).status_code == 400

        right = await door.sign_in(user["username"], STAFF_PASSWORD, address=attacker)
        stranger = await door.sign_in("no.such.user", STAFF_PASSWORD, address=attacker)
        owner = await door.sign_in(user["username"], STAFF_PASSWORD)  # from the owner's own address

        assert right.status_code == 429 and 890 <= int(right.headers["retry-after"]) <= 900
        assert right.headers["content-type"] == OAUTH_ERROR and right.json()["type"].endswith("/sign-in-throttled")
        assert (stranger.status_code, stranger.json()) == (429, right.json())  # nothing tells the two apart
        assert owner.status_code == 200
        auditor = await door.staff("auditor")
        actions = [e["action"] for e in (await door.client.get(
            "/api/admin/audit", params={"target_id": user["id"]}, headers=auditor)).json()["items"]]
        assert actions.count("signin.failed") == 5 and "user.locked" in actions
        assert "signin.throttled" in actions and actions[-1] == "signin.ok"


async def test_failures_from_many_addresses_lock_the_name_everywhere_and_are_audited(gateway_settings, secrets_dir):
    settings = gateway_settings(secrets_dir, signin_backoff_seconds=0, lockout_after_failures=5,
                                lockout_everywhere_after_failures=8)
    async with open_gateway(settings) as door:
        user = await door.add_user("caseworker")
        for n in range(8):  # two tries from each of four addresses: none of them is locked on its own
            assert (await door.sign_in(user["username"], "Wrong-password-123",
                                       address=f"203.0.113.{n // 2}")).status_code == 400

        owner = await door.sign_in(user["username"], STAFF_PASSWORD)

        assert owner.status_code == 429 and int(owner.headers["retry-after"]) > 0
        admin = await door.admin()
        listed = (await door.client.get("/api/admin/users", headers=admin)).json()["items"]
        assert next(u for u in listed if u["id"] == user["id"])["locked"] is True
        auditor = await door.staff("auditor")
        actions = [e["action"] for e in (await door.client.get(
            "/api/admin/audit", params={"target_id": user["id"]}, headers=auditor)).json()["items"]]
        assert actions.count("user.locked_everywhere") == 1


async def test_after_a_failure_the_name_waits_before_the_next_try(gateway_settings, secrets_dir):
    settings = gateway_settings(secrets_dir, signin_backoff_seconds=30)
    async with open_gateway(settings) as door:
        user = await door.add_user("caseworker")
        assert (await door.sign_in(user["username"], "Wrong-password-123")).status_code == 400

        waiting = await door.sign_in(user["username"], STAFF_PASSWORD)

        assert waiting.status_code == 429 and 1 <= int(waiting.headers["retry-after"]) <= 30
        assert waiting.json()["error"] == "invalid_grant"  # the token endpoint's words (RFC 6749)


async def test_changing_a_password_waits_as_a_sign_in_does_and_says_so_as_a_problem(gateway_settings, secrets_dir):
    settings = gateway_settings(secrets_dir, signin_backoff_seconds=30)
    async with open_gateway(settings) as door:
        user = await door.add_user("caseworker")
        signed_in = await door.sign_in(user["username"], STAFF_PASSWORD)
        bearer = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
        change = {"current_password": "Wrong-password-123", "new_password": "a kettle hums on Zybitskaya street"}
        assert (await door.client.post("/auth/password", json=change, headers=bearer)).status_code == 403

        waiting = await door.client.post("/auth/password", json={**change, "current_password": STAFF_PASSWORD},
                                         headers=bearer)

        assert waiting.status_code == 429 and int(waiting.headers["retry-after"]) >= 1
        assert waiting.headers["content-type"] == "application/problem+json"
        assert waiting.json()["type"].endswith("/sign-in-throttled") and "error" not in waiting.json()


async def test_a_success_clears_earlier_failures(gateway_settings, secrets_dir):
    settings = gateway_settings(secrets_dir, signin_backoff_seconds=0, lockout_after_failures=3)
    async with open_gateway(settings) as door:
        user = await door.add_user("caseworker")
        for _ in range(2):
            await door.sign_in(user["username"], "Wrong-password-123")
        assert (await door.sign_in(user["username"], STAFF_PASSWORD)).status_code == 200
        for _ in range(2):
            await door.sign_in(user["username"], "Wrong-password-123")
        assert (await door.sign_in(user["username"], STAFF_PASSWORD)).status_code == 200


async def test_sign_ins_are_rate_limited_per_address(gateway_settings, secrets_dir):
    settings = gateway_settings(secrets_dir, signin_rate_limit="3/minute")
    async with open_gateway(settings) as door:
        for n in range(3):
            assert (await door.sign_in(f"someone.{n}", "Wrong-password-123")).status_code == 400

        limited = await door.sign_in("admin", ADMIN_PASSWORD)

        assert limited.status_code == 429
        assert limited.headers["content-type"] == PROBLEM
        assert 1 <= int(limited.headers["retry-after"]) <= 60


async def test_api_calls_are_rate_limited_per_principal(gateway_settings, secrets_dir):
    settings = gateway_settings(secrets_dir, api_rate_limit="5/minute")
    async with open_gateway(settings) as door:
        busy = await door.staff("caseworker")
        calm = await door.staff("caseworker")
        answers = [(await door.client.get("/auth/me", headers=busy)).status_code for _ in range(6)]
        forwarded = await door.client.get("/api/intake/cases", headers=busy)

        assert answers == [200] * 5 + [429]
        assert forwarded.status_code == 429 and int(forwarded.headers["retry-after"]) >= 1
        assert (await door.client.get("/auth/me", headers=calm)).status_code == 200


async def test_the_audit_trail_records_identity_events_without_secrets_and_detects_tampering(door: Door):
    user = await door.add_user("caseworker")
    await door.sign_in(user["username"], STAFF_PASSWORD)
    await door.sign_in(user["username"], "Wrong-password-123")
    await door.sign_in("ihar.rybak", "Some-password-123")
    issued = await door.add_client()
    await door.client.post(f"/api/admin/clients/{issued['client_id']}/revoke", headers=await door.admin())
    await door.client.post(f"/api/admin/users/{user['id']}/disable", headers=await door.admin())
    auditor = await door.staff("auditor")

    assert (await door.client.get("/api/admin/audit", headers=await door.admin())).status_code == 403
    entries = (await door.client.get("/api/admin/audit", params={"limit": 500}, headers=auditor)).json()["items"]
    actions = {(e["actor"], e["action"], e["target_id"]) for e in entries}
    assert ("system", "user.create", entries[0]["target_id"]) in actions  # the first admin
    assert (user["id"], "signin.ok", user["id"]) in actions
    assert (user["id"], "signin.failed", user["id"]) in actions
    assert ("unknown", "signin.failed", None) in actions
    assert {"user.create", "client.create", "client.revoke", "user.disable"} <= {a for _, a, _ in actions}
    assert all(e["request_id"] for e in entries if e["actor"] != "system")
    flat = str(entries)
    for secret in (STAFF_PASSWORD, "Wrong-password-123", "ihar.rybak", issued["client_secret"], ADMIN_PASSWORD):
        assert secret not in flat
    verdict = (await door.client.get("/api/admin/audit/verify", headers=auditor)).json()
    assert {k: verdict[k] for k in ("entries", "first_bad", "truncated")} == {
        "entries": len(entries), "first_bad": None, "truncated": False}
    # No NATS behind this gateway: the chain holds, but its checkpoints could not be checked, so not ok (the
    # checkpoints themselves: tests/integration/intake/test_intake_audit_checkpoints.py).
    assert verdict["ok"] is False and verdict["checkpoint_status"] == "unavailable"

    with door.runtime.session_factory() as session:
        table = kit_tables.audit
        victim = session.execute(select(table.c.id).where(table.c.action == "user.disable")).scalar_one()
        session.execute(update(table).where(table.c.id == victim).values(actor="someone-else"))
        session.commit()
    verified = (await door.client.get("/api/admin/audit/verify", headers=auditor)).json()
    assert verified["ok"] is False and verified["first_bad"] == victim


async def test_a_role_refused_at_the_gateway_is_audited_by_who_and_which_route_never_the_path_itself(door: Door):
    """BACKBONE, Audit: every refused authorisation. A token whose role does not open a route (a stolen session
    feeling its way) leaves who and which route: its method and path template, never the path or query sent."""
    user = await door.add_user("caseworker")
    caseworker = await door.bearer_for(await door.sign_in(user["username"], STAFF_PASSWORD))
    probed = "0b6f2c5e-7d43-4a8e-9f1a-5c2d8e7b3a91"
    forwarded = await door.client.get(f"/api/partner/referrals/{probed}", params={"q": "Zq-7731"}, headers=caseworker)
    own = await door.client.get("/api/admin/users", params={"cursor": "Zq-7731"}, headers=caseworker)
    status = await door.client.get("/api/admin/status", headers=caseworker)  # admins' and auditors'
    assert forwarded.status_code == own.status_code == status.status_code == 403
    assert forwarded.json()["type"].endswith("/forbidden") and own.json()["type"].endswith("/forbidden")

    auditor = await door.staff("auditor")
    page = await door.client.get("/api/admin/audit", params={"limit": 500, "action": "access.refused"},
                                 headers=auditor)
    assert [(e["actor"], e["target_id"]) for e in page.json()["items"]] == [
        (user["id"], "GET /api/partner/{path}"), (user["id"], "GET /api/admin/users"),
        (user["id"], "GET /api/admin/status")]
    assert all(e["request_id"] for e in page.json()["items"])
    assert probed not in page.text and "Zq-7731" not in page.text
    verdict = (await door.client.get("/api/admin/audit/verify", headers=auditor)).json()
    assert verdict["first_bad"] is None


async def test_the_database_matches_the_migrations(door: Door):
    migrations.check(door.runtime.engine, MIGRATIONS_DIR)  # raises on any difference
    with door.runtime.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM users")).scalar_one() == 1


async def test_security_headers_no_cors_and_a_self_contained_start_page(door: Door):
    preflight = await door.client.options("/api/intake/cases", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    page = await door.client.get("/")

    assert "access-control-allow-origin" not in preflight.headers
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for header in ("x-content-type-options", "x-frame-options", "content-security-policy", "referrer-policy"):
        assert header in page.headers
    assert "http://" not in page.text and "https://" not in page.text and "<script" not in page.text


async def test_a_trailing_slash_names_nothing_and_never_sends_a_password_to_the_host_header_s_site(door: Door):
    """Starlette's default answers `/auth/token/` with a 307 to the Host header's site, which keeps the method and
    the body: a client that follows it posts the password there."""
    for method, path, form in (("POST", "/auth/token/", {"grant_type": "password", "username": "admin",
                                                         "password": ADMIN_PASSWORD}),
                               ("GET", "/api/admin/users/", None), ("GET", "/console/cases/", None)):
        answer = await door.client.request(method, path, data=form, headers={"Host": "evil.example"})
        assert answer.status_code == 404 and "location" not in answer.headers, (path, answer.headers)
        assert answer.headers["content-type"] == PROBLEM


async def test_a_body_over_the_limit_is_413(gateway_settings, secrets_dir):
    async with open_gateway(gateway_settings(secrets_dir, max_body_bytes=2000)) as door:
        admin = await door.admin()
        big = {"username": "x" * 10, "password": "P" * 1500 + "ass-word-1", "roles": ["caseworker"], "pad": "y" * 1000}

        own = await door.client.post("/api/admin/users", headers=admin, json=big)
        forwarded = await door.client.post("/api/intake/cases", headers=await door.staff("caseworker"), json=big)

        assert own.status_code == 413 and forwarded.status_code == 413



# ---- sessions that end -----------------------------------------------------------------------------------------

async def refresh(door: Door, token: str):  # noqa: ANN201
    return await door.client.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": token})


async def test_renewals_have_a_budget_of_their_own_per_address_apart_from_sign_ins(gateway_settings, secrets_dir):
    """Clients behind one address renewing their tokens do not use up the sign-ins' budget (a password or a client
    secret can be guessed at; a refresh token cannot), nor renew without any bound."""
    settings = gateway_settings(secrets_dir, signin_rate_limit="3/minute", refresh_rate_limit="4/minute")
    async with open_gateway(settings) as door:
        user = await door.add_user("caseworker")  # the admin's sign-in: 1 of 3
        token = (await door.sign_in(user["username"], STAFF_PASSWORD)).json()["refresh_token"]  # 2 of 3
        for _ in range(4):  # more renewals than the sign-ins left
            renewed = await refresh(door, token)
            assert renewed.status_code == 200, renewed.text
            token = renewed.json()["refresh_token"]
        limited = await refresh(door, token)
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert (await door.sign_in(user["username"], STAFF_PASSWORD)).status_code == 200  # 3 of 3: untouched


async def test_refresh_tokens_rotate_and_a_reused_one_ends_the_whole_session(door: Door):
    user = await door.add_user("caseworker")
    first = (await door.sign_in(user["username"], STAFF_PASSWORD)).json()
    access = {"Authorization": f"Bearer {first['access_token']}"}

    second = await refresh(door, first["refresh_token"])
    assert second.status_code == 200 and second.headers["cache-control"] == "no-store"
    assert second.json()["refresh_token"] != first["refresh_token"]
    newer = {"Authorization": f"Bearer {second.json()['access_token']}"}
    assert (await door.client.get("/auth/me", headers=newer)).status_code == 200

    stolen = await refresh(door, first["refresh_token"])  # the first token again: someone kept a copy

    assert (stolen.status_code, stolen.json()["error"]) == (400, "invalid_grant")
    assert (await refresh(door, second.json()["refresh_token"])).status_code == 400  # the session is over
    door.runtime.standing.forget(user["id"])  # as a second passes
    for headers in (access, newer):
        assert (await door.client.get("/auth/me", headers=headers)).status_code == 401
    auditor = await door.staff("auditor")
    actions = [e["action"] for e in (await door.client.get("/api/admin/audit", headers=auditor)).json()["items"]]
    assert "session.refresh_reused" in actions


async def test_a_renewal_refused_while_sealed_spends_nothing_and_works_after_the_unseal(door: Door):
    """A client renewing during a seal gets 503 and asks again after `rehab unseal`: that is the same renewal, not
    a second use of the token (it was a theft alarm that ended the session of everyone renewing during a seal)."""
    user = await door.add_user("caseworker")
    first = (await door.sign_in(user["username"], STAFF_PASSWORD)).json()
    door.runtime.custody.seal()
    try:
        while_sealed = await refresh(door, first["refresh_token"])
        assert while_sealed.status_code == 503 and while_sealed.json()["type"].endswith("/sealed"), while_sealed.text
        # RFC 6749 §5.2's members too, as every other answer of the token endpoint: an OAuth2 library reads them
        assert while_sealed.json()["error"] == "temporarily_unavailable" and while_sealed.headers["retry-after"]
        assert "no-store" in while_sealed.headers["cache-control"]
    finally:
        door.runtime.custody.unseal()
    again = await refresh(door, first["refresh_token"])
    assert again.status_code == 200, again.text
    assert (await door.client.get("/auth/me", headers={
        "Authorization": f"Bearer {again.json()['access_token']}"})).status_code == 200
    auditor = await door.staff("auditor")
    actions = [e["action"] for e in (await door.client.get("/api/admin/audit", headers=auditor)).json()["items"]]
    assert "session.refresh_reused" not in actions


async def test_an_api_client_s_refresh_token_used_twice_at_once_or_a_moment_later_ends_the_session(door: Door):
    """SPEC §3 as written for the API: a second use is the theft signal, however soon and from wherever it comes (the
    grace for two tabs is the console's own: tests/console/test_console_sessions.py)."""
    user = await door.add_user("caseworker")
    first = (await door.sign_in(user["username"], STAFF_PASSWORD)).json()
    owner = await refresh(door, first["refresh_token"])
    again = await refresh(door, first["refresh_token"])  # the same client, the same address, a moment later

    assert owner.status_code == 200
    assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")
    assert owner.json()["access_token"] not in again.text
    assert (await refresh(door, owner.json()["refresh_token"])).status_code == 400  # the session is over

    other = (await door.sign_in(user["username"], STAFF_PASSWORD)).json()
    both = await asyncio.gather(refresh(door, other["refresh_token"]), refresh(door, other["refresh_token"]))
    assert sorted(answer.status_code for answer in both) == [200, 400]  # one renewal; the other is reuse…
    renewed = next(answer for answer in both if answer.status_code == 200).json()
    assert (await refresh(door, renewed["refresh_token"])).status_code == 400  # …which ended that session too
    auditor = await door.staff("auditor")
    actions = [e["action"] for e in (await door.client.get("/api/admin/audit", headers=auditor)).json()["items"]]
    assert actions.count("session.refresh_reused") >= 2


async def test_a_revoked_refresh_token_ends_its_session_and_only_that_one(door: Door):
    user = await door.add_user("caseworker")
    phone = (await door.sign_in(user["username"], STAFF_PASSWORD)).json()
    laptop = (await door.sign_in(user["username"], STAFF_PASSWORD)).json()

    revoked = await door.client.post("/auth/revoke", data={"token": phone["refresh_token"]})
    unknown = await door.client.post("/auth/revoke", data={"token": "never-issued"})

    assert revoked.status_code == 200 and unknown.status_code == 200  # RFC 7009: the answer tells nothing
    door.runtime.standing.forget(user["id"])
    assert (await door.client.get("/auth/me", headers={"Authorization": f"Bearer {phone['access_token']}"})).status_code == 401
    assert (await door.client.get("/auth/me", headers={"Authorization": f"Bearer {laptop['access_token']}"})).status_code == 200
    assert (await refresh(door, laptop["refresh_token"])).status_code == 200


async def test_a_revocation_without_a_token_in_a_form_gets_the_token_endpoint_s_error_saying_where_it_goes(door: Door):
    for sent, says_form in (({"data": {"token_type_hint": "refresh_token"}}, False),
                            ({"json": {"token": "abc"}}, True)):  # the token is there, but not where OAuth 2 looks
        answer = await door.client.post("/auth/revoke", **sent)
        assert answer.status_code == 400 and answer.headers["content-type"] == OAUTH_ERROR, answer.text
        assert answer.json()["error"] == "invalid_request" and "`token` is required" in answer.json()["detail"]
        assert ("form body" in answer.json()["detail"]) is says_form


async def test_signing_out_everywhere_ends_every_session_and_an_admin_can_do_it_for_someone(door: Door):
    user = await door.add_user("caseworker")
    sessions = [(await door.sign_in(user["username"], STAFF_PASSWORD)).json() for _ in range(2)]
    bearer = {"Authorization": f"Bearer {sessions[0]['access_token']}"}

    # A body where none is taken is refused, and ends nothing (a reviewer's: it was ignored, as on the admin's seal).
    for sent, status in (({"json": {"x": 1}}, 422), ({"content": b"\xff\xfe"}, 400)):  # the second: not UTF-8
        refused = await door.client.post("/auth/sessions/revoke-all", headers={**bearer, "content-type":
                                                                               "application/json"}, **sent)
        assert refused.status_code == status and refused.headers["content-type"] == "application/problem+json"
        assert (await door.client.get("/auth/me", headers=bearer)).status_code == 200
    sealing = await door.client.post("/api/admin/seal", headers=await door.admin(), json={"x": 1})
    assert sealing.status_code == 422

    assert (await door.client.post("/auth/sessions/revoke-all", headers=bearer)).status_code == 204

    for s in sessions:
        assert (await door.client.get("/auth/me", headers={"Authorization": f"Bearer {s['access_token']}"})).status_code == 401
        assert (await refresh(door, s["refresh_token"])).status_code == 400
    fresh = (await door.sign_in(user["username"], STAFF_PASSWORD)).json()
    fresh_bearer = {"Authorization": f"Bearer {fresh['access_token']}"}
    assert (await door.client.get("/auth/me", headers=fresh_bearer)).status_code == 200

    by_admin = await door.client.post(f"/api/admin/users/{user['id']}/revoke-sessions", headers=await door.admin())

    assert by_admin.status_code == 204
    assert (await door.client.get("/auth/me", headers=fresh_bearer)).status_code == 401
    assert (await refresh(door, fresh["refresh_token"])).status_code == 400
