"""What the console tests set up through the API (a partner, a grant, a disbursement request), and how they read
the console's pages: the CSRF token of a form, polling until the other services have learned a case."""

from __future__ import annotations

import asyncio
import csv
import html
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import date, timedelta

import httpx
import pytest

from gateway.console import i18n
from gateway.console.router import with_commands
from tests.integration.gateway.door import Backends, Door, backends_running, existing_services
from tests.support.shared import NAME_VARIANTS


def variants() -> list[dict[str, str]]:
    """The team's test names: each row is one person written six ways."""
    with NAME_VARIANTS.open(encoding="utf-8") as file:
        return list(csv.DictReader(file))


def says(page: str, key: str, language: str = "en") -> bool:
    """Whether `page` shows the words `key` has in `language`, as a page renders them: escaped, a command between
    backticks set as code."""
    return str(with_commands(i18n.MESSAGES[language][key])) in page


def alert(page: str) -> str:
    """The text of the page's problem box, after its label ("Problem:"), without the link to the first wrong field."""
    found = re.search(r'<div class="problem" role="alert" id="problem"[^>]*><strong>[^<]*</strong>(.*?)</div>',
                      page, re.DOTALL)
    assert found, "the page shows no problem"
    return html.unescape(found.group(1).split(' <a href="#', 1)[0]).strip()


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', page)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


async def add_partner(door: Door, *, category: str = "medical", country: str = "LT", language: str = "be",
                      capacity_note: str | None = None) -> dict:
    made = await door.client.post("/api/referrals/partners", headers=await door.admin(), json={
        "name": f"Clinic {uuid.uuid4().hex[:6]}", "category": category, "countries": [country], "cities": ["Vilnius"],
        "languages": [language], "contact_email": "intake@clinic.example", "capacity_note": capacity_note})
    assert made.status_code == 201, made.text
    return made.json()


async def add_grant(door: Door, finance: dict[str, str], *, amount: str = "1234.50") -> dict:
    today = date.today()
    made = await door.client.post("/api/funds/grants", headers=finance, json={
        "donor": "Solidarity Fund", "code": f"G-{uuid.uuid4().hex[:6]}", "currency": "EUR", "amount": amount,
        "starts_on": str(today - timedelta(days=1)), "ends_on": str(today + timedelta(days=300)),
        "categories": ["medical", "financial"]})
    assert made.status_code == 201, made.text
    return made.json()


async def request_aid(door: Door, requester: dict[str, str], *, case_id: str, grant_id: str,
                      amount: str = "300.00") -> dict:
    """A disbursement request, retried while funds has not yet learned the case from intake's event."""
    body = {"case_id": case_id, "grant_id": grant_id, "category": "medical", "amount": amount, "currency": "EUR",
            "purpose": "clinic visit"}
    deadline = time.monotonic() + 20
    while True:
        made = await door.client.post("/api/funds/disbursements", json=body,
                                      headers={**requester, "Idempotency-Key": str(uuid.uuid4())})
        if made.status_code == 201 or time.monotonic() > deadline:
            assert made.status_code == 201, made.text
            return made.json()
        await asyncio.sleep(0.1)


@asynccontextmanager
async def hung_on_changes() -> AsyncIterator[str]:
    """A stand-in for a service that stalls (a paused process): it takes every change (a POST) and never answers
    it, and answers every read 503. Its address, for `service_away(..., instead=...)`."""

    async def stalls_on_posts(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        if head.startswith("POST "):
            await reader.read()  # took it, and says nothing until the gateway gives up and hangs up
        else:
            writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
        writer.close()

    stalled = await asyncio.start_server(stalls_on_posts, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{stalled.sockets[0].getsockname()[1]}"
    finally:
        stalled.close()


def send_again_form(page: str) -> tuple[str, dict[str, str]]:
    """The "Send it again" form a page offers (typed_back.html): its action, and its hidden fields as they are sent
    (the CSRF token among them)."""
    found = re.search(r'<form method="post" action="([^"]+)" id="send-again">(.*?)</form>', page, re.DOTALL)
    assert found, "the page offers nothing to send again"
    fields = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', found.group(2))
    return html.unescape(found.group(1)), {name: html.unescape(value) for name, value in fields}


def cookie_header(response: httpx.Response, name: str) -> str:
    for value in response.headers.get_list("set-cookie"):
        if value.startswith(f"{name}="):
            return value
    raise AssertionError(f"no {name} cookie was set")


# Months still under way published as they change (below zero: for a demonstration or a test only), for the modules
# whose pages are read about the cases opened and the aid paid a moment before. By default a month is published
# once it has ended and settled: tests/integration/reports, tests/unit/funds/test_funds_donor_statement.py,
# tests/unit/gateway/test_console_programme_aid.py.
MONTHS_UNDER_WAY = {"reports": {"REHAB_REPORTS_SETTLING_DAYS": "-62"}, "funds": {"REHAB_FUNDS_SETTLING_DAYS": "-62"}}


def backends_publishing_months_under_way(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backends]:
    """For a module's own `backends` fixture: every service as a process, publishing the month under way."""
    with backends_running(tmp_path_factory.mktemp("backends"), existing_services(), env=MONTHS_UNDER_WAY) as running:
        yield running
