"""The partner console (SPEC §2, §4; issue #18), in-process against the gateway and every service as a process: a
person on a partner's staff signs in on the staff's sign-in page and lands on their partner's inbox — referrals by
status, overdue ones marked, nothing of another partner — and nowhere else: every staff page answers them 404. A
referral's page shows the packet and the steps its state allows; a step it does not allow is a disabled button with
its rule in words, and the service's refusals come back as sentences in the visitor's language (Polish and
Lithuanian too). No address a page links to or redirects to holds anything of the person."""

from __future__ import annotations

import asyncio
import html
import importlib
import importlib.util
import re
import time
import uuid
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from markupsafe import escape

from gateway.console import i18n
from gateway.console import partner as partner_console
from tests.console.test_console_pages import browser, sign_in
from tests.console.world import add_partner, alert, csrf_of
from tests.integration.gateway.door import ADMIN_PASSWORD, Backends, Door, open_gateway

pytestmark = pytest.mark.integration

console = importlib.import_module("gateway.console.router")  # the module (the package names its router so)
PERSON = "Алесь Бяляцкі"  # the name the caseworker writes for the partner: it must never reach an address
NOTE = "Quietpine: needs an evening slot, works days"
ID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def words(key: str, language: str = "en") -> str:
    """A word of the console as a page writes it (HTML-escaped)."""
    return str(escape(i18n.MESSAGES[language][key]))


class World:
    """A partner organisation with a person on its staff signed in to the console, and a caseworker who refers."""

    def __init__(self, door: Door, partner: dict, visitor: httpx.AsyncClient, caseworker: dict[str, str]) -> None:
        self.door, self.partner, self.visitor, self.caseworker = door, partner, visitor, caseworker

    async def refer(self, *, partner_id: str | None = None, category: str | None = None, language: str = "ru",
                    display_name: str = PERSON, note: str = NOTE, contact: str | None = None) -> str:
        """A case with consent for the partner's category, referred to it (once referrals has learned the case)."""
        category = category or self.partner["category"]
        client = self.door.client
        case = await client.post("/api/intake/cases", headers=self.caseworker, json={"full_name": display_name})
        assert case.status_code == 201, case.text
        consent = await client.put(f"/api/intake/cases/{case.json()['id']}/consent", headers=self.caseworker, json={
            "categories": [category], "share_contact": True, "share_health": False, "method": "written"})
        assert consent.status_code == 200, consent.text
        packet = {"display_name": display_name, "language": language, "note": note}
        if contact:
            packet["contact"] = contact
        body = {"case_id": case.json()["id"], "partner_id": partner_id or self.partner["id"],
                "need_category": category, "packet": packet}
        deadline = time.monotonic() + 20
        while True:  # referrals learns the case and its consent from intake's events
            sent = await client.post("/api/referrals/referrals", headers=self.caseworker, json=body)
            if sent.status_code == 201 or time.monotonic() > deadline:
                assert sent.status_code == 201, sent.text
                return sent.json()["id"]
            await asyncio.sleep(0.1)

    async def page(self, referral_id: str) -> httpx.Response:
        return await self.visitor.get(f"/console/partner/referrals/{referral_id}")

    async def press(self, referral_id: str, step: str, **data: str) -> httpx.Response:
        """A step's button on the referral's page, with its CSRF token and what was typed."""
        page = await self.page(referral_id)
        return await self.visitor.post(f"/console/partner/referrals/{referral_id}/{step}",
                                       data={"csrf": csrf_of(page.text), **data})

    async def status(self, referral_id: str) -> dict:
        answer = await self.door.client.get(f"/api/referrals/referrals/{referral_id}", headers=self.caseworker)
        assert answer.status_code == 200, answer.text
        return answer.json()


async def partner_staff_signed_in(door: Door, partner_id: str) -> httpx.AsyncClient:
    user = await door.add_user("partner_staff", partner_id=partner_id)
    visitor = browser(door)
    signed = await sign_in(visitor, user["username"])
    assert signed.status_code == 303 and signed.headers["location"] == "/", signed.text
    return visitor


@pytest.fixture
async def world(door: Door) -> World:
    partner = await add_partner(door, category="psychological", country="LT", language="ru")
    return World(door, partner, await partner_staff_signed_in(door, partner["id"]), await door.staff("caseworker"))


def addresses(page: str) -> list[str]:
    """Every address the page links to, posts to or loads."""
    return [html.unescape(found) for found in re.findall(r'(?:href|action|src)="([^"]*)"', page)]


# --- landing, the inbox, another partner's referral ------------------------------------------------------------------

async def test_partner_staff_land_on_their_partners_inbox_by_status_and_another_partners_referral_is_404(
        world: World):
    door = world.door
    other = await add_partner(door, category="psychological", country="PL", language="pl")
    waiting = await world.refer()
    started = await world.refer(display_name="Марфа Рабкова", language="be")
    assert (await world.press(started, "accept")).status_code == 303
    assert (await world.press(started, "start")).status_code == 303
    theirs = await world.refer(partner_id=other["id"], display_name="Ігар Лосік")

    landed = await world.visitor.get("/")
    inbox = await world.visitor.get("/console/partner")
    missing = await world.page(theirs)
    unknown = await world.page(str(uuid.uuid4()))

    assert landed.status_code == 303 and landed.headers["location"] == "/console/partner"
    assert inbox.status_code == 200 and words("partner_inbox") in inbox.text
    page = inbox.text
    assert all(f'href="/console/partner/referrals/{one}"' in page for one in (waiting, started))
    assert theirs not in page and "Ігар Лосік" not in page  # another partner's: nothing of it
    # Grouped by status, waiting for an answer first, closed last; each with its words, not codes.
    order = [page.index(f'id="group-{g}"') for g in ("sent", "accepted", "in_progress", "closed")]
    assert order == sorted(order)
    assert page.index(f"referral-{waiting}") < order[1] and order[2] < page.index(f"referral-{started}") < order[3]
    assert words("partner_cat_psychological") in page and words("partner_lang_ru") in page
    assert words("partner_lang_be") in page and words("partner_status_in_progress") in page
    assert words("partner_overdue_rule").split("{")[0] in page  # the rule is said on the page
    # Another partner's referral, and one that does not exist: the same 404, in words.
    assert missing.status_code == unknown.status_code == 404
    assert words("partner_not_found") in missing.text and "Ігар Лосік" not in missing.text
    refused = await world.visitor.post(f"/console/partner/referrals/{theirs}/accept",
                                       data={"csrf": csrf_of(inbox.text)})
    assert refused.status_code == 404 and (await world.status(theirs))["status"] == "sent"


async def test_a_group_past_one_page_links_to_its_older_referrals_the_oldest_reached(world: World,
                                                                                        monkeypatch):
    """An outside review's find: past the first 200 of a status, the oldest waiting (the overdue ones) were out of
    reach, and the group's count was the number shown. Two to a page here, five waiting."""
    monkeypatch.setattr(partner_console, "OPEN_SHOWN", 2)
    sent = [await world.refer() for _ in range(5)]  # oldest first
    seen, link = [], "/console/partner"
    for _ in range(3):
        page = await world.visitor.get(link)
        assert page.status_code == 200, page.text
        group = page.text[page.text.index('id="group-sent"'):page.text.index('id="group-accepted"')]
        seen += re.findall(r'id="referral-([0-9a-f-]{36})"', group)
        older = re.search(r'<a href="(/console/partner\?status=sent&amp;cursor=[^"]+)">', group)
        if older is None:
            break
        assert "(2+)" in group and words("partner_older") in group
        link = html.unescape(older.group(1))
        assert re.fullmatch(r"/console/partner\?status=sent&cursor=[A-Za-z0-9_=%-]+#group-sent", link), link
    assert seen == sent[::-1]  # every one, newest first, the oldest on the last page
    assert words("partner_older_shown") in page.text and 'href="/console/partner#group-sent"' in page.text


async def test_an_overdue_referral_is_marked_and_the_rule_is_said_with_its_days(world: World,
                                                                                  monkeypatch: pytest.MonkeyPatch):
    waiting = await world.refer()
    accepted = await world.refer(display_name="Марыя Калеснікава")
    assert (await world.press(accepted, "accept")).status_code == 303
    fresh = await world.visitor.get("/console/partner")
    assert 'class="overdue"' not in fresh.text

    real_now = partner_console.now
    monkeypatch.setattr(partner_console, "now", lambda: real_now() + timedelta(days=4))
    four_days = (await world.visitor.get("/console/partner")).text
    monkeypatch.setattr(partner_console, "now", lambda: real_now() + timedelta(days=15))
    fifteen_days = (await world.visitor.get("/console/partner")).text

    assert re.search(rf'<tr id="referral-{waiting}" class="overdue">', four_days)
    assert not re.search(rf'<tr id="referral-{accepted}" class="overdue">', four_days)  # accepted: 14 days
    assert re.search(rf'<tr id="referral-{accepted}" class="overdue">', fifteen_days)
    assert "within 3\u00a0days of being sent" in four_days and "within 14\u00a0days of being accepted" in four_days
    page = (await world.page(accepted)).text
    assert words("partner_overdue") in page


# --- a referral's steps and their refusals ---------------------------------------------------------------------------

async def test_each_step_is_offered_only_from_its_state_and_refused_in_words_otherwise(world: World):
    referral = await world.refer(contact="Signal, evenings")
    page = (await world.page(referral)).text
    assert PERSON in page and NOTE in page and "Signal, evenings" in page  # the packet
    assert f'action="/console/partner/referrals/{referral}/accept"' in page
    assert f'action="/console/partner/referrals/{referral}/decline"' in page
    for step in ("start", "complete"):  # not allowed yet: disabled, the rule said beside it
        assert f'action="/console/partner/referrals/{referral}/{step}"' not in page
        assert re.search(rf'<button type="button" disabled aria-describedby="rule-{step}">', page)
        assert words(f"partner_rule_{step}") in page

    # A step posted anyway (an old page, another tab) is refused by the service; the page says why, in words.
    early = await world.press(referral, "start")
    assert early.status_code == 409
    assert alert(early.text) == (i18n.MESSAGES["en"]["partner_refused_transition"].format(status="New") + " "
                                 + i18n.MESSAGES["en"]["partner_rule_start"])

    accepted = await world.press(referral, "accept")
    assert accepted.status_code == 303
    assert accepted.headers["location"] == f"/console/partner/referrals/{referral}?done=accept"
    shown = (await world.visitor.get(accepted.headers["location"])).text
    assert words("partner_done_accept") in shown and words("partner_status_accepted") in shown
    again = await world.press(referral, "accept")  # a second click: what was asked for holds
    assert again.status_code == 303 and (await world.status(referral))["status"] == "accepted"
    late = await world.press(referral, "decline", reason="no places")
    assert late.status_code == 409 and i18n.MESSAGES["en"]["partner_rule_decline"] in alert(late.text)

    assert (await world.press(referral, "start")).status_code == 303
    empty = await world.press(referral, "complete", outcome="  ", amount="", currency="EUR")
    assert empty.status_code == 422 and alert(empty.text) == i18n.MESSAGES["en"]["partner_refused_outcome"]
    wrong = await world.press(referral, "complete", outcome="Six sessions held", amount="about 300", currency="EUR")
    assert wrong.status_code == 422 and "€1,234.50" in alert(wrong.text)
    assert "Six sessions held" in wrong.text and 'value="about 300"' in wrong.text  # kept, in the page only
    done = await world.press(referral, "complete", outcome="Six sessions held", amount="1 234,5", currency="PLN")
    assert done.status_code == 303, done.text

    detail = await world.status(referral)
    assert detail["status"] == "completed" and detail["outcome"] == "Six sessions held"
    assert detail["cost_estimate"] == {"amount": "1234.50", "currency": "PLN"}
    closed = (await world.page(referral)).text
    assert words("partner_closed") in closed and words("partner_done_complete") not in closed
    assert "disabled" not in closed and 'id="step-' not in closed  # no step left: none shown, not four greyed
    assert 'id="group-closed"' in (inbox := (await world.visitor.get("/console/partner")).text)
    assert inbox.index(f"referral-{referral}") > inbox.index('id="group-closed"')


async def test_declining_needs_a_reason_and_a_refusal_is_said_in_polish_and_lithuanian(world: World):
    referral = await world.refer()
    no_reason = await world.press(referral, "decline", reason=" ")
    assert no_reason.status_code == 422 and alert(no_reason.text) == i18n.MESSAGES["en"]["partner_refused_reason"]

    seen = {}
    for language in ("pl", "lt"):
        chosen = await world.visitor.get(f"/console/language/{language}",
                                         params={"next": f"/console/partner/referrals/{referral}"})
        assert chosen.headers["location"] == f"/console/partner/referrals/{referral}"  # back to the same page
        refused = await world.press(referral, "complete", outcome="x")
        t = i18n.translator(language)
        seen[language] = (refused.status_code, alert(refused.text))
        assert seen[language] == (409, t("partner_refused_transition").format(status=t("partner_status_sent"))
                                  + " " + t("partner_rule_complete"))
        page = (await world.page(referral)).text
        assert f'<html lang="{language}">' in page and words("partner_accept", language) in page
    assert seen["pl"][1].startswith("Nie wykonano") and seen["lt"][1].startswith("Neatlikta")

    await world.visitor.get("/console/language/en", params={"next": "/"})
    declined = await world.press(referral, "decline", reason="No free places until autumn")
    assert declined.status_code == 303
    detail = await world.status(referral)
    assert detail["status"] == "declined" and detail["decline_reason"] == "No free places until autumn"
    # declined, the person's packet and the thread are taken back: the page says why, in the partner's words
    page = html.unescape((await world.page(referral)).text)
    assert i18n.MESSAGES["en"]["partner_packet_gone_declined"] in page
    assert i18n.MESSAGES["en"]["partner_messages_declined"] in page


async def test_with_the_referrals_service_down_the_pages_say_so_in_the_visitors_language(backends: Backends,
                                                                                          gateway_settings):
    async with open_gateway(gateway_settings(backends.secrets_dir)) as alone:  # no service answers this gateway
        visitor = await partner_staff_signed_in(alone, str(uuid.uuid4()))
        await visitor.get("/console/language/lt", params={"next": "/"})
        inbox = await visitor.get("/console/partner")
        referral = await visitor.get(f"/console/partner/referrals/{uuid.uuid4()}")
    assert inbox.status_code == referral.status_code == 503
    assert alert(inbox.text) == alert(referral.text) == i18n.MESSAGES["lt"]["partner_refused_unavailable"]
    # no group is said to be empty: each says it cannot be shown (a partner read a hung service as no work)
    for group in ("sent", "accepted", "in_progress", "closed"):
        assert f'id="group-{group}-unshown"' in inbox.text, group
    assert i18n.MESSAGES["lt"]["partner_group_none"] not in inbox.text and "(0)" not in inbox.text


async def test_a_step_the_service_took_and_never_answered_is_said_as_maybe_done_not_as_nothing_changed(
        backends: Backends, gateway_settings):
    """A referrals process that stalls (a paused process, a disk that hangs) after taking "Accept" carries it out
    when it wakes: the page said "nothing was changed" (the inbox's read after it failing too), and the partner read
    the referral later as accepted (an outside review's find). Said as maybe done, whatever the read after says."""
    referral_id = str(uuid.uuid4())

    async def stalls_on_accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        if head.startswith("POST ") and "/accept" in head.split("\r\n", 1)[0]:
            await asyncio.sleep(30)  # took it, and says nothing
        body = b'{"type": "/problems/service-unavailable", "title": "Unavailable", "status": 503}'
        writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/problem+json\r\n"
                     b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    stalled = await asyncio.start_server(stalls_on_accept, "127.0.0.1", 0)
    port = stalled.sockets[0].getsockname()[1]
    settings = gateway_settings(backends.secrets_dir, referrals_url=f"http://127.0.0.1:{port}",
                                backend_timeout_seconds=1.0)
    try:
        async with open_gateway(settings) as alone:
            visitor = await partner_staff_signed_in(alone, str(uuid.uuid4()))
            await visitor.get("/console/language/pl", params={"next": "/"})
            page = await visitor.get(f"/console/partner/referrals/{referral_id}")
            pressed = await visitor.post(f"/console/partner/referrals/{referral_id}/accept",
                                         data={"csrf": csrf_of(page.text)})
    finally:
        stalled.close()
    assert pressed.status_code == 504
    assert alert(pressed.text) == i18n.MESSAGES["pl"]["partner_refused_timeout"]


# --- partner staff open nothing else; staff open nothing of theirs ----------------------------------------------------

def staff_pages() -> list[tuple[str, str]]:
    """Every page of the console behind a sign-in that is not the partner console's or signing out: (method, path),
    an id where the path takes one. Read from every router the console package serves, so a page added later is
    checked too."""
    import gateway.console as package

    routers = [getattr(package, name) for name in package.__all__ if name.endswith("router")]
    found = []
    for route in [route for router in routers for route in router.routes]:
        path = getattr(route, "path", "")
        if not path.startswith("/console/") or console.partner_may_open(path):
            continue
        if path.startswith(("/console/static", "/console/sign-in", "/console/mfa", "/console/language")):
            continue  # open before signing in, or to someone still setting up a second factor
        concrete = re.sub(r"\{[a-z_]+\}", str(uuid.uuid4()), path)
        found.extend((method, concrete) for method in sorted(route.methods - {"HEAD"}))
    return found


async def test_every_staff_page_answers_partner_staff_404_and_staff_cannot_open_the_partner_console(world: World):
    csrf = csrf_of((await world.visitor.get("/console/partner")).text)
    pages = staff_pages()
    assert ("GET", "/console/cases") in pages and ("GET", "/console/admin/users") in pages and len(pages) > 30
    assert any(path.startswith("/console/cases/") and "/referrals/" in path for _, path in pages)
    answers = {}
    for method, path in pages:
        answer = await world.visitor.request(method, path, data={"csrf": csrf} if method == "POST" else None)
        if answer.status_code == 303:  # a page that only sends everyone elsewhere (an old address): there, refused
            answer = await world.visitor.get(answer.headers["location"])
        answers[(method, path)] = answer.status_code
    assert {key: status for key, status in answers.items() if status not in (403, 404)} == {}
    assert (await world.visitor.get("/console/partner")).status_code == 200  # still signed in, at home

    signed_out = await world.visitor.post("/console/sign-out", data={"csrf": csrf})  # and out of it
    assert signed_out.status_code == 303 and signed_out.headers["location"] == "/"
    assert (await world.visitor.get("/console/partner")).headers["location"] == "/"

    for role in ("caseworker", "admin"):
        user = await world.door.add_user(role)
        staff = browser(world.door)
        assert (await sign_in(staff, user["username"])).status_code == 303
        assert (await staff.get("/console/partner")).status_code == 403
        assert (await staff.get(f"/console/partner/referrals/{uuid.uuid4()}")).status_code == 403


async def test_the_pages_before_the_partner_console_speak_polish_and_lithuanian(door: Door):
    visitor = browser(door)
    for language, sign_in_word, code_word in (("pl", "Zaloguj się", "Kod jednorazowy"),
                                              ("lt", "Prisijungti", "Vienkartinis kodas")):
        await visitor.get(f"/console/language/{language}", params={"next": "/"})
        page = (await visitor.get("/")).text
        assert f'<html lang="{language}">' in page and sign_in_word in page and code_word in page
        assert not [key for key in ("sign_in", "username", "password", "otp", "otp_help")
                    if words(key) in page], language  # nothing left in English


async def test_an_admin_creates_a_partner_staff_member_in_the_console_who_then_lands_on_their_inbox(world: World):
    admin = browser(world.door)
    assert (await sign_in(admin, "admin", ADMIN_PASSWORD)).status_code == 303
    form = await admin.get("/console/admin/users/new")
    assert f'<option value="{world.partner["id"]}">' in form.text  # chosen by name from the partner directory
    username = f"clinic.staff.{uuid.uuid4().hex[:6]}"
    made = await admin.post("/console/admin/users", data={
        "csrf": csrf_of(form.text), "username": username, "password": "Staff-passphrase-2026",
        "roles": "partner_staff", "partner_id": world.partner["id"]})
    assert made.status_code == 303, made.text
    newcomer = browser(world.door)
    assert (await sign_in(newcomer, username)).status_code == 303
    assert (await newcomer.get("/")).headers["location"] == "/console/partner"
    referral = await world.refer()
    assert f"/console/partner/referrals/{referral}" in (await newcomer.get("/console/partner")).text


# --- nothing of the person in an address ------------------------------------------------------------------------------

ALLOWED_ADDRESS = re.compile(
    rf"/console/partner(/referrals/{ID}(/(accept|decline|start|complete|messages))?)?"
    r"|/console/static/[a-z]+\.(css|js)|/console/sign-out|/console/password|#[a-z0-9_-]+"
    rf"|/console/language/(be|ru|en|pl|lt)\?next=%2Fconsole%2Fpartner(%2Freferrals%2F{ID})?")


async def test_no_address_a_partner_page_links_to_or_redirects_to_holds_anything_of_the_person(world: World):
    referral = await world.refer(contact="+370 600 12345")
    pages = [await world.visitor.get("/console/partner"), await world.page(referral),
             await world.press(referral, "start"),  # a refusal's page
             await world.press(referral, "complete", outcome=NOTE, amount="not money")]
    redirects = [await world.press(referral, "accept"), await world.press(referral, "start")]
    refused = await world.press(referral, "decline", reason=f"{PERSON} moved away")

    for page in [*pages, refused]:
        for address in addresses(page.text):
            assert ALLOWED_ADDRESS.fullmatch(address), address
    for answer in redirects:
        assert re.fullmatch(rf"/console/partner/referrals/{referral}\?done=(accept|start)",
                            answer.headers["location"])
    for page in [*pages, refused]:  # the title goes into the browser's history: no name in it either
        title = re.search(r"<title>(.*?)</title>", page.text, re.DOTALL).group(1)
        assert PERSON not in html.unescape(title) and "+370" not in title


# --- messages (services/referrals/messages.py) ------------------------------------------------------------------------

async def test_the_thread_shows_the_caseworkers_messages_marked_new_and_the_partner_writes_back(world: World):
    referral = await world.refer()
    for text in ("First: can you see her this week?", "Second: she prefers Russian"):
        wrote = await world.door.client.post(f"/api/referrals/referrals/{referral}/messages",
                                             headers=world.caseworker, json={"text": text})
        assert wrote.status_code == 201, wrote.text
    inbox = (await world.visitor.get("/console/partner")).text
    assert i18n.counter("en")("unread_count", 2) in inbox

    page = (await world.page(referral)).text
    thread = page[page.index('id="messages"'):]
    assert thread.index("First:") < thread.index("Second:")  # the newest at the bottom
    assert thread.count(f'<strong class="new-mark">{words("partner_new")}</strong>') == 2
    drawn = (await world.page(referral)).text
    key = re.search(r'name="idempotency_key" value="([^"]+)"', drawn).group(1)
    for _ in range(2):  # a double click on Send: one message
        answer = await world.visitor.post(f"/console/partner/referrals/{referral}/messages", data={
            "csrf": csrf_of(drawn), "idempotency_key": key, "text": "Yes, Thursday at 18:00"})
        assert answer.status_code == 303
    assert answer.headers["location"] == f"/console/partner/referrals/{referral}?done=message#messages"
    page = (await world.page(referral)).text
    thread = page[page.index('id="messages"'):]
    assert "new-mark" not in thread  # read now
    assert thread.index("Second:") < thread.index("Yes, Thursday at 18:00")
    assert words("partner_from_partner") in thread and words("partner_from_caseworker") in thread
    empty = await world.press(referral, "messages", text="   ")
    assert empty.status_code == 422 and alert(empty.text) == i18n.MESSAGES["en"]["partner_refused_text"]
    read = await world.door.client.get(f"/api/referrals/referrals/{referral}/messages", headers=world.caseworker)
    assert [m["from"] for m in read.json()["items"]] == ["caseworker", "caseworker", "partner"]


async def test_once_consent_is_withdrawn_the_page_shows_nothing_of_the_person_and_takes_no_message(world: World):
    referral = await world.refer(contact="Telegram @quietpine")
    wrote = await world.door.client.post(f"/api/referrals/referrals/{referral}/messages", headers=world.caseworker,
                                         json={"text": "Quietpine: her sister drives her"})
    assert wrote.status_code == 201, wrote.text
    case_id = (await world.status(referral))["case_id"]
    withdrawn = await world.door.client.put(f"/api/intake/cases/{case_id}/consent", headers=world.caseworker,
                                            json={"categories": [], "share_contact": False, "share_health": False,
                                                  "method": "written"})
    assert withdrawn.status_code == 200, withdrawn.text
    deadline = time.monotonic() + 20
    while 'id="packet-gone"' not in (page := (await world.page(referral)).text) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)  # referrals learns the withdrawal from intake's event

    assert 'id="packet-gone"' in page and words("partner_packet_gone") in page
    assert words("partner_can_still_finish") not in page  # sent, not accepted: there is nothing to finish yet
    assert not [text for text in (PERSON, NOTE, "quietpine", "Quietpine") if text in page]
    assert 'id="message-text"' not in page and words("partner_refused_packet_withdrawn") in page
    assert f'action="/console/partner/referrals/{referral}/accept"' in page  # the referral itself goes on
    inbox = (await world.visitor.get("/console/partner")).text
    assert words("partner_hidden") in inbox and PERSON not in inbox
    anyway = await world.press(referral, "messages", text="Is she still coming?")
    assert anyway.status_code == 409 and alert(anyway.text) == i18n.MESSAGES["en"]["partner_refused_packet_withdrawn"]


async def test_a_referral_in_progress_whose_consent_was_withdrawn_can_still_be_finished_and_says_so(world: World):
    """The partner is mid-treatment when the person withdraws consent: the page says the referral can still be
    completed (a reviewer found the rule looked for a status `started` that does not exist), and does not say
    "no messages yet" beside "the messages were deleted"."""
    referral = await world.refer()
    for step in ("accept", "start"):
        assert (await world.press(referral, step)).status_code in (200, 303)
    assert (await world.status(referral))["status"] == "in_progress"
    case_id = (await world.status(referral))["case_id"]
    withdrawn = await world.door.client.put(f"/api/intake/cases/{case_id}/consent", headers=world.caseworker,
                                            json={"categories": [], "share_contact": False, "share_health": False,
                                                  "method": "written"})
    assert withdrawn.status_code == 200, withdrawn.text
    page = (await world.page(referral)).text
    assert words("partner_packet_gone") in page and words("partner_can_still_finish") in page
    assert words("partner_messages_none") not in page
    assert f'action="/console/partner/referrals/{referral}/complete"' in page
    # declining is past, and the way out is not the thread the withdrawal closed (a reviewer's find)
    assert words("partner_rule_decline_withdrawn") in page and words("partner_rule_decline") not in page


async def test_a_cancelled_referral_says_it_was_cancelled_and_offers_nothing_to_finish(world: World):
    referral = await world.refer()
    wrote = await world.door.client.post(f"/api/referrals/referrals/{referral}/messages", headers=world.caseworker,
                                         json={"text": "Quietpine can come on Monday"})
    assert wrote.status_code == 201, wrote.text
    cancelled = await world.door.client.post(f"/api/referrals/referrals/{referral}/cancel", headers=world.caseworker)
    assert cancelled.status_code == 200, cancelled.text
    page = (await world.page(referral)).text
    assert words("partner_packet_gone_cancelled") in page and PERSON not in page and "Quietpine" not in page
    assert words("partner_packet_gone") not in page and words("partner_can_still_finish") not in page
    # Said as a cancellation, not as a consent withdrawn (a reviewer's find), and a message sent anyway is refused so.
    assert words("partner_messages_cancelled") in page and words("partner_refused_packet_withdrawn") not in page
    anyway = await world.press(referral, "messages", text="Is she still coming?")
    assert anyway.status_code == 409 and alert(anyway.text) == i18n.MESSAGES["en"]["partner_messages_cancelled"]


# --- words, dates and money -------------------------------------------------------------------------------------------

def test_every_word_of_the_partner_console_is_in_all_five_languages_with_the_same_placeholders():
    ours = {key for key in i18n.MESSAGES["en"] if key.startswith("partner_")}
    before = {"sign_in", "sign_out", "username", "password", "otp", "otp_help", "bad_credentials", "expired",
              "stale_form", "skip", "language_choice", "problem", "app",
              *(key for key in i18n.MESSAGES["en"] if key.startswith("mfa_"))}
    assert set(i18n.LANGUAGES) == {"be", "ru", "en", "pl", "lt"} and set(i18n.LANGUAGE_NAMES) == set(i18n.LANGUAGES)
    for language in i18n.LANGUAGES:
        assert ours | before <= set(i18n.MESSAGES[language]), (language, (ours | before) - set(i18n.MESSAGES[language]))
        for key in ours:
            assert i18n.MESSAGES[language][key].strip(), (language, key)
            assert (set(re.findall(r"\{[a-z_]+\}", i18n.MESSAGES[language][key]))
                    == set(re.findall(r"\{[a-z_]+\}", i18n.MESSAGES["en"][key]))), (language, key)
    for language in ("be", "ru", "pl", "lt"):  # translated, not copied ("Status" is Polish too)
        same = [key for key in ours if i18n.MESSAGES[language][key] == i18n.MESSAGES["en"][key]
                and (language, key) != ("pl", "partner_col_status")]
        assert same == [], (language, same)
    steps = {f"partner_{s}" for s in partner_console.ACTIONS} | {f"partner_rule_{s}" for s in partner_console.ACTIONS}
    statuses = {f"partner_status_{s}" for s in partner_console.STATUSES}
    categories = {f"partner_cat_{c}" for c in partner_console.CATEGORIES}
    assert steps | statuses | categories <= ours
    # A staff page in Polish or Lithuanian: English for a word those languages lack, never the key itself.
    assert i18n.translator("pl")("my_cases") == i18n.MESSAGES["en"]["my_cases"]


def test_money_dates_and_days_are_written_as_polish_and_lithuanian_write_them():
    nbsp = "\u00a0"
    assert i18n.format_money("1234.5", "PLN", "pl") == f"1234,50{nbsp}zł"  # four digits stay whole in Polish
    assert i18n.format_money(Decimal("12345.00"), "EUR", "pl") == f"12{nbsp}345,00{nbsp}€"
    assert i18n.format_money("120", "USD", "pl") == f"120,00{nbsp}USD"
    assert i18n.format_money("1234.5", "EUR", "lt") == f"1{nbsp}234,50{nbsp}€"
    assert i18n.format_money("1234.5", "PLN", "lt") == f"1{nbsp}234,50{nbsp}PLN"
    assert i18n.format_money("1234.5", "EUR", "en") == "€1,234.50"  # the three staff languages, by CLDR
    assert i18n.format_money("1234.5", "EUR", "be") == f"1{nbsp}234,50{nbsp}€"
    assert i18n.format_date("2026-11-03", "pl") == "3.11.2026"
    assert i18n.format_date("2026-11-03T14:05:00+00:00", "pl") == "3.11.2026, 14:05"
    assert i18n.format_date("2026-11-03", "lt") == "2026-11-03"
    assert i18n.format_date("2026-11-03T14:05:00+00:00", "lt") == "2026-11-03 14:05"
    assert i18n.format_date("2026-11-03", "ru") == "03.11.2026"
    days = {language: [i18n.count_days(n, language).replace(nbsp, " ") for n in (1, 3, 14, 21, 22)]
            for language in i18n.LANGUAGES}
    assert days["en"] == ["1 day", "3 days", "14 days", "21 days", "22 days"]
    assert days["ru"] == ["1 день", "3 дня", "14 дней", "21 день", "22 дня"]
    assert days["be"] == ["1 дзень", "3 дні", "14 дзён", "21 дзень", "22 дні"]
    assert days["pl"] == ["1 dnia", "3 dni", "14 dni", "21 dni", "22 dni"]  # "w ciągu …": the genitive
    assert days["lt"] == ["1 dieną", "3 dienas", "14 dienų", "21 dieną", "22 dienas"]  # "per …": the accusative


def test_an_amount_is_read_as_people_type_it_in_their_language():
    typed = partner_console.typed_amount
    assert [typed(t, "en", "EUR") for t in ("120", "120.5", "1,234.50", "12,345", "1 234.5", "0.99")] == [
        "120.00", "120.50", "1234.50", "12345.00", "1234.50", "0.99"]
    assert [typed(t, "pl", "PLN") for t in ("120", "120,5", "1 234,50", "1\u00a0234,5", "1.234,50", "120.50")] == [
        "120.00", "120.50", "1234.50", "1234.50", "1234.50", "120.50"]
    assert [typed(t, "lt", "EUR") for t in ("", "1,234", "about 300", "-5", "1e3", "12.5.6", "1" * 14)] == [None] * 7
    # three decimals, or a lone mark before three digits where the language does not group thousands by it: say it
    # again (never a thousand times the sum)
    assert [typed(t, language, "EUR") for t, language in (("1.234", "en"), ("1,234", "ru"), ("1.234", "ru"),
                                                          ("0,125", "en"), ("1.500", "be"), ("180.000", "ru"))
            ] == [None] * 6
    # the staff pages and the partner pages read one amount the same way
    assert typed("1.234.567,89", "pl", "EUR") == i18n.typed_amount("1.234.567,89", "EUR", "pl") == "1234567.89"
    # with the sign or the code, as the form's hint writes the example ("€1,234.50", "1 234,50 €")
    assert [typed(t, "en", "EUR") for t in ("€1,234.50", "EUR 120", "120 eur")] == ["1234.50", "120.00", "120.00"]
    assert typed("1 234,50 €", "ru", "EUR") == "1234.50" and typed("Br 10", "be", "BYN") == "10.00"
    assert typed("$120", "en", "EUR") is None  # another currency's sign: not this amount


def test_a_step_the_service_did_not_answer_in_time_is_said_as_maybe_done_not_as_refused():
    from types import SimpleNamespace

    from gateway.console import partner
    from gateway.console.router import Answer

    timed_out = Answer(504, {"type": "https://rehab.support/problems/service-timeout"}, language="pl")
    assert partner.refusal(SimpleNamespace(language="pl"), timed_out) == i18n.MESSAGES["pl"]["partner_refused_timeout"]
