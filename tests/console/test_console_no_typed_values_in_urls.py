"""No value a person types into the console ever reaches a URL (SPEC §7.7): not a search, not a form's answer, not a
redirect, not a language link's `next=`. A URL is kept by the browser's history and by every proxy's access log, and
the people in these records are hunted: a name there is a breach.

For each console role (caseworker, finance, admin, supervisor) a crawler signs in and walks every page it can reach.
It types a distinctive needle into every field of every form it finds, submits every form, follows every link and
every redirect, and keeps every URL it meets: each `<a href>`, each `<form action>`, each `Location` header, and the
URL of each answer. The test fails if any of those holds a needle, or if any page has a form sent by GET (a GET form
puts what was typed in the URL by construction).

Each form is sent twice: once with a needle in every free field (which also walks the pages that answer a refusal,
re-filled with what was typed), and once with valid codes where the services need one (a phone number, a language
tag), so the pages behind a success are walked too. Forms that end something (close, erase, reject, void, sign out)
are sent only when nothing else is left to walk.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from html.parser import HTMLParser
from urllib.parse import unquote, unquote_plus, urljoin, urlsplit

import httpx
import pytest

from kit import control, nats_auth
from tests.console.world import add_grant, add_partner, request_aid
from tests.integration.gateway.door import STAFF_PASSWORD, Door

pytestmark = pytest.mark.integration

BASE = "http://testserver"
NEEDLE = "Zqx"  # the start of every typed value: no word of the console, no UUID, no base64 cursor holds it
SEARCHED = f"{NEEDLE}seek"  # what the search box gets: a word of the names of more cases than one page shows
BORN = "1980-05-06"  # a date field cannot hold a needle (the browser sends only a date)
PAGE_SIZE = 50  # the console's page of cases: one more case than this, so that a search has a next page
UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
ENDINGS = ("/close", "/erase", "/reject", "/void", "/seal", "/sign-out")  # forms that end what the rest of the walk needs, last
MAX_REQUESTS = 800  # a bound on the walk, far above what it needs
# Where a service takes only a code, the "valid" filling types the code a person would; the other filling a needle.
VALID_CODES = {"phone": "+375 29 743 19 58", "packet_language": "be", "language": "be"}



# --- reading a page: its links and its forms --------------------------------------------------------------------

@dataclass
class Field:
    tag: str  # input, textarea, select
    name: str
    kind: str  # the input's type ("text" when none), "textarea" or "select"
    value: str = ""
    checked: bool = False
    disabled: bool = False
    maxlength: int | None = None
    minlength: int | None = None
    options: list[str] = field(default_factory=list)


@dataclass
class Form:
    page: str  # the URL of the page the form is on
    action: str
    method: str
    fields: list[Field] = field(default_factory=list)


class PageReader(HTMLParser):
    """Every `<a href>` and every `<form>` of a page, with the fields a browser would send."""

    def __init__(self, url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.url = url
        self.links: list[str] = []
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._textarea: Field | None = None
        self._select: Field | None = None
        self._option: tuple[str | None, bool] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {key: value if value is not None else "" for key, value in attrs}
        if tag == "a" and "href" in a:
            self.links.append(a["href"])
        elif tag == "form":
            # No method attribute means GET, as a browser reads it.
            self._form = Form(page=self.url, action=a.get("action") or self.url,
                              method=(a.get("method") or "get").upper())
            self.forms.append(self._form)
        elif self._form is not None and tag in ("input", "textarea", "select") and a.get("name"):
            found = Field(tag=tag, name=a["name"], kind=(a.get("type") or "text").lower() if tag == "input" else tag,
                          value=a.get("value", ""), checked="checked" in a, disabled="disabled" in a,
                          maxlength=int(a["maxlength"]) if a.get("maxlength", "").isdigit() else None,
                          minlength=int(a["minlength"]) if a.get("minlength", "").isdigit() else None)
            self._form.fields.append(found)
            if tag == "textarea":
                self._textarea = found
            elif tag == "select":
                self._select = found
        elif tag == "option" and self._select is not None:
            self._option = (a.get("value"), "selected" in a)

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._textarea.value += data
        elif self._option is not None:
            value, selected = self._option
            self._add_option(value if value is not None else data.strip(), selected)
            self._option = None

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None
        elif tag == "option" and self._option is not None:  # an empty option: its value attribute, or ""
            value, selected = self._option
            self._add_option(value or "", selected)
            self._option = None

    def _add_option(self, value: str, selected: bool) -> None:
        assert self._select is not None
        self._select.options.append(value)
        if selected or len(self._select.options) == 1:
            self._select.value = value


# --- typing: a needle in every field that takes free text ---------------------------------------------------------

class Typist:
    """Fills forms as a person would, with a needle of its own in every free field, and remembers every needle."""

    def __init__(self, valid_codes: dict[str, str] | None = None) -> None:
        self.typed: dict[str, str] = {}  # needle → the field it was typed into
        self.valid_codes = {**VALID_CODES, **(valid_codes or {})}

    def needle(self, name: str) -> str:
        value = SEARCHED if name == "q" else NEEDLE + re.sub(r"[^a-z0-9]", "", name.lower())
        self.typed[value] = name
        return value

    def fill(self, form: Form, *, valid: bool) -> dict[str, str | list[str]]:
        sent: dict[str, str | list[str]] = {}
        radios_done: set[str] = set()
        for f in form.fields:
            if f.disabled:  # a browser sends no disabled field
                continue
            if f.kind == "hidden":
                value: str | None = f.value  # kept as the page wrote it (a CSRF token, a seal, a cursor)
            elif f.kind == "checkbox":
                value = f.value or "on"  # every box ticked: the widest consent, every category
            elif f.kind == "radio":
                value = None if f.name in radios_done else f.value
                radios_done.add(f.name)
            elif f.kind == "select":
                value = f.value
            elif f.kind in ("submit", "button", "reset", "image", "file"):
                value = None
            else:
                value = self.typed_value(f, valid=valid)
            if value is None:
                continue
            if f.name in sent:  # several boxes of one name: a list, as a browser sends them
                before = sent[f.name]
                sent[f.name] = [*before, value] if isinstance(before, list) else [before, value]
            else:
                sent[f.name] = value
        return sent

    def typed_value(self, f: Field, *, valid: bool) -> str:
        if f.kind == "date":
            return BORN if "birth" in f.name else str(date.today() + timedelta(days=200))
        if f.maxlength is not None and f.maxlength <= 2:
            return "LT"  # a country: two letters are all the field takes
        if valid and f.name in self.valid_codes:
            return self.valid_codes[f.name]
        if f.kind == "email":
            return f"{self.needle(f.name)}@example.org"
        if f.name == "password" and valid:
            return STAFF_PASSWORD
        typed = self.needle(f.name)[: f.maxlength or None]
        if valid and f.minlength:  # long enough to be taken (a break-glass reason), the needle still in it
            typed = typed.ljust(f.minlength, "-")
        return typed


# --- the walk ----------------------------------------------------------------------------------------------------

@dataclass
class Walk:
    """One visitor (its own cookies) walking the console, keeping every URL it meets."""

    door: Door
    typist: Typist = field(default_factory=Typist)
    urls: list[tuple[str, str]] = field(default_factory=list)  # (where it was met, the URL)
    get_forms: list[str] = field(default_factory=list)
    submitted: set[str] = field(default_factory=set)  # "METHOD action-template field,names"
    requests: int = 0

    def __post_init__(self) -> None:
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.door.app), base_url=BASE)
        self._seen_links: set[str] = set()
        self._seen_forms: set[tuple[str, bool]] = set()
        self._queue: list[tuple[str, object]] = []
        self._endings: list[Form] = []

    async def unseal(self) -> None:
        settings = self.door.settings
        seed = settings.secrets_path / nats_auth.seed_file_name(nats_auth.OPERATOR)
        await control.publish_command(settings.nats_url, seed, "unseal", wait=1.0)
        assert not self.door.runtime.custody.sealed

    def forget_the_way(self) -> None:
        """Drop the links and forms met so far (the URLs met stay kept)."""
        self._queue.clear()

    def keep(self, where: str, url: str) -> None:
        self.urls.append((where, url))

    async def open(self, method: str, url: str, data: dict | None = None) -> httpx.Response:
        """One request and every redirect after it, each URL kept; the last answer, read for links and forms."""
        for _hop in range(10):
            self.requests += 1
            assert self.requests <= MAX_REQUESTS, "the walk does not end: is a page linking to ever new pages?"
            if method == "GET":
                answer = await self.client.get(url, params=data)
            else:
                answer = await self.client.post(url, data=data)
            self.keep(f"{method} answer", str(answer.url))
            location = answer.headers.get("location")
            if location is None or answer.status_code not in (301, 302, 303, 307, 308):
                break
            self.keep(f"Location after {method} {answer.url.path}", location)
            method, url, data = "GET", urljoin(str(answer.url), location), None
        self.read(answer)
        return answer

    def read(self, answer: httpx.Response) -> None:
        if not answer.headers.get("content-type", "").startswith("text/html"):
            return
        page = str(answer.url)
        reader = PageReader(page)
        reader.feed(answer.text)
        for href in reader.links:
            self.keep(f"<a href> on {answer.url.path}", href)
            if not href.startswith("#"):
                self._queue.append(("link", urljoin(page, href)))
        for form in reader.forms:
            self.keep(f"<form action> on {answer.url.path}", form.action)
            if form.method != "POST":
                self.get_forms.append(f"{form.method} form to {form.action} on {answer.url.path}")
            self._queue.append(("form", form))

    async def run(self) -> None:
        """Everything reachable: links and forms first, then the forms that end something, one at a time."""
        while self._queue or self._endings:
            if not self._queue:
                await self.submit_every_way(self._endings.pop(0))
                continue
            kind, item = self._queue.pop(0)
            if kind == "link":
                await self.follow(str(item))
            elif isinstance(item, Form):
                if urlsplit(urljoin(item.page, item.action)).path.endswith(ENDINGS):
                    if self.form_key(item) not in {self.form_key(f) for f in self._endings} | self.submitted:
                        self._endings.append(item)
                        # Sealing the keys (the admin's) next to last, signing out last.
                        self._endings.sort(key=lambda f: (f.action.endswith("/sign-out"), f.action.endswith("/seal")))
                else:
                    await self.submit_every_way(item)

    async def follow(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.netloc and parts.netloc != urlsplit(BASE).netloc:
            return  # never off-site
        shape = template(parts.path) + "?" + ",".join(sorted(k.split("=")[0] for k in parts.query.split("&") if k))
        if shape in self._seen_links:
            return  # one page of each kind: another case's page has the same links and forms
        self._seen_links.add(shape)
        await self.open("GET", url)

    async def submit_every_way(self, form: Form) -> None:
        key = self.form_key(form)
        for valid in (False, True):
            if (key, valid) in self._seen_forms:
                continue
            self._seen_forms.add((key, valid))
            data = self.typist.fill(form, valid=valid)
            if valid and data == self.typist.fill(form, valid=False):
                continue  # nothing in it needs a code: the first filling was the whole story
            self.submitted.add(key)
            await self.open(form.method, urljoin(form.page, form.action), data)
            if urlsplit(urljoin(form.page, form.action)).path.endswith("/seal"):
                await self.unseal()  # as `rehab unseal` does, so that signing out and in again still work
            if urlsplit(urljoin(form.page, form.action)).path.endswith(ENDINGS):
                return  # once is all there is of closing, erasing, rejecting or signing out

    @staticmethod
    def form_key(form: Form) -> str:
        names = ",".join(sorted({f.name for f in form.fields}))
        return f"{form.method} {template(urlsplit(urljoin(form.page, form.action)).path)} {names}"

    def leaks(self) -> list[str]:
        """Every URL met that holds a typed needle, in any encoding, and every GET form."""
        found = []
        for where, url in self.urls:
            readings = {url, unquote(url), unquote_plus(url), unquote_plus(unquote_plus(url))}
            for needle, typed_into in self.typist.typed.items():
                if any(needle.lower() in reading.lower() for reading in readings):
                    found.append(f"{where}: {url} holds what was typed into {typed_into!r}")
        return found + [f"a form that puts what is typed in the URL: {form}" for form in self.get_forms]


def template(path: str) -> str:
    return UUID.sub("{id}", path)


@asynccontextmanager
async def signed_in_walk(door: Door, username: str, valid_codes: dict[str, str] | None = None) -> AsyncIterator[Walk]:
    """A walk that has signed in through the console's own sign-in form, as a person does."""
    walk = Walk(door, typist=Typist(valid_codes))
    try:
        start = await walk.open("GET", "/")
        pre_session = re.search(r'name="pre_session" value="([^"]+)"', start.text).group(1)
        walk.forget_the_way()  # the sign-in form is walked again after signing out, with needles
        landed = await walk.open("POST", "/console/sign-in", {"username": username, "password": STAFF_PASSWORD,
                                                               "pre_session": pre_session})
        assert "/console/sign-out" in landed.text, f"{username} could not sign in: {landed.status_code}"
        yield walk
    finally:
        await walk.client.aclose()


# --- what each role has to walk through ---------------------------------------------------------------------------

async def as_user(door: Door, role: str) -> tuple[str, dict[str, str]]:
    user = await door.add_user(role)
    return user["username"], await door.bearer_for(await door.sign_in(user["username"], STAFF_PASSWORD))


@dataclass
class World:
    username: str  # who walks
    valid_codes: dict[str, str] = field(default_factory=dict)  # what their "valid" filling types, beyond VALID_CODES


async def caseworker_world(door: Door) -> World:
    """A caseworker with more cases named like the search needle than one page shows, a case whose name and birth
    date are the new-case needles (so that the duplicate warning, its seal and "save anyway" are walked), and, newest,
    a case with consent and a partner that fits it (so that the referral form offers a partner). Another caseworker
    holds a case named like the search needle too: the search shows it in outline, and opening it asks for a reason
    (break-glass), so that form is walked as well."""
    username, caseworker = await as_user(door, "caseworker")
    await add_partner(door, category="medical", country="LT", language="be")

    async def create(**body: object) -> dict:
        made = await door.client.post("/api/intake/cases", headers=caseworker, json=body)
        assert made.status_code == 201, made.text
        return made.json()

    for _ in range(PAGE_SIZE + 1):
        await create(full_name=f"{SEARCHED} Marozau")
    await create(full_name=Typist().needle("full_name"), date_of_birth=BORN)
    consented = await create(full_name="Ales Zhuk", country="LT")
    given = await door.client.put(f"/api/intake/cases/{consented['id']}/consent", headers=caseworker, json={
        "categories": ["medical"], "share_contact": True, "share_health": True, "method": "written"})
    assert given.status_code == 200, given.text
    _, colleague = await as_user(door, "caseworker")
    theirs = await door.client.post("/api/intake/cases", headers=colleague, json={"full_name": f"{SEARCHED} Zhuk"})
    assert theirs.status_code == 201, theirs.text
    return World(username)


async def finance_world(door: Door) -> World:
    """A finance officer with a grant and two requests from a caseworker (one to approve and pay, one to reject)
    and one of their own (which they may not approve), one with a payee to show; the new-grant form is sent with
    an amount funds takes too."""
    username, finance = await as_user(door, "finance")
    _, caseworker = await as_user(door, "caseworker")
    grant = await add_grant(door, finance)
    case = await door.client.post("/api/intake/cases", headers=caseworker, json={"full_name": "Ales Zhuk"})
    assert case.status_code == 201, case.text
    for amount in ("30.00", "20.00"):
        await request_aid(door, caseworker, case_id=case.json()["id"], grant_id=grant["id"], amount=amount)
    await request_aid(door, finance, case_id=case.json()["id"], grant_id=grant["id"], amount="10.00")
    with_payee = await door.client.post("/api/funds/disbursements", headers={**caseworker, "Idempotency-Key": "p-1"},
                                        json={"case_id": case.json()["id"], "grant_id": grant["id"],
                                              "category": "medical", "amount": "5.00", "currency": "EUR",
                                              "purpose": "clinic visit",
                                              "payee": {"name": "Ales Zhuk", "account": "LT60 1010 0123 4567 8901"}})
    assert with_payee.status_code == 201, with_payee.text
    return World(username, {"amount": "500.00"})


async def admin_world(door: Door) -> World:
    """A second admin (the walker), so that changes wait for approval; an account to change; and two requests of the
    first admin's for the walker to approve and to reject."""
    username, _ = await as_user(door, "admin")
    await door.add_user("caseworker")
    for role in ("finance", "auditor"):
        asked = await door.client.post("/api/admin/users", headers=await door.admin(), json={
            "username": door.next_username(), "password": STAFF_PASSWORD, "roles": [role]})
        assert asked.status_code == 201 and asked.json()["status"] == "pending_approval", asked.text
    return World(username)


async def supervisor_world(door: Door) -> World:
    """A supervisor, and a caseworker holding a case: the caseload's reassignment form is sent with a needle (a
    user name nobody has: the refusal page, with what was typed) and with that caseworker's user name."""
    username, _ = await as_user(door, "supervisor")
    caseworker_name, caseworker = await as_user(door, "caseworker")
    case = await door.client.post("/api/intake/cases", headers=caseworker, json={"full_name": "Ales Zhuk"})
    assert case.status_code == 201, case.text
    return World(username, {"usernames": caseworker_name})


WORLDS = {"caseworker": caseworker_world, "finance": finance_world, "admin": admin_world,
          "supervisor": supervisor_world}
# What each role's walk must have sent at least, or it proves little: "METHOD action-template".
MUST_SUBMIT = {
    "caseworker": {"POST /console/cases/search", "POST /console/cases", "POST /console/cases/{id}/needs",
                   "POST /console/cases/{id}/consent", "POST /console/cases/{id}/refer",
                   "POST /console/cases/{id}/close", "POST /console/cases/{id}/erase",
                   "POST /console/cases/{id}/break-glass", "POST /console/sign-out", "POST /console/sign-in",
                   "POST /console/cases/{id}/notes", "POST /console/cases/{id}/tasks", "POST /console/tasks/{id}/done"},
    "finance": {"POST /console/disbursements/{id}/approve", "POST /console/disbursements/{id}/pay",
                "POST /console/disbursements/{id}/reject", "POST /console/disbursements/{id}/void",
                "POST /console/disbursements/{id}/payee", "POST /console/grants", "POST /console/sign-out",
                "POST /console/sign-in"},
    "admin": {"POST /console/admin/users", "POST /console/admin/users/{id}/roles",
              "POST /console/admin/users/{id}/disable", "POST /console/admin/users/{id}/enable",
              "POST /console/admin/users/{id}/revoke-sessions", "POST /console/admin/approvals/{id}/approve",
              "POST /console/admin/approvals/{id}/reject", "POST /console/sign-out", "POST /console/sign-in"},
    "supervisor": {"POST /console/caseload/{id}/assignees", "POST /console/sign-out", "POST /console/sign-in"},
}
# The fields each role's walk must have typed a needle into, at least.
MUST_TYPE_INTO = {
    "caseworker": {"q", "full_name", "other_names", "city", "telegram", "email", "safety_notes", "notes",
                   "display_name", "note", "contact", "health_summary", "language", "reason", "username", "password",
                   "text", "title"},
    "finance": {"reference", "donor", "code", "amount", "username", "password"},
    "admin": {"username", "password"},  # a partner staff member's partner is chosen from a list, not typed
    "supervisor": {"usernames", "username", "password"},
}


@pytest.mark.parametrize("role", list(WORLDS))
async def test_no_value_typed_into_the_console_ever_reaches_a_url(door: Door, role: str):
    world = await WORLDS[role](door)
    async with signed_in_walk(door, world.username, world.valid_codes) as walk:
        await walk.run()

    assert not walk.leaks(), "typed values in URLs:\n" + "\n".join(walk.leaks())
    sent = {key.rsplit(" ", 1)[0] for key in walk.submitted}
    assert MUST_SUBMIT[role] <= sent, f"the walk never sent {MUST_SUBMIT[role] - sent}"
    typed_into = set(walk.typist.typed.values())
    assert MUST_TYPE_INTO[role] <= typed_into, f"the walk never typed into {MUST_TYPE_INTO[role] - typed_into}"
    if role == "caseworker":  # the search's next page was walked too (a form holding the search and a cursor)
        assert any(key.startswith("POST /console/cases/search ") and "cursor" in key for key in walk.submitted)
