"""Need-to-know on real data (SPEC §2, §4, §7.8), through the gateway and on each service's own port.

A case is opened in intake by caseworker A (its first assignee). Then every case-scoped operation of intake (the case,
its needs, consent, timeline, assignees, closing, erasure), of referrals (sending a referral for the case, listing
them by `?case_id=`, reading and cancelling one) and of funds (requesting aid for the case, listing and reading it) is
tried by the people below. Assigning and erasing are the exceptions to break-glass: a reason opens a case, it neither
hands it over nor erases it.

- A, the assignee: allowed;
- caseworker B, not assigned, without `Access-Reason`: 403 problem, type ending in `/need-to-know`;
- B with an `Access-Reason` under 10 characters: 403 problem, type ending in `/need-to-know` too (SPEC §4: that is
  no reason), saying that 10 characters are needed;
- B with a proper reason: allowed (break-glass), and an entry `case.break_glass` by B about the case is in the audit
  trail of the service that opened it (read by the auditor), one per opening; intake shows it on the timeline;
- a supervisor, who is no caseworker: refused personal data (with or without a reason), but assigns the case;
- finance: in funds exempt from need-to-know (SPEC §2: finance requests aid, §4: the rule is about caseworkers),
  elsewhere refused.

Refused requests change nothing; a supervisor's hand-over reaches referrals and funds; a reason is counted in
characters, not bytes, and reaches the timeline as written (the gateway passes a header's UTF-8 bytes on as they came).

Referrals and funds learn who holds a case from intake's `rehab.intake.case.assigned` events over NATS: each test
waits until they know before it judges. Every test runs twice: `gateway` (people signed in at the gateway, requests
through it) and `direct` (the same people, with tokens signed by the gateway's key, on each service's own port).
Mismatches are collected and reported together, each with the request that got it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from gateway.routing import route_for
from tests.integration.gateway.door import STAFF_PASSWORD, Backends, Door, names, open_gateway
from tests.support.polling import wait_for

pytestmark = pytest.mark.integration

REASON = "Covering for a colleague on leave; the client called us"
SHORT_REASONS = ("too short", "urgent")  # 9 and 6 characters
CASES = "/api/intake/cases"
PERSON = names("belarusian")[5]
NOT_ASSIGNED_TO_THEM = "refused as need-to-know"
TOO_SHORT = "refused as a reason too short"
FORBIDDEN = "forbidden"
REFUSED = (FORBIDDEN, NOT_ASSIGNED_TO_THEM)  # for someone whose role does not open cases: any 403 will do
ALLOWED = "allowed"


# --- who, and how their requests travel ------------------------------------------------------------------------------

@dataclass
class Someone:
    name: str  # as the test reports them: "A", "B", "supervisor", …
    id: str
    username: str
    roles: tuple[str, ...]
    signed_in: dict[str, str]  # their gateway access token


@dataclass
class Team:
    a: Someone
    b: Someone
    supervisor: Someone
    finance: Someone
    auditor: Someone
    admin: Someone


@dataclass
class Way:
    """A request as `who`: through the gateway with their own signed-in token, or (direct) on the port of the service
    that owns the path (gateway/routing.py), with a token the gateway's key signs for the same person."""

    name: str
    door: Door
    backends: Backends
    clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)
    tokens: dict[str, dict[str, str]] = field(default_factory=dict)

    def bearer(self, who: Someone) -> dict[str, str]:
        if self.name == "gateway":
            return who.signed_in
        if who.id not in self.tokens:
            token = self.backends.issuer().issue(sub=who.id, roles=list(who.roles), extra={"username": who.username})
            self.tokens[who.id] = {"Authorization": f"Bearer {token}"}
        return self.tokens[who.id]

    async def __call__(self, who: Someone, method: str, path: str, *, reason: str | None = None, json: Any = None,
                       params: dict[str, str] | None = None, headers: dict[str, str] | None = None,
                       key: bool = False) -> httpx.Response:
        """`reason`: sent as UTF-8, as clients send text in a header. `key`: with an Idempotency-Key of its own (funds
        requires one on a disbursement request)."""
        sent = {**self.bearer(who), **(headers or {}),
                **({"Access-Reason": reason.encode()} if reason is not None else {}),
                **({"Idempotency-Key": str(uuid.uuid4())} if key else {})}
        if self.name == "gateway":
            client = self.door.client
        else:
            route = route_for(path)
            assert route is not None, path
            client = self.clients[route.backend]
        return await client.request(method, path, json=json, params=params, headers=sent)


@pytest.fixture
async def door(backends: Backends, gateway_settings) -> AsyncIterator[Door]:
    """The gateway in front of the services, on their NATS: the staff it creates reach intake's staff directory (a
    supervisor assigns only enabled caseworkers the directory knows)."""
    settings = gateway_settings(backends.secrets_dir, nats_url=backends.nats_url,
                                **{f"{name}_url": url for name, url in backends.urls.items()})
    async with open_gateway(settings) as opened:
        yield opened


@pytest.fixture
async def team(door: Door, backends: Backends) -> Team:
    if not {"intake", "referrals", "funds"} <= set(backends.urls):
        pytest.skip("needs intake, referrals and funds")

    async def person(name: str, *roles: str) -> Someone:
        user = await door.add_user(*roles)
        signed_in = await door.bearer_for(await door.sign_in(user["username"], STAFF_PASSWORD))
        return Someone(name, user["id"], user["username"], roles, signed_in)

    admin_headers = await door.admin()
    me = (await door.client.get("/auth/me", headers=admin_headers)).json()
    team = Team(a=await person("A", "caseworker"), b=await person("B", "caseworker"),
                supervisor=await person("supervisor", "supervisor"), finance=await person("finance", "finance"),
                auditor=await person("auditor", "auditor"),
                admin=Someone("admin", me["sub"], me["username"], ("admin",), admin_headers))
    # Intake's staff directory learns A and B from the gateway's events: wait until a supervisor can give them a case
    # (a scratch one, opened on intake's own port).
    with httpx.Client(base_url=backends.urls["intake"], timeout=10) as intake:
        direct = Way("direct", door, backends)
        scratch = intake.post(CASES, json={"full_name": "Scratch Case"}, headers=direct.bearer(team.a))
        assert scratch.status_code == 201, scratch.text
        await wait_for(lambda: intake.put(f"{CASES}/{scratch.json()['id']}/assignees",
                                          json={"usernames": [team.a.username, team.b.username]},
                                          headers=direct.bearer(team.supervisor)).status_code == 200, timeout=20)
    return team


@pytest.fixture(params=["gateway", "direct"])
async def way(request: pytest.FixtureRequest, door: Door, backends: Backends) -> AsyncIterator[Way]:
    chosen = Way(request.param, door, backends)
    if chosen.name == "direct":
        chosen.clients = {name: httpx.AsyncClient(base_url=url, timeout=10) for name, url in backends.urls.items()}
    try:
        yield chosen
    finally:
        for client in chosen.clients.values():
            await client.aclose()


# --- judging answers -------------------------------------------------------------------------------------------------

def problem(answer: httpx.Response) -> dict:
    if not answer.headers.get("content-type", "").startswith("application/problem+json"):
        return {}
    return answer.json()


def verdicts(answer: httpx.Response) -> set[str]:
    """What an answer amounts to, in the words of the expectations above."""
    kind, detail = problem(answer).get("type", ""), problem(answer).get("detail", "")
    if answer.status_code < 300:
        return {ALLOWED}
    found = set()
    if answer.status_code == 403:
        found.add(NOT_ASSIGNED_TO_THEM if kind.endswith("/need-to-know") else FORBIDDEN)
    # SPEC §4: a reason under 10 characters is none: need-to-know, the answer saying how long one must be and how
    # long the one given was (kit.need_to_know).
    if answer.status_code == 403 and kind.endswith("/need-to-know") and "the one given has" in detail:
        found.add(TOO_SHORT)
    return found


@dataclass
class Judge:
    """Collects every mismatch, with the request that got it, so one run reports them all."""

    way: Way
    mismatches: list[str] = field(default_factory=list)

    async def expect(self, expected: str | tuple[str, ...], who: Someone, method: str, path: str, *,
                     reason: str | None = None, **kwargs: Any) -> httpx.Response:
        answer = await self.way(who, method, path, reason=reason, **kwargs)
        got = verdicts(answer)
        wanted = (expected,) if isinstance(expected, str) else expected
        # An answer that refuses must not show the person, whatever it is.
        leaked = ALLOWED not in got and PERSON in answer.text
        if not got & set(wanted) or leaked or answer.status_code >= 500:
            said = f"Access-Reason {reason!r} " if reason is not None else ""
            query = f" params={kwargs['params']}" if kwargs.get("params") else ""
            shows = " (and it shows the person)" if leaked else ""
            self.mismatches.append(
                f"[{self.way.name}] {method} {path}{query} as {who.name} {said}-> {answer.status_code} "
                f"{answer.text[:300]!r}: expected {' or '.join(wanted)}{shows}")
        return answer

    async def refusals(self, team: Team, method: str, path: str, *, reason_applies: bool = True,
                       others: tuple[tuple[Someone, str | tuple[str, ...]], ...] = (), **kwargs: Any) -> None:
        """B without a reason, with reasons too short, and `others` (the supervisor, finance, …): all refused."""
        await self.expect(NOT_ASSIGNED_TO_THEM, team.b, method, path, **kwargs)
        for short in SHORT_REASONS:
            await self.expect(TOO_SHORT if reason_applies else NOT_ASSIGNED_TO_THEM, team.b, method, path,
                              reason=short, **kwargs)
        for who, expected in others:
            await self.expect(expected, who, method, path, **kwargs)
            await self.expect(expected, who, method, path, reason=REASON, **kwargs)  # a reason is no role

    def check(self, holds: bool, mismatch: str) -> None:
        if not holds:
            self.mismatches.append(f"[{self.way.name}] {mismatch}")

    def assert_none(self) -> None:
        assert not self.mismatches, "\n".join(self.mismatches)


async def break_glass(way: Way, team: Team, service: str, case_id: str, actor: Someone, *,
                      action: str = "case.break_glass") -> int:
    """How many `case.break_glass` entries (or of `action`) by `actor` about the case the service's audit trail holds
    (as the auditor sees them)."""
    answer = await way(team.auditor, "GET", f"/api/{service}/audit", params={"target_id": case_id, "limit": "500"})
    assert answer.status_code == 200, answer.text
    entries = answer.json()["items"]
    assert all(e["target_id"] == case_id for e in entries)
    return sum(1 for e in entries if e["action"] == action and e["actor"] == actor.id)


async def access_refused(way: Way, team: Team, service: str, case_id: str, actor: Someone) -> int:
    """How many refusals of the case to `actor` the service's audit trail holds (BACKBONE, Audit)."""
    return await break_glass(way, team, service, case_id, actor, action="case.access_refused")


async def opened_case(way: Way, who: Someone) -> dict:
    created = await way(who, "POST", CASES, json={"full_name": PERSON, "country": "LT", "safety_notes": "Signal only"})
    assert created.status_code == 201, created.text
    assert created.json()["assignees"] == [who.username]  # the creator holds it
    return created.json()


async def with_consent(way: Way, who: Someone, case_id: str) -> None:
    answer = await way(who, "PUT", f"{CASES}/{case_id}/consent",
                       json={"categories": ["medical"], "share_contact": False, "share_health": False,
                             "method": "verbal"})
    assert answer.status_code == 200, answer.text


# --- intake ----------------------------------------------------------------------------------------------------------

async def etag(way: Way, team: Team, case_id: str) -> dict[str, str]:
    read = await way(team.a, "GET", f"{CASES}/{case_id}")
    assert read.status_code == 200, read.text
    return {"If-Match": read.headers["etag"]}


async def judged_route(judge: Judge, team: Team, service: str, case: str, method: str, path: str,
                       arguments: Callable[[], Awaitable[dict[str, Any]]], *, allowed: tuple[Someone, ...],
                       refused: tuple[tuple[Someone, str | tuple[str, ...]], ...]) -> None:
    """One case-scoped route: B without a reason and with reasons too short, and `refused`, are refused and leave no
    break-glass entry (each of B's a `case.access_refused` one); `allowed` (the assignee, …) and B with a reason get
    through, B's opening audited once."""
    way = judge.way
    before, refused_before = (await break_glass(way, team, service, case, team.b),
                              await access_refused(way, team, service, case, team.b))
    await judge.refusals(team, method, path, others=refused, **await arguments())
    after_refusals = await break_glass(way, team, service, case, team.b)
    judge.check(after_refusals == before,
                f"{method} {path}: a refused request left a case.break_glass entry in {service}'s audit trail")
    judge.check(await access_refused(way, team, service, case, team.b) == refused_before + 1 + len(SHORT_REASONS),
                f"{method} {path}: B's refused requests are not each a case.access_refused entry in {service}'s "
                f"audit trail")
    for who in allowed:
        await judge.expect(ALLOWED, who, method, path, **await arguments())
    await judge.expect(ALLOWED, team.b, method, path, reason=REASON, **await arguments())
    judge.check(await break_glass(way, team, service, case, team.b) == after_refusals + 1,
                f"{method} {path} by B with a reason: not one case.break_glass entry about {case} in {service}'s "
                f"audit trail")


async def test_intake_keeps_reasons_for_the_services_only_not_for_the_public(way: Way, team: Team):
    """`POST /api/intake/cases/{id}/openings` is for referrals and funds: through the gateway it is no path at all,
    so nobody writes a timeline line naming a service of their choice."""
    case = (await opened_case(way, team.a))["id"]
    if way.name != "gateway":
        pytest.skip("the gateway's rule")
    for path in (f"{CASES}/{case}/openings", f"{CASES}/{case}/openings/"):
        answer = await way(team.b, "POST", path, reason=REASON, json={"opened_in": "funds"})
        assert answer.status_code == 404 and answer.json()["type"].endswith("/not-found"), answer.text
    timeline = await way(team.a, "GET", f"{CASES}/{case}/timeline")
    assert [e for e in timeline.json()["items"] if e["kind"] == "case.break_glass"] == []


async def judge_reason_kept_by_intake(judge: Judge, team: Team, case: str, service: str) -> None:
    """B's openings of the case in `service`: on its timeline in intake, once (one opening covers a quarter of an
    hour), with the reason B stated there and where; audited in intake too (SPEC §4, §7.8)."""
    timeline = await judge.way(team.a, "GET", f"{CASES}/{case}/timeline", params={"limit": "200"})
    kept = [(e["source"], e["details"]) for e in timeline.json()["items"] if e["kind"] == "case.break_glass"]
    judge.check(kept == [(service, {"by": team.b.username, "reason": REASON})],
                f"B's openings in {service} on the timeline: {kept}")
    judge.check(await break_glass(judge.way, team, "intake", case, team.b) > 0,
                f"B's openings in {service} left no entry in intake's audit trail")


def given(**arguments: Any) -> Callable[[], Awaitable[dict[str, Any]]]:
    async def same() -> dict[str, Any]:
        return arguments

    return same


async def test_every_case_route_of_intake_opens_to_its_assignee_or_a_stated_reason(way: Way, team: Team):
    judge = Judge(way)
    case = (await opened_case(way, team.a))["id"]
    path = f"{CASES}/{case}"

    async def patch() -> dict[str, Any]:  # with the case's ETag of the moment
        return {"json": {"city": "Vilnius"}, "headers": await etag(way, team, case)}

    consent = {"categories": ["medical"], "share_contact": False, "share_health": False, "method": "verbal"}
    not_caseworkers = ((team.supervisor, REFUSED), (team.finance, REFUSED), (team.auditor, REFUSED))
    for method, route, arguments in (
            ("GET", path, given()), ("PATCH", path, patch),
            ("POST", f"{path}/needs", given(json={"category": "medical", "urgency": "high", "notes": "Insulin"})),
            ("GET", f"{path}/needs", given()), ("PUT", f"{path}/consent", given(json=consent)),
            ("GET", f"{path}/consent", given()), ("GET", f"{path}/timeline", given())):
        await judged_route(judge, team, "intake", case, method, route, arguments, allowed=(team.a,),
                           refused=not_caseworkers)
    judge.check(await break_glass(way, team, "intake", case, team.a) == 0, "the assignee left a break-glass entry")

    # The assignee sees who opened it and why, on the timeline: once, though B made seven requests (one opening
    # covers the next minutes; the audit trail keeps every request, as counted above).
    timeline = await way(team.a, "GET", f"{path}/timeline", params={"limit": "200"})
    glass = [e["details"] for e in timeline.json()["items"] if e["kind"] == "case.break_glass"]
    judge.check(glass == [{"by": team.b.username, "reason": REASON}],
                f"the timeline shows these break-glass openings: {glass}")

    # Assigning: an assignee or a supervisor. A reason opens a case; it does not hand it over.
    assignees, keep = f"{path}/assignees", {"json": {"usernames": [team.a.username]}}
    await judge.refusals(team, "PUT", assignees, reason_applies=False,
                         others=((team.finance, REFUSED), (team.auditor, REFUSED)), **keep)
    await judge.expect(NOT_ASSIGNED_TO_THEM, team.b, "PUT", assignees, reason=REASON, **keep)
    await judge.expect(ALLOWED, team.a, "PUT", assignees, **keep)
    await judge.expect(ALLOWED, team.supervisor, "PUT", assignees, **keep)
    # The supervisor sees the caseload (reference, status, assignees), never the person.
    caseload = await judge.expect(ALLOWED, team.supervisor, "GET", CASES, params={"assigned": "any", "limit": "200"})
    judge.check(case in [c["id"] for c in caseload.json().get("items", [])] and PERSON not in caseload.text,
                f"the supervisor's caseload: {caseload.text[:300]}")

    # Closing, on a case of its own: refused to everyone else (which changes nothing), then done by B with a reason;
    # and on another case by A.
    other = (await opened_case(way, team.a))["id"]
    await judged_route(judge, team, "intake", other, "POST", f"{CASES}/{other}/close", given(), allowed=(),
                       refused=not_caseworkers)
    mine = (await opened_case(way, team.a))["id"]
    await judge.expect(ALLOWED, team.a, "POST", f"{CASES}/{mine}/close")
    # Erasing cannot be undone: the case's own caseworkers' alone. Refused to everyone else, B with a reason too (a
    # reason opens a case, it does not erase it), which opens nothing; then done by A.
    other = (await opened_case(way, team.a))["id"]
    erase = f"{CASES}/{other}"
    await judge.refusals(team, "DELETE", erase, reason_applies=False, others=not_caseworkers)
    await judge.expect(NOT_ASSIGNED_TO_THEM, team.b, "DELETE", erase, reason=REASON)
    judge.check(await break_glass(way, team, "intake", other, team.b) == 0, "B's erasure with a reason opened the case")
    kept = await way(team.a, "GET", erase)
    judge.check(kept.status_code == 200 and kept.json().get("status") == "open", f"the case now: {kept.text[:300]}")
    await judge.expect(ALLOWED, team.a, "DELETE", erase)
    judge.assert_none()


async def test_refused_requests_change_nothing_in_intake(way: Way, team: Team):
    judge = Judge(way)
    case = (await opened_case(way, team.a))["id"]
    path = f"{CASES}/{case}"
    before = await way(team.a, "GET", path)
    for method, route, body, headers in (
            ("PATCH", path, {"city": "Riga"}, {"If-Match": before.headers["etag"]}),
            ("POST", f"{path}/needs", {"category": "legal", "urgency": "low"}, None),
            ("PUT", f"{path}/consent", {"categories": ["legal"], "share_contact": True, "share_health": True,
                                        "method": "written"}, None),
            ("POST", f"{path}/close", None, None), ("DELETE", path, None, None)):
        # Erasing is no opening: there, a reason of any length is no way in, and not judged.
        await judge.refusals(team, method, route, reason_applies=method != "DELETE",
                             others=((team.supervisor, REFUSED),), json=body, headers=headers)
    after = await way(team.a, "GET", path)
    judge.check(after.status_code == 200 and after.headers["etag"] == before.headers["etag"]
                and after.json()["status"] == "open" and after.json()["city"] is None, f"the case now: {after.text}")
    needs = await way(team.a, "GET", f"{path}/needs")
    judge.check(needs.json()["items"] == [], f"its needs now: {needs.text}")
    judge.assert_none()


# --- referrals -------------------------------------------------------------------------------------------------------

async def test_the_referrals_of_a_case_open_to_its_assignee_or_a_stated_reason(way: Way, team: Team,
                                                                                backends: Backends):
    judge = Judge(way)
    case = (await opened_case(way, team.a))["id"]
    await with_consent(way, team.a, case)
    partner = await way(team.admin, "POST", "/api/referrals/partners", json={
        "name": f"Clinic {uuid.uuid4().hex[:6]}", "category": "medical", "countries": ["LT"], "cities": ["Vilnius"],
        "languages": ["be"], "contact_email": "intake@clinic.example"})
    assert partner.status_code == 201, partner.text
    referral = {"case_id": case, "partner_id": partner.json()["id"], "need_category": "medical",
                "packet": {"display_name": PERSON, "language": "be", "note": "prefers mornings"}}
    direct = Way("direct", way.door, backends)

    def sent_by_a() -> str | None:  # once referrals knows the case, who holds it, and its consent
        with httpx.Client(base_url=backends.urls["referrals"], timeout=10) as referrals:
            answer = referrals.post("/api/referrals/referrals", json=referral, headers=direct.bearer(team.a))
        return answer.json()["id"] if answer.status_code == 201 else None

    first = await wait_for(sent_by_a, timeout=20)

    not_caseworkers = ((team.supervisor, REFUSED), (team.finance, REFUSED))
    for method, path, arguments in (("POST", "/api/referrals/referrals", given(json=referral)),
                                    ("GET", "/api/referrals/referrals", given(params={"case_id": case})),
                                    ("GET", f"/api/referrals/referrals/{first}", given())):
        await judged_route(judge, team, "referrals", case, method, path, arguments, allowed=(team.a,),
                           refused=not_caseworkers)
    # Cancelling: refused to everyone else (which changes nothing); A cancels one, B with a reason another.
    for doer, reason in ((team.a, None), (team.b, REASON)):
        made = await way(team.a, "POST", "/api/referrals/referrals", json=referral)
        assert made.status_code == 201, made.text
        cancel = f"/api/referrals/referrals/{made.json()['id']}/cancel"
        await judge.refusals(team, "POST", cancel, others=not_caseworkers)
        still = await way(team.a, "GET", f"/api/referrals/referrals/{made.json()['id']}")
        judge.check(still.json()["status"] == "sent", f"after refused cancels: {still.text}")
        cancelled = await judge.expect(ALLOWED, doer, "POST", cancel, reason=reason)
        judge.check(cancelled.status_code >= 300 or cancelled.json()["status"] == "cancelled", cancelled.text)
    judge.check(await break_glass(way, team, "referrals", case, team.b) == 4, "B's four openings are not all audited")
    judge.check(await break_glass(way, team, "referrals", case, team.a) == 0, "the assignee left a break-glass entry")
    await judge_reason_kept_by_intake(judge, team, case, "referrals")
    listed = await way(team.a, "GET", "/api/referrals/referrals", params={"case_id": case, "limit": "200"})
    # The first (sent while waiting), A's and B's above, the two cancelled: nothing from a refused request.
    judge.check(len(listed.json()["items"]) == 5, f"the case's referrals: {listed.text[:500]}")
    judge.assert_none()


# --- funds -----------------------------------------------------------------------------------------------------------

async def test_the_aid_of_a_case_opens_to_its_assignee_a_stated_reason_or_finance(way: Way, team: Team,
                                                                                  backends: Backends):
    judge = Judge(way)
    today = date.today()
    grant = await way(team.finance, "POST", "/api/funds/grants", key=True, json={
        "donor": "Fund for Freedom", "code": f"G-{uuid.uuid4().hex[:8]}", "currency": "EUR", "amount": "10000.00",
        "starts_on": str(today - timedelta(days=30)), "ends_on": str(today + timedelta(days=330)),
        "categories": ["medical"]})
    assert grant.status_code == 201, grant.text
    case = (await opened_case(way, team.a))["id"]
    aid = {"case_id": case, "grant_id": grant.json()["id"], "category": "medical", "amount": "50.00",
           "currency": "EUR", "purpose": "dental treatment after release"}
    direct = Way("direct", way.door, backends)

    def requested_by_a() -> str | None:  # once funds knows the case and who holds it
        with httpx.Client(base_url=backends.urls["funds"], timeout=10) as funds:
            answer = funds.post("/api/funds/disbursements", json=aid,
                                headers={**direct.bearer(team.a), "Idempotency-Key": str(uuid.uuid4())})
        return answer.json()["id"] if answer.status_code == 201 else None

    first = await wait_for(requested_by_a, timeout=20)

    # Finance works every disbursement: no reason, no break-glass.
    for method, path, arguments in (("POST", "/api/funds/disbursements", given(json=aid, key=True)),
                                    ("GET", "/api/funds/disbursements", given(params={"case_id": case})),
                                    ("GET", f"/api/funds/disbursements/{first}", given())):
        await judged_route(judge, team, "funds", case, method, path, arguments, allowed=(team.a, team.finance),
                           refused=((team.supervisor, REFUSED), (team.auditor, REFUSED)))
    judge.check(await break_glass(way, team, "funds", case, team.finance) == 0, "finance left a break-glass entry")
    judge.check(await break_glass(way, team, "funds", case, team.a) == 0, "the assignee left a break-glass entry")
    await judge_reason_kept_by_intake(judge, team, case, "funds")
    listed = await way(team.finance, "GET", "/api/funds/disbursements", params={"case_id": case, "limit": "200"})
    # The first (requested while waiting), A's, finance's and B's above: nothing from a refused request.
    judge.check(len(listed.json()["items"]) == 4, f"the case's disbursements: {listed.text[:500]}")
    judge.assert_none()


# --- a supervisor hands the case over, and every service follows -----------------------------------------------------

async def test_a_supervisor_hands_a_case_over_and_every_service_follows(way: Way, team: Team, backends: Backends):
    judge = Judge(way)
    case = (await opened_case(way, team.a))["id"]
    direct = Way("direct", way.door, backends)
    lists = {"referrals": "/api/referrals/referrals", "funds": "/api/funds/disbursements"}

    def lets(who: Someone) -> bool:  # referrals and funds both let `who` list the case's records without a reason
        for service, path in lists.items():
            with httpx.Client(base_url=backends.urls[service], timeout=10) as client:
                if client.get(path, params={"case_id": case}, headers=direct.bearer(who)).status_code != 200:
                    return False
        return True

    await wait_for(lambda: lets(team.a), timeout=20)
    assert not lets(team.b)

    handed = await judge.expect(ALLOWED, team.supervisor, "PUT", f"{CASES}/{case}/assignees",
                                json={"usernames": [team.b.username]})
    judge.check(handed.json().get("assignees") == [team.b.username] and PERSON not in handed.text, handed.text)
    await judge.expect(ALLOWED, team.b, "GET", f"{CASES}/{case}")
    await judge.expect(NOT_ASSIGNED_TO_THEM, team.a, "GET", f"{CASES}/{case}")
    await judge.expect(REFUSED, team.supervisor, "GET", f"{CASES}/{case}")  # assigning it is not reading it

    await wait_for(lambda: lets(team.b), timeout=20)
    for path in lists.values():
        await judge.expect(ALLOWED, team.b, "GET", path, params={"case_id": case})
        await judge.expect(NOT_ASSIGNED_TO_THEM, team.a, "GET", path, params={"case_id": case})
    for service in ("intake", *lists):  # B holds it now: no reason needed, no break-glass entry
        judge.check(await break_glass(way, team, service, case, team.b) == 0, f"B's break-glass in {service}")
    judge.assert_none()


# --- a reason as people write it -------------------------------------------------------------------------------------

async def test_a_reason_in_belarusian_reaches_the_timeline_as_written(way: Way, team: Team):
    """HTTP carries a header's bytes; a client sends a Belarusian reason as UTF-8, and the gateway must pass those
    bytes on as they came."""
    case = (await opened_case(way, team.a))["id"]
    reason = "Кліент прыйшоў у офіс, тэрмінова"
    opened = await way(team.b, "GET", f"{CASES}/{case}", reason=reason)
    assert opened.status_code == 200, opened.text
    timeline = await way(team.a, "GET", f"{CASES}/{case}/timeline")
    assert [e["details"]["reason"] for e in timeline.json()["items"] if e["kind"] == "case.break_glass"] == [reason]


async def test_a_short_reason_in_belarusian_is_no_reason_in_any_service(way: Way, team: Team, backends: Backends):
    """Ten characters, not ten bytes: "трэба" ("needed") is five letters, ten bytes in UTF-8."""
    judge = Judge(way)
    case = (await opened_case(way, team.a))["id"]
    direct = Way("direct", way.door, backends)
    lists = {"referrals": "/api/referrals/referrals", "funds": "/api/funds/disbursements"}

    def known() -> bool:  # referrals and funds know who holds the case
        for service, path in lists.items():
            with httpx.Client(base_url=backends.urls[service], timeout=10) as client:
                if client.get(path, params={"case_id": case}, headers=direct.bearer(team.a)).status_code != 200:
                    return False
        return True

    await wait_for(known, timeout=20)
    await judge.expect(TOO_SHORT, team.b, "GET", f"{CASES}/{case}", reason="трэба")
    for path in lists.values():
        await judge.expect(TOO_SHORT, team.b, "GET", path, params={"case_id": case}, reason="трэба")
    for service in ("intake", *lists):
        judge.check(await break_glass(way, team, service, case, team.b) == 0,
                    f"a five-letter reason opened the case in {service}")
    judge.assert_none()
