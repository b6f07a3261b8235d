"""SPEC §4: "When consent is withdrawn or the case is erased, open referrals stop showing personal data to the partner
at once." Referrals learns consent from intake's events, and NATS may hold them: here it is frozen (SIGSTOP) for the
whole test, as a reviewer froze it, so nothing reaches referrals by the bus. Intake tells referrals directly once its
commit is done (services/intake/referrals_told.py), and referrals reads the consent back from intake with the
caller's token (services/referrals/consent_told.py): the partner's very next read has no packet, and a referral the
consent no longer covers is refused, with no event applied — whoever intake let make the change: an assignee, a
caseworker who stated a reason, or one assigned while NATS was away (referrals' copy of who is assigned is stale then;
a reviewer's find)."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from tests.integration.gateway.door import STAFF_PASSWORD, Door, backends_running, open_gateway

pytestmark = pytest.mark.integration

PERSON = "Ірына Consent-Withdrawn"


async def sent_referral(door: Door, caseworker: dict, case_id: str, partner_id: str,
                        contact: str | None = "+375 29 000 00 00") -> dict:
    body = {"case_id": case_id, "partner_id": partner_id, "need_category": "medical",
            "packet": {"display_name": PERSON, "language": "be", "note": "prefers mornings", "contact": contact}}
    for _ in range(200):  # until referrals has heard of the case and its consent (intake's events)
        answer = await door.client.post("/api/referrals/referrals", json=body, headers=caseworker)
        if answer.status_code == 201:
            return answer.json()
        assert answer.status_code == 409, answer.text
        await asyncio.sleep(0.1)
    raise AssertionError(f"referrals never took the referral: {answer.text}")


async def consented_case(door: Door, caseworker: dict) -> str:
    case = await door.client.post("/api/intake/cases", json={"full_name": PERSON}, headers=caseworker)
    assert case.status_code == 201, case.text
    consent = await door.client.put(f"/api/intake/cases/{case.json()['id']}/consent", headers=caseworker, json={
        "categories": ["medical"], "share_contact": True, "share_health": False, "method": "written",
        "expires_on": None})
    assert consent.status_code == 200, consent.text
    return case.json()["id"]



@asynccontextmanager
async def a_clinic_and_two_caseworkers(tmp_path, gateway_settings) -> AsyncIterator[tuple]:  # noqa: ANN001
    """Intake and referrals as processes on one NATS, a gateway before them, a clinic with its API client, and two
    caseworkers: (door, clinic's id, the clinic's headers, first caseworker's headers, second's)."""
    with backends_running(tmp_path / "backends", ["intake", "referrals"]) as backends:
        settings = gateway_settings(backends.secrets_dir, intake_url=backends.processes["intake"].url,
                                    referrals_url=backends.processes["referrals"].url)
        async with open_gateway(settings) as door:
            clinic = await door.some_partner()
            yield (door, clinic, await door.partner(clinic), await door.staff("caseworker"),
                   await door.staff("caseworker"))

async def test_withdrawn_consent_and_erasure_hide_the_packet_at_once_with_nats_frozen(tmp_path, gateway_settings):
    with backends_running(tmp_path / "backends", ["intake", "referrals"], own_nats=True) as backends:
        settings = gateway_settings(backends.secrets_dir, intake_url=backends.processes["intake"].url,
                                    referrals_url=backends.processes["referrals"].url)
        async with open_gateway(settings) as door:
            caseworker = await door.staff("caseworker")
            clinic = await door.some_partner()
            partner = await door.partner(clinic)
            withdrawn, erased, narrowed = [await consented_case(door, caseworker) for _ in range(3)]
            referrals = {case: await sent_referral(door, caseworker, case, clinic)
                         for case in (withdrawn, erased, narrowed)}
            for referral in referrals.values():
                shown = await door.client.get(f"/api/partner/referrals/{referral['id']}", headers=partner)
                assert shown.json()["packet"]["display_name"] == PERSON, shown.text

            assert backends.nats is not None and backends.nats.proc is not None
            backends.nats.proc.send_signal(signal.SIGSTOP)
            try:
                # Withdrawn: no packet, and no new referral on it.
                answer = await door.client.put(f"/api/intake/cases/{withdrawn}/consent", headers=caseworker, json={
                    "categories": [], "share_contact": False, "share_health": False, "method": "verbal",
                    "expires_on": None})
                assert answer.status_code == 200, answer.text
                seen = await door.client.get(f"/api/partner/referrals/{referrals[withdrawn]['id']}", headers=partner)
                assert seen.status_code == 200 and seen.json()["packet"] is None, seen.text
                again = await door.client.post("/api/referrals/referrals", headers=caseworker, json={
                    "case_id": withdrawn, "partner_id": clinic, "need_category": "medical",
                    "packet": {"display_name": PERSON, "language": "be"}})
                assert again.status_code == 409, again.text

                # Erased: no packet.
                answer = await door.client.delete(f"/api/intake/cases/{erased}", headers=caseworker)
                assert answer.status_code == 200, answer.text
                seen = await door.client.get(f"/api/partner/referrals/{referrals[erased]['id']}", headers=partner)
                assert seen.status_code == 200 and seen.json()["packet"] is None, seen.text

                # Narrowed (contacts no longer shared): the packet that holds a contact goes; one without may go out.
                answer = await door.client.put(f"/api/intake/cases/{narrowed}/consent", headers=caseworker, json={
                    "categories": ["medical"], "share_contact": False, "share_health": False, "method": "verbal",
                    "expires_on": None})
                assert answer.status_code == 200, answer.text
                seen = await door.client.get(f"/api/partner/referrals/{referrals[narrowed]['id']}", headers=partner)
                assert seen.json()["packet"] is None, seen.text
                without_contact = await door.client.post("/api/referrals/referrals", headers=caseworker, json={
                    "case_id": narrowed, "partner_id": clinic, "need_category": "medical",
                    "packet": {"display_name": PERSON, "language": "be"}})
                assert without_contact.status_code == 201, without_contact.text
            finally:
                backends.nats.proc.send_signal(signal.SIGCONT)


async def test_a_caseworker_intake_let_in_is_heard_too_while_referrals_knows_other_assignees(tmp_path, gateway_settings):
    with backends_running(tmp_path / "backends", ["intake", "referrals"], own_nats=True) as backends:
        # The gateway on the same NATS: intake learns who the caseworkers are from its events.
        settings = gateway_settings(backends.secrets_dir, intake_url=backends.processes["intake"].url,
                                    referrals_url=backends.processes["referrals"].url, nats_url=backends.nats_url)
        async with open_gateway(settings) as door:
            owner_user, colleague = await door.add_user("caseworker"), await door.add_user("caseworker")
            owner = await door.bearer_for(await door.sign_in(owner_user["username"], STAFF_PASSWORD))
            colleague_token = await door.bearer_for(await door.sign_in(colleague["username"], STAFF_PASSWORD))
            clinic = await door.some_partner()
            partner = await door.partner(clinic)
            by_reason, reassigned, shared = [await consented_case(door, owner) for _ in range(3)]
            referrals = {case: await sent_referral(door, owner, case, clinic) for case in (by_reason, reassigned)}
            for _ in range(200):  # until intake has heard of the colleague (the gateway's user.created)
                both = await door.client.put(f"/api/intake/cases/{shared}/assignees", headers=owner,
                                             json={"usernames": [owner_user["username"], colleague["username"]]})
                if both.status_code == 200:
                    break
                await asyncio.sleep(0.1)
            assert both.status_code == 200, both.text

            assert backends.nats is not None and backends.nats.proc is not None
            backends.nats.proc.send_signal(signal.SIGSTOP)
            try:
                # Not assigned, a reason stated: intake lets them in, and referrals asks intake with their reason.
                reason = {**colleague_token, "Access-Reason": "covering for my colleague on leave today"}
                answer = await door.client.put(f"/api/intake/cases/{by_reason}/consent", headers=reason, json={
                    "categories": [], "share_contact": False, "share_health": False, "method": "verbal",
                    "expires_on": None})
                assert answer.status_code == 200, answer.text
                seen = await door.client.get(f"/api/partner/referrals/{referrals[by_reason]['id']}", headers=partner)
                assert seen.json()["packet"] is None, seen.text

                # Assigned while NATS is away: referrals still thinks the case is the owner's; intake knows better.
                moved = await door.client.put(f"/api/intake/cases/{reassigned}/assignees", headers=owner,
                                              json={"usernames": [colleague["username"]]})
                assert moved.status_code == 200, moved.text
                answer = await door.client.delete(f"/api/intake/cases/{reassigned}", headers=colleague_token)
                assert answer.status_code == 200, answer.text
                seen = await door.client.get(f"/api/partner/referrals/{referrals[reassigned]['id']}", headers=partner)
                assert seen.json()["packet"] is None and seen.json()["status"] == "cancelled", seen.text
            finally:
                backends.nats.proc.send_signal(signal.SIGCONT)


async def test_the_word_takes_nothing_from_its_caller(tmp_path, gateway_settings):
    """The route is reachable through the gateway like any other: what it applies is what intake answers to the
    caller's token, never a body; a caseworker intake does not let in gets intake's refusal, and nothing changes."""
    async with a_clinic_and_two_caseworkers(tmp_path, gateway_settings) as (door, clinic, partner, owner, stranger):
        case = await consented_case(door, owner)
        referral = await sent_referral(door, owner, case, clinic)
        path = f"/api/referrals/cases/{case}/consent-changed"

        refused = await door.client.post(path, headers=stranger)
        assert refused.status_code == 403 and refused.json()["type"].endswith("/need-to-know"), refused.text
        made_up = await door.client.post(path, json={"categories": [], "erased": True}, headers=owner)
        assert made_up.status_code == 422, made_up.text  # it takes no body
        assert (await door.client.post(path, headers=owner)).status_code == 204  # nothing changed in intake
        seen = await door.client.get(f"/api/partner/referrals/{referral['id']}", headers=partner)
        assert seen.json()["packet"]["display_name"] == PERSON
        assert (await door.client.post("/api/referrals/cases/not-a-case/consent-changed",
                                       headers=owner)).status_code == 404  # no id could be that: names nothing
        unknown = await door.client.post(f"/api/referrals/cases/{uuid.uuid4()}/consent-changed", headers=owner)
        assert unknown.status_code == 404, unknown.text
        # A stated reason too long is the caller's mistake, said as such (it was "intake unavailable", 503).
        too_long = await door.client.post(path, headers={**stranger, "Access-Reason": "r" * 4001})
        assert too_long.status_code == 422 and "Access-Reason" in too_long.text, too_long.text
        assert (await door.client.post(path, headers=partner)).status_code == 403


async def test_a_referral_made_from_a_duplicate_loses_its_packet_with_the_case_kept(tmp_path, gateway_settings):
    """The person is one (an outside review's find): a withdrawal on the case kept, or its erasure, reaches the
    partner holding a referral made from a case marked its duplicate, held by another caseworker. Intake narrows or
    erases the duplicate too; referrals learns it from the duplicate's own events (NATS running here)."""
    async with a_clinic_and_two_caseworkers(tmp_path, gateway_settings) as (door, clinic, partner, ala, bo):
        withdrawn_kept, erased_kept = await consented_case(door, ala), await consented_case(door, ala)
        twins = {withdrawn_kept: await consented_case(door, bo), erased_kept: await consented_case(door, bo)}
        referrals = {kept: await sent_referral(door, bo, twin, clinic) for kept, twin in twins.items()}
        for kept, twin in twins.items():
            marked = await door.client.post(f"/api/intake/cases/{twin}/duplicate-of", json={"case_id": kept},
                                            headers=bo)
            assert marked.status_code == 200, marked.text
            shown = await door.client.get(f"/api/partner/referrals/{referrals[kept]['id']}", headers=partner)
            assert shown.json()["packet"]["display_name"] == PERSON, shown.text

        withdrawn = await door.client.put(f"/api/intake/cases/{withdrawn_kept}/consent", headers=ala, json={
            "categories": [], "share_contact": False, "share_health": False, "method": "verbal",
            "expires_on": None})
        assert withdrawn.status_code == 200, withdrawn.text
        assert (await door.client.delete(f"/api/intake/cases/{erased_kept}", headers=ala)).status_code == 200
        for kept in twins:
            for _ in range(100):
                seen = await door.client.get(f"/api/partner/referrals/{referrals[kept]['id']}", headers=partner)
                if seen.json()["packet"] is None:
                    break
                await asyncio.sleep(0.1)
            assert seen.status_code == 200 and seen.json()["packet"] is None, seen.text
