"""The console's doors, with the production defaults: a person without a second factor is walked through enrolment
(a QR code drawn on the page, no script), shown their recovery codes once, and signs in with a code; a working
person's expired access token is renewed with the session's refresh token, so a form posted just then is not lost;
a session that has ended sends them to sign in."""

from __future__ import annotations

import asyncio
import hashlib
import html
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pyotp
import pytest
from sqlalchemy import update

from gateway.config import GatewaySettings
from gateway.console.router import CSP, HERE, LONG_FIELDS, SESSION_COOKIE
from gateway.models import RefreshToken
from kit.auth import TokenIssuer
from tests.console.world import csrf_of
from tests.integration.gateway.door import STAFF_PASSWORD, Door, open_gateway

pytestmark = pytest.mark.integration

DEFAULT_MFA_ROLES = GatewaySettings.model_fields["mfa_required_roles"].default


@pytest.fixture
async def door(gateway_settings, secrets_dir) -> AsyncIterator[Door]:
    """No service behind it: these pages are the gateway's own. Sign-in waits switched off (each test signs in
    the same person a few times in a row)."""
    settings = gateway_settings(secrets_dir, mfa_required_roles=DEFAULT_MFA_ROLES, signin_backoff_seconds=0)
    async with open_gateway(settings) as opened:
        yield opened


def browser(door: Door) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=door.app), base_url="http://testserver")


OWN_PASSWORD = "a kettle hums on Zybitskaya street"  # what each person chooses for themselves, here


async def sign_in(visitor: httpx.AsyncClient, username: str, otp: str = "", password: str | None = None
                  ) -> httpx.Response:
    """With a code, the password the person chose when they set up their factor (`enrolled_user`); without, the one
    the admin gave."""
    form = (await visitor.get("/")).text
    pre_session = re.search(r'name="pre_session" value="([^"]+)"', form).group(1)
    password = password or (OWN_PASSWORD if otp else STAFF_PASSWORD)
    return await visitor.post("/console/sign-in", data={"username": username, "password": password,
                                                         "otp": otp, "pre_session": pre_session})


async def own_password_chosen(visitor: httpx.AsyncClient) -> httpx.Response:
    """The page a person given a password meets first: they choose their own; on to their factor's setup."""
    page = await visitor.get("/console/mfa")
    assert page.status_code == 200 and 'id="password-first"' in page.text and "<svg" not in page.text
    chosen = await visitor.post("/console/password", data={
        "csrf": csrf_of(page.text), "current_password": STAFF_PASSWORD, "new_password": OWN_PASSWORD,
        "new_password_again": OWN_PASSWORD})
    assert chosen.status_code == 303 and chosen.headers["location"] == "/console/mfa", chosen.text
    return chosen


async def enrolled_user(door: Door, visitor: httpx.AsyncClient, *roles: str) -> tuple[dict, pyotp.TOTP, list[str]]:
    """A user (a lone admin creates it at once) who goes through the console's enrolment."""
    user = await door.client.post("/api/admin/users", headers=await admin_without_factor(door), json={
        "username": door.next_username(), "password": STAFF_PASSWORD, "roles": list(roles)})
    user = user.json()
    first = await sign_in(visitor, user["username"])
    assert first.status_code == 303 and first.headers["location"] == "/console/mfa"
    await own_password_chosen(visitor)
    page = await visitor.get("/console/mfa")
    assert page.status_code == 200 and page.headers["content-security-policy"] == CSP
    assert "<svg" in page.text and "<script" not in page.text.split("</head>")[1]  # drawn here, no script
    secret = re.search(r'<code id="totp-secret">([A-Z2-7]+)</code>', page.text).group(1)
    app = pyotp.TOTP(secret)
    codes_page = await visitor.post("/console/mfa", data={"csrf": csrf_of(page.text), "code": app.now()})
    assert codes_page.status_code == 200, codes_page.text
    codes = re.findall(r"<li><code>([0-9a-f]{5}-[0-9a-f]{5})</code></li>", codes_page.text)
    assert len(codes) == 10
    return user, app, codes


async def admin_without_factor(door: Door) -> dict[str, str]:
    """The API's admin, set up once: enrolled through the API, signed in with a recovery code."""
    if door._admin is None:
        first = await door.client.post("/auth/token", data={"grant_type": "password", "username": "admin",
                                                             "password": door.settings.admin_password.get_secret_value()})
        token = {"Authorization": f"Bearer {first.json()['access_token']}"}
        started = (await door.client.post("/auth/mfa/totp/enrol", headers=token)).json()
        codes = (await door.client.post("/auth/mfa/totp/confirm", headers=token,
                                        json={"code": pyotp.TOTP(started["secret"]).now()})).json()["recovery_codes"]
        full = await door.client.post("/auth/token", data={
            "grant_type": "password", "username": "admin", "otp": codes[0],
            "password": door.settings.admin_password.get_secret_value()})
        door._admin = {"Authorization": f"Bearer {full.json()['access_token']}"}
    return door._admin


async def test_a_person_without_a_second_factor_enrols_on_the_page_and_then_signs_in_with_a_code(door: Door):
    visitor = browser(door)
    user, _app, codes = await enrolled_user(door, visitor, "coordinator")

    assert (await visitor.get("/", follow_redirects=False)).status_code == 200  # signed out: the sign-in form
    without_code = await sign_in(visitor, user["username"])
    assert without_code.status_code == 401 and 'id="sign-in-problem"' in without_code.text
    with_code = await sign_in(visitor, user["username"], codes[0])
    assert with_code.status_code == 303 and with_code.headers["location"] == "/"
    home = await visitor.get("/", follow_redirects=True)  # a coordinator's home: the programme page, signed in
    assert 'id="period-form"' in home.text and "/console/sign-out" in home.text  # (503: no reports service here)


async def test_a_mistyped_code_at_enrolment_shows_the_same_key_again_and_the_next_code_confirms_it(door: Door):
    """The app saved the key when it was scanned: a new one after a typo would make that entry useless."""
    user = await door.client.post("/api/admin/users", headers=await admin_without_factor(door), json={
        "username": door.next_username(), "password": STAFF_PASSWORD, "roles": ["coordinator"]})
    visitor = browser(door)
    await sign_in(visitor, user.json()["username"])
    await own_password_chosen(visitor)
    page = await visitor.get("/console/mfa")
    secret = re.search(r'<code id="totp-secret">([A-Z2-7]+)</code>', page.text).group(1)

    wrong = await visitor.post("/console/mfa", data={"csrf": csrf_of(page.text), "code": "000000"})

    # said beside the field, which keeps the focus and is described by it (an outside review's find: at the top)
    assert wrong.status_code == 422 and 'id="code-error"' in wrong.text and 'id="mfa-problem"' not in wrong.text
    assert re.search(r'<input id="code"[^>]* aria-invalid="true" aria-describedby="code-error">', wrong.text)
    assert f'<code id="totp-secret">{secret}</code>' in wrong.text and "<svg" in wrong.text  # the same key, its QR
    right = await visitor.post("/console/mfa", data={"csrf": csrf_of(wrong.text), "code": pyotp.TOTP(secret).now()})
    assert right.status_code == 200 and 'id="recovery-codes"' in right.text


async def test_an_enrolment_token_opens_nothing_else_in_the_console(door: Door):
    visitor = browser(door)
    user = (await door.client.post("/api/admin/users", headers=await admin_without_factor(door), json={
        "username": door.next_username(), "password": STAFF_PASSWORD, "roles": ["caseworker"]})).json()
    await sign_in(visitor, user["username"])

    for page in ("/", "/console/cases", "/console/grants"):
        answer = await visitor.get(page)
        assert answer.status_code == 303 and answer.headers["location"] == "/console/mfa", page


def replace_cookie(visitor: httpx.AsyncClient, name: str, value: str) -> None:
    (cookie,) = [c for c in visitor.cookies.jar if c.name == name]
    visitor.cookies.set(name, value, domain=cookie.domain, path=cookie.path)


def expired_copy(door: Door, live: str) -> str:
    """The same session's access token as it is ten minutes later: expired."""
    claims = door.app.state.token_verifier.verify(live).claims
    issuer = door.runtime.issuer
    old = TokenIssuer(issuer._key_source(), issuer=issuer.issuer, audience=issuer.audience, ttl_seconds=-120)
    return old.issue(sub=claims["sub"], roles=claims["roles"], extra={"sid": claims["sid"]})


async def test_an_expired_access_token_is_renewed_on_the_next_page(door: Door):
    visitor = browser(door)
    user, _app, codes = await enrolled_user(door, visitor, "coordinator")
    await sign_in(visitor, user["username"], codes[1])
    replace_cookie(visitor, "rehab_session", expired_copy(door, visitor.cookies["rehab_session"]))

    home = await visitor.get("/console/programme")  # the coordinator's page (503 here: no reports service behind)

    assert 'id="period-form"' in home.text and "/console/sign-out" in home.text
    renewed = next(c for c in home.headers.get_list("set-cookie") if c.startswith("rehab_session="))
    assert "httponly" in renewed.lower() and "samesite=strict" in renewed.lower() and "max-age=0" not in renewed.lower()
    assert door.app.state.token_verifier.verify(visitor.cookies["rehab_session"]).sub == user["id"]


async def test_a_form_posted_with_an_expired_access_token_goes_through(door: Door):
    visitor = browser(door)
    user, _app, codes = await enrolled_user(door, visitor, "coordinator")
    await sign_in(visitor, user["username"], codes[1])
    page = await visitor.get("/console/programme")  # the form's CSRF token is bound to the session, not to this
    # access token
    refresh_before = visitor.cookies["rehab_refresh"]
    replace_cookie(visitor, "rehab_session", expired_copy(door, visitor.cookies["rehab_session"]))

    posted = await visitor.post("/console/sign-out", data={"csrf": csrf_of(page.text)})

    # Signed out (not sent to sign in with "your session has ended"): the session was renewed, then ended.
    assert posted.status_code == 303 and posted.headers["location"] == "/"
    assert (await door.client.post("/auth/token", data={
        "grant_type": "refresh_token", "refresh_token": refresh_before})).status_code == 400


async def test_a_form_posted_with_an_expired_access_token_and_a_forged_csrf_token_is_still_refused(door: Door):
    # The session is checked (and renewed) before a form is read, its CSRF token after: renewal must not let a
    # form through that this session's page did not send.
    visitor = browser(door)
    user, _app, codes = await enrolled_user(door, visitor, "coordinator")
    await sign_in(visitor, user["username"], codes[1])
    replace_cookie(visitor, "rehab_session", expired_copy(door, visitor.cookies["rehab_session"]))

    forged = await visitor.post("/console/sign-out", data={"csrf": "0" * 64})
    still_in = await visitor.get("/console/programme")

    assert forged.status_code == 403
    assert 'id="period-form"' in still_in.text and "/console/sign-out" in still_in.text  # not signed out


async def test_a_session_cookie_of_someone_else_s_session_does_not_carry_their_csrf_token_into_this_one(door: Door):
    """Another site of the same domain can set a cookie named as the console's session: an attacker's own (expired)
    access token beside the victim's refresh cookie. The console renews the victim's session from the refresh
    cookie; the form must then carry the CSRF token of the victim's session, not of the attacker's."""
    attacker, victim = browser(door), browser(door)
    mallory, _app, mallory_codes = await enrolled_user(door, attacker, "coordinator")
    await sign_in(attacker, mallory["username"], mallory_codes[1])
    mallory_csrf = csrf_of((await attacker.get("/console/programme")).text)
    user, _app, codes = await enrolled_user(door, victim, "coordinator")
    await sign_in(victim, user["username"], codes[1])
    replace_cookie(victim, "rehab_session", expired_copy(door, attacker.cookies["rehab_session"]))

    forged = await victim.post("/console/sign-out", data={"csrf": mallory_csrf})
    still_in = await victim.get("/console/programme")

    assert forged.status_code == 403
    assert 'id="period-form"' in still_in.text and "/console/sign-out" in still_in.text  # not signed out
    own = await victim.post("/console/sign-out", data={"csrf": csrf_of(still_in.text)})
    assert own.status_code == 303  # the session's own form still works


async def test_two_tabs_renewing_at_once_stay_signed_in_but_a_copied_refresh_cookie_elsewhere_ends_the_session(
        door: Door):
    """Two tabs of one browser whose access token expired renew with the same refresh token at the same moment: one
    renewal, answered to both, not a theft alarm. The same cookie from another browser, even a second later, is
    reuse (SPEC §3): it gets nothing, and the session ends."""
    visitor = browser(door)
    user, _app, codes = await enrolled_user(door, visitor, "coordinator")
    await sign_in(visitor, user["username"], codes[3])
    replace_cookie(visitor, "rehab_session", expired_copy(door, visitor.cookies["rehab_session"]))
    copied = visitor.cookies["rehab_refresh"]

    one_tab, other_tab = await asyncio.gather(visitor.get("/console/programme"), visitor.get("/console/programme"))
    assert 'id="period-form"' in one_tab.text and 'id="period-form"' in other_tab.text
    assert 'id="period-form"' in (await visitor.get("/console/programme")).text  # still signed in

    thief = browser(door)
    thief.headers["User-Agent"] = "curl/8.5.0"
    thief.cookies.set("rehab_session", expired_copy(door, visitor.cookies["rehab_session"]))
    thief.cookies.set("rehab_refresh", copied)
    stolen = await thief.get("/console/programme")
    assert stolen.status_code == 303 and stolen.headers["location"].startswith("/?expired")
    door.runtime.standing.forget(user["id"])
    assert (await visitor.get("/console/programme")).status_code == 303  # the owner's session ended too


async def test_each_page_opened_starts_the_idle_half_hour_again_without_reviving_an_ended_session(door: Door):
    """Someone worked through an access token's 10 minutes and then read a case for 25: their idle half hour counts
    from the last page they opened, not from when the access token was last renewed."""
    visitor = browser(door)
    user, _app, codes = await enrolled_user(door, visitor, "coordinator")
    await sign_in(visitor, user["username"], codes[5])
    digest = hashlib.sha256(visitor.cookies["rehab_refresh"].encode()).hexdigest()

    async def idle_clock_ends_at(moved_to: datetime | None = None) -> datetime:
        def read_or_move(session):  # noqa: ANN001, ANN202
            if moved_to is not None:
                session.execute(update(RefreshToken).values(expires_at=moved_to))
            return session.get(RefreshToken, digest).expires_at.replace(tzinfo=UTC)
        return await door.runtime.uow.run(read_or_move)

    await idle_clock_ends_at(datetime.now(UTC) + timedelta(minutes=5))  # its renewal was 25 minutes ago
    door.runtime.at_work._last.clear()  # and its last page more than a minute ago
    assert 'id="period-form"' in (await visitor.get("/console/programme")).text
    assert await idle_clock_ends_at() > datetime.now(UTC) + timedelta(minutes=29)

    door.runtime.at_work._last.clear()
    await idle_clock_ends_at(datetime.now(UTC) - timedelta(minutes=1))  # lapsed: another page revives nothing
    await visitor.get("/console/programme")
    assert await idle_clock_ends_at() < datetime.now(UTC)


async def test_without_a_live_session_the_console_sends_you_to_sign_in(door: Door):
    visitor = browser(door)
    user, _app, codes = await enrolled_user(door, visitor, "coordinator")
    await sign_in(visitor, user["username"], codes[2])
    await door.client.post(f"/api/admin/users/{user['id']}/revoke-sessions", headers=await admin_without_factor(door))
    door.runtime.standing.forget(user["id"])

    answer = await visitor.get("/")

    assert answer.status_code == 200 and 'name="pre_session"' in answer.text  # the sign-in form again


async def test_a_form_sent_after_the_session_ended_says_on_the_sign_in_page_that_it_was_not_saved(door: Door):
    visitor = browser(door)
    user, _app, codes = await enrolled_user(door, visitor, "coordinator")
    await sign_in(visitor, user["username"], codes[4])
    page = await visitor.get("/console/programme")
    await door.client.post(f"/api/admin/users/{user['id']}/revoke-sessions", headers=await admin_without_factor(door))
    door.runtime.standing.forget(user["id"])

    sent = await visitor.post("/console/cases", data={"csrf": csrf_of(page.text), "full_name": "Алесь Жук",
                                                       "health_summary": "астма"}, headers=SAME_ORIGIN)
    assert sent.status_code == 303 and sent.headers["location"] == "/?expired=1&unsaved=1"  # revoked: nothing back
    told = await visitor.get(sent.headers["location"])
    assert 'id="unsaved"' in told.text and 'name="pre_session"' in told.text
    assert 'id="unsaved"' not in (await visitor.get("/?expired=1")).text  # a page only looked at: nothing lost


async def test_a_password_given_by_an_admin_is_replaced_before_anything_else_and_its_mistakes_are_said(door: Door):
    """Before the second factor: the person's own password (the admin who typed the given one knows it). A wrong
    current password, two new ones that differ, a short one: said beside the field, nothing changed."""
    user = (await door.client.post("/api/admin/users", headers=await admin_without_factor(door), json={
        "username": door.next_username(), "password": STAFF_PASSWORD, "roles": ["caseworker"]})).json()
    visitor = browser(door)
    await sign_in(visitor, user["username"])
    page = await visitor.get("/console/mfa")
    assert 'id="password-first"' in page.text and 'id="password-link"' not in page.text  # nothing else opens
    typed = {"csrf": csrf_of(page.text), "current_password": STAFF_PASSWORD, "new_password": OWN_PASSWORD,
             "new_password_again": OWN_PASSWORD}

    differ = await visitor.post("/console/password", data={**typed, "new_password_again": OWN_PASSWORD + "!"})
    wrong = await visitor.post("/console/password", data={**typed, "current_password": "not the one"})
    short = await visitor.post("/console/password", data={**typed, "new_password": "short", "new_password_again": "short"})

    assert differ.status_code == 422 and 'id="new_password_again-error"' in differ.text
    assert wrong.status_code == 403 and 'id="current_password-error"' in wrong.text
    assert short.status_code == 422 and "12" in re.search(r'id="new_password-error">([^<]+)', short.text).group(1)
    assert (await visitor.post("/console/mfa", data={"csrf": csrf_of(page.text), "code": "123456"})).status_code == 422
    assert (await visitor.post("/console/password", data=typed)).headers["location"] == "/console/mfa"
    assert 'id="totp-secret"' in (await visitor.get("/console/mfa")).text  # now the factor


async def test_the_first_admin_replaces_the_generated_password_on_the_first_page_and_its_file_goes(
        gateway_settings, secrets_dir):
    """`make run` without REHAB_ADMIN_PASSWORD: the first admin's password lies in a file on the server until they
    choose their own, which the console asks before the second factor, as it asks everyone given a password."""
    settings = gateway_settings(secrets_dir, admin_password=None, mfa_required_roles=DEFAULT_MFA_ROLES)
    async with open_gateway(settings) as door:
        generated = settings.admin_password_path.read_text().strip()
        visitor = browser(door)
        first = await sign_in(visitor, "admin", password=generated)
        assert first.status_code == 303 and first.headers["location"] == "/console/mfa"
        page = await visitor.get("/console/mfa")
        assert 'id="password-first"' in page.text and 'id="totp-secret"' not in page.text
        chosen = await visitor.post("/console/password", data={
            "csrf": csrf_of(page.text), "current_password": generated, "new_password": OWN_PASSWORD,
            "new_password_again": OWN_PASSWORD})
        assert chosen.headers["location"] == "/console/mfa", chosen.text
        assert 'id="totp-secret"' in (await visitor.get("/console/mfa")).text
        assert not settings.admin_password_path.exists()


async def second_admin(door: Door) -> dict[str, str]:
    """A second admin, set up through the API (their own password, their factor), signed in with a recovery code."""
    made = (await door.client.post("/api/admin/users", headers=await admin_without_factor(door), json={
        "username": door.next_username(), "password": STAFF_PASSWORD, "roles": ["admin"]})).json()

    async def token(password: str, otp: str | None = None) -> dict[str, str]:
        answer = await door.client.post("/auth/token", data={"grant_type": "password", "username": made["username"],
                                                             "password": password, **({"otp": otp} if otp else {})})
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}

    chosen = await door.client.post("/auth/password", headers=await token(STAFF_PASSWORD),
                                    json={"current_password": STAFF_PASSWORD, "new_password": OWN_PASSWORD})
    assert chosen.status_code == 204, chosen.text
    own = await token(OWN_PASSWORD)
    started = (await door.client.post("/auth/mfa/totp/enrol", headers=own)).json()
    codes = (await door.client.post("/auth/mfa/totp/confirm", headers=own,
                                    json={"code": pyotp.TOTP(started["secret"]).now()})).json()["recovery_codes"]
    return await token(OWN_PASSWORD, codes[0])


async def test_an_account_another_admin_approved_is_set_up_with_that_admins_activation_code(door: Door):
    checker = await second_admin(door)
    user = (await door.client.post("/api/admin/users", headers=await admin_without_factor(door), json={
        "username": door.next_username(), "password": STAFF_PASSWORD, "roles": ["caseworker"]})).json()
    pending = (await door.client.get("/api/admin/approvals", params={"status": "pending"}, headers=checker)).json()
    (asked,) = [a for a in pending["items"] if a["target_id"] == user["id"]]
    code = (await door.client.post(f"/api/admin/approvals/{asked['id']}/approve", headers=checker)).json()[
        "activation_code"]
    visitor = browser(door)
    await sign_in(visitor, user["username"])
    page = await visitor.get("/console/mfa")
    assert 'id="activation_code"' in page.text
    typed = {"csrf": csrf_of(page.text), "current_password": STAFF_PASSWORD, "new_password": OWN_PASSWORD,
             "new_password_again": OWN_PASSWORD}

    without = await visitor.post("/console/password", data=typed)
    assert without.status_code == 403 and 'id="activation_code-error"' in without.text
    with_code = await visitor.post("/console/password", data={**typed, "activation_code": code})
    assert with_code.status_code == 303 and with_code.headers["location"] == "/console/mfa"
    assert 'id="totp-secret"' in (await visitor.get("/console/mfa")).text


async def test_a_person_changes_their_password_from_any_page_and_signs_in_again_with_it(door: Door):
    visitor = browser(door)
    user, _app, codes = await enrolled_user(door, visitor, "coordinator")
    await sign_in(visitor, user["username"], codes[8])
    page = await visitor.get("/console/password")
    assert 'id="password-link"' in page.text and 'id="password-first"' not in page.text

    changed = await visitor.post("/console/password", data={
        "csrf": csrf_of(page.text), "current_password": OWN_PASSWORD, "new_password": OWN_PASSWORD + " twice",
        "new_password_again": OWN_PASSWORD + " twice"})

    assert changed.status_code == 200 and 'id="password-changed"' in changed.text and 'name="pre_session"' in changed.text
    assert (await visitor.get("/console/programme")).status_code == 303  # signed out, here and everywhere
    assert (await sign_in(visitor, user["username"], codes[9])).status_code == 401  # the old password
    assert (await sign_in(visitor, user["username"], codes[9], OWN_PASSWORD + " twice")).status_code == 303


SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}  # what a browser says of a form sent from the console's own page
NOTE = "Дыхае цяжка, трэба да пульманолага\nу чацвер — паклікаць брата"


async def lapse(door: Door, visitor: httpx.AsyncClient) -> None:
    """The session ends by time, as after 30 minutes idle: its refresh token expired, its access token gone stale."""
    lapsed_at = datetime.now(UTC) - timedelta(minutes=1)
    await door.runtime.uow.run(lambda session: session.execute(update(RefreshToken).values(expires_at=lapsed_at)))
    visitor.cookies.set(SESSION_COOKIE, "stale")


async def test_a_note_sent_after_the_session_lapsed_is_given_back_on_the_sign_in_page_to_copy(door: Door):
    """Someone wrote a long note for more than the idle half hour: what they wrote comes back with the sign-in form,
    to copy; nothing of it is kept, and the sign-in form does not send it again."""
    visitor = browser(door)
    user, _app, codes = await enrolled_user(door, visitor, "coordinator")
    await sign_in(visitor, user["username"], codes[6])
    page = await visitor.get("/console/programme")
    await lapse(door, visitor)

    sent = await visitor.post(f"/console/cases/{uuid.uuid4()}/notes", headers=SAME_ORIGIN, data={
        "csrf": csrf_of(page.text), "text": NOTE, "idempotency_key": str(uuid.uuid4())})

    assert sent.status_code == 200 and 'name="pre_session"' in sent.text and 'id="unsaved"' in sent.text
    typed = re.search(r'<section id="typed".*?</section>', sent.text, re.DOTALL).group(0)
    assert html.escape(NOTE, quote=False) in typed and "<textarea" in typed and " name=" not in typed
    assert 'id="typed"' not in (await visitor.get("/?expired=1&unsaved=1")).text  # kept nowhere to show again


async def test_a_lapsed_form_gives_nothing_back_to_another_site_or_without_long_text(door: Door):
    """Another site's form (the browser says `cross-site`, or says nothing) never has its text shown on the
    console's page; a form with nothing written at length goes to the sign-in page as before."""
    visitor = browser(door)
    user, _app, codes = await enrolled_user(door, visitor, "coordinator")
    await sign_in(visitor, user["username"], codes[7])
    page = await visitor.get("/console/programme")
    await lapse(door, visitor)
    note = {"csrf": csrf_of(page.text), "text": NOTE}

    for headers in ({"Sec-Fetch-Site": "cross-site"}, {}):
        sent = await visitor.post(f"/console/cases/{uuid.uuid4()}/notes", data=note, headers=headers)
        assert sent.status_code == 303 and sent.headers["location"] == "/?expired=1&unsaved=1"
    short = await visitor.post("/console/cases", data={"csrf": note["csrf"], "full_name": "Алесь Жук"},
                               headers=SAME_ORIGIN)
    assert short.status_code == 303 and short.headers["location"] == "/?expired=1&unsaved=1"


async def test_a_note_from_a_page_opened_before_signing_in_again_is_given_back_to_copy(door: Door):
    """Signed out and in again in another tab: the first tab's form is out of date (its token was the old
    session's), and what it held is given back on that answer, to copy; never to a form another site sent."""
    visitor = browser(door)
    user, _app, codes = await enrolled_user(door, visitor, "coordinator")
    await sign_in(visitor, user["username"], codes[8])
    page = await visitor.get("/console/programme")
    await visitor.post("/console/sign-out", data={"csrf": csrf_of(page.text)})
    await sign_in(visitor, user["username"], codes[9])
    note = {"csrf": csrf_of(page.text), "text": NOTE}

    as_a_browser = {**SAME_ORIGIN, "Accept": "text/html"}
    stale = await visitor.post(f"/console/cases/{uuid.uuid4()}/notes", data=note, headers=as_a_browser)
    assert stale.status_code == 403, stale.text[:300]
    typed = re.search(r'<section id="typed".*?</section>', stale.text, re.DOTALL).group(0)
    assert html.escape(NOTE, quote=False) in typed and " name=" not in typed
    elsewhere = await visitor.post(f"/console/cases/{uuid.uuid4()}/notes", data=note,
                                   headers={"Sec-Fetch-Site": "cross-site", "Accept": "text/html"})
    assert elsewhere.status_code == 403 and 'id="typed"' not in elsewhere.text


def test_every_field_written_at_length_in_the_console_is_one_a_lapsed_form_gives_back():
    """Each <textarea> of the console's pages, by its name: a new one must say what its form calls it. (And a task's
    title, a line written by hand.)"""
    names = {"title"}
    for template in (HERE / "templates").glob("*.html"):
        names |= set(re.findall(r'<textarea[^>]*\bname="([a-z_]+)"', template.read_text()))
    assert names == set(LONG_FIELDS)


async def test_someone_setting_up_their_factor_sees_nothing_else_and_can_sign_out(door: Door):
    visitor = browser(door)
    user = (await door.client.post("/api/admin/users", headers=await admin_without_factor(door), json={
        "username": door.next_username(), "password": STAFF_PASSWORD, "roles": ["caseworker"]})).json()
    assert (await sign_in(visitor, user["username"])).headers["location"] == "/console/mfa"
    page = await visitor.get("/console/mfa")
    assert "/console/cases" not in page.text, "no link to what a password alone does not open"

    left = await visitor.post("/console/sign-out", data={"csrf": csrf_of(page.text)})

    assert left.status_code == 303 and left.headers["location"] == "/"
    assert "rehab_session" not in visitor.cookies
    assert (await visitor.get("/console/mfa")).headers["location"] == "/"
