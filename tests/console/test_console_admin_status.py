"""The admin's system status page (issue #19; GET /api/admin/status in words): each backend ready, not ready or not
answering, with its database, migrations, NATS and keys; the key custody with the file-custody warning; sealed or
not — asked afresh at every load. The coordinator's programme page when the reports service is down. The first
visit in the language the browser asks for (`Accept-Language`).

The gateway runs in-process; its "services" here are a small server answering /readyz as a ready intake and a
funds whose database is gone would, and referrals is a port where nothing listens (a backend down)."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from gateway.console import i18n
from tests.console.test_console_admin import admin_console
from tests.console.test_console_pages import browser, signed_in
from tests.console.world import says
from tests.integration.gateway.door import Door, open_gateway

pytestmark = pytest.mark.integration

STATUS = "/console/admin/status"
PROGRAMME = "/console/programme"
READY = {"status": "ready", "database": "ok", "migrations": "current", "nats": "connected", "keys": "unsealed"}
DATABASE_GONE = {"status": "not ready", "database": "unreachable", "migrations": "behind", "nats": "disconnected",
                 "keys": "unsealed"}


@pytest.fixture
async def readiness() -> AsyncIterator[dict[str, str]]:
    """/intake/readyz answers ready; /funds/readyz 503, its database unreachable. The URLs, by service."""
    app = web.Application()
    app.router.add_get("/intake/readyz", lambda _: web.json_response(READY))
    app.router.add_get("/funds/readyz", lambda _: web.json_response(DATABASE_GONE, status=503))
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield {name: f"http://127.0.0.1:{port}/{name}" for name in ("intake", "funds")}
    finally:
        await runner.cleanup()


@pytest.fixture
async def door(gateway_settings, secrets_dir, readiness) -> AsyncIterator[Door]:
    # referrals: gateway_settings points it at a free port where nothing listens.
    settings = gateway_settings(secrets_dir, signin_backoff_seconds=0, intake_url=readiness["intake"],
                                funds_url=readiness["funds"])
    async with open_gateway(settings) as opened:
        yield opened


def row(page: str, name: str) -> str:
    start = page.index(f'<tr id="part-{name}"')
    return page[start:page.index("</tr>", start)]


@pytest.mark.parametrize("language", i18n.STAFF_LANGUAGES)
async def test_an_admin_reads_every_backends_state_and_the_key_custody_in_words(door: Door, language: str):
    admin = await admin_console(door)
    await admin.get(f"/console/language/{language}")
    users = await admin.get("/console/admin/users")
    assert f'href="{STATUS}"' in users.text and says(users.text, "admin2_status_nav", language), "a nav link"

    page = await admin.get(STATUS)
    assert page.status_code == 200, page.text
    assert page.headers["cache-control"] == "no-store"
    text = page.text
    assert f'<html lang="{language}">' in text and says(text, "status_title", language)

    gateway = row(text, "gateway")
    assert says(gateway, "status_ready", language) and says(gateway, "status_value_ok", language)
    assert says(gateway, "status_value_current", language) and says(gateway, "status_value_unsealed", language)
    intake = row(text, "intake")
    assert says(intake, "status_part_intake", language) and says(intake, "status_ready", language)
    assert says(intake, "status_value_connected", language) and says(intake, "status_value_current", language)
    funds = row(text, "funds")
    assert says(funds, "status_not_ready", language) and says(funds, "status_value_unreachable", language)
    assert says(funds, "status_value_behind", language) and says(funds, "status_value_disconnected", language)
    referrals = row(text, "referrals")  # down: nothing listens
    assert says(referrals, "status_unreachable", language) and says(referrals, "status_detail_no_connection", language)
    assert says(referrals, "status_not_reported", language)

    summary = re.search(r'id="status-summary">(.*?)</p>', text, re.DOTALL).group(1)
    assert i18n.MESSAGES[language]["status_part_referrals"] in html.unescape(summary)
    assert i18n.MESSAGES[language]["status_part_funds"] in html.unescape(summary)
    assert i18n.MESSAGES[language]["status_part_intake"] not in html.unescape(summary)

    assert says(text, "status_custody_file", language) and 'id="file-custody"' in text
    assert "<code>file</code>" in text and "`" not in text, "a setting's name is set as code, not between backticks"
    assert says(text, "admin_file_custody_text", language)
    assert says(text, "status_keys_open", language) and not says(text, "status_keys_sealed", language)
    if language != "en":  # never the API's English words
        for value in ("not ready", "unreachable", "connected", "disconnected", "no connection", "current", "ok"):
            assert f">{value}<" not in text and f"({value})" not in text, value


async def test_the_page_asks_again_at_every_load_and_says_when_the_keys_are_sealed(door: Door):
    admin = await admin_console(door)
    assert says((await admin.get(STATUS)).text, "status_keys_open")
    door.runtime.custody.seal()
    try:
        sealed = (await admin.get(STATUS)).text
        assert says(sealed, "status_keys_sealed") and says(row(sealed, "gateway"), "status_value_sealed")
        assert 'id="keys-sealed"' in sealed  # the banner of every admin page, too
    finally:
        door.runtime.custody.unseal()
    assert says((await admin.get(STATUS)).text, "status_keys_open")


async def test_the_status_page_is_for_admins_only(door: Door):
    for role in ("caseworker", "auditor", "coordinator"):
        visitor, _ = await signed_in(door, role)
        assert (await visitor.get(STATUS)).status_code == 403, role
        assert f'href="{STATUS}"' not in (await visitor.get("/", follow_redirects=True)).text, role


# --- the coordinator ----------------------------------------------------------------------------------------------

async def test_a_coordinator_lands_on_the_programme_page_which_says_in_their_language_when_reports_is_down(
        door: Door):
    coordinator, _ = await signed_in(door, "coordinator")
    landing = await coordinator.get("/")
    assert landing.status_code == 303 and landing.headers["location"] == PROGRAMME
    for language in i18n.STAFF_LANGUAGES:
        await coordinator.get(f"/console/language/{language}")
        page = await coordinator.get(PROGRAMME)  # no reports service here: nothing listens at its address
        assert page.status_code == 503, page.text
        assert says(page.text, "programme_title", language) and says(page.text, "programme_unavailable", language)
        assert 'id="period-form"' in page.text  # the period can still be chosen, to try again

    caseworker, _ = await signed_in(door, "caseworker")
    assert (await caseworker.get(PROGRAMME)).status_code == 403


# --- the first visit's language -------------------------------------------------------------------------------------

async def test_a_first_visit_follows_accept_language_until_a_language_is_chosen(door: Door):
    visitor = browser(door)
    russian = await visitor.get("/", headers={"Accept-Language": "ru-RU,ru;q=0.9"})
    assert '<html lang="ru">' in russian.text and "Войти" in russian.text
    belarusian = await visitor.get("/", headers={"Accept-Language": "be-BY,en;q=0.5"})
    assert '<html lang="be">' in belarusian.text
    polish = await visitor.get("/", headers={"Accept-Language": "pl-PL,pl;q=0.9,ru;q=0.5"})
    assert '<html lang="pl">' in polish.text, "the sign-in page offers Polish"
    assert '<html lang="en">' in (await visitor.get("/", headers={"Accept-Language": "de-DE"})).text

    # Signed in, staff pages are in be/ru/en: the best of those the browser asks for.
    admin = await admin_console(door)
    staff_page = await admin.get("/console/admin/users", headers={"Accept-Language": "pl-PL,pl;q=0.9,ru;q=0.5"})
    assert '<html lang="ru">' in staff_page.text and says(staff_page.text, "admin_users", "ru")

    # The choice made with the switcher is remembered over what the browser asks for.
    await admin.get("/console/language/be")
    chosen = await admin.get("/console/admin/users", headers={"Accept-Language": "ru-RU,ru;q=0.9"})
    assert '<html lang="be">' in chosen.text
