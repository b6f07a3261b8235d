"""The admin's "Seal all keys now" in the console (SPEC §8): a button on every admin page, a confirmation page, a form
(POST with the console's CSRF token) that seals, an answer listing who confirmed, and a banner on every page an
admin opens while sealed — in the admin's language. Nobody else gets the button or the banner; there is no unseal.

The gateway here has no NATS: it seals itself and says that the command did not reach the other processes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.console.test_console_admin import admin_console
from tests.console.test_console_pages import signed_in
from tests.console.world import csrf_of, says
from tests.integration.gateway.door import Door, open_gateway

pytestmark = pytest.mark.integration

SEAL = "/console/admin/seal"


@pytest.fixture
async def door(gateway_settings, secrets_dir) -> AsyncIterator[Door]:
    async with open_gateway(gateway_settings(secrets_dir, signin_backoff_seconds=0)) as opened:
        yield opened


async def test_an_admin_seals_every_key_behind_a_confirmation_and_sees_the_banner_until_unsealed(door: Door):
    admin = await admin_console(door)
    users = await admin.get("/console/admin/users")
    assert f'href="{SEAL}"' in users.text and says(users.text, "seal_button")
    assert not says(users.text, "sealed_banner_title")

    confirmation = await admin.get(SEAL)
    assert confirmation.status_code == 200
    assert says(confirmation.text, "seal_explained") and f'action="{SEAL}"' in confirmation.text
    assert not door.runtime.custody.sealed, "opening the confirmation seals nothing"

    forged = await admin.post(SEAL, data={"csrf": "0" * 64})
    assert forged.status_code == 403 and not door.runtime.custody.sealed, "no seal without the page's CSRF token"

    done = await admin.post(SEAL, data={"csrf": csrf_of(confirmation.text)})
    assert done.status_code == 200, done.text
    assert door.runtime.custody.sealed
    assert says(done.text, "seal_done") and 'id="sealed-processes"' in done.text
    assert "<td>gateway</td>" in done.text and says(done.text, "seal_state_sealed")
    assert 'id="seal-not-sent"' in done.text, "without NATS, the admin is told only the gateway sealed"

    for page in ("/console/admin/users", "/console/admin/approvals", SEAL):
        seen = await admin.get(page)
        assert seen.status_code == 200 and 'id="keys-sealed"' in seen.text, page
        assert says(seen.text, "sealed_banner_text")
    assert f'href="{SEAL}"' not in (await admin.get("/console/admin/users")).text, "no button while sealed"
    no_unseal = await admin.post("/console/admin/unseal", data={"csrf": csrf_of(confirmation.text)})
    assert no_unseal.status_code in (404, 405) and door.runtime.custody.sealed, "there is no unseal in the console"

    await admin.get("/console/language/be")
    in_belarusian = await admin.get("/console/admin/users")
    assert says(in_belarusian.text, "sealed_banner_title", "be") and says(in_belarusian.text, "sealed_banner_text", "be")

    door.runtime.custody.unseal()  # `rehab unseal` reaches the gateway on NATS; here there is none
    assert 'id="keys-sealed"' not in (await admin.get("/console/admin/users")).text


async def test_only_admins_get_the_button_and_the_banner(door: Door):
    caseworker, _ = await signed_in(door, "caseworker")
    assert (await caseworker.get(SEAL)).status_code == 403
    home = await caseworker.get("/console/cases")
    assert SEAL not in home.text
    door.runtime.custody.seal()
    try:
        assert 'id="keys-sealed"' not in (await caseworker.get("/console/cases")).text
    finally:
        door.runtime.custody.unseal()
