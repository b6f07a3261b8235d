"""The programme report through the real services (issue #20): intake, referrals, funds and reports running on one
real NATS server, each on its own SQLite database. A month of activity goes through their APIs — cases opened,
closed and erased, needs assessed and moved, referrals sent, accepted, declined, started, completed and cancelled,
aid requested, approved and paid (one in zloty from a euro grant) — and then:

- the report's aggregates equal an independent count made by reading the three streams directly, and every number
  published is that count or hidden ("<5", "≥N");
- a sum of money is withheld when it is about fewer than five people, however many payments it sums (one case paid
  five times in a month and category is one person's aid), and erasing a case deletes the keyed hash that counted the
  person while every published number stays;
- `rehab reports rebuild` (into an empty database, and online into the live one) ends with the same numbers, people
  counted under the service's own key;
- only coordinators and finance read it; a bad period is a 422 in words; the CSV guards against formulas;
- a distinctive name written at intake is in no file of the reports service.
"""

from __future__ import annotations

import asyncio
import csv
import io
import math
import os
import subprocess
import sys
import uuid
from collections import Counter, defaultdict
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import nats
import pytest
from sqlalchemy import select, text

from kit import db, migrations
from kit.events import Envelope
from services.funds.config import FundsSettings
from services.funds.main import create_app as create_funds_app
from services.intake.config import IntakeSettings
from services.intake.main import create_app as create_intake_app
from services.referrals.config import ReferralsSettings
from services.referrals.main import create_app as create_referrals_app
from services.reports import domain, handlers, manage, queries, service
from services.reports.config import ReportsSettings
from services.reports.main import create_app as create_reports_app
from services.reports.models import (
    AidPerson,
    DurationHistogram,
    ErasedPerson,
    MonthlyAmount,
    MonthlyCount,
)
from tests.integration.intake.conftest import eventually
from tests.support.apps import bearer, running
from tests.support.nats import patient_jetstream
from tests.support.polling import wait_for

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]
DISTINCTIVE = "Цімафей Зыгмунтавіч Quillfeather"
CASEWORKER = "caseworker-1"


class World:
    """The four services running, and the people who use them."""

    def __init__(self, issuer: Any, clients: dict[str, Any], apps: dict[str, Any]) -> None:
        self.issuer, self.clients, self.apps = issuer, clients, apps

    def as_(self, role: str, sub: str | None = None, partner_id: str | None = None) -> dict[str, str]:
        return bearer(self.issuer, role, sub=sub or f"{role}-1", partner_id=partner_id)

    @property
    def caseworker(self) -> dict[str, str]:
        return self.as_("caseworker", CASEWORKER)

    async def call(self, service: str, method: str, path: str, *, expect: int = 200, headers=None, **kwargs) -> Any:
        response = await self.clients[service].request(method, path, headers=headers or self.caseworker, **kwargs)
        assert response.status_code == expect, (path, response.status_code, response.text)
        return response.json() if response.content else None

    async def until(self, service: str, method: str, path: str, *, expect: int, headers=None, **kwargs) -> Any:
        """A call that depends on events another service has yet to apply (a case referrals or funds must know)."""
        async def answered() -> Any:
            response = await self.clients[service].request(method, path, headers=headers or self.caseworker,
                                                           **kwargs)
            return response.json() if response.status_code == expect else None

        return await eventually(answered, timeout=20)

    def runtime(self, service: str) -> Any:
        return self.apps[service].state.runtime


@pytest.fixture
async def world(tmp_path, secrets_dir, nats_url, database_url_factory, token_issuer):
    def settings(cls, name: str, **extra: Any) -> Any:
        return cls(state_dir=tmp_path / f"{name}-state", secrets_dir=secrets_dir, nats_url=nats_url,
                   database_url=database_url_factory(name), **extra)

    reports_state = tmp_path / "reports-state"
    reports_state.mkdir()
    all_settings = {
        "intake": settings(IntakeSettings, "intake", consumer_ack_wait_seconds=5),
        "referrals": settings(ReferralsSettings, "referrals"),
        "funds": settings(FundsSettings, "funds"),
        # The reports service keeps everything under a state folder of its own, to be searched for the name.
        "reports": ReportsSettings(state_dir=reports_state, secrets_dir=secrets_dir, nats_url=nats_url,
                                   database_url=f"sqlite:///{reports_state / 'reports.db'}"),
    }
    factories = {"intake": create_intake_app, "referrals": create_referrals_app, "funds": create_funds_app,
                 "reports": create_reports_app}
    async with AsyncExitStack() as stack:
        apps, clients = {}, {}
        for name, make in factories.items():
            apps[name] = make(all_settings[name])
            clients[name] = await stack.enter_async_context(running(apps[name]))
        world = World(token_issuer, clients, apps)
        world.settings = all_settings
        yield world


# ---- a month of activity --------------------------------------------------------------------------------------

async def generate_month(world: World) -> None:
    partners = {category: (await world.call("referrals", "POST", "/api/referrals/partners", expect=201,
                                            headers=world.as_("admin"), json={
        "name": f"Partner {uuid.uuid4().hex[:6]}", "category": category, "countries": ["LT"], "cities": ["Vilnius"],
        "languages": ["be"], "contact_email": "desk@partner.example"}))["id"] for category in ("medical", "legal")}
    grant = await world.call("funds", "POST", "/api/funds/grants", expect=201, headers=world.as_("finance", "fin-a"),
                             json={"donor": "Fund for Freedom", "code": f"G-{uuid.uuid4().hex[:8]}",
                                   "currency": "EUR", "amount": "100000.00",
                                   "starts_on": str(datetime.now(UTC).date().replace(day=1)),
                                   "ends_on": f"{datetime.now(UTC).year + 1}-12-31",
                                   "categories": ["medical", "legal"]})
    cases = []
    for n in range(14):
        case = await world.call("intake", "POST", "/api/intake/cases", expect=201,
                                json={"full_name": f"{DISTINCTIVE} {n}"})
        cases.append(case["id"])
    for n, case_id in enumerate(cases[:12]):
        base = f"/api/intake/cases/{case_id}"
        medical = await world.call("intake", "POST", f"{base}/needs", expect=201,
                                   json={"category": "medical", "urgency": "high" if n < 8 else "low",
                                         "notes": f"{DISTINCTIVE} needs a cardiologist"})
        legal = await world.call("intake", "POST", f"{base}/needs", expect=201,
                                 json={"category": "legal", "urgency": "medium"})
        await world.call("intake", "PATCH", f"{base}/needs/{medical['id']}", json={"status": "in_progress"})
        await world.call("intake", "PATCH", f"{base}/needs/{medical['id']}",
                         json={"status": "met" if n < 7 else "dropped"})
        if n < 3:
            await world.call("intake", "PATCH", f"{base}/needs/{legal['id']}", json={"status": "dropped"})
        await world.call("intake", "PUT", f"{base}/consent", json={
            "categories": ["medical", "legal"], "share_contact": True, "share_health": True, "method": "written"})

    referrals: list[tuple[str, str]] = []
    for n, case_id in enumerate(cases[:11]):
        category = "medical" if n < 9 else "legal"
        created = await world.until("referrals", "POST", "/api/referrals/referrals", expect=201, json={
            "case_id": case_id, "partner_id": partners[category], "need_category": category,
            "packet": {"display_name": DISTINCTIVE, "language": "be"}})
        referrals.append((created["id"], category))
    for n, (referral_id, category) in enumerate(referrals):
        partner = world.as_("partner", f"client-{category}", partner_id=partners[category])
        path = f"/api/partner/referrals/{referral_id}"
        if n == 9:
            await world.call("referrals", "POST", f"/api/referrals/referrals/{referral_id}/cancel")
            continue
        if n in (7, 8):
            await world.call("referrals", "POST", f"{path}/decline", headers=partner, json={"reason": "no places"})
            continue
        await world.call("referrals", "POST", f"{path}/accept", headers=partner)
        if n < 6:
            await world.call("referrals", "POST", f"{path}/start", headers=partner)
            await world.call("referrals", "POST", f"{path}/complete", headers=partner,
                             json={"outcome": "treated", "cost_estimate": {"amount": "120.00", "currency": "EUR"}})

    for n, case_id in enumerate(cases[:7]):
        requested = await world.until("funds", "POST", "/api/funds/disbursements", expect=201, headers={
            **world.caseworker, "Idempotency-Key": str(uuid.uuid4())}, json={
            "case_id": case_id, "grant_id": grant["id"], "category": "medical" if n < 6 else "legal",
            "amount": f"{100 + n}.25", "currency": "EUR", "purpose": f"treatment for {DISTINCTIVE}"})
        await world.call("funds", "POST", f"/api/funds/disbursements/{requested['id']}/approve",
                         headers=world.as_("finance", "fin-b"))
        # Six paid in euros; the seventh (legal, 106.25 EUR) in zloty, as a rent in Warsaw is.
        paid_in_zloty = {} if n < 6 else {"paid": {"amount": "425.00", "currency": "PLN", "fx_rate": "4.0000",
                                                     "fx_source": "NBP table A"}}
        await world.call("funds", "POST", f"/api/funds/disbursements/{requested['id']}/pay",
                         headers={**world.as_("finance", "fin-a"), "Idempotency-Key": str(uuid.uuid4())},
                         json={"method": "bank_transfer", "reference": f"TRX-{n}", **paid_in_zloty})

    for case_id in cases[7:12]:
        await world.call("intake", "POST", f"/api/intake/cases/{case_id}/close")
    for case_id in cases[12:]:
        await world.call("intake", "DELETE", f"/api/intake/cases/{case_id}")


# ---- the independent count ------------------------------------------------------------------------------------

async def stream_events(nats_url: str, stream: str) -> list[Envelope]:
    nc = await nats.connect(nats_url)
    try:
        js = patient_jetstream(nc)
        last = (await js.stream_info(stream)).state.last_seq
        return [Envelope.from_bytes((await js.get_msg(stream, seq)).data) for seq in range(1, last + 1)]
    finally:
        await nc.close()


async def everything_published(world: World) -> None:
    """Every event the three producers committed is on its stream."""
    for name in ("intake", "referrals", "funds"):
        outbox = world.runtime(name).tables.outbox

        def sent(outbox=outbox, name=name) -> bool:
            with world.runtime(name).uow.read() as session:
                return session.execute(select(outbox.c.seq).where(outbox.c.published_at.is_(None))).first() is None

        await wait_for(sent, timeout=20)


async def independent_count(nats_url: str) -> tuple[Counter, dict, dict]:
    """(counts by (month, measure, category, detail), amounts by (month, stage, basis, category, currency) → [minor,
    n, distinct cases], span lengths in days by (span, month, category)), counted from the events themselves."""
    counts: Counter = Counter()
    amounts: dict = defaultdict(lambda: [0, 0, set()])
    spans: dict = defaultdict(list)
    for event in await stream_events(nats_url, "INTAKE"):
        data, kind = event.data, event.type.removeprefix("rehab.intake.")
        if kind in ("case.opened", "case.closed", "case.erased"):
            move = kind.split(".")[1]
            at = data[f"{move}_at"]
            counts[(at[:7], "cases", "", move)] += 1
        elif kind == "needs.assessed":
            counts[(event.time.strftime("%Y-%m"), "needs.assessed", data["category"], data["urgency"])] += 1
        elif kind == "needs.moved":
            counts[(data["moved_at"][:7], "needs.moved", data["category"], data["status"])] += 1
    sent_at: dict[str, datetime] = {}
    for event in await stream_events(nats_url, "REFERRALS"):
        if event.type == "rehab.referrals.referral.message":
            continue
        data, outcome = event.data, event.type.rsplit(".", 1)[1]  # the subject names it (`started`: in progress)
        at = datetime.fromisoformat(data["occurred_at"])
        counts[(at.strftime("%Y-%m"), "referrals", data["category"], outcome)] += 1
        if outcome == "sent":
            sent_at[data["referral_id"]] = at
        elif outcome in ("accepted", "completed"):
            length = math.floor((at - sent_at[data["referral_id"]]).total_seconds() / 8640) / 10
            spans[(f"sent_to_{outcome}", at.strftime("%Y-%m"), data["category"])].append(length)
    for event in await stream_events(nats_url, "FUNDS"):
        data, stage = event.data, event.type.rsplit(".", 1)[1]
        if stage not in ("approved", "paid"):
            continue
        month = datetime.fromisoformat(data["occurred_at"]).strftime("%Y-%m")
        def minor(amount: str) -> int:
            whole, _, fraction = amount.partition(".")
            return int(whole + fraction)

        # Paid in the grant's currency, or in another (as received, and as what it cost the grant): one group each.
        if stage == "paid" and data.get("paid_currency") not in (None, data["currency"]):
            cells = [("fx_paid", data["paid_currency"], minor(data["paid_amount"])),
                     ("fx_grant", data["currency"], minor(data.get("converted_amount") or data["amount"]))]
        else:
            cells = [("grant", data["currency"], minor(data["amount"]))]
        for basis, currency, value in cells:
            cell = amounts[(month, stage, basis, data["category"], currency)]
            cell[0] += value
            cell[1] += 1
            cell[2].add(data["case_id"])
    return counts, {key: [minor, n, len(cases)] for key, (minor, n, cases) in amounts.items()}, dict(spans)


def projection_rows(settings: ReportsSettings) -> tuple[Counter, dict, Counter]:
    engine = db.make_engine(settings.db_url)
    try:
        with db.transaction(db.make_session_factory(engine)) as session:
            counts = Counter({(r.month, r.measure, r.category, r.detail): r.count
                              for r in session.execute(select(MonthlyCount)).scalars()})
            amounts = {(r.month, r.stage, r.basis, r.category, r.currency): [r.amount_minor, r.payments, r.people]
                       for r in session.execute(select(MonthlyAmount)).scalars()}
            histograms = Counter({(r.measure, r.month, r.category, tenths): n
                                  for r in session.execute(select(DurationHistogram)).scalars()
                                  for tenths, n in queries.read_buckets(r.buckets).items()})
            return counts, amounts, histograms
    finally:
        engine.dispose()


def settled_after(month: str) -> datetime:
    """A moment at which `month`'s figures are published: the first of the month after next."""
    year, number = map(int, month.split("-"))
    index = year * 12 + number - 1 + 2
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def all_pending(aid: dict, month: str) -> bool:
    """Every cell of `month` in every aid table "pending": nothing of a month still being paid is published."""
    tables = [aid["approved"]["in_grant_currency"], aid["paid"]["in_grant_currency"],
              *aid["paid"]["in_another_currency"].values()]
    cells = [value for group in tables for table in group.values() for value in table["cells"][month].values()]
    return bool(cells) and set(cells) == {"pending"} and month in aid["pending_months"]


def report_of(settings: ReportsSettings, months: list[str], now: datetime | None = None) -> dict:
    engine = db.make_engine(settings.db_url)
    try:
        with db.transaction(db.make_session_factory(engine)) as session:
            shown = service.programme_report(session=session, months=months, now=now)
    finally:
        engine.dispose()
    shown.pop("generated_at")
    return shown


def published_agrees(published: Any, exact: int) -> bool:
    """A published count is the exact one, or hidden: "<5" only for 1–4."""
    if published == "<5":
        return 1 <= exact <= 4
    if isinstance(published, str) and published.startswith("≥"):
        return exact >= int(published[1:])
    return published == exact and not 1 <= exact <= 4


# ---- the tests --------------------------------------------------------------------------------------------------

async def test_the_report_equals_an_independent_count_of_the_streams_and_a_rebuild_equals_it_too(world, nats_url,
                                                                                                tmp_path, secrets_dir):
    await generate_month(world)
    await everything_published(world)
    counts, amounts, spans = await independent_count(nats_url)
    assert sum(n for (_, measure, _, _), n in counts.items() if measure == "needs.moved") > 0  # intake's new event
    settings = world.settings["reports"]

    def caught_up() -> bool:
        return projection_rows(settings)[0] == counts and projection_rows(settings)[1] == amounts

    try:
        await wait_for(caught_up, timeout=30)
    except AssertionError:
        pass  # the comparisons below say what differs
    live_counts, live_amounts, histograms = projection_rows(settings)
    assert live_amounts == amounts
    assert live_counts == counts
    # Histograms hold exactly the spans the events give, in tenths of a day.
    expected_histograms = Counter()
    for (span, month, category), lengths in spans.items():
        for length in lengths:  # to the tenth of a day under ten days, to the day from there
            tenths = round(length * 10)
            expected_histograms[(span, month, category, tenths if tenths < 100 else tenths - tenths % 10)] += 1
    assert histograms == expected_histograms

    month = datetime.now(UTC).strftime("%Y-%m")
    live = await world.call("reports", "GET", f"/api/reports/programme?from={month}&to={month}",
                            headers=world.as_("coordinator"))
    # This month still changes: through the API every figure of it is pending (two reads would tell what happened
    # in between); as published once it has settled, each agrees with the streams.
    assert live["months"] == live["pending_months"] == [month]
    assert set(live["cases"]["cells"][month].values()) == {"pending"}
    assert set(live["needs"]["assessed_by_category"]["cells"][month].values()) == {"pending"}
    assert set(live["referrals"]["by_outcome"]["sent"]["cells"][month].values()) == {"pending"}
    answer = report_of(settings, [month], now=settled_after(month))
    assert answer["pending_months"] == []
    cases = answer["cases"]["cells"][month]
    for move in domain.CASE_MOVES:
        assert published_agrees(cases[move], counts[(month, "cases", "", move)]), (move, cases)
    assert answer["cases"]["cells"][month]["opened"] == 14
    for category in domain.CATEGORIES:
        assessed = sum(n for (m, measure, c, _), n in counts.items() if (m, measure, c) == (month, "needs.assessed",
                                                                                           category))
        assert published_agrees(answer["needs"]["assessed_by_category"]["cells"][month][category], assessed)
        for status in domain.NEED_MOVES:
            assert published_agrees(answer["needs"][f"{status}_by_category"]["cells"][month][category],
                                    counts[(month, "needs.moved", category, status)])
        for outcome in domain.REFERRAL_OUTCOMES:
            assert published_agrees(answer["referrals"]["by_outcome"][outcome]["cells"][month][category],
                                    counts[(month, "referrals", category, outcome)])
    assert answer["needs"]["met_by_category"]["cells"][month]["medical"] == 7
    assert answer["referrals"]["by_outcome"]["sent"]["cells"][month]["medical"] == 9
    assert answer["referrals"]["by_outcome"]["sent"]["cells"][month]["legal"] == "<5"
    # category × urgency: 8 high and 4 low medical needs: a cell under five, so the breakdown is withheld.
    assert "withheld" in answer["needs"]["assessed_by_category_and_urgency"]["by_month"][month]
    accepted = answer["referrals"]["days_sent_to_accepted"]["by_month"][month]["medical"]
    medical_spans = sorted(spans[("sent_to_accepted", month, "medical")])
    assert len(medical_spans) == 7 and "n" not in accepted  # how many: by_outcome's accepted, as withheld there
    assert accepted["p50"] == medical_spans[math.ceil(0.5 * 7) - 1]
    assert accepted["p90"] == "<5"  # of seven, the 90th percentile would be the one who waited longest
    assert all_pending(live["aid"], month)
    aid = answer["aid"]
    paid = aid["paid"]["in_grant_currency"]["EUR"]["cells"][month]["medical"]
    assert paid == str(sum(Decimal(f"{100 + n}.25") for n in range(6)))  # six payments
    assert aid["approved"]["in_grant_currency"]["EUR"]["cells"][month]["legal"] == "<5"
    elsewhere = aid["paid"]["in_another_currency"]  # one payment in zloty: in its own group, and no PLN table at
    assert elsewhere["as_received"] == {}           # all (one person's currency says where they live)
    assert elsewhere["cost_in_grant_currency"]["EUR"]["cells"][month]["legal"] == "<5"
    assert aid["paid"]["in_grant_currency"]["EUR"]["cells"][month]["legal"] == "0.00"

    # Rebuilt into an empty database, from the streams alone: the same rows, the same report. With the service's
    # keys (people are counted by a keyed hash of their case); without them it empties nothing and says why.
    rebuilt = ReportsSettings(state_dir=tmp_path / "rebuilt", secrets_dir=secrets_dir,
                              database_url=f"sqlite:///{tmp_path / 'rebuilt.db'}")
    keyless = ReportsSettings(state_dir=tmp_path / "keyless", secrets_dir=tmp_path / "no-secrets",
                              database_url=f"sqlite:///{tmp_path / 'keyless.db'}")
    with pytest.raises(manage.RebuildFailed, match="keys"):
        await manage.replay(keyless, nats_url=nats_url, seed=None)
    assert not (tmp_path / "keyless.db").exists()
    result = await manage.replay(rebuilt, nats_url=nats_url, seed=None)
    # One per approval or payment: each in the grant's currency's group, or (paid in another) in fx_paid once.
    aid_events = sum(n for key, (_, n, _) in live_amounts.items() if key[2] in ("grant", "fx_paid"))
    assert sum(result.applied.values()) == sum(live_counts.values()) + aid_events and result.skipped == 0
    assert projection_rows(rebuilt) == (live_counts, live_amounts, histograms)
    months = domain.period(None, None)
    assert report_of(rebuilt, months) == report_of(settings, months)

    # Online, into the live database while the service runs: each event once, the same numbers.
    online = await manage.replay(settings, nats_url=nats_url, seed=None)
    assert online.skipped == 0
    assert projection_rows(settings) == (live_counts, live_amounts, histograms)

    # `rehab reports rebuild` as an operator runs it: a process, progress on stderr, counts on stdout.
    clean = {k: v for k, v in os.environ.items() if not k.startswith("REHAB_")}
    process = await asyncio.to_thread(subprocess.run, [
        sys.executable, "-m", "ops.cli", "reports", "rebuild", "--nats-url", nats_url], cwd=REPO, env={
        **clean, "REHAB_STATE_DIR": str(tmp_path / "cli"), "REHAB_SECRETS_DIR": str(secrets_dir),
        "REHAB_REPORTS_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"},
        capture_output=True, text=True, timeout=120, check=False)
    assert process.returncode == 0, process.stderr
    assert process.stdout.startswith("rebuilt: ") and "reports rebuild:" in process.stderr
    assert projection_rows(ReportsSettings(database_url=f"sqlite:///{tmp_path / 'cli.db'}")) == \
        (live_counts, live_amounts, histograms)

    # No one's name reached the reports service: not in its database, its write-ahead log, or any file it keeps.
    for path in Path(settings.state_dir).rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            for marker in (DISTINCTIVE, "Quillfeather"):
                assert marker.encode() not in content, path
    engine = db.make_engine(settings.db_url)
    try:
        with engine.connect() as connection:
            tables = [row[0] for row in connection.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))]
            for table in tables:
                for row in connection.execute(text(f'SELECT * FROM "{table}"')):
                    assert "Quillfeather" not in repr(tuple(row)), table
    finally:
        engine.dispose()


async def test_only_coordinators_and_finance_read_the_report_and_a_bad_period_is_refused_in_words(world):
    for role in ("coordinator", "finance"):
        await world.call("reports", "GET", "/api/reports/programme", headers=world.as_(role))
    for role in ("admin", "caseworker", "supervisor", "auditor"):
        response = await world.clients["reports"].get("/api/reports/programme", headers=world.as_(role))
        assert response.status_code == 403 and response.headers["content-type"] == "application/problem+json"
    partner = await world.clients["reports"].get("/api/reports/programme", headers=world.as_(
        "partner", partner_id=str(uuid.uuid4())))
    assert partner.status_code == 403
    assert (await world.clients["reports"].get("/api/reports/programme")).status_code == 401
    for query, words in (("from=2026-13", "YYYY-MM"), ("from=2026-05&to=2026-01", "after it ends"),
                         ("format=xlsx", ""), ("to=0000-01", "from 2000-01 on"),
                         ("from=%D9%A2%D9%A0%D9%A2%D9%A6-03", "YYYY-MM"),  # Arabic-Indic digits: ٢٠٢٦-03
                         # a filter it does not take: refused, never the whole programme's figures read as filtered
                         ("from=2026-05&category=medical", "query parameter this does not take")):
        response = await world.clients["reports"].get(f"/api/reports/programme?{query}",
                                                      headers=world.as_("coordinator"))
        assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
        assert words in response.json()["detail"]


async def test_the_csv_has_one_line_per_number_and_runs_no_formula(world):
    # A category no producer sends today, as a newer one might: it reaches the CSV as text, never as a formula.
    runtime = world.runtime("reports")
    from services.reports import projections

    at = datetime.now(UTC) - timedelta(days=70)  # a month that has settled: its figures are published
    month = at.strftime("%Y-%m")
    for _ in range(6):
        await runtime.uow.run(lambda session: projections.need_assessed(
            session=session, category="=HYPERLINK(\"http://x\")", urgency="high", at=at))
    response = await world.clients["reports"].get(f"/api/reports/programme?format=csv&from={month}&to={month}",
                                                  headers=world.as_("finance"))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert list(rows[0]) == service.CSV_COLUMNS
    assert not any(value[:1] in "=+-@" for row in rows for value in row.values() if value)
    assert any(row["dimension"] == "'=HYPERLINK(\"http://x\")" and row["value"] == "6" for row in rows)
    assert {"section": "cases", "month": "total", "dimension": "opened", "detail": "", "currency": "",
            "value": "0"} in rows
    assert any(row["section"] == "needs.assessed_by_category" and row["month"] == month for row in rows)


async def test_one_person_paid_five_times_is_withheld_and_erasure_deletes_the_person_not_the_numbers(world):
    # The reviewer's December: five approvals in medical, 300 + 800 + 40 + 300 + 40 EUR, all of one case. Counted by
    # payments, the sum was shown (1480.00): one person's aid, to the cent.
    grant = await world.call("funds", "POST", "/api/funds/grants", expect=201, headers=world.as_("finance", "fin-a"),
                             json={"donor": "Fund for Freedom", "code": f"G-{uuid.uuid4().hex[:8]}",
                                   "currency": "EUR", "amount": "100000.00",
                                   "starts_on": str(datetime.now(UTC).date().replace(day=1)),
                                   "ends_on": f"{datetime.now(UTC).year + 1}-12-31", "categories": ["medical"]})
    cases = [(await world.call("intake", "POST", "/api/intake/cases", expect=201,
                               json={"full_name": f"{DISTINCTIVE} {n}"}))["id"] for n in range(5)]
    reports = world.runtime("reports")
    month = datetime.now(UTC).strftime("%Y-%m")
    cell = (month, "approved", "grant", "medical", "EUR")

    async def approve(case_id: str, amount: str) -> None:
        async def requested() -> Any:
            # A key per try: an answer kept for a key is given again (a 403 while funds does not know the case yet).
            response = await world.clients["funds"].post("/api/funds/disbursements", headers={
                **world.caseworker, "Idempotency-Key": str(uuid.uuid4())}, json={
                "case_id": case_id, "grant_id": grant["id"], "category": "medical", "amount": amount,
                "currency": "EUR", "purpose": "treatment"})
            return response.json() if response.status_code == 201 else None

        disbursement = await eventually(requested, timeout=20)
        await world.call("funds", "POST", f"/api/funds/disbursements/{disbursement['id']}/approve",
                         headers=world.as_("finance", "fin-b"))

    async def counted(payments: int) -> list[int]:
        def row() -> list[int] | None:
            with reports.uow.read() as session:
                found = session.get(MonthlyAmount, dict(zip(("month", "stage", "basis", "category", "currency"),
                                                             cell, strict=True)))
                return [found.amount_minor, found.payments, found.people] if found else None

        await wait_for(lambda: (row() or [0, 0])[1] == payments, timeout=30)
        return row()  # type: ignore[return-value]

    async def aid() -> dict:
        """The month's aid as published once it has settled; through the API, while it runs, all pending."""
        answer = await world.call("reports", "GET", f"/api/reports/programme?from={month}&to={month}",
                                  headers=world.as_("finance"))
        assert all_pending(answer["aid"], month)
        with reports.uow.read() as session:
            return service.programme_report(session=session, months=[month], now=settled_after(month))["aid"]

    def people_rows() -> list[tuple[str, str]]:
        with reports.uow.read() as session:
            return sorted((r.person, r.stage) for r in session.execute(select(AidPerson)).scalars())

    for amount in ("300.00", "800.00", "40.00", "300.00", "40.00"):
        await approve(cases[0], amount)
    assert await counted(5) == [148000, 5, 1]
    shown = await aid()
    assert shown["approved"]["in_grant_currency"]["EUR"]["cells"][month]["medical"] == "<5"
    assert shown["approved"]["in_grant_currency"]["EUR"]["total"] == "≥0.00"

    # Four more people, one approval each: five people in the cell, and its sum is shown.
    for case_id in cases[1:]:
        await approve(case_id, "10.00")
    assert await counted(9) == [152000, 9, 5]
    before = await aid()
    assert before["approved"]["in_grant_currency"]["EUR"]["cells"][month]["medical"] == "1520.00"

    # The people are keyed hashes under the reports service's own key: no case id is in its database.
    people = handlers.PersonIndex.of(reports.keyring)
    medical = {"month": month, "stage": "approved", "basis": "grant", "category": "medical", "currency": "EUR"}
    assert people_rows() == sorted((people.in_cell(case_id, medical), "approved") for case_id in cases)
    assert not {person for person, _ in people_rows()} & set(cases)

    # Erasing a case deletes the row that counted the person; the published numbers stay as they were.
    erased = cases[1]
    await world.call("intake", "DELETE", f"/api/intake/cases/{erased}")

    def forgotten() -> bool:
        with reports.uow.read() as session:
            return session.get(ErasedPerson, people(erased)) is not None

    await wait_for(forgotten, timeout=30)
    assert people_rows() == sorted((people.in_cell(case_id, medical), "approved") for case_id in cases
                                   if case_id != erased)
    assert await counted(9) == [152000, 9, 5]
    assert await aid() == before


async def test_people_are_counted_and_erased_on_the_database_the_tests_run_on(database_url_factory):
    # The world above keeps reports on SQLite (its files are searched for a name); this runs the migrations and the
    # projection on the database of the run, PostgreSQL when REHAB_TEST_POSTGRES_URL names one.
    engine = db.make_engine(database_url_factory("reports"))
    try:
        migrations.upgrade(engine, manage.MIGRATIONS)
        migrations.check(engine, manage.MIGRATIONS)
        factory = db.make_session_factory(engine)
        people = handlers.PersonIndex(lambda: b"reports' own secret, for the test".ljust(32, b"."))
        consumed = handlers.consumed(people)
        at = datetime(2026, 12, 3, 9, tzinfo=UTC)

        def apply(subject: str, data: dict) -> None:
            producer = subject.split(".")[1]
            with db.transaction(factory) as session:
                consumed[producer][1][subject](session, Envelope.new(source=f"/rehab/{producer}", type=subject,
                                                                     subject="x", data=data))

        def approve(case_id: str, amount: str) -> None:
            apply("rehab.funds.disbursement.approved", {
                "disbursement_id": str(uuid.uuid4()), "case_id": case_id, "grant_id": "g", "category": "medical",
                "amount": amount, "currency": "EUR", "status": "approved", "occurred_at": at.isoformat()})

        def shown() -> Any:
            with db.transaction(factory) as session:
                return service.programme_report(session=session, months=["2026-12"],
                                                now=settled_after("2026-12"))["aid"]

        one, others = str(uuid.uuid4()), [str(uuid.uuid4()) for _ in range(4)]
        for amount in ("300.00", "800.00", "40.00", "300.00", "40.00"):
            approve(one, amount)
        assert shown()["approved"]["in_grant_currency"]["EUR"]["cells"]["2026-12"]["medical"] == "<5"
        for case_id in others:
            approve(case_id, "10.00")
        before = shown()
        assert before["approved"]["in_grant_currency"]["EUR"]["cells"]["2026-12"]["medical"] == "1520.00"
        apply("rehab.intake.case.erased", {"case_id": one, "erased_at": at.isoformat()})
        approve(one, "1.00")  # applied late: summed, not counted as a person, not remembered
        with db.transaction(factory) as session:
            cell = {"month": "2026-12", "stage": "approved", "basis": "grant", "category": "medical", "currency": "EUR"}
            assert sorted(session.execute(select(AidPerson.person)).scalars()) == sorted(
                people.in_cell(case_id, cell) for case_id in others)
            row = session.get(MonthlyAmount, {"month": "2026-12", "stage": "approved", "basis": "grant",
                                              "category": "medical", "currency": "EUR"})
            assert (row.amount_minor, row.payments, row.people) == (152100, 10, 5)
        assert shown()["approved"]["in_grant_currency"]["EUR"]["cells"]["2026-12"]["medical"] == "1521.00"

        # A rebuild applies an event the live consumer applied already not a second time, on this database too.
        subject = "rehab.funds.disbursement.approved"
        envelope = Envelope.new(source="/rehab/funds", type=subject, subject="x", data={
            "disbursement_id": str(uuid.uuid4()), "case_id": str(uuid.uuid4()), "grant_id": "g",
            "category": "legal", "amount": "2.00", "currency": "EUR", "status": "approved",
            "occurred_at": at.isoformat()})
        with db.transaction(factory) as session:
            assert manage.apply_once(session, "reports-funds", subject, envelope, consumed["funds"][1][subject])
            assert not manage.apply_once(session, "reports-funds", subject, envelope, consumed["funds"][1][subject])
            row = session.get(MonthlyAmount, {"month": "2026-12", "stage": "approved", "basis": "grant",
                                              "category": "legal", "currency": "EUR"})
            assert (row.amount_minor, row.payments, row.people) == (200, 1, 1)
    finally:
        engine.dispose()
