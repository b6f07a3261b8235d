"""The admin's pages of the console, in-process against a gateway (they are the gateway's own: no service behind it):
staff accounts and the approvals of separation of duties (SPEC §2, §3).

With one admin every change takes effect at once and every admin page says nobody checks it; with two, a new account
waits until the other admin approves it on the approvals page, where nobody may approve their own request. The API's
refusals (admin combined with another role, a weak password) are shown in the admin's language, and no form is
accepted without the console's CSRF token."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator

import httpx
import pyotp
import pytest

from gateway.config import GatewaySettings
from gateway.console import i18n
from tests.console.test_console_pages import browser, sign_in
from tests.console.world import alert, csrf_of
from tests.integration.gateway.door import ADMIN_PASSWORD, STAFF_PASSWORD, Door, open_gateway

pytestmark = pytest.mark.integration

USERS = "/console/admin/users"
APPROVALS = "/console/admin/approvals"
DEFAULT_MFA_ROLES = GatewaySettings.model_fields["mfa_required_roles"].default


@pytest.fixture
async def door(gateway_settings, secrets_dir) -> AsyncIterator[Door]:
    # A refused sign-in (an account awaiting approval) counts as a failure like any other: no wait after it here.
    async with open_gateway(gateway_settings(secrets_dir, signin_backoff_seconds=0)) as opened:
        yield opened


async def admin_console(door: Door, username: str = "admin", password: str = ADMIN_PASSWORD,
                        otp: str = "") -> httpx.AsyncClient:
    """An admin signed in to the console through its sign-in form."""
    visitor = browser(door)
    if otp:
        form = (await visitor.get("/")).text
        pre_session = re.search(r'name="pre_session" value="([^"]+)"', form).group(1)
        answer = await visitor.post("/console/sign-in", data={"username": username, "password": password,
                                                              "otp": otp, "pre_session": pre_session})
    else:
        answer = await sign_in(visitor, username, password)
    assert answer.status_code == 303 and answer.headers["location"] == "/", answer.text
    return visitor


async def create_in_console(visitor: httpx.AsyncClient, username: str, *roles: str,
                            password: str = STAFF_PASSWORD) -> httpx.Response:
    """Fill in the new-account form as served (with its CSRF token) and send it."""
    page = await visitor.get(f"{USERS}/new")
    assert page.status_code == 200, page.text
    return await visitor.post(USERS, data={"csrf": csrf_of(page.text), "username": username, "password": password,
                                           "roles": list(roles), "partner_id": ""})


async def press(visitor: httpx.AsyncClient, page_path: str, action: str, data: dict | None = None) -> httpx.Response:
    """Press a button of a page: post its form's action with the page's CSRF token."""
    page = await visitor.get(page_path)
    assert f'action="{action}"' in page.text, f"no form to {action} on {page_path}"
    return await visitor.post(action, data={"csrf": csrf_of(page.text), **(data or {})})


def notice(page: str) -> str:
    found = re.search(r'<p class="notice" role="status" id="notice">(.*?)</p>', page, re.DOTALL)
    assert found, "the page says nothing about the change"
    return html.unescape(found.group(1))


def account_row(page: str, username: str) -> re.Match | None:
    """The row of the accounts table that names `username`."""
    return re.search(rf'<tr id="u-[^"]+">\s*<td[^>]*><a href="[^"]+">{re.escape(username)}</a>.*?</tr>', page,
                     re.DOTALL)


def words(key: str, language: str = "en") -> str:
    return i18n.MESSAGES[language][key]


async def pending_approvals(door: Door, admin: dict[str, str]) -> list[dict]:
    answer = await door.client.get("/api/admin/approvals", params={"status": "pending"}, headers=admin)
    return answer.json()["items"]


# --- one admin: at once, and said plainly -------------------------------------------------------------------------

async def test_a_lone_admin_lands_on_the_accounts_creates_one_at_once_and_every_page_says_nobody_checks(door: Door):
    visitor = await admin_console(door)
    home = await visitor.get("/")
    assert home.status_code == 303 and home.headers["location"] == USERS

    username = door.next_username()
    created = await create_in_console(visitor, username, "caseworker")

    assert created.status_code == 303 and created.headers["location"] == f"{USERS}?done=created"
    listed = await visitor.get(created.headers["location"])
    assert listed.status_code == 200 and notice(listed.text) == words("admin_done_created")
    assert f'href="{USERS}"' in listed.text and f'href="{APPROVALS}"' in listed.text  # the admin's nav
    row = account_row(listed.text, username)
    assert row and words("role_caseworker") in row.group(0) and words("admin_active") in row.group(0)
    assert (await door.sign_in(username, STAFF_PASSWORD)).status_code == 200  # it works now: nobody had to approve
    user_id = re.search(r'<tr id="u-([^"]+)">', row.group(0)).group(1)
    for path in (USERS, f"{USERS}/new", f"{USERS}/{user_id}", APPROVALS):
        page = await visitor.get(path)
        assert page.status_code == 200 and 'id="single-admin"' in page.text, path
        assert words("admin_alone_text") in page.text and 'id="four-eyes"' not in page.text, path
        assert 'id="file-custody"' in page.text, f"{path}: keys in plain files (development custody) are said"
    # "Add a second admin" opens the new account's form with Admin ticked already.
    assert f'href="{USERS}/new?role=admin"' in page.text
    second = await visitor.get(f"{USERS}/new", params={"role": "admin"})
    assert re.search(r'name="roles" value="admin" checked', second.text)
    assert not re.search(r'name="roles" value="[a-z_]+" checked', (await visitor.get(f"{USERS}/new")).text)

    # Said in Belarusian too (the language is remembered from the link on).
    await visitor.get(f"/console/language/be?next={USERS}")
    in_belarusian = await visitor.get(USERS)
    assert words("admin_alone_text", "be") in in_belarusian.text and words("admin_users", "be") in in_belarusian.text
    assert words("admin_alone_text") not in in_belarusian.text


async def test_every_admin_word_is_written_in_belarusian_russian_and_english():
    ours = {key for key in i18n.MESSAGES["en"] if key.startswith(("admin_", "role_"))}
    for language in i18n.STAFF_LANGUAGES:
        assert ours <= set(i18n.MESSAGES[language]), language
        assert all(i18n.MESSAGES[language][key].strip() for key in ours), language
    assert not [key for key in ours if i18n.MESSAGES["be"][key] == i18n.MESSAGES["en"][key]
                or i18n.MESSAGES["ru"][key] == i18n.MESSAGES["en"][key]]


# --- two admins: the other one approves ----------------------------------------------------------------------------

async def test_with_two_admins_a_new_account_waits_until_the_other_admin_approves_it_on_the_approvals_page(door: Door):
    second = await door.add_user("admin")  # the lone admin's grant takes effect at once
    first = await admin_console(door)
    username = door.next_username()

    created = await create_in_console(first, username, "finance")

    assert created.status_code == 303 and created.headers["location"] == f"{USERS}?done=created-pending"
    listed = await first.get(created.headers["location"])
    assert notice(listed.text) == words("admin_done_created_pending")
    assert 'id="four-eyes"' in listed.text and 'id="single-admin"' not in listed.text
    row = account_row(listed.text, username)
    assert row and words("admin_waiting") in html.unescape(row.group(0))
    assert (await door.sign_in(username, STAFF_PASSWORD)).status_code == 400  # no sign-in until approved

    # The requester sees their own request as waiting, with nothing to press; approving it anyway is refused.
    (asked,) = [a for a in await pending_approvals(door, door._checker) if a["action"] == "user.create"]
    own_view = await first.get(APPROVALS)
    own_row = html.unescape(re.search(rf'<tr id="a-{asked["id"]}">.*?</tr>', own_view.text, re.DOTALL).group(0))
    assert words("admin_own_request") in own_row and "/approve\"" not in own_row and username in own_row
    assert "/reject\"" in own_row and words("admin_withdraw") in own_row  # its author may withdraw it
    forced = await first.post(f"{APPROVALS}/{asked['id']}/approve", data={"csrf": csrf_of(own_view.text)})
    assert forced.status_code == 403 and alert(forced.text) == words("admin_refused_own_request")

    # The other admin is told on every admin page, and approves it on the approvals page.
    checker = await admin_console(door, second["username"], STAFF_PASSWORD)
    told = await checker.get(USERS)
    assert 'id="waiting-for-you"' in told.text and f'href="{APPROVALS}"' in told.text
    approved = await press(checker, APPROVALS, f"{APPROVALS}/{asked['id']}/approve")

    # The approving admin is shown the account's activation code, in this answer alone (never in an address), to
    # hand to the person: with the first admin's password, it sets the account up (gateway/activation.py).
    assert approved.status_code == 200 and "location" not in approved.headers
    code = re.search(r'<code id="activation-code">([2-9A-Z-]+)</code>', approved.text).group(1)
    said = html.unescape(re.search(r'<section class="notice" role="status" id="activation".*?</section>',
                                   approved.text, re.DOTALL).group(0))
    assert username in said and f'id="a-{asked["id"]}"' not in approved.text
    assert code not in (await checker.get(APPROVALS)).text  # shown once
    assert (await door.sign_in(username, STAFF_PASSWORD)).status_code == 200


async def test_with_two_admins_a_role_grant_and_an_enabling_wait_and_a_rejected_grant_changes_nothing(door: Door):
    second = await door.add_user("admin")
    target = await door.add_user("caseworker")
    first = await admin_console(door)
    page = f"{USERS}/{target['id']}"

    granted = await press(first, page, f"{page}/roles", {"roles": ["caseworker", "supervisor"]})
    assert granted.status_code == 303 and granted.headers["location"] == f"{page}?done=roles-pending"
    shown = await first.get(granted.headers["location"])
    assert notice(shown.text) == words("admin_done_roles_pending") and 'id="asked"' in shown.text
    assert words("role_supervisor") in re.search(r'<section id="asked".*?</section>', shown.text, re.DOTALL).group(0)

    disabled = await press(first, page, f"{page}/disable")  # disabling acts at once, whoever is around
    assert disabled.headers["location"] == f"{page}?done=disabled"
    enabled = await press(first, page, f"{page}/enable")
    assert enabled.headers["location"] == f"{page}?done=enabled-pending"
    assert (await door.sign_in(target["username"], STAFF_PASSWORD)).status_code == 400

    checker = await admin_console(door, second["username"], STAFF_PASSWORD)
    (grant,) = [a for a in await pending_approvals(door, door._checker) if a["action"] == "user.roles"]
    rejected = await press(checker, APPROVALS, f"{APPROVALS}/{grant['id']}/reject")
    assert rejected.headers["location"] == f"{APPROVALS}?done=rejected"
    (enabling,) = [a for a in await pending_approvals(door, door._checker) if a["action"] == "user.enable"]
    await press(checker, APPROVALS, f"{APPROVALS}/{enabling['id']}/approve")
    token = await door.bearer_for(await door.sign_in(target["username"], STAFF_PASSWORD))
    assert (await door.client.get("/auth/me", headers=token)).json()["roles"] == ["caseworker"]


async def test_an_admin_disabled_by_another_waits_on_the_approvals_page_and_a_rejection_enables_it_again(door: Door):
    second = await door.add_user("admin")  # approves the third
    third = await door.add_user("admin")
    first = await admin_console(door)
    page = f"{USERS}/{second['id']}"

    disabled = await press(first, page, f"{page}/disable")
    assert disabled.headers["location"] == f"{page}?done=disabled"
    assert (await door.sign_in(second["username"], STAFF_PASSWORD)).status_code == 400

    checker = await admin_console(door, third["username"], STAFF_PASSWORD)
    shown = await checker.get(APPROVALS)
    assert words("admin_asked_disable") in html.unescape(shown.text) and second["username"] in shown.text
    third_token = await door.bearer_for(await door.sign_in(third["username"], STAFF_PASSWORD))
    (asked,) = [a for a in await pending_approvals(door, third_token) if a["action"] == "user.disable"]
    await press(checker, APPROVALS, f"{APPROVALS}/{asked['id']}/reject")
    assert (await door.sign_in(second["username"], STAFF_PASSWORD)).status_code == 200


# --- refusals, readable ---------------------------------------------------------------------------------------------

async def test_admin_combined_with_another_role_is_refused_in_words_the_admin_reads(door: Door):
    visitor = await admin_console(door)
    username = door.next_username()

    form = await visitor.get(f"{USERS}/new")
    assert words("admin_alone_role") in form.text  # said before anyone tries
    refused = await create_in_console(visitor, username, "admin", "caseworker")

    assert refused.status_code == 422 and alert(refused.text) == words("admin_refused_admin_alone")
    assert f'value="{username}"' in refused.text and STAFF_PASSWORD not in refused.text  # kept; never the password
    assert (await door.sign_in(username, STAFF_PASSWORD)).status_code == 400  # nothing was created

    await visitor.get(f"/console/language/ru?next={USERS}")
    in_russian = await create_in_console(visitor, username, "caseworker", "admin")
    assert alert(in_russian.text) == words("admin_refused_admin_alone", "ru")
    weak = await create_in_console(visitor, username, "caseworker", password="short")
    assert weak.status_code == 422 and alert(weak.text) == words("admin_refused_password_short", "ru")
    run = await create_in_console(visitor, username, "caseworker", password="123456789012")
    assert run.status_code == 422 and alert(run.text) == words("admin_refused_password_repetitive", "ru")
    # a user name the form takes not, and a weak password, are said at once, each beside its field (a reviewer
    # corrected them one submit at a time)
    both = await create_in_console(visitor, "x" * 80, "caseworker", password="short")
    assert both.status_code == 422
    for field in ("username", "password"):
        assert re.search(rf'<input id="{field}"[^>]*aria-invalid="true"', both.text), field
    taken = await door.add_user("finance")  # a name in use, in other letter case, and a weak password: both too
    both = await create_in_console(visitor, taken["username"].upper(), "caseworker", password="short")
    for field in ("username", "password"):
        assert re.search(rf'<input id="{field}"[^>]*aria-invalid="true"', both.text), field
    # and roles that do not combine, with the others (they were said on a later sending, once the others were mended)
    every = await create_in_console(visitor, taken["username"], "caseworker", "admin", password="short")
    assert every.status_code == 422
    for field in ("username", "password"):
        assert re.search(rf'<input id="{field}"[^>]*aria-invalid="true"', every.text), field
    assert re.search(r'<fieldset id="roles"[^>]*aria-invalid="true"', every.text)
    assert words("admin_refused_admin_alone", "ru") in html.unescape(every.text)
    assert (await door.sign_in(taken["username"], "short")).status_code == 400  # nothing made, nothing changed

    target = await door.add_user("finance")
    page = f"{USERS}/{target['id']}"
    mixed = await press(visitor, page, f"{page}/roles", {"roles": ["finance", "admin"]})
    assert mixed.status_code == 422 and alert(mixed.text) == words("admin_refused_admin_alone", "ru")


async def test_an_admins_own_account_page_offers_no_change(door: Door):
    visitor = await admin_console(door)
    listed = await visitor.get(USERS)
    own_id = re.search(r'<tr id="u-([^"]+)">\s*<td[^>]*><a href="[^"]+">admin</a>', listed.text).group(1)

    own = await visitor.get(f"{USERS}/{own_id}")

    assert own.status_code == 200 and 'id="own-account"' in own.text
    assert not re.search(r'<form method="post" action="/console/admin', own.text)
    forced = await visitor.post(f"{USERS}/{own_id}/roles", data={"csrf": csrf_of(own.text), "roles": ["auditor"]})
    assert forced.status_code == 403 and alert(forced.text) == words("admin_refused_own_account")


async def test_a_lone_admin_changes_roles_disables_enables_and_signs_someone_out_everywhere_at_once(door: Door):
    target = await door.add_user("caseworker")
    token = await door.bearer_for(await door.sign_in(target["username"], STAFF_PASSWORD))
    visitor = await admin_console(door)
    page = f"{USERS}/{target['id']}"

    signed_out = await press(visitor, page, f"{page}/revoke-sessions")
    assert signed_out.headers["location"] == f"{page}?done=signed-out"
    door.runtime.standing.forget(target["id"])
    assert (await door.client.get("/auth/me", headers=token)).status_code == 401

    granted = await press(visitor, page, f"{page}/roles", {"roles": ["caseworker", "supervisor"]})
    assert granted.headers["location"] == f"{page}?done=roles"
    assert notice((await visitor.get(granted.headers["location"])).text) == words("admin_done_roles")
    disabled = await press(visitor, page, f"{page}/disable")
    assert disabled.headers["location"] == f"{page}?done=disabled"
    assert (await door.sign_in(target["username"], STAFF_PASSWORD)).status_code == 400
    enabled = await press(visitor, page, f"{page}/enable")
    assert enabled.headers["location"] == f"{page}?done=enabled"
    token = await door.bearer_for(await door.sign_in(target["username"], STAFF_PASSWORD))
    assert (await door.client.get("/auth/me", headers=token)).json()["roles"] == ["caseworker", "supervisor"]


# --- the doors: CSRF and the admin role -------------------------------------------------------------------------------

async def test_no_admin_form_is_accepted_without_the_consoles_csrf_token(door: Door):
    await door.add_user("admin")
    target = await door.add_user("caseworker")
    asked = await door.client.post("/api/admin/users", headers=await door.admin(), json={
        "username": door.next_username(), "password": STAFF_PASSWORD, "roles": ["auditor"]})
    (approval,) = await pending_approvals(door, door._checker)
    visitor = await admin_console(door)
    body = {"username": door.next_username(), "password": STAFF_PASSWORD, "roles": ["finance"]}
    actions = [USERS, *(f"{USERS}/{target['id']}/{action}"
                        for action in ("roles", "disable", "enable", "reset-mfa", "revoke-sessions")),
               f"{APPROVALS}/{approval['id']}/approve", f"{APPROVALS}/{approval['id']}/reject"]

    for action in actions:
        without = await visitor.post(action, data=body)
        forged = await visitor.post(action, data={**body, "csrf": "0" * 64})
        assert without.status_code == forged.status_code == 403, action

    assert [a["id"] for a in await pending_approvals(door, door._checker)] == [approval["id"]]
    assert asked.json()["status"] == "pending_approval"
    token = await door.bearer_for(await door.sign_in(target["username"], STAFF_PASSWORD))  # not disabled
    assert (await door.client.get("/auth/me", headers=token)).json()["roles"] == ["caseworker"]
    assert (await door.sign_in(body["username"], STAFF_PASSWORD)).status_code == 400  # never created


async def test_the_admin_pages_are_for_admins_only(door: Door):
    auditor = await door.add_user("auditor")
    visitor = browser(door)
    await sign_in(visitor, auditor["username"])
    home = await visitor.get("/", follow_redirects=True)  # the auditor's home: the audit trails
    assert home.status_code == 200 and f'href="{USERS}"' not in home.text

    for path in (USERS, f"{USERS}/new", APPROVALS, f"{USERS}/{auditor['id']}"):
        assert (await visitor.get(path)).status_code == 403, path
    posted = await visitor.post(USERS, data={"csrf": csrf_of(home.text), "username": door.next_username(),
                                             "password": STAFF_PASSWORD, "roles": ["admin"]})
    assert posted.status_code == 403


# --- the second factor, required ----------------------------------------------------------------------------------

@pytest.fixture
async def door_with_mfa(gateway_settings, secrets_dir) -> AsyncIterator[Door]:
    """The production default: every staff role must have a second factor."""
    settings = gateway_settings(secrets_dir, mfa_required_roles=DEFAULT_MFA_ROLES, signin_backoff_seconds=0)
    async with open_gateway(settings) as opened:
        yield opened


OWN_PASSWORD = "a kettle hums on Zybitskaya street"  # what a person chooses in place of the one an admin gave


async def enrolled(door: Door, username: str, password: str) -> list[str]:
    """Set up a second factor through the API, as an app would, once the person has chosen their own password
    (`OWN_PASSWORD`; the first admin's is their own already); the recovery codes."""
    first = await door.client.post("/auth/token", data={"grant_type": "password", "username": username,
                                                         "password": password})
    token = {"Authorization": f"Bearer {first.json()['access_token']}"}
    if password != ADMIN_PASSWORD:
        chosen = await door.client.post("/auth/password", headers=token,
                                        json={"current_password": password, "new_password": OWN_PASSWORD})
        assert chosen.status_code == 204, chosen.text
        first = await door.client.post("/auth/token", data={"grant_type": "password", "username": username,
                                                             "password": OWN_PASSWORD})
        token = {"Authorization": f"Bearer {first.json()['access_token']}"}
    started = (await door.client.post("/auth/mfa/totp/enrol", headers=token)).json()
    confirmed = await door.client.post("/auth/mfa/totp/confirm", headers=token,
                                       json={"code": pyotp.TOTP(started["secret"]).now()})
    assert confirmed.status_code == 200, confirmed.text
    return confirmed.json()["recovery_codes"]


async def test_an_admin_resets_a_lost_second_factor_and_the_person_sets_up_a_new_one(door_with_mfa: Door):
    door = door_with_mfa
    admin_codes = await enrolled(door, "admin", ADMIN_PASSWORD)
    door._admin = await door.bearer_for(await door.client.post("/auth/token", data={
        "grant_type": "password", "username": "admin", "password": ADMIN_PASSWORD, "otp": admin_codes[0]}))
    target = await door.add_user("caseworker")
    await enrolled(door, target["username"], STAFF_PASSWORD)
    visitor = await admin_console(door, otp=admin_codes[1])
    page = f"{USERS}/{target['id']}"
    before = await visitor.get(page)
    assert words("admin_factor_set") in before.text

    reset = await press(visitor, page, f"{page}/reset-mfa")

    assert reset.status_code == 303 and reset.headers["location"] == f"{page}?done=mfa-reset"
    after = await visitor.get(reset.headers["location"])
    assert notice(after.text) == words("admin_done_mfa_reset") and words("admin_factor_none") in after.text
    assert f'action="{page}/reset-mfa"' not in after.text  # nothing left to reset
    again = await door.client.post("/auth/token", data={"grant_type": "password", "username": target["username"],
                                                         "password": OWN_PASSWORD})
    assert again.status_code == 200 and again.json()["scope"] == "mfa_enrol"  # enrols again at this sign-in
