"""Need-to-know in the staff console (SPEC §2, §4), in-process against the gateway and every service as a process:
"My cases" lists a caseworker's own cases; another caseworker's case asks for a stated reason (break-glass) before
anything of the person shows, refuses a short one, and once given opens the case — its timeline shows the opening to
the case's own caseworker — and keeps it open for the next steps; a lapsed reason is asked again. A supervisor sees
the whole caseload with its assignees, reassigns cases (a user name that is not an enabled caseworker's is refused in
words), and never sees personal data."""

from __future__ import annotations

import asyncio
import html
import importlib
import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import pytest
from markupsafe import escape

from gateway.console import i18n
from tests.console.test_console_pages import browser, eventually_ok, sign_in, submit
from tests.console.world import cookie_header, csrf_of, variants
from tests.integration.gateway.door import STAFF_PASSWORD, Backends, Door, open_gateway
from tests.support.nats import free_port

pytestmark = pytest.mark.integration

console = importlib.import_module("gateway.console.router")  # the module (the package names its router so)

# The console's English words as a page writes them (HTML-escaped: "case's" is "case&#39;s" there).
EN = {key: str(escape(text)) for key, text in i18n.MESSAGES["en"].items()}
REASON = "Her caseworker is on leave; she is at the office now and needs a clinic today"
REASON_BE = "Куратарка ў адпачынку,\nчалавек чакае ў офісе"  # a line break, as a textarea sends one



class Caseworker:
    """A caseworker with a browser of their own (signed in to the console) and an API token for setting up."""

    def __init__(self, username: str, visitor: httpx.AsyncClient, api: dict[str, str]) -> None:
        self.username, self.visitor, self.api = username, visitor, api


async def person(door: Door, *roles: str) -> Caseworker:
    user = await door.add_user(*roles)
    visitor = browser(door)
    signed = await sign_in(visitor, user["username"])
    assert signed.status_code == 303, signed.text
    return Caseworker(user["username"], visitor, await door.bearer_for(await door.sign_in(user["username"],
                                                                                          STAFF_PASSWORD)))


async def open_case(door: Door, owner: Caseworker, full_name: str, **more: object) -> dict:
    made = await door.client.post("/api/intake/cases", headers=owner.api, json={"full_name": full_name, **more})
    assert made.status_code == 201, made.text
    return made.json()


def references(page: str) -> set[str]:
    return set(re.findall(r"BY-\d{4}-\d+", page))


async def state_reason(visitor: httpx.AsyncClient, case_id: str, reason: str) -> httpx.Response:
    """The break-glass form, as served for that case, sent with `reason` typed into it."""
    return await submit(visitor, f"/console/cases/{case_id}/break-glass", f"/console/cases/{case_id}/break-glass",
                        {"reason": reason})


# --- My cases ----------------------------------------------------------------------------------------------------

async def test_my_cases_lists_the_caseworker_s_own_cases_only(door: Door):
    ala, bo = await person(door, "caseworker"), await person(door, "caseworker")
    hers = await open_case(door, ala, variants()[0]["belarusian"], country="LT")
    his = await open_case(door, bo, variants()[1]["belarusian"], country="PL")

    page = await ala.visitor.get("/console/cases")

    assert page.status_code == 200
    assert f"<h1>{EN['my_cases']}</h1>" in page.text and f">{EN['my_cases']}</a>" in page.text  # heading and menu
    assert hers["reference"] in page.text and his["reference"] not in page.text
    assert f'href="/console/cases/{hers["id"]}"' in page.text and ala.username in page.text  # who holds it
    assert variants()[0]["belarusian"] not in page.text  # a list shows no personal data, even one's own


# --- break-glass -------------------------------------------------------------------------------------------------

async def test_another_caseworker_s_case_asks_for_a_reason_and_shows_nothing_of_the_person_before(door: Door):
    ala, bo = await person(door, "caseworker"), await person(door, "caseworker")
    name = variants()[2]["belarusian"]
    his = await open_case(door, bo, name, safety_notes="Only via Signal", country="LT")
    path = f"/console/cases/{his['id']}"

    found = await submit(ala.visitor, "/console/cases", "/console/cases/search", {"q": variants()[2]["russian"]})
    opened = await ala.visitor.get(path)
    asked = await ala.visitor.get(f"{path}/break-glass")
    need = await submit(ala.visitor, f"{path}/break-glass", f"{path}/needs",
                        {"category": "legal", "urgency": "low", "notes": "a lawyer"})
    erase = await ala.visitor.get(f"{path}/erase")
    refer = await ala.visitor.get(f"{path}/refer")
    timeline = (await door.client.get(f"/api/intake/cases/{his['id']}/timeline", headers=bo.api)).json()["items"]
    needs = (await door.client.get(f"/api/intake/cases/{his['id']}/needs", headers=bo.api)).json()["items"]

    # the search shows it in outline — reference, status, who holds it — with the way to open it by break-glass
    row = found.text.split(f'id="outline-{his["id"]}"', 1)[1].split("</tr>", 1)[0]
    assert his["reference"] in row and bo.username in row and EN["not_yours"] in row
    assert f'href="{path}/break-glass"' in row and f'href="{path}"' not in found.text
    # opening it, from anywhere, asks why first: explained, recorded, the assignees will see it
    for page in (opened, asked, need, erase, refer):
        assert EN["break_glass_title"] in page.text and EN["break_glass_recorded"] in page.text
        assert re.search(r'<textarea id="reason" name="reason"[^>]*required[^>]*></textarea>', page.text)  # empty
        assert f'<form method="post" action="{path}/break-glass"' in page.text
        assert name not in page.text and "Signal" not in page.text
    assert opened.status_code == 403 and asked.status_code == 200
    assert EN["break_glass_not_saved"] in need.text  # the need sent without a reason: not saved, and said so
    assert not [e for e in timeline if e["kind"] == "case.break_glass"] and needs == []


@pytest.mark.parametrize(("typed", "words"), [
    ("----------", "break_glass_words"), ("aaaaaaaaaaaa", "break_glass_words"),
    ("%D0%97%D0%B0%D0%BC%D1%8F%D0%BD%D1%8F%D1%8E", "break_glass_words")])
async def test_a_reason_that_is_not_said_in_words_is_refused_with_a_message(door: Door, typed: str, words: str):
    """An outside review opened another's case with "----------" as the reason: its caseworkers learn nothing."""
    ala, bo = await person(door, "caseworker"), await person(door, "caseworker")
    his = await open_case(door, bo, variants()[2]["belarusian"])

    refused = await state_reason(ala.visitor, his["id"], typed)

    assert refused.status_code == 422 and EN[words].format(letters=5) in refused.text
    assert "rehab_break_glass" not in refused.headers.get("set-cookie", "")
    assert (await ala.visitor.get(f"/console/cases/{his['id']}")).status_code == 403
    # The API says so too, in the problem's own kind, whoever sends it.
    answer = await door.client.get(f"/api/intake/cases/{his['id']}", headers={**ala.api, "Access-Reason": typed})
    assert answer.status_code == 422 and answer.json()["type"].endswith("/access-reason-words")


@pytest.mark.parametrize("typed", ["too short", "          a b          ", ""])
async def test_a_reason_shorter_than_ten_characters_is_refused_with_a_message(door: Door, typed: str):
    ala, bo = await person(door, "caseworker"), await person(door, "caseworker")
    name = variants()[3]["belarusian"]
    his = await open_case(door, bo, name)

    refused = await state_reason(ala.visitor, his["id"], typed)
    still = await ala.visitor.get(f"/console/cases/{his['id']}")

    assert refused.status_code == 422 and 'role="alert"' in refused.text
    assert EN["break_glass_length"].format(low=10, high=500) in refused.text
    assert 'aria-invalid="true"' in refused.text and name not in refused.text
    assert "rehab_break_glass" not in refused.headers.get("set-cookie", "")
    assert still.status_code == 403 and name not in still.text


async def test_a_stated_reason_opens_the_case_keeps_it_open_for_the_next_steps_and_its_caseworker_sees_it(
        door: Door):
    ala, bo = await person(door, "caseworker"), await person(door, "caseworker")
    name = variants()[4]["belarusian"]
    his = await open_case(door, bo, name, country="LT")
    other = await open_case(door, bo, variants()[5]["belarusian"])
    path = f"/console/cases/{his['id']}"

    stated = await state_reason(ala.visitor, his["id"], REASON)
    page = await ala.visitor.get(path)
    need = await submit(ala.visitor, path, f"{path}/needs", {"category": "medical", "urgency": "high",
                                                             "notes": "clinic today"})
    consent = await submit(ala.visitor, path, f"{path}/consent", {"categories": "medical", "method": "verbal"})
    again = await ala.visitor.get(path)
    elsewhere = await ala.visitor.get(f"/console/cases/{other['id']}")  # the reason was for one case only
    theirs = await bo.visitor.get(path)

    cookie = cookie_header(stated, "rehab_break_glass")
    assert stated.status_code == 303 and stated.headers["location"] == path  # nothing of the reason in it
    assert f"path={path}".lower() in cookie.lower() and "httponly" in cookie.lower()
    assert "samesite=strict" in cookie.lower()
    assert "caseworker" not in cookie and "office" not in cookie  # sealed, not merely signed
    assert page.status_code == 200 and name in page.text
    assert 'id="break-glass-active"' in page.text and 'name="reason"' not in page.text
    assert need.status_code == consent.status_code == 303  # not asked again
    assert "clinic today" in again.text and 'id="consent-now"' in again.text
    assert elsewhere.status_code == 403 and variants()[5]["belarusian"] not in elsewhere.text
    # the case's own caseworker sees who opened it, and why, on its timeline
    opening = theirs.text.split('class="break-glass"', 1)[1].split("</li>", 1)[0]
    assert ala.username in opening and REASON in opening and EN["timeline_break_glass"] in opening
    assert 'id="break-glass-active"' not in theirs.text


async def test_a_case_opened_with_a_reason_straight_in_referrals_shows_on_its_timeline_with_the_reason_and_where(
        door: Door):
    ala, bo = await person(door, "caseworker"), await person(door, "caseworker")
    his = await open_case(door, bo, variants()[6]["belarusian"])
    glass = {**ala.api, "Access-Reason": REASON}

    listed = await eventually_ok(lambda: door.client.get("/api/referrals/referrals", params={"case_id": his["id"]},
                                                         headers=glass))
    assert listed.status_code == 200, listed.text

    # Referrals handed the reason to intake before it answered: on the assignee's timeline at once.
    page = (await bo.visitor.get(f"/console/cases/{his['id']}")).text
    assert 'class="break-glass"' in page
    line = page.split('class="break-glass"', 1)[1].split("</li>", 1)[0]
    assert ala.username in line and REASON in line and EN["source_referrals"] in line
    assert EN["timeline_reason_not_kept"].format(source=EN["source_referrals"]) not in line


async def test_a_reason_in_belarusian_on_two_lines_is_kept_as_written_and_shown_on_the_timeline(door: Door):
    ala, bo = await person(door, "caseworker"), await person(door, "caseworker")
    his = await open_case(door, bo, variants()[6]["belarusian"])

    stated = await state_reason(ala.visitor, his["id"], REASON_BE)
    page = await ala.visitor.get(f"/console/cases/{his['id']}")  # opened here: the reason goes with each request
    timeline = (await door.client.get(f"/api/intake/cases/{his['id']}/timeline", headers=bo.api)).json()["items"]

    assert stated.status_code == 303 and page.status_code == 200
    reasons = [e["details"]["reason"] for e in timeline if e["kind"] == "case.break_glass"]
    assert reasons and set(reasons) == {" ".join(REASON_BE.split())}  # one line, as a header carries it


async def test_a_stated_reason_lapses_and_is_asked_again_saying_why(door: Door, monkeypatch: pytest.MonkeyPatch):
    ala, bo = await person(door, "caseworker"), await person(door, "caseworker")
    name = variants()[7]["belarusian"]
    his = await open_case(door, bo, name)
    path = f"/console/cases/{his['id']}"
    await state_reason(ala.visitor, his["id"], REASON)
    form = await ala.visitor.get(path)
    assert form.status_code == 200

    later = console.reason_clock() + console.BREAK_GLASS_MINUTES * 60 + 1
    monkeypatch.setattr(console, "reason_clock", lambda: later)
    lapsed_page = await ala.visitor.get(path)
    need = await ala.visitor.post(f"{path}/needs", data={"csrf": csrf_of(form.text), "category": "legal",
                                                         "urgency": "low"})

    assert lapsed_page.status_code == 403 and name not in lapsed_page.text
    assert EN["break_glass_lapsed"].format(minutes=console.BREAK_GLASS_MINUTES) in lapsed_page.text
    assert 'rehab_break_glass=""' in lapsed_page.headers.get("set-cookie", "")  # of no more use: deleted
    assert need.status_code == 403 and EN["break_glass_not_saved"] in need.text and name not in need.text


async def test_a_note_written_while_the_reason_ran_out_is_given_back_to_copy(door: Door,
                                                                              monkeypatch: pytest.MonkeyPatch):
    """An outside review's find: a colleague covering a case wrote a note for longer than the reason's 15 minutes,
    pressed "Add note", and the note was gone. It comes back on the page that asks for the reason again, to copy,
    as a form sent after the session lapsed gives its text back; nothing is saved."""
    ala, bo = await person(door, "caseworker"), await person(door, "caseworker")
    his = await open_case(door, bo, variants()[8]["belarusian"])
    path = f"/console/cases/{his['id']}"
    await state_reason(ala.visitor, his["id"], REASON)
    form = await ala.visitor.get(path)
    note = "Called the clinic in Vilnius: the appointment moved to Thursday, she needs a lift from the station."
    later = console.reason_clock() + console.BREAK_GLASS_MINUTES * 60 + 1
    monkeypatch.setattr(console, "reason_clock", lambda: later)

    sent = await ala.visitor.post(f"{path}/notes", data={"csrf": csrf_of(form.text), "text": note,
                                                         "idempotency_key": str(uuid.uuid4())})

    assert sent.status_code == 403 and EN["break_glass_not_saved"] in sent.text
    kept = html.unescape(sent.text[sent.text.index('id="typed"'):])
    assert EN["typed_kept_break_glass"] in kept and f"readonly rows=\"3\">{note}</textarea>" in kept
    assert 'name="text"' not in kept  # outside any form: copied by hand, never sent again by itself
    notes = await door.client.get(f"/api/intake/cases/{his['id']}/notes", headers=bo.api)
    assert notes.json()["items"] == []


async def test_a_sealed_reason_works_only_for_the_session_and_the_case_it_was_stated_in(door: Door):
    ala, bo = await person(door, "caseworker"), await person(door, "caseworker")
    his, other = await open_case(door, bo, "Ales Zhuk"), await open_case(door, bo, "Nasta Zhuk")
    stated = await state_reason(ala.visitor, his["id"], REASON)
    sealed = stated.cookies["rehab_break_glass"]

    ala_again = browser(door)  # the same person, another sign-in
    await sign_in(ala_again, ala.username)
    ala_again.cookies.set("rehab_break_glass", sealed, path=f"/console/cases/{his['id']}")
    other_session = await ala_again.get(f"/console/cases/{his['id']}")
    ala.visitor.cookies.set("rehab_break_glass", sealed, path=f"/console/cases/{other['id']}")
    other_case = await ala.visitor.get(f"/console/cases/{other['id']}")

    assert other_session.status_code == other_case.status_code == 403
    assert "Ales" not in other_session.text and "Nasta" not in other_case.text


# --- the supervisor ----------------------------------------------------------------------------------------------

async def assigned(attempt: Callable) -> httpx.Response:
    """Retry while intake has not yet learned a new caseworker from the gateway's events."""
    return await eventually_ok(attempt)


async def test_the_supervisor_s_caseload_lists_assignees_and_reassigns_and_a_bad_user_name_is_refused_in_words(
        door: Door):
    sam = await person(door, "supervisor")
    ala, bo = await person(door, "caseworker"), await person(door, "caseworker")
    case = await open_case(door, ala, variants()[8]["belarusian"], country="LT")
    closed = await open_case(door, ala, variants()[9]["belarusian"])
    assert (await door.client.post(f"/api/intake/cases/{closed['id']}/close", headers=ala.api)).status_code == 200
    action = f"/console/caseload/{case['id']}/assignees"

    landed = await sam.visitor.get("/")
    caseload = await sam.visitor.get("/console/caseload")
    only_closed = await sam.visitor.get("/console/caseload", params={"status": "closed"})
    token = csrf_of(caseload.text)
    unknown = await sam.visitor.post(action, data={"csrf": token, "usernames": "nobody.here, " + bo.username})
    empty = await sam.visitor.post(action, data={"csrf": token, "usernames": " , "})
    given = await assigned(lambda: sam.visitor.post(action, data={"csrf": token, "usernames": bo.username,
                                                                  "status": "open"}))
    after = await sam.visitor.get("/console/caseload")
    bo_cases, ala_cases = await bo.visitor.get("/console/cases"), await ala.visitor.get("/console/cases")

    assert landed.status_code == 303 and landed.headers["location"] == "/console/caseload"
    row = caseload.text.split(f'id="case-{case["id"]}"', 1)[1].split("</tr>", 1)[0]
    assert case["reference"] in row and ala.username in row and "Lithuania" in row
    assert f'action="{action}"' in row and f'value="{ala.username}"' in row  # the form starts from who holds it
    assert closed["reference"] in only_closed.text and case["reference"] not in only_closed.text
    # a user name that is not an enabled caseworker's: said in words, on the case's row, with what was typed kept
    assert unknown.status_code == 422 and "Traceback" not in unknown.text
    refused_row = unknown.text.split(f'id="case-{case["id"]}"', 1)[1].split("</tr>", 1)[0]
    assert 'role="alert"' in refused_row and "nobody.here" in refused_row
    assert EN["assign_refused"].split(":")[0] in refused_row and 'aria-invalid="true"' in refused_row
    assert f'value="nobody.here, {bo.username}"' in refused_row
    assert empty.status_code == 422 and EN["assign_none"] in empty.text
    # given to another caseworker: the caseload and both caseworkers' lists say so
    assert given.status_code == 303 and given.headers["location"] == f"/console/caseload?status=open&given={case['id']}"
    told = await sam.visitor.get(given.headers["location"])  # and the page says where the case went
    assert EN["caseload_given"].format(reference=case["reference"], names=bo.username) in told.text
    new_row = after.text.split(f'id="case-{case["id"]}"', 1)[1].split("</tr>", 1)[0]
    assert bo.username in new_row and ala.username not in new_row.split('<form', 1)[0]
    assert case["reference"] in bo_cases.text and case["reference"] not in ala_cases.text
    # whom to give a case to, suggested as the name is typed, with how many open cases each holds now
    assert 'list="caseworker-names"' in new_row
    assert f'<option value="{bo.username}">1 open case</option>' in after.text
    assert f'<option value="{ala.username}">0 open cases</option>' in after.text  # the other one is closed
    assert f'<option value="{sam.username}">' not in after.text  # a supervisor is given no case


async def test_a_supervisor_who_is_a_caseworker_too_is_told_in_words_that_another_must_give_them_a_case(door: Door):
    vic = await person(door, "supervisor", "caseworker")
    ala = await person(door, "caseworker")
    case = await open_case(door, ala, variants()[7]["belarusian"])
    action = f"/console/caseload/{case['id']}/assignees"
    token = csrf_of((await vic.visitor.get("/console/caseload")).text)

    for _ in range(100):  # a 422 while intake has not yet learned the new account from the gateway's events
        refused = await vic.visitor.post(action, data={"csrf": token, "usernames": f"{ala.username}, {vic.username}"})
        if refused.status_code != 422:
            break
        await asyncio.sleep(0.1)

    assert refused.status_code == 403 and "Traceback" not in refused.text
    assert EN["problem_self_assignment"] in refused.text
    assert (await vic.visitor.get(f"/console/cases/{case['id']}")).status_code != 200  # still not theirs to read


async def test_a_supervisor_who_is_not_a_caseworker_sees_no_personal_data_anywhere(door: Door):
    sam = await person(door, "supervisor")
    ala = await person(door, "caseworker")
    name = variants()[10]["belarusian"]
    case = await open_case(door, ala, name, safety_notes="Only via Signal", city="Vilnius", country="LT")
    path = f"/console/cases/{case['id']}"

    pages = {
        "caseload": await sam.visitor.get("/console/caseload"),
        "cases": await sam.visitor.get("/console/cases", follow_redirects=True),
        "case": await sam.visitor.get(path),
        "break-glass": await sam.visitor.get(f"{path}/break-glass"),
        "erase": await sam.visitor.get(f"{path}/erase"),
        "refer": await sam.visitor.get(f"{path}/refer"),
        "search": await submit(sam.visitor, "/console/caseload", "/console/cases/search",
                               {"q": variants()[10]["latin_passport"]}),
        "reason": await submit(sam.visitor, "/console/caseload", f"{path}/break-glass", {"reason": REASON}),
    }
    after_reason = await sam.visitor.get(path)

    for which, page in {**pages, "after the reason": after_reason}.items():
        assert name not in page.text and "Signal" not in page.text and "Vilnius" not in page.text, which
    assert case["reference"] in pages["caseload"].text and case["reference"] not in pages["search"].text
    assert f'href="{path}"' not in pages["caseload"].text  # nothing to open
    assert str(pages["cases"].url).endswith("/console/caseload")
    for which in ("case", "break-glass", "reason"):
        assert pages[which].status_code == 403 and EN["supervisor_no_case"] in pages[which].text, which
        assert 'name="reason"' not in pages[which].text, which  # a supervisor is not offered break-glass
    assert f">{EN['my_cases']}</a>" not in pages["caseload"].text and f">{EN['caseload']}</a>" in pages["caseload"].text
    # no form to fill in vain: only a caseworker opens a case (an outside review's find)
    new_case = await sam.visitor.get("/console/cases/new", headers={"Accept": "text/html"})
    assert new_case.status_code == 403 and EN["problem_forbidden"] in new_case.text
    assert 'name="full_name"' not in new_case.text


async def test_the_break_glass_page_and_the_caseload_speak_belarusian_and_russian(door: Door):
    ala, bo, sam = await person(door, "caseworker"), await person(door, "caseworker"), await person(door, "supervisor")
    his = await open_case(door, bo, "Ales Zhuk")
    seen = {}
    for language in ("be", "ru"):
        for visitor in (ala.visitor, sam.visitor):
            await visitor.get(f"/console/language/{language}", params={"next": "/"})
        words = {key: str(escape(text)) for key, text in i18n.MESSAGES[language].items()}
        asked = await ala.visitor.get(f"/console/cases/{his['id']}")
        caseload = await sam.visitor.get("/console/caseload")
        seen[language] = (words["break_glass_title"] in asked.text and words["break_glass_recorded"] in asked.text,
                          words["caseload"] in caseload.text and words["assign"] in caseload.text)
    assert seen == {"be": (True, True), "ru": (True, True)}


async def test_a_caseworker_adds_a_colleague_on_the_case_page_and_a_name_not_a_caseworker_s_is_refused_in_words(
        door: Door):
    ala, bo = await person(door, "caseworker"), await person(door, "caseworker")
    finance = await person(door, "finance")
    case = await open_case(door, ala, variants()[10]["belarusian"])
    page_path = f"/console/cases/{case['id']}"
    action = f"{page_path}/assignees"

    page = await ala.visitor.get(page_path)
    token = csrf_of(page.text)
    refused = await ala.visitor.post(action, data={"csrf": token, "username": finance.username})  # known or not
    nothing = await ala.visitor.post(action, data={"csrf": token, "username": "  "})
    added = await assigned(lambda: ala.visitor.post(action, data={"csrf": token, "username": bo.username}))
    after = await ala.visitor.get(page_path)
    bo_sees = await bo.visitor.get(page_path)

    assert 'id="add-colleague"' in page.text and f'action="{action}"' in page.text
    assert f'<option value="{bo.username}">' in page.text  # suggested as the name is typed
    assert f'<option value="{ala.username}">' not in page.text  # not one who holds it already
    # a user name that is not an enabled caseworker's: said beside the field, with what was typed kept
    assert refused.status_code == 422 and EN["assign_refused"].split(":")[0] in refused.text
    assert f'value="{finance.username}"' in refused.text and 'aria-invalid="true"' in refused.text
    assert nothing.status_code == 422 and EN["colleague_choose"] in nothing.text
    assert added.status_code == 303 and added.headers["location"] == f"{page_path}#assignees"
    held = re.search(r'<dd id="assignees">([^<]*)</dd>', after.text).group(1)
    assert held == f"{ala.username}, {bo.username}"  # after the one who held it
    assert bo_sees.status_code == 200 and 'id="full-name"' in bo_sees.text  # bo's case now: no reason asked


# --- a list intake did not give is said so, never as none ----------------------------------------------------------

@asynccontextmanager
async def service_away(name: str, door: Door, backends: Backends, gateway_settings,  # noqa: ANN001
                       who: object, *, instead: str | None = None,
                       **settings: object) -> AsyncIterator[httpx.AsyncClient]:
    """`who`'s browser (anyone with a signed-in `visitor`) on the same gateway (its database and keys) with service
    `name` away: its port answers nothing (or `instead` answers for it)."""
    urls = {**{f"{service}_url": url for service, url in backends.urls.items()},
            f"{name}_url": instead or f"http://127.0.0.1:{free_port()}"}
    async with open_gateway(gateway_settings(backends.secrets_dir, nats_url=backends.nats_url,
                                             database_url=door.settings.database_url, **urls, **settings)) as away:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=away.app), base_url="http://testserver",
                                     cookies=who.visitor.cookies) as visitor:  # type: ignore[attr-defined]
            yield visitor


async def test_with_intake_away_my_cases_says_once_why_and_that_the_cases_cannot_be_shown_not_that_there_are_none(
        door: Door, backends: Backends, gateway_settings):
    """A caseworker who read "No cases." under the banner, twice said, while intake was away took it as having none
    (an outside review's find)."""
    ala = await person(door, "caseworker")
    await open_case(door, ala, variants()[11]["belarusian"])
    async with service_away("intake", door, backends, gateway_settings, ala) as visitor:
        page = await visitor.get("/console/cases")
        for language in ("be", "ru"):
            await visitor.get(f"/console/language/{language}", params={"next": "/"})
            said = await visitor.get("/console/cases")
            theirs = {key: str(escape(text)) for key, text in i18n.MESSAGES[language].items()}
            assert 'id="cases-unshown"' in said.text and theirs["cases_unshown"] in said.text, language
            assert theirs["no_cases"] not in said.text, language
    assert 'id="cases-unshown"' in page.text and EN["cases_unshown"] in page.text
    assert EN["no_cases"] not in page.text
    assert page.text.count('class="problem"') == 1  # the banner, once (not again under the tasks due)


async def test_with_intake_away_the_supervisor_s_caseload_says_its_cases_cannot_be_shown_not_that_there_are_none(
        door: Door, backends: Backends, gateway_settings):
    sam = await person(door, "supervisor")
    async with service_away("intake", door, backends, gateway_settings, sam) as visitor:
        page = await visitor.get("/console/caseload")
    assert 'id="cases-unshown"' in page.text and EN["cases_unshown"] in page.text
    assert EN["no_cases"] not in page.text and page.text.count('class="problem"') == 1
