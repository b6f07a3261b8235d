"""A referral's page for the case's caseworkers (issue #18): the packet, the partner's report, the messages with the
partner (a double click sends one), new messages counted on the case page and on the landing page and cleared by
reading them, cancelling an open referral, and marking the need met once the partner completed. Nothing typed goes
into an address. In-process against the gateway and every service as a process."""

from __future__ import annotations

import pytest

from gateway.console import i18n
from tests.console.test_console_case_page import EN, form_of, referral_sent, words
from tests.console.test_console_caseload import REASON, open_case, person, state_reason
from tests.console.world import add_partner, csrf_of
from tests.integration.gateway.door import Door

pytestmark = pytest.mark.integration

QUESTION = "Can she come on Tuesday at 10? She works mornings"



async def _referred(door: Door):  # noqa: ANN202
    ala = await person(door, "caseworker")
    case = await open_case(door, ala, full_name="Зміцер Бандарэнка", country="LT")
    given = await door.client.put(f"/api/intake/cases/{case['id']}/consent", headers=ala.api, json={
        "categories": ["medical"], "share_contact": False, "share_health": False, "method": "written"})
    assert given.status_code == 200, given.text
    need = await door.client.post(f"/api/intake/cases/{case['id']}/needs", headers=ala.api,
                                  json={"category": "medical", "urgency": "high"})
    assert need.status_code == 201, need.text
    clinic = await add_partner(door)
    referral = await referral_sent(door, ala, case["id"], clinic)
    return ala, case, clinic, referral, need.json()


async def test_messages_go_both_ways_are_counted_new_and_cleared_by_reading(door: Door):
    ala, case, clinic, referral, _ = await _referred(door)
    page_path = f"/console/cases/{case['id']}/referrals/{referral['id']}"
    page = await ala.visitor.get(page_path)
    assert page.status_code == 200 and clinic["name"] in page.text and "H. S." in page.text  # the packet
    assert EN["no_messages"] in page.text

    form = form_of(page.text, "write-message")
    for _ in range(2):  # a double click: one message
        sent = await ala.visitor.post(f"{page_path}/messages", data={**form, "text": QUESTION})
        assert sent.status_code == 303 and sent.headers["location"] == f"{page_path}#thread"  # nothing typed
    partner = await door.partner(clinic["id"])
    thread = await door.client.get(f"/api/partner/referrals/{referral['id']}/messages", headers=partner)
    assert [m["text"] for m in thread.json()["items"]] == [QUESTION]

    for text in ("Yes, Tuesday at 10 works.", "Please bring the discharge papers."):
        answered = await door.client.post(f"/api/partner/referrals/{referral['id']}/messages", headers=partner,
                                          json={"text": text})
        assert answered.status_code == 201, answered.text
    case_page = (await ala.visitor.get(f"/console/cases/{case['id']}")).text
    assert f'id="unread-{referral["id"]}"' in case_page and i18n.counter("en")("unread_count", 2) in case_page
    home = (await ala.visitor.get("/console/cases")).text
    assert f'id="new-messages-{referral["id"]}"' in home and page_path in home and case["reference"] in home

    read = (await ala.visitor.get(page_path)).text
    assert read.index(QUESTION) < read.index("Yes, Tuesday at 10 works.") < read.index("discharge papers")
    assert EN["message_from_partner"] in read and EN["message_from_caseworker"] in read
    assert f'id="unread-{referral["id"]}"' not in (await ala.visitor.get(f"/console/cases/{case['id']}")).text
    assert 'id="new-messages' not in (await ala.visitor.get("/console/cases")).text


async def test_the_page_speaks_belarusian_and_an_empty_message_is_refused_in_words(door: Door):
    ala, case, _, referral, _ = await _referred(door)
    page_path = f"/console/cases/{case['id']}/referrals/{referral['id']}"
    await ala.visitor.get("/console/language/be")
    page = await ala.visitor.get(page_path)
    be = words("be")
    assert be["messages_title"] in page.text and be["message_send"] in page.text and be["category_medical"] in page.text
    refused = await ala.visitor.post(f"{page_path}/messages",
                                     data={**form_of(page.text, "write-message"), "text": "   "})
    assert refused.status_code == 422 and 'class="problem"' in refused.text


async def test_cancel_an_open_referral_and_after_completion_mark_the_need_met(door: Door):
    ala, case, clinic, referral, need = await _referred(door)
    page_path = f"/console/cases/{case['id']}/referrals/{referral['id']}"
    page = (await ala.visitor.get(page_path)).text
    assert 'id="cancel-referral"' in page and f'id="need-met-{need["id"]}"' not in page  # not done yet

    partner = await door.partner(clinic["id"])
    for step in ("accept", "start"):
        moved = await door.client.post(f"/api/partner/referrals/{referral['id']}/{step}", headers=partner)
        assert moved.status_code == 200, moved.text
    done = await door.client.post(f"/api/partner/referrals/{referral['id']}/complete", headers=partner,
                                  json={"outcome": "Seen; inhaler prescribed", "cost_estimate": None})
    assert done.status_code == 200, done.text
    page = (await ala.visitor.get(page_path)).text
    assert "Seen; inhaler prescribed" in page and 'id="cancel-referral"' not in page
    met = await ala.visitor.post(f"/console/cases/{case['id']}/needs/{need['id']}/status",
                                 data={**form_of(page, f"need-met-{need['id']}"), "status": "met"})
    assert met.status_code == 303
    needs = await door.client.get(f"/api/intake/cases/{case['id']}/needs", headers=ala.api)
    assert needs.json()["items"][0]["status"] == "met"

    other = await referral_sent(door, ala, case["id"], clinic)
    other_path = f"/console/cases/{case['id']}/referrals/{other['id']}"
    other_page = (await ala.visitor.get(other_path)).text
    cancelled = await ala.visitor.post(f"{other_path}/cancel", data={"csrf": csrf_of(other_page)})
    assert cancelled.status_code == 303
    answer = await door.client.get(f"/api/referrals/referrals/{other['id']}", headers=ala.api)
    assert answer.json()["status"] == "cancelled"
    # The page says the caseworker cancelled it, not that the person's consent stopped covering it.
    after = (await ala.visitor.get(other_path)).text
    assert EN["packet_gone_cancelled"] in after and EN["packet_gone"] not in after


async def test_a_referral_of_another_case_is_not_shown_under_this_one(door: Door):
    ala, case, _, referral, _ = await _referred(door)
    other = await open_case(door, ala, full_name="Алесь Бяляцкі", country="LT")
    page = await ala.visitor.get(f"/console/cases/{other['id']}/referrals/{referral['id']}")
    assert page.status_code == 404 and "H. S." not in page.text


async def test_a_reason_stated_for_one_case_opens_nothing_of_another_through_its_referral_or_document(door: Door):
    """The console's paths name the case, the API's a referral or a document: a reason stated for case X goes with a
    referral or a document only when it is X's, never to open (and be kept as the reason for) another case."""
    ala, case, _, referral, _ = await _referred(door)  # ala's case, her referral and a document of it
    stored = await door.client.post(f"/api/intake/cases/{case['id']}/documents", headers=ala.api,
                                    data={"kind": "identity"}, files={"file": ("note.txt", b"hers", "text/plain")})
    assert stored.status_code == 201, stored.text
    document = stored.json()
    bo, carl = await person(door, "caseworker"), await person(door, "caseworker")
    his = await open_case(door, carl, full_name="Алесь Бяляцкі", country="LT")  # carl's: bo states why he opens it
    stated = await state_reason(bo.visitor, his["id"], REASON)
    assert stated.status_code == 303

    under_his = f"/console/cases/{his['id']}"
    page = await bo.visitor.get(f"{under_his}/referrals/{referral['id']}")
    written = await bo.visitor.post(f"{under_his}/referrals/{referral['id']}/messages",
                                    data={"csrf": csrf_of((await bo.visitor.get(under_his)).text), "text": QUESTION})
    cancelled = await bo.visitor.post(f"{under_his}/referrals/{referral['id']}/cancel",
                                      data={"csrf": csrf_of((await bo.visitor.get(under_his)).text)})
    download = await bo.visitor.get(f"{under_his}/documents/{document['id']}")

    assert page.status_code == written.status_code == cancelled.status_code == download.status_code == 404
    assert "H. S." not in page.text and b"hers" not in download.content
    thread = await door.client.get(f"/api/referrals/referrals/{referral['id']}/messages", headers=ala.api)
    assert thread.json()["items"] == []
    still = await door.client.get(f"/api/referrals/referrals/{referral['id']}", headers=ala.api)
    assert still.json()["status"] == "sent"
    # ala's case was never opened by bo: no break-glass on its timeline
    timeline = await door.client.get(f"/api/intake/cases/{case['id']}/timeline", params={"limit": 200},
                                     headers=ala.api)
    assert bo.username not in timeline.text and REASON not in timeline.text
    # under carl's case the reason still opens carl's case
    own_page = await bo.visitor.get(under_his)
    assert own_page.status_code == 200 and 'id="break-glass-active"' in own_page.text
