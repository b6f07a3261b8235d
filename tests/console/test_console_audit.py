"""The auditor's pages (issue #19): every service's audit trail newest first, with who by user name and what in words;
a filter by record id and action sent by POST and answered in place (the id never in an address), its next page a
POST too; every chain's verification in words — intact, or the first bad entry by id and place once an entry of
intake's trail is edited in its database; the break-glass openings, without their reasons; refused to everyone else,
and nothing but the trails for an auditor. In-process against the gateway, every service as a process."""

from __future__ import annotations

import html
import re
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import MetaData, create_engine, func, select, update

from gateway.console import audit_pages, i18n
from gateway.console.router import Answer, templates
from kit.tables import KitTables
from tests.console.test_console_no_typed_values_in_urls import PageReader, as_user, signed_in_walk
from tests.console.test_console_pages import browser, sign_in
from tests.console.world import csrf_of
from tests.integration.gateway.door import Backends, Door

pytestmark = pytest.mark.integration

AUDIT = "/console/audit"
SEARCH = "/console/audit/search"
BREAK_GLASS = "/console/audit/break-glass"
REASON = "Duty caseworker tonight: the person called the hotline"
ROOT = Path(__file__).resolve().parents[2]
AUDIT_TABLE = KitTables(MetaData()).audit


def words(key: str, language: str = "en") -> str:
    return i18n.MESSAGES[language][key]


async def auditor_console(door: Door) -> httpx.AsyncClient:
    """An auditor signed in through the console's form, landed where `/` sends them."""
    user = await door.add_user("auditor")
    visitor = browser(door)
    assert (await sign_in(visitor, user["username"])).status_code == 303
    return visitor


async def case_of(door: Door, caseworker: dict[str, str], name: str = "Алесь Жук") -> str:
    made = await door.client.post("/api/intake/cases", headers=caseworker, json={"full_name": name})
    assert made.status_code == 201, made.text
    return made.json()["id"]


async def read_case(door: Door, reader: dict[str, str], case_id: str, reason: str | None = None) -> None:
    headers = {**reader, "Access-Reason": reason} if reason else reader
    read = await door.client.get(f"/api/intake/cases/{case_id}", headers=headers)
    assert read.status_code == 200, read.text


def entry_rows(page: str) -> dict[str, str]:
    """The rows of the entries table (or the openings table), by entry id."""
    found = re.search(r'<table id="(?:audit-entries|openings)".*?</table>', page, re.DOTALL)
    if not found:
        return {}
    return dict(re.findall(r'<tr id="e-([0-9a-f-]{36})".*?>(.*?)</tr>', found.group(0), re.DOTALL))


def targets(page: str) -> set[str]:
    """The records the listed entries are about."""
    return {found for row in entry_rows(page).values()
            for found in re.findall(r'<td class="target"[^>]*><code>([^<]+)</code>', row)}


def actions(page: str) -> list[str]:
    return re.findall(r'data-action="([^"]+)"', page)


def verdict_row(page: str, service: str) -> str:
    found = re.search(rf'<tr id="verdict-{service}" class="verdict-(\w+)">(.*?)</tr>', page, re.DOTALL)
    assert found, f"no verdict for {service}"
    return found.group(1) + " " + html.unescape(re.sub(r"\s+", " ", found.group(2)))


def addresses(answer: httpx.Response) -> list[str]:
    """Every URL the answer leads to: its own, its Location, each link and each form's action."""
    reader = PageReader(str(answer.url))
    reader.feed(answer.text)
    return [str(answer.url), answer.headers.get("location", ""), *reader.links, *(f.action for f in reader.forms)]


async def filtered(visitor: httpx.AsyncClient, page: str, **fields: str) -> httpx.Response:
    """The trail's filter form, as served on `page`, sent with `fields`."""
    return await visitor.post(SEARCH, data={"csrf": csrf_of(page), "service": "intake", "target_id": "",
                                            "action": "", **fields})


# --- the auditor's home -------------------------------------------------------------------------------------------

async def test_an_auditor_lands_on_the_trails_with_every_chain_verified_and_a_case_s_entries_in_words(door: Door):
    caseworker_name, caseworker = await as_user(door, "caseworker")
    case_id = await case_of(door, caseworker)
    await read_case(door, caseworker, case_id)
    visitor = await auditor_console(door)

    home = await visitor.get("/")
    assert home.status_code == 303 and home.headers["location"] == AUDIT
    page = await visitor.get(AUDIT)
    assert page.status_code == 200
    assert f'<a href="{AUDIT}">{words("audit_title")}</a>' in page.text  # the auditor's nav: this page alone
    assert 'href="/console/cases"' not in page.text and 'href="/console/admin/users"' not in page.text
    for service in audit_pages.SERVICES:
        verdict = verdict_row(page.text, service)
        assert verdict.startswith("intact ") and words("audit_kind_intact") in verdict, verdict

    rows = [row for row in entry_rows(page.text).values() if case_id in row]
    assert rows, "the case's entries are not on the first page"
    newest, created = rows[0], rows[-1]  # newest first
    assert words("audit.case.read") in newest and caseworker_name in newest
    assert words("audit.case.create") in created and caseworker_name in created
    assert "Алесь" not in page.text and "Жук" not in page.text  # never the data itself

    # Each trail is a fixed link: the gateway's names sign-ins in words, the caseworker by user name.
    gateway = await visitor.get(AUDIT, params={"service": "gateway"})
    assert gateway.status_code == 200 and 'aria-current="page">' + words("audit_service_gateway") in gateway.text
    signed_in = [row for row in entry_rows(gateway.text).values() if words("audit.signin.ok") in row]
    assert any(caseworker_name in row for row in signed_in)


async def test_an_action_without_words_is_shown_by_its_raw_name():
    """A trail may hold an action newer than these pages: it is shown as stored, in a <code>."""
    entry = {"id": str(uuid.uuid4()), "at": "2026-12-01T10:00:00+00:00", "actor": "system:erasure-ledger",
             "action": "case.teleported", "target_id": None, "request_id": None, "action_key": None,
             "actor_name": None, "system": "system"}
    macros = templates.get_template("audit_macros.html").make_module({"t": i18n.translator("en")})
    assert str(macros.action(entry)).strip() == f'{words("audit_action_other")} <code>case.teleported</code>'
    assert str(macros.actor(entry)).strip() == f'{words("audit_actor_system")} <code>erasure-ledger</code>'


def test_every_action_the_services_audit_has_words_in_every_staff_language():
    """Each action written with a literal name anywhere in the gateway or the services (and the partner's referral
    steps and the aid's endings, written by a pattern) is listed for the filter and said in be, ru and en."""
    written = set()
    for path in [*ROOT.joinpath("gateway").rglob("*.py"), *ROOT.joinpath("services").rglob("*.py")]:
        text = path.read_text(encoding="utf-8")
        for call in re.findall(r"audit\.record\((.*?)\)", text, re.DOTALL):  # action="…" or "…" if … else "…"
            written |= set(re.findall(r'"([a-z_]+(?:\.[a-z_-]+)+)"', call))
        written |= set(re.findall(r'audit_action="([a-z_.-]+)"', text))
        # refusals, written by kit.audit.refusal_recorded under a service's named word (funds' PAY_REFUSED)
        written |= set(re.findall(r'^[A-Z_]+_REFUSED = "([a-z_]+\.[a-z_.-]+)"', text, re.MULTILINE))
    written |= {f"partner.referral.{step}" for step in ("accept", "decline", "start", "complete")}
    written |= {f"disbursement.{ending}" for ending in ("reject", "void")}
    listed = {action for service in audit_pages.ACTIONS.values() for action in service}
    assert written, "no audited action found: has the way of recording changed?"
    assert written <= listed, f"audited but not listed: {sorted(written - listed)}"
    for language in i18n.STAFF_LANGUAGES:
        missing = [action for action in listed if f"audit.{action}" not in i18n.MESSAGES[language]]
        assert not missing, (language, missing)


# --- filters: by record and by action, by POST -----------------------------------------------------------------------

async def test_a_filter_by_record_shows_only_its_entries_and_the_id_is_in_no_address(door: Door):
    _, caseworker = await as_user(door, "caseworker")
    case_id, other_id = await case_of(door, caseworker), await case_of(door, caseworker, "Марфа Кавалёва")
    for _ in range(audit_pages.ENTRIES_PER_PAGE + 2):  # more entries about the case than a page holds
        await read_case(door, caseworker, case_id)
    await read_case(door, caseworker, other_id)
    visitor = await auditor_console(door)
    page = await visitor.get(AUDIT)

    found = await filtered(visitor, page.text, target_id=case_id.upper())  # as typed: letter case does not matter
    assert found.status_code == 200 and "location" not in found.headers
    assert targets(found.text) == {case_id} and other_id not in found.text
    reference = (await door.client.get(f"/api/intake/cases/{case_id}", headers=caseworker)).json()["reference"]
    assert all(f'<span class="handle">({reference})</span>' in row for row in entry_rows(found.text).values())
    assert '<p id="filtered">' in found.text and words("audit_show_all") in found.text
    assert set(actions(found.text)) == {"case.read"}  # the newest page: reads only
    for address in addresses(found):
        assert case_id not in address.lower(), address

    # Its next page is a POST holding the id and the cursor, never a link; the last page ends where the case began.
    assert 'id="audit-next"' in found.text and f'href="{SEARCH}' not in found.text
    form = re.search(r'<form method="post" action="/console/audit/search" class="inline" id="audit-next">(.*?)'
                     r"</form>", found.text, re.DOTALL).group(1)
    hidden = dict(re.findall(r'name="(\w+)" value="([^"]*)"', form))
    assert hidden["target_id"] == case_id and hidden["cursor"]
    following = await visitor.post(SEARCH, data=hidden)
    assert following.status_code == 200 and targets(following.text) == {case_id}
    assert actions(following.text)[-1] == "case.create"
    assert not set(entry_rows(following.text)) & set(entry_rows(found.text))  # no entry twice
    for address in addresses(following):
        assert case_id not in address.lower(), address

    # By action, with the record: only the creation. By action alone: every case's creations.
    created = await filtered(visitor, page.text, target_id=case_id, action="case.create")
    assert actions(created.text) == ["case.create"]
    every_creation = await filtered(visitor, page.text, action="case.create")
    assert set(actions(every_creation.text)) == {"case.create"} and {case_id, other_id} <= targets(every_creation.text)

    # What is not an id is refused next to its field, kept as typed, and nothing is asked.
    refused = await filtered(visitor, page.text, target_id="Алесь Жук")
    assert refused.status_code == 422 and 'aria-invalid="true"' in refused.text
    assert f'<p class="field-error" id="target_id-error">{words("audit_bad_target")}</p>' in html.unescape(refused.text)
    assert 'id="filtered"' not in refused.text
    assert 'value="Алесь Жук"' in refused.text and not entry_rows(refused.text)
    assert (await visitor.get(SEARCH)).headers["location"] == AUDIT  # the address alone filters nothing


async def test_no_value_typed_into_the_audit_pages_reaches_a_url(door: Door):
    """The console's crawler as an auditor: the filter is sent with a needle (refused in place) and with a case's id
    (answered in place); no address it meets holds either."""
    _, caseworker = await as_user(door, "caseworker")
    case_id = await case_of(door, caseworker)
    username, _ = await as_user(door, "auditor")
    async with signed_in_walk(door, username, {"target_id": case_id}) as walk:
        await walk.run()

    assert not walk.leaks(), "typed values in URLs:\n" + "\n".join(walk.leaks())
    assert not [url for _, url in walk.urls if case_id in url.lower()], "the typed case id reached an address"
    sent = {key.rsplit(" ", 1)[0] for key in walk.submitted}
    assert {f"POST {SEARCH}", "POST /console/sign-out", "POST /console/sign-in"} <= sent
    assert "target_id" in set(walk.typist.typed.values())


# --- verification ---------------------------------------------------------------------------------------------------

async def test_an_edited_entry_of_intake_s_trail_is_named_as_the_first_bad_one(door: Door, backends: Backends):
    _, caseworker = await as_user(door, "caseworker")
    case_id = await case_of(door, caseworker)
    await read_case(door, caseworker, case_id)
    visitor = await auditor_console(door)
    assert verdict_row((await visitor.get(AUDIT)).text, "intake").startswith("intact ")

    engine = create_engine(backends.processes["intake"].env["REHAB_INTAKE_DATABASE_URL"])
    try:
        with engine.begin() as conn:
            row = conn.execute(select(AUDIT_TABLE).where(AUDIT_TABLE.c.target_id == case_id,
                                                         AUDIT_TABLE.c.action == "case.read")).mappings().one()
            position = conn.execute(select(func.count()).select_from(AUDIT_TABLE)
                                    .where(AUDIT_TABLE.c.seq <= row["seq"])).scalar_one()
            conn.execute(update(AUDIT_TABLE).where(AUDIT_TABLE.c.seq == row["seq"]).values(actor="someone-else"))
        try:
            page = await visitor.get(AUDIT)
            verdict = verdict_row(page.text, "intake")
            assert verdict.startswith("broken ") and words("audit_kind_broken") in verdict
            assert words("audit_verdict_broken").format(id=row["id"], position=position) in verdict
            assert verdict_row(page.text, "funds").startswith("intact ")  # the others hold
            marked = entry_rows(page.text)[row["id"]]
            assert words("audit_first_bad_here") in marked and "someone-else" in marked
            assert f'<tr id="e-{row["id"]}" class="bad-entry">' in page.text
        finally:
            with engine.begin() as conn:
                conn.execute(update(AUDIT_TABLE).where(AUDIT_TABLE.c.seq == row["seq"]).values(actor=row["actor"]))
    finally:
        engine.dispose()
    assert verdict_row((await visitor.get(AUDIT)).text, "intake").startswith("intact ")


def test_a_verification_is_said_in_words_for_every_state_of_a_chain():
    """Beyond intact and broken: what the newest checkpoint says of a chain that holds together, and no answer."""
    class Visitor:
        language = "en"

    def said(body: dict | None, status: int = 200) -> dict[str, str]:
        return audit_pages.verdict(Visitor(), Answer(status, body))  # type: ignore[arg-type]

    assert said({"ok": True, "entries": 7, "first_bad": None}) == {
        "kind": "intact", "words": words("audit_verdict_intact").format(n=7)}
    for status, key in audit_pages.CHECKPOINT_WORDS.items():
        assert said({"ok": False, "entries": 7, "first_bad": None, "checkpoint_status": status}) == {
            "kind": "warning", "words": words(key).format(n=7)}
    assert said({"detail": "down"}, 503)["kind"] == "unknown"


# --- break-glass openings ---------------------------------------------------------------------------------------------

async def test_the_break_glass_openings_say_who_which_case_and_when_but_never_the_reason(door: Door):
    _, owner = await as_user(door, "caseworker")
    case_id = await case_of(door, owner)
    opener_name, opener = await as_user(door, "caseworker")
    await read_case(door, opener, case_id, reason=REASON)
    visitor = await auditor_console(door)

    page = await visitor.get(BREAK_GLASS)
    assert page.status_code == 200 and 'aria-current="page">' + words("audit_break_glass") in page.text
    rows = [row for row in entry_rows(page.text).values() if case_id in row]
    assert rows and all(opener_name in row for row in rows)
    assert REASON not in page.text and "hotline" not in page.text
    assert words("audit_break_glass_reason") in html.unescape(page.text)
    assert words("audit_case_entries") in rows[0]  # the case's whole trail, one POST away

    # The same opening is on intake's trail, in words, and its case's entries are a POST away.
    trail = await visitor.get(AUDIT)
    assert any(words("audit.case.break_glass") in row and opener_name in row
               for row in entry_rows(trail.text).values() if case_id in row)
    about = await visitor.post(SEARCH, data={"csrf": csrf_of(page.text), "service": "intake", "target_id": case_id})
    assert "case.break_glass" in actions(about.text) and targets(about.text) == {case_id}


# --- who may come ---------------------------------------------------------------------------------------------------

async def test_only_auditors_open_the_audit_pages_and_an_auditor_opens_nothing_else(door: Door):
    caseworker = await door.add_user("caseworker")
    visitor = browser(door)
    assert (await sign_in(visitor, caseworker["username"])).status_code == 303
    cases = await visitor.get("/console/cases")
    assert cases.status_code == 200 and f'href="{AUDIT}"' not in cases.text
    for path in (AUDIT, f"{AUDIT}?service=gateway", BREAK_GLASS):
        assert (await visitor.get(path)).status_code == 403, path
    refused = await visitor.post(SEARCH, data={"csrf": csrf_of(cases.text), "service": "intake",
                                               "target_id": str(uuid.uuid4())})
    assert refused.status_code == 403

    auditor = await auditor_console(door)
    for path in ("/console/cases", "/console/cases/new", f"/console/cases/{uuid.uuid4()}", "/console/caseload",
                 "/console/grants", "/console/disbursements", "/console/admin/users", "/console/admin/partners"):
        assert (await auditor.get(path)).status_code == 403, path
    csrf = csrf_of((await auditor.get(AUDIT)).text)
    assert (await auditor.post("/console/cases", data={"csrf": csrf, "full_name": "Ales Zhuk"})).status_code == 403
    assert (await auditor.post("/console/sign-out", data={"csrf": csrf})).status_code == 303


# --- in every staff language ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("language", i18n.STAFF_LANGUAGES)
async def test_the_audit_pages_speak_the_auditor_s_language(door: Door, language: str):
    _, caseworker = await as_user(door, "caseworker")
    case_id = await case_of(door, caseworker)
    visitor = await auditor_console(door)
    await visitor.get(f"/console/language/{language}")

    served = (await visitor.get(AUDIT)).text
    page = html.unescape(served)
    assert f'<html lang="{language}">' in page
    for key in ("audit_title", "audit_explained", "audit_verification", "audit_kind_intact", "audit_service_intake",
                "audit_service_gateway", "audit_break_glass", "audit_filter_target", "audit_filter_target_help",
                "audit_any_action", "audit_at", "audit_actor", "audit_newest_first", "audit.case.create",
                "audit.needs.read", "audit.case.erase"):
        assert words(key, language) in page, key
    assert words("audit_verdict_intact", language).split("{n}")[0] in page
    created = [row for row in entry_rows(served).values() if case_id in row]
    assert created and words("audit.case.create", language) in html.unescape(created[-1])
    refused = html.unescape((await filtered(visitor, served, target_id="not an id")).text)
    assert words("audit_bad_target", language) in refused
    openings = html.unescape((await visitor.get(BREAK_GLASS)).text)
    for key in ("audit_break_glass_explained", "audit_break_glass_reason", "audit_case_id"):
        assert words(key, language) in openings, key


@pytest.mark.parametrize("language", ["en", "be", "ru"])
def test_a_trail_put_back_from_a_backup_is_said_so_beside_its_verdict(language: str) -> None:
    """"Intact" alone was said of a trail cut and signed as restored (an outside review's find): the newest restore
    each checkpoint names is said beside the verdict, in the auditor's language."""
    from types import SimpleNamespace

    mark = {"backup_made": "2026-12-01T10:00:00+00:00", "at": "2026-12-02T08:30:00+00:00"}
    visit = SimpleNamespace(language=language)
    said = audit_pages.restored(visit, Answer(200, {"ok": True, "entries": 5, "checkpoint": {"last_restore": mark}}))
    assert said == i18n.MESSAGES[language]["audit_verdict_restored"].format(
        made=i18n.format_date(mark["backup_made"], language), at=i18n.format_date(mark["at"], language))
    assert audit_pages.restored(visit, Answer(200, {"ok": True, "checkpoint": {"last_restore": None}})) is None
    assert audit_pages.restored(visit, Answer(503, None)) is None
