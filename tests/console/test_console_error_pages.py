"""A console page that fails answers a browser with a page in the visitor's language and a way back (no JSON in
English): a page their role does not have, one that is not there, a form sent with an old CSRF token. Scripts
(`Accept` without text/html) and the API keep problem+json; a visitor who is not signed in is still sent to sign in.
In-process against the gateway and every service as a process."""

from __future__ import annotations

import html

import pytest

from gateway.console import i18n
from kit.problems import Problem
from tests.console.test_console_pages import browser, signed_in
from tests.console.world import csrf_of
from tests.integration.gateway.door import Door

pytestmark = pytest.mark.integration

PAGE = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def says(answer, key: str, language: str) -> bool:  # noqa: ANN001
    return i18n.MESSAGES[language][key] in html.unescape(answer.text)


@pytest.mark.parametrize("language", i18n.STAFF_LANGUAGES)
async def test_a_refused_or_missing_page_and_an_old_form_say_so_as_a_page_in_the_visitor_s_language(door: Door,
                                                                                                 language: str):
    caseworker, _ = await signed_in(door, "caseworker")
    await caseworker.get(f"/console/language/{language}")

    not_theirs = await caseworker.get("/console/admin/users", headers=PAGE)
    assert not_theirs.status_code == 403 and not_theirs.headers["content-type"].startswith("text/html")
    assert says(not_theirs, "error_title", language) and says(not_theirs, "problem_forbidden", language)
    assert 'href="/"' in not_theirs.text and '"detail"' not in not_theirs.text

    missing = await caseworker.get("/console/no-such-page", headers=PAGE)
    assert missing.status_code == 404 and says(missing, "problem_gone", language)

    for no_case in ("/console/cases/00000000-0000-4000-8000-000000000000",
                    "/console/cases/00000000-0000-4000-8000-000000000000/erase"):
        page = await caseworker.get(no_case, headers=PAGE)
        assert "<h1>" in page.text and 'href="/console/cases"' in page.text, no_case  # a heading and a way back
        assert says(page, "back_to_my_cases", language)
    # a role without cases is sent back to its own start page, not to the cases list that refuses it again
    finance, _ = await signed_in(door, "finance")
    await finance.get(f"/console/language/{language}")
    for not_theirs in ("/console/cases/00000000-0000-4000-8000-000000000000",
                       "/console/cases/00000000-0000-4000-8000-000000000000/erase"):
        page = await finance.get(not_theirs, headers=PAGE)
        assert 'href="/console/cases"' not in page.text and says(page, "error_home", language), not_theirs

    for no_id in ("/console/cases/not-a-case", "/console/cases/00000000-0000-4000-8000-000000000000/referrals/BY-1",
                  "/console/cases/00000000-0000-4000-8000-000000000000/documents/xyz"):  # an address cut short
        page = await caseworker.get(no_id, headers=PAGE)
        assert page.status_code == 404 and page.headers["content-type"].startswith("text/html"), no_id
        assert says(page, "problem_gone", language) and "valid UUID" not in page.text, no_id

    for nul in ("/console/cases/%00", "/console/cases?status=%00"):  # kit.http refuses it before any route
        page = await caseworker.get(nul, headers=PAGE)
        assert page.status_code == 404 and page.headers["content-type"].startswith("text/html"), nul
        assert says(page, "problem_gone", language) and "NUL" not in page.text, nul

    old_form = await caseworker.post("/console/cases", data={"csrf": "from-yesterday"}, headers=PAGE)
    assert old_form.status_code == 403 and says(old_form, "problem_stale_form", language)
    assert "CSRF" not in old_form.text and "out of date or was not sent" not in old_form.text


async def test_scripts_and_the_api_keep_problem_json_and_strangers_are_sent_to_sign_in(door: Door):
    caseworker, _ = await signed_in(door, "caseworker")
    scripted = await caseworker.get("/console/admin/users", headers={"Accept": "application/json"})
    assert scripted.status_code == 403 and scripted.headers["content-type"] == "application/problem+json"
    scripted = await caseworker.get("/console/cases/not-a-case", headers={"Accept": "application/json"})
    assert scripted.status_code == 404 and scripted.headers["content-type"] == "application/problem+json"  # no id
    api = await caseworker.get("/api/no-such-thing", headers=PAGE)
    assert api.headers["content-type"] == "application/problem+json"
    for nul in ("/api/intake/cases/%00", "/console/cases/%00"):  # a NUL: a problem for anything but a page
        scripted = await caseworker.get(nul, headers={"Accept": "application/json"})
        assert scripted.status_code == 400 and scripted.json()["type"].endswith("/nul-character"), nul
    stranger = await browser(door).get("/console/cases", headers=PAGE)
    assert stranger.status_code == 303 and stranger.headers["location"] == "/"


async def test_the_console_s_own_address_typed_bare_opens_the_console(door: Door):
    caseworker, _ = await signed_in(door, "caseworker")
    for visitor, lands_on in ((caseworker, "/console/cases"), (browser(door), None)):
        typed = await visitor.get("/console", headers=PAGE)
        assert typed.status_code == 303 and typed.headers["location"] == "/"
        home = await visitor.get("/", headers=PAGE)
        if lands_on:  # a caseworker's home is their cases
            assert home.status_code == 303 and home.headers["location"] == lands_on
        else:  # a stranger's is the sign-in form
            assert home.status_code == 200 and 'action="/console/sign-in"' in home.text


NAV = '<nav aria-label="Rehab Support">'
SIGN_OUT = 'action="/console/sign-out"'


async def test_a_signed_in_person_s_error_page_carries_their_navigation_and_a_stranger_s_none(door: Door):
    caseworker, _ = await signed_in(door, "caseworker")
    finance, _ = await signed_in(door, "finance")

    for missing in ("/console/no-such-page", "/console/cases/not-a-case"):  # a 404 of the router, one of a path
        page = await caseworker.get(missing, headers=PAGE)
        assert page.status_code == 404 and says(page, "problem_gone", "en"), missing
        assert NAV in page.text and 'href="/console/cases"' in page.text and SIGN_OUT in page.text, missing
        assert 'href="/console/grants"' not in page.text and 'href="/console/admin/users"' not in page.text

    refused = await caseworker.get("/console/admin/users", headers=PAGE)  # a page of a role they do not have
    assert refused.status_code == 403 and NAV in refused.text and 'href="/console/cases"' in refused.text
    assert 'href="/console/admin/users"' not in refused.text  # the nav is theirs: no link to the page refused

    theirs = await finance.get("/console/no-such-page", headers=PAGE)
    assert 'href="/console/grants"' in theirs.text and 'href="/console/cases"' not in theirs.text

    stale = await caseworker.post("/console/cases", data={"csrf": "from-yesterday"}, headers=PAGE)
    assert stale.status_code == 403 and NAV in stale.text and SIGN_OUT in stale.text
    csrf_of(stale.text)  # the sign-out form carries this session's token, not the one sent

    stranger = await browser(door).get("/console/no-such-page", headers=PAGE)
    forged = await browser(door).get("/console/no-such-page", headers=PAGE,
                                     cookies={"rehab_session": "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."})
    for page in (stranger, forged):
        assert page.status_code == 404 and says(page, "problem_gone", "en")
        assert NAV not in page.text and SIGN_OUT not in page.text and 'href="/console/cases"' not in page.text


async def test_an_error_page_renders_without_navigation_when_looking_up_the_visitor_fails(door: Door,
                                                                                          monkeypatch):
    caseworker, _ = await signed_in(door, "caseworker")
    gatekeeper = door.app.state.gatekeeper

    async def broken(*args, **kwargs):  # the database away, say
        raise RuntimeError("the standing of accounts cannot be read")

    monkeypatch.setattr(gatekeeper, "admit", broken)
    page = await caseworker.get("/console/no-such-page", headers=PAGE)
    assert page.status_code == 404 and says(page, "problem_gone", "en") and 'href="/"' in page.text
    assert NAV not in page.text and SIGN_OUT not in page.text


async def test_a_console_page_that_fails_answers_a_person_with_a_page_and_a_script_with_a_problem(door: Door):
    """A failure no handler took is answered by kit.http's last wall; for a person's browser on a console path, it
    asks the console for its page (Starlette would run the app's own handler only outside every middleware)."""
    async def fails() -> None:
        raise RuntimeError("a page that fails, with a name in its message: Янка Купала")

    door.app.add_api_route("/console/fails-for-this-test", fails)  # no page fails on purpose: this one does
    caseworker, _ = await signed_in(door, "caseworker")
    await caseworker.get("/console/language/be")

    page = await caseworker.get("/console/fails-for-this-test", headers=PAGE)
    assert page.status_code == 500 and page.headers["content-type"].startswith("text/html")
    assert says(page, "problem_other", "be") and NAV in page.text  # in words, with the way on
    assert "Янка" not in page.text and "RuntimeError" not in page.text
    scripted = await caseworker.get("/console/fails-for-this-test", headers={"Accept": "application/json"})
    assert scripted.status_code == 500 and scripted.headers["content-type"] == "application/problem+json"
    assert scripted.json()["type"].endswith("/internal-server-error") and "Янка" not in scripted.text


async def test_a_visitor_past_their_request_budget_gets_a_page_in_words_that_says_when_to_try_again(door: Door,
                                                                                                   monkeypatch):
    """The gateway's rate limit refuses the visitor's token itself (a kit Problem raised in the console): a page in
    their language, never problem+json in English, and with its Retry-After (an outside review's find: the page
    had lost it)."""
    caseworker, _ = await signed_in(door, "caseworker")
    await caseworker.get("/console/language/be")
    gatekeeper = door.app.state.gatekeeper

    async def spent(*args, **kwargs):
        raise Problem(429, "Too many requests.", kind="rate-limited", headers={"Retry-After": "17"})

    monkeypatch.setattr(gatekeeper, "admit", spent)
    page = await caseworker.get("/console/cases", headers=PAGE)
    assert page.status_code == 429 and page.headers["content-type"].startswith("text/html")
    assert says(page, "problem_too_many", "be") and page.headers["retry-after"] == "17"
