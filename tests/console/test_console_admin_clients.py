"""A partner's API clients on the admin's partner page (issue #19): listed with their name, when issued and whether
activated or revoked; "Issue a client" answers with the client id and its setup secret this once (`Cache-Control:
no-store`, in the POST's own answer: never a redirect, an address or a later visit), which gets no token until the
partner's system exchanges it for its own; with two admins, the one who approves the client on the approvals page is
shown its activation code, once; "Revoke" asks once more, then the client's tokens stop. Every word in the admin's
language. The clients are the gateway's (its admin API, in-process); the partner is referrals' (running as a process
here, on its own)."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from gateway.console import i18n
from tests.console.test_console_admin import APPROVALS, admin_console, press
from tests.console.test_console_pages import signed_in
from tests.console.world import add_partner, csrf_of, says
from tests.integration.gateway.door import STAFF_PASSWORD, Backends, Door, backends_running, open_gateway

pytestmark = pytest.mark.integration

PARTNERS = "/console/admin/partners"
CLIENT_ID = re.compile(r'id="issued-client-id"[^>]*>(pc_[0-9a-f]{24})<')
CLIENT_SECRET = re.compile(r'id="issued-client-secret"[^>]*>([A-Za-z0-9_-]{20,})<')


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backends]:
    with backends_running(tmp_path_factory.mktemp("backends"), ["referrals"]) as running:
        yield running


@pytest.fixture
async def door(backends: Backends, gateway_settings) -> AsyncIterator[Door]:
    settings = gateway_settings(backends.secrets_dir, nats_url=backends.nats_url, signin_backoff_seconds=0,
                                referrals_url=backends.urls["referrals"])
    async with open_gateway(settings) as opened:
        yield opened


async def client_token(door: Door, client_id: str, secret: str) -> int:
    answer = await door.client.post("/auth/token", data={"grant_type": "client_credentials", "client_id": client_id,
                                                          "client_secret": secret})
    return answer.status_code


@pytest.mark.parametrize("language", i18n.STAFF_LANGUAGES)
async def test_an_admin_issues_a_client_sees_its_secret_once_and_revokes_it_after_a_confirmation(door: Door,
                                                                                                  language: str,
                                                                                                  capfd):
    partner = await add_partner(door)
    other = await add_partner(door)
    elsewhere = await door.add_client(other["id"])  # another partner's client: not on this page
    admin = await admin_console(door)
    await admin.get(f"/console/language/{language}")
    page_path = f"{PARTNERS}/{partner['id']}"

    first = await admin.get(page_path)
    assert first.status_code == 200, first.text
    assert says(first.text, "pclients_title", language) and 'id="no-clients"' in first.text
    assert elsewhere["client_id"] not in first.text

    # A name is needed: said next to the field, in the admin's words.
    unnamed = await admin.post(f"{page_path}/clients", data={"csrf": csrf_of(first.text), "name": "  "})
    assert unnamed.status_code == 422
    assert 'id="client-name-error"' in unnamed.text and says(unnamed.text, "pclients_invalid_name", language)
    assert CLIENT_SECRET.search(unnamed.text) is None

    issued = await admin.post(f"{page_path}/clients", data={"csrf": csrf_of(first.text), "name": "Clinic system"})
    assert issued.status_code == 200, issued.text  # the answer itself, not a redirect
    assert issued.headers["cache-control"] == "no-store"
    assert says(issued.text, "pclients_secret_title", language) and says(issued.text, "pclients_issued", language)
    client_id = CLIENT_ID.search(issued.text).group(1)
    setup = CLIENT_SECRET.search(issued.text).group(1)
    assert await client_token(door, client_id, setup) == 400, "a setup secret gets no token"

    again = await admin.get(page_path)
    assert setup not in again.text and 'id="client-secret"' not in again.text, "shown once, never again"
    assert says(row_of(again.text, client_id), "pclients_not_activated", language)
    activated = await door.activate_client(client_id, setup)  # a lone admin's client: no activation code
    assert activated.status_code == 200, activated.text
    secret = activated.json()["client_secret"]
    assert await client_token(door, client_id, secret) == 200, "the client's own secret, which no admin saw"

    shown = await admin.get(page_path)
    assert secret not in shown.text
    listed = row_of(shown.text, client_id)
    assert "Clinic system" in listed and says(listed, "pclients_active", language)
    revoke_page = f"{page_path}/clients/{client_id}/revoke"
    assert f'href="{revoke_page}"' in listed

    # Revoking asks first; without the page's CSRF token nothing happens.
    confirmation = await admin.get(revoke_page)
    assert confirmation.status_code == 200
    assert says(confirmation.text, "pclients_revoke_explained", language)
    assert f'action="{revoke_page}"' in confirmation.text
    assert (await admin.post(revoke_page, data={"csrf": "0" * 64})).status_code == 403
    assert await client_token(door, client_id, secret) == 200, "opening the confirmation revokes nothing"

    revoked = await admin.post(revoke_page, data={"csrf": csrf_of(confirmation.text)})
    assert revoked.status_code == 303 and revoked.headers["location"] == f"{page_path}?done=client-revoked"
    after = await admin.get(revoked.headers["location"])
    assert says(after.text, "pclients_done_revoked", language)
    row = after.text[after.text.index(f'<tr id="client-{client_id}"'):]
    row = row[:row.index("</tr>")]
    assert says(row, "pclients_revoked", language) and f'href="{revoke_page}"' not in row
    assert await client_token(door, client_id, secret) == 401, "a revoked client gets no token"

    logged = capfd.readouterr()
    assert '"route": "/console/admin/partners/{partner_id}/clients"' in logged.out, "the log lines are captured"
    assert setup not in logged.out + logged.err and secret not in logged.out + logged.err, "never in a log line"

    # Another partner's client is not this partner's to revoke; an unknown partner is 404 as any page that is not.
    foreign = f"{page_path}/clients/{elsewhere['client_id']}/revoke"
    assert (await admin.get(foreign)).status_code == 404
    assert (await admin.post(foreign, data={"csrf": csrf_of(after.text)})).status_code == 404
    assert await client_token(door, elsewhere["client_id"], elsewhere["client_secret"]) == 200
    nobody = await admin.post(f"{PARTNERS}/{uuid.uuid4()}/clients", data={"csrf": csrf_of(after.text), "name": "X"})
    assert nobody.status_code == 404


def row_of(page: str, client_id: str) -> str:
    """The row of the page's list of clients that is `client_id`'s."""
    row = page[page.index(f'<tr id="client-{client_id}"'):]
    return row[:row.index("</tr>")]


async def test_with_two_admins_a_new_client_waits_for_the_other_admins_approval_who_is_shown_its_code(door: Door):
    partner = await add_partner(door)
    second = await door.add_user("admin")  # a second admin: the first one's new client waits for them
    admin = await admin_console(door)
    page_path = f"{PARTNERS}/{partner['id']}"
    page = await admin.get(page_path)
    issued = await admin.post(f"{page_path}/clients", data={"csrf": csrf_of(page.text), "name": "Clinic system"})
    assert issued.status_code == 200 and 'id="client-pending"' in issued.text
    assert says(issued.text, "pclients_secret_pending")
    client_id = CLIENT_ID.search(issued.text).group(1)
    setup = CLIENT_SECRET.search(issued.text).group(1)
    assert await client_token(door, client_id, setup) == 400  # no token yet: it awaits approval, and says so
    listed = (await admin.get(page_path)).text
    assert says(row_of(listed, client_id), "pclients_waiting")

    # The approving admin reads which organisation the client would open, by its name in the directory.
    approvals = (await admin.get(APPROVALS)).text
    row = re.search(r'<tr id="a-([^"]+)">(?:(?!</tr>).)*Clinic system(?:(?!</tr>).)*</tr>', approvals, re.DOTALL)
    assert row and f'<strong class="partner">{html.escape(partner["name"])}</strong>' in row.group(0)

    # Approving it shows that admin the client's activation code, in this answer alone, to hand to the partner.
    checker = await admin_console(door, second["username"], STAFF_PASSWORD)
    approved = await press(checker, APPROVALS, f"{APPROVALS}/{row.group(1)}/approve")
    assert approved.status_code == 200 and "location" not in approved.headers
    assert approved.headers["cache-control"] == "no-store"
    code = re.search(r'<code id="activation-code">([2-9A-Z-]+)</code>', approved.text).group(1)
    said = html.unescape(re.search(r'<section class="notice" role="status" id="activation".*?</section>',
                                   approved.text, re.DOTALL).group(0))
    assert i18n.MESSAGES["en"]["admin_activation_client_said"].format(
        client="Clinic system", partner=partner["name"]) in said
    assert code not in (await checker.get(APPROVALS)).text, "shown once"
    assert code not in (await admin.get(page_path)).text and code not in issued.text, "never to the issuing admin"

    # The issuing admin's setup secret alone gets no token; with the approving admin's code, the partner's system
    # gets a secret of its own.
    assert await client_token(door, client_id, setup) == 400
    assert says(row_of((await admin.get(page_path)).text, client_id), "pclients_not_activated")
    assert (await door.activate_client(client_id, setup)).status_code == 400
    activated = await door.activate_client(client_id, setup, code)
    assert activated.status_code == 200, activated.text
    assert await client_token(door, client_id, activated.json()["client_secret"]) == 200
    assert await client_token(door, client_id, setup) == 401
    assert says(row_of((await admin.get(page_path)).text, client_id), "pclients_active")


async def test_only_admins_reach_a_partners_clients(door: Door):
    partner = await add_partner(door)
    caseworker, _ = await signed_in(door, "caseworker")
    home = await caseworker.get("/console/cases")
    assert (await caseworker.post(f"{PARTNERS}/{partner['id']}/clients",
                                  data={"csrf": csrf_of(home.text), "name": "Mine"})).status_code == 403
