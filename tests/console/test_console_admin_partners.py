"""The admin's partner pages (issue #18): the directory and adding a partner; a partner's details and their change;
its webhook set, its secret shown once (in the POST's own answer, never again), rotated with two secrets signing,
replaced and removed; its deliveries with the dead letters marked. Refusals in the admin's words, next to their
fields. In-process against the gateway, every service as a process; referrals allows private webhook targets here
(`WEBHOOK_ALLOW_PRIVATE`: the receiver is this test's server on 127.0.0.1) and gives up on a delivery after about
two seconds instead of 24 hours, so that a receiver that keeps failing makes a dead letter while the test waits."""

from __future__ import annotations

import asyncio
import inspect
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from aiohttp import web
from standardwebhooks import Webhook as StandardWebhook

from tests.console.test_console_admin import admin_console
from tests.console.test_console_case_page import EN, form_of, referral_sent, section, words
from tests.console.test_console_caseload import Caseworker, open_case, person
from tests.console.test_console_no_typed_values_in_urls import as_user, signed_in_walk
from tests.console.test_console_pages import browser, sign_in
from tests.console.world import add_partner, csrf_of
from tests.integration.gateway.door import Backends, Door, backends_running, existing_services, open_gateway
from tests.support.loopback import serving

pytestmark = pytest.mark.integration

PARTNERS = "/console/admin/partners"
SECRET = re.compile(r"whsec_[A-Za-z0-9+/=]+")
# Referrals' webhook settings for this module: private targets allowed, quick retries, dead after ~2 s of failures.
WEBHOOK_ENV = {"REHAB_WEBHOOK_ALLOW_PRIVATE": "true", "REHAB_WEBHOOK_BACKOFF_BASE_SECONDS": "0.05",
               "REHAB_WEBHOOK_BACKOFF_CAP_SECONDS": "0.2", "REHAB_WEBHOOK_POLL_SECONDS": "0.05",
               "REHAB_WEBHOOK_RETRY_HOURS": "0.0006"}


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backends]:
    with backends_running(tmp_path_factory.mktemp("backends"), existing_services(),
                          env={"referrals": WEBHOOK_ENV}) as running_backends:
        yield running_backends


@pytest.fixture
async def door(backends: Backends, gateway_settings) -> AsyncIterator[Door]:
    settings = gateway_settings(backends.secrets_dir, nats_url=backends.nats_url,
                                **{f"{name}_url": url for name, url in backends.urls.items()})
    async with open_gateway(settings) as opened:
        yield opened


# --- a partner's receiver, on 127.0.0.1 ---------------------------------------------------------------------------

@dataclass
class Receiver:
    """Answers 204 on /ok and 500 anywhere else; keeps every request."""

    port: int = 0
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((request.path, dict(request.headers), await request.read()))
        return web.Response(status=204 if request.path == "/ok" else 500)

    def at(self, path: str) -> list[tuple[str, dict[str, str], bytes]]:
        return [r for r in self.received if r[0] == path]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    got = Receiver()
    async with serving(got.handle) as got.port:
        yield got


async def eventually(check, timeout: float = 20.0):  # noqa: ANN001, ANN201
    """Call (and await) `check()` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if inspect.isawaitable(found):
            found = await found
        if found or time.monotonic() > deadline:
            assert found, "not in time"
            return found
        await asyncio.sleep(0.1)


# --- helpers ------------------------------------------------------------------------------------------------------

async def post_form(visitor: httpx.AsyncClient, page_path: str, action: str, data: dict) -> httpx.Response:
    """Send a form of a page as served (its CSRF token) with `data`."""
    page = await visitor.get(page_path)
    assert page.status_code == 200, page.text
    return await visitor.post(action, data={"csrf": csrf_of(page.text), **data})


def row(page: str, row_id: str) -> str:
    """The HTML of a table's row with this id."""
    start = page.index(f'<tr id="{row_id}"')
    return page[start:page.index("</tr>", start)]


def secret_on(page: str) -> str:
    found = SECRET.findall(page)
    assert len(found) == 1, "the page shows no secret, or more than one"
    return found[0]


async def referred_case(door: Door) -> tuple[Caseworker, dict]:
    """A caseworker's case with consent to medical referrals (referral_sent refers to medical partners)."""
    ala = await person(door, "caseworker")
    case = await open_case(door, ala, full_name="Зміцер Бандарэнка", country="LT")
    given = await door.client.put(f"/api/intake/cases/{case['id']}/consent", headers=ala.api, json={
        "categories": ["medical"], "share_contact": False, "share_health": False, "method": "written"})
    assert given.status_code == 200, given.text
    return ala, case


# --- the whole way ------------------------------------------------------------------------------------------------

async def test_an_admin_adds_a_partner_and_sets_rotates_replaces_and_removes_its_webhook(door: Door,
                                                                                         receiver: Receiver):
    admin = await admin_console(door)
    directory = await admin.get(PARTNERS)
    assert directory.status_code == 200 and 'id="add-partner"' in directory.text
    added = await admin.post(PARTNERS, data={
        **form_of(directory.text, "add-partner"), "name": "Psychotherapy practice Vilnius", "category": "medical",
        "countries": "lt, pl", "cities": "Vilnius, Warszawa", "languages": "be ru", "active": "yes",
        "contact_email": "intake@practice.example", "capacity_note": "Two new people a week"})
    assert added.status_code == 303, added.text
    location = added.headers["location"]
    found = re.fullmatch(rf"{PARTNERS}/([0-9a-f-]{{36}})\?done=created", location)
    assert found, location
    partner_id = found.group(1)
    page_path = f"{PARTNERS}/{partner_id}"

    page = await admin.get(location)
    assert page.status_code == 200 and EN["padmin_done_created"] in page.text
    assert "Lithuania, Poland" in page.text and "Belarusian, Russian" in page.text and "Vilnius, Warszawa" in page.text and "Two new people a week" in page.text
    stored = await door.client.get(f"/api/referrals/partners/{partner_id}", headers=await door.admin())
    assert stored.json()["countries"] == ["LT", "PL"] and stored.json()["languages"] == ["be", "ru"]
    assert stored.json()["active"] is True
    listed = row((await admin.get(PARTNERS)).text, f"p-{partner_id}")
    assert "Psychotherapy practice Vilnius" in listed and EN["category_medical"] in listed and "Lithuania, Poland" in listed
    assert EN["padmin_open"] in listed and EN["padmin_webhook_none_short"] in listed

    # Set: the answer to the POST shows the secret, once, and is not kept by any cache.
    assert 'id="set-webhook"' in page.text and EN["padmin_webhook_none"] in page.text
    set_answer = await post_form(admin, page_path, f"{page_path}/webhook", {
        "url": receiver.url("/ok"), "events": ["referral.sent", "referral.cancelled"]})
    assert set_answer.status_code == 200 and "location" not in set_answer.headers
    assert set_answer.headers["cache-control"] == "no-store"
    first = secret_on(set_answer.text)
    assert EN["padmin_secret_title"] in set_answer.text and EN["padmin_done_webhook_set"] in set_answer.text
    assert first not in str(set_answer.url)

    again = (await admin.get(page_path)).text
    assert not SECRET.search(again) and EN["padmin_secret_title"] not in again
    details = section(again, "webhook")
    assert receiver.url("/ok") in details and EN["padmin_event_sent"] in details
    assert EN["padmin_event_cancelled"] in details and EN["padmin_rotation_none"] in details

    # The secret shown is the one that signs: a referral sent to the partner reaches the receiver, verified with it.
    ala, case = await referred_case(door)
    referral = await referral_sent(door, ala, case["id"], {"id": partner_id})
    await eventually(lambda: receiver.at("/ok"))
    _, headers, body = receiver.at("/ok")[0]
    assert StandardWebhook(first).verify(body, headers)["data"]["referral_id"] == referral["id"]
    log = await eventually(lambda: _delivery_log(admin, page_path, EN["padmin_state_delivered"]))
    assert EN["padmin_type_sent"] in log and EN["padmin_answer_ok"].format(code=204) in log
    assert referral["id"][:8] in log and referral["id"] in log  # shortened, the whole in its title

    # Rotate: a new secret, once; the previous one signs beside it until the time the page says.
    rotated = await post_form(admin, page_path, f"{page_path}/webhook/rotate", {})
    assert rotated.status_code == 200 and rotated.headers["cache-control"] == "no-store"
    second = secret_on(rotated.text)
    assert second != first and EN["padmin_done_rotated"] in rotated.text
    assert EN["padmin_secret_until"].split("{until}")[0] in rotated.text
    again = (await admin.get(page_path)).text
    assert not SECRET.search(again) and EN["padmin_rotation_under_way"].split("{until}")[0] in again
    other = await referral_sent(door, ala, case["id"], {"id": partner_id})
    await eventually(lambda: len(receiver.at("/ok")) >= 2)
    _, headers, body = receiver.at("/ok")[1]
    for secret in (first, second):  # a receiver holding either one verifies
        assert StandardWebhook(secret).verify(body, headers)["data"]["referral_id"] == other["id"]

    # Replace with a receiver that fails: its deliveries become dead letters, marked, and filtered by a fixed word.
    replaced = await post_form(admin, page_path, f"{page_path}/webhook", {
        "url": receiver.url("/fail"), "events": ["referral.sent"]})
    assert replaced.status_code == 200 and EN["padmin_done_webhook_replaced"] in replaced.text
    third = secret_on(replaced.text)
    assert third not in (first, second)
    failed = await referral_sent(door, ala, case["id"], {"id": partner_id})
    dead_log = await eventually(lambda: _delivery_log(admin, f"{page_path}?state=dead", 'class="dead-letter"'))
    assert failed["id"] in dead_log and EN["padmin_state_dead"] in dead_log
    assert EN["padmin_error_http_status"].format(code=500) in dead_log
    assert EN["padmin_state_delivered"] not in dead_log  # only the dead letters
    everything = await _delivery_log(admin, page_path, EN["padmin_state_delivered"])
    assert everything and 'class="dead-letter"' in everything
    assert len(receiver.at("/fail")) >= 2  # retried before it was given up
    directory = (await admin.get(PARTNERS)).text
    assert f'id="dead-{partner_id}"' in directory and EN["padmin_dead_letters_short"] in directory

    # The partner's server is mended (here: its address): every dead letter sent again, with its webhook id.
    api = f"/api/referrals/partners/{partner_id}/webhook/deliveries"
    (letter,) = (await door.client.get(api, params={"state": "dead"}, headers=await door.admin())).json()["items"]
    mended = await post_form(admin, page_path, f"{page_path}/webhook", {"url": receiver.url("/ok"),
                                                                         "events": ["referral.sent"]})
    fourth = secret_on(mended.text)
    assert 'id="redeliver-dead"' in mended.text and EN["padmin_redeliver_dead_help"] in mended.text
    again = await post_form(admin, page_path, f"{page_path}/webhook/dead-letters/redeliver", {})
    assert again.status_code == 303 and again.headers["location"] == f"{page_path}?done=dead-letters-redelivered"
    assert EN["padmin_done_dead_letters_redelivered"] in (await admin.get(again.headers["location"])).text
    _, headers, body = await eventually(lambda: next(
        (r for r in receiver.at("/ok") if r[1].get("webhook-id") == letter["id"]), None))
    assert StandardWebhook(fourth).verify(body, headers)["data"]["referral_id"] == failed["id"]
    # one delivery the partner says it lost: its row's button sends it once more
    shown = await _delivery_log(admin, page_path, EN["padmin_redeliver_one"].format(id=letter["id"][:12] + "…"))
    assert shown and 'id="redeliver-dead"' not in (await admin.get(page_path)).text  # no dead letter left
    one = await post_form(admin, page_path, f"{page_path}/webhook/deliveries/{letter['id']}/redeliver", {})
    assert one.status_code == 303 and one.headers["location"] == f"{page_path}?done=redelivered"
    await eventually(lambda: len([r for r in receiver.at("/ok") if r[1].get("webhook-id") == letter["id"]]) == 2)
    unknown = await post_form(admin, page_path, f"{page_path}/webhook/deliveries/msg_{'0' * 32}/redeliver", {})
    assert unknown.status_code == 404 and EN["padmin_refused_no_delivery"] in unknown.text

    # Remove: asked once more, then gone; the form to set one is back.
    asked = await admin.get(f"{page_path}/webhook/remove")
    assert asked.status_code == 200 and EN["padmin_remove_title"] in asked.text
    assert 'id="remove-webhook-form"' in asked.text and 'id="rotate-secret"' not in asked.text
    removed = await admin.post(f"{page_path}/webhook/remove", data={"csrf": csrf_of(asked.text)})
    assert removed.status_code == 303 and removed.headers["location"] == f"{page_path}?done=webhook-removed"
    after = (await admin.get(removed.headers["location"])).text
    assert EN["padmin_done_webhook_removed"] in after and 'id="set-webhook"' in after
    gone = await door.client.get(f"/api/referrals/partners/{partner_id}/webhook", headers=await door.admin())
    assert gone.status_code == 404
    for secret in (first, second, third, fourth):
        assert secret not in after


async def _delivery_log(visitor: httpx.AsyncClient, path: str, holding: str) -> str | None:
    """The deliveries table of a partner's page, once it holds `holding`."""
    page = await visitor.get(path)
    assert page.status_code == 200, page.text
    start = page.text.index('id="delivery-log"')
    log = page.text[start:page.text.index("</table>", start)]
    return log if holding in log else None


# --- refusals, in words -------------------------------------------------------------------------------------------

async def test_refusals_are_said_in_the_admin_s_words_next_to_their_fields(door: Door):
    admin = await admin_console(door)
    refused = await post_form(admin, PARTNERS, PARTNERS, {
        "name": "Relocation initiative", "category": "relocation", "countries": "Lithuania", "cities": "Kraków",
        "languages": "беларуская", "contact_email": "not an address", "capacity_note": ""})
    assert refused.status_code == 422
    for name, key in (("countries", "error_country"), ("languages", "padmin_error_language"),
                      ("contact_email", "error_email")):
        assert f'<p class="field-error" id="{name}-error">{EN[key]}</p>' in refused.text, name
    assert 'value="Lithuania"' in refused.text and 'value="not an address"' in refused.text  # kept as typed
    for english in ("not an e-mail address", "ISO 3166", "BCP 47", "countries.0", "value_error"):
        assert english not in refused.text  # no code paths, no service's English

    partner = await add_partner(door)
    page_path = f"{PARTNERS}/{partner['id']}"
    for url, key in (("ftp://clinic.example/hooks", "padmin_refused_https"),
                     ("https://user:secret@clinic.example/hooks", "padmin_refused_url"),
                     ("https://nothing-here.invalid/hooks", "padmin_refused_address")):
        answer = await post_form(admin, page_path, f"{page_path}/webhook", {"url": url, "events": ["referral.sent"]})
        assert answer.status_code == 422, url
        assert f'<p class="field-error" id="url-error">{EN[key]}</p>' in answer.text, url
        said = re.sub(r'<a href="/console/password"[^>]*>[^<]*</a>', "", answer.text)  # the page's own link
        assert "must use https" not in said and "password" not in said.lower().replace(
            EN["padmin_refused_url"].lower(), "")
        assert not SECRET.search(answer.text)
    no_events = await post_form(admin, page_path, f"{page_path}/webhook", {"url": "https://clinic.example/hooks"})
    assert no_events.status_code == 422 and EN["padmin_refused_events"] in no_events.text
    assert 'value="https://clinic.example/hooks"' in no_events.text
    assert (await door.client.get(f"/api/referrals/partners/{partner['id']}/webhook",
                                  headers=await door.admin())).status_code == 404

    unnamed = await post_form(admin, page_path, page_path, {**form_of((await admin.get(page_path)).text,
                                                                      "edit-partner"), "name": " "})
    assert unnamed.status_code == 422 and f'id="name-error">{EN["error_required"]}<' in unnamed.text
    closed = await post_form(admin, page_path, page_path, form_of((await admin.get(page_path)).text, "edit-partner"))
    assert closed.status_code == 303 and closed.headers["location"] == f"{page_path}?done=updated"
    stored = await door.client.get(f"/api/referrals/partners/{partner['id']}", headers=await door.admin())
    assert stored.json()["active"] is False  # the box was not ticked: closed to new referrals
    assert EN["padmin_closed"] in (await admin.get(page_path)).text

    rotate_nothing = await post_form(admin, page_path, f"{page_path}/webhook/rotate", {})
    assert rotate_nothing.status_code == 404 and EN["padmin_refused_no_webhook"] in rotate_nothing.text


async def test_a_partner_s_staff_account_is_bound_only_to_a_partner_of_the_directory(door: Door):
    """The form offers the directory's partners; a form altered on its way (any UUID as `partner_id`) would bind
    the account to nobody's referrals: refused next to its field, as the API refuses it, and nothing is made."""
    admin = await admin_console(door)
    partner = await add_partner(door)
    users = "/console/admin/users"
    form = {"password": "a kettle hums on Zybitskaya street", "roles": ["partner_staff"]}

    altered = await post_form(admin, f"{users}/new", users, {**form, "username": "clinic.altered",
                                                             "partner_id": str(uuid.uuid4())})
    chosen = await post_form(admin, f"{users}/new", users, {**form, "username": "clinic.chosen",
                                                            "partner_id": partner["id"]})

    assert altered.status_code == 422
    assert f'<p class="field-error" id="partner_id-error">{EN["problem_partner_unknown"]}</p>' in altered.text
    assert chosen.status_code == 303, chosen.text
    listed = (await door.client.get("/api/admin/users", headers=await door.admin())).json()["items"]
    assert {"clinic.chosen"} == {user["username"] for user in listed if user["username"].startswith("clinic.")}


# --- who may come -------------------------------------------------------------------------------------------------

async def test_only_admins_open_the_partner_pages_and_an_unknown_partner_is_404(door: Door):
    partner = await add_partner(door)
    caseworker = await door.add_user("caseworker")
    visitor = browser(door)
    assert (await sign_in(visitor, caseworker["username"])).status_code == 303
    home = await visitor.get("/console/cases")
    assert f'href="{PARTNERS}"' not in home.text
    for path in (PARTNERS, f"{PARTNERS}/{partner['id']}", f"{PARTNERS}/{partner['id']}/webhook/remove"):
        assert (await visitor.get(path)).status_code == 403, path
    for action in (PARTNERS, f"{PARTNERS}/{partner['id']}/webhook", f"{PARTNERS}/{partner['id']}/webhook/rotate"):
        posted = await visitor.post(action, data={"csrf": csrf_of(home.text), "url": "https://clinic.example/h",
                                                  "events": ["referral.sent"], "name": "Taken over"})
        assert posted.status_code == 403, action

    admin = await admin_console(door)
    assert f'href="{PARTNERS}"' in (await admin.get("/console/admin/users")).text
    unknown = f"{PARTNERS}/{uuid.uuid4()}"
    for path in (unknown, f"{PARTNERS}/not-a-partner", f"{unknown}/webhook/remove"):
        assert (await admin.get(path)).status_code == 404, path


# --- in Belarusian ------------------------------------------------------------------------------------------------

async def test_the_partner_pages_speak_belarusian(door: Door):
    partner = await add_partner(door)
    admin = await admin_console(door)
    await admin.get("/console/language/be")
    be = words("be")
    directory = (await admin.get(PARTNERS)).text
    for key in ("padmin_partners", "padmin_directory_explained", "padmin_add", "padmin_countries_help",
                "padmin_category_fixed", "padmin_active", "category_medical"):
        assert be[key] in directory, key
    page = (await admin.get(f"{PARTNERS}/{partner['id']}")).text
    for key in ("padmin_webhook_none", "padmin_webhook_url", "padmin_event_sent", "padmin_event_sent_help",
                "padmin_event_cancelled_help", "padmin_event_message_help", "padmin_secret_once",
                "padmin_deliveries", "padmin_deliveries_dead", "padmin_no_deliveries", "padmin_edit"):
        assert be[key] in page, key
    refused = await post_form(admin, f"{PARTNERS}/{partner['id']}", f"{PARTNERS}/{partner['id']}/webhook",
                              {"url": "ftp://clinic.example/hooks", "events": ["referral.sent"]})
    assert refused.status_code == 422 and be["padmin_refused_https"] in refused.text


# --- nothing typed into these pages reaches a URL -----------------------------------------------------------------

async def test_no_value_typed_into_the_partner_pages_reaches_a_url(door: Door, receiver: Receiver):
    """The console's crawler (test_console_no_typed_values_in_urls) as an admin, with a partner whose webhook is set
    (its name sorts first, so its page is the one walked): every form of the partner pages is sent with a needle in
    each field, and once with codes referrals takes (the receiver's address, so that setting a webhook succeeds)."""
    made = await door.client.post("/api/referrals/partners", headers=await door.admin(), json={
        "name": "A clinic in Vilnius", "category": "medical", "countries": ["LT"],
        "contact_email": "in@clinic.example"})
    assert made.status_code == 201, made.text
    hooked = await door.client.put(f"/api/referrals/partners/{made.json()['id']}/webhook", headers=await door.admin(),
                                   json={"url": receiver.url("/ok"), "events": ["referral.sent"]})
    assert hooked.status_code == 201, hooked.text
    username, _ = await as_user(door, "admin")
    valid = {"countries": "LT", "languages": "be", "url": receiver.url("/ok")}
    async with signed_in_walk(door, username, valid) as walk:
        await walk.run()

    assert not walk.leaks(), "typed values in URLs:\n" + "\n".join(walk.leaks())
    sent = {key.rsplit(" ", 1)[0] for key in walk.submitted}
    must = {f"POST {PARTNERS}", f"POST {PARTNERS}/{{id}}", f"POST {PARTNERS}/{{id}}/webhook",
            f"POST {PARTNERS}/{{id}}/webhook/rotate", f"POST {PARTNERS}/{{id}}/webhook/remove"}
    assert must <= sent, f"the walk never sent {must - sent}"
    assert {"name", "countries", "cities", "languages", "contact_email", "capacity_note", "url"} <= set(
        walk.typist.typed.values())
