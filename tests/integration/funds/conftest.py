"""The funds service for tests: its real app (lifespan, migrations, bus) on a real database and NATS server, and a
`Desk` that talks to it the way finance staff and caseworkers do."""

from __future__ import annotations

import asyncio
import csv
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import nats
import nats.js.errors
import pytest
from sqlalchemy import select

from kit import db, migrations
from kit.auth import Principal, TokenIssuer
from kit.errors import DomainError
from kit.events import Envelope
from kit.problems import as_problem
from kit.service import Runtime, build_runtime
from services.funds import handlers, ledger, service
from services.funds.config import FundsSettings
from services.funds.main import SPEC, create_app
from services.funds.models import (
    DisbursementCreate,
    GrantCreate,
    GrantPublic,
    PaymentCreate,
)
from tests.support.apps import bearer, running
from tests.support.intake_stand_in import IntakeStandIn, intake_stand_in
from tests.support.nats import patient_jetstream
from tests.support.shared import NAME_VARIANTS

NAMES_CSV = NAME_VARIANTS
CASEWORKER = "caseworker-olga"  # the caseworker every case the desk opens is assigned to, unless told otherwise


def person_names() -> list[str]:
    """Made-up Belarusian names in Cyrillic, as payees are often written."""
    if not NAMES_CSV.exists():  # a checkout without the shared folder: a few of the same made-up names
        return ["Сяргей Марозаў", "Кацярына Кузняцова", "Уладзімір Сцяпанаў", "Мікалай Багдановіч", "Аляксей Жук"]
    with NAMES_CSV.open(encoding="utf-8") as f:
        return [row["belarusian"] for row in csv.DictReader(f)]


@pytest.fixture
async def intake() -> AsyncIterator[IntakeStandIn]:
    """Where funds hands a break-glass reason stated to it (tests.support.intake_stand_in)."""
    async with intake_stand_in() as stand_in:
        yield stand_in


@pytest.fixture
def funds_settings(tmp_path: Path, secrets_dir: Path, nats_url: str, database_url_factory: Any,
                   intake: IntakeStandIn) -> FundsSettings:
    # The donor report states the month under way (REHAB_FUNDS_SETTLING_DAYS below zero): these tests read it about
    # the aid paid a moment before. tests/unit/funds/test_funds_donor_statement.py states settled months.
    return FundsSettings(state_dir=tmp_path, secrets_dir=secrets_dir, nats_url=nats_url,
                         database_url=database_url_factory("funds"), intake_url=intake.url, settling_days=-62)


class Desk:
    """One running funds service, and its users: two finance officers (for four-eyes) and a caseworker."""

    def __init__(self, client: httpx.AsyncClient, issuer: TokenIssuer, runtime: Runtime) -> None:
        self.client = client
        self.issuer = issuer
        self.runtime = runtime
        self.eventually = eventually

    def as_(self, role: str, sub: str | None = None) -> dict[str, str]:
        return bearer(self.issuer, role, sub=sub or f"{role}-1")

    @property
    def finance(self) -> dict[str, str]:
        return self.as_("finance", "finance-anna")

    @property
    def finance_b(self) -> dict[str, str]:
        return self.as_("finance", "finance-boris")

    @property
    def caseworker(self) -> dict[str, str]:
        return self.as_("caseworker", CASEWORKER)

    # ---- intake's events, applied by funds' own handlers ---------------------------------------------------

    def deliver(self, subject: str, data: dict[str, Any]) -> None:
        """Apply an event the way the bus does (the real handler inside a transaction), without a NATS round trip."""
        handler = next(s.handlers[subject] for s in handlers.subscriptions(self.runtime) if subject in s.handlers)
        event = Envelope.new(source="/test", type=subject, subject=data.get("case_id", "x"), data=data)
        with db.transaction(self.runtime.session_factory) as session:
            handler(session, event)

    async def publish(self, subject: str, data: dict[str, Any], *, aggregate: str) -> Envelope:
        """Publish an event on the real bus, as intake or referrals would, once funds has made their stream."""
        event = Envelope.new(source="/rehab/" + subject.split(".")[1], type=subject, subject=aggregate, data=data)
        stream = subject.split(".")[1].upper()
        nc = await nats.connect(self.runtime.settings.nats_url)
        try:
            js = patient_jetstream(nc)
            await eventually(lambda: _stream_exists(js, stream))
            await js.publish(subject, event.to_bytes(), headers={"Nats-Msg-Id": event.id})
        finally:
            await nc.close()
        return event

    def open_case(self, *, assignees: tuple[str, ...] = (CASEWORKER,)) -> str:
        """A case as intake announces it: opened, and assigned to `assignees` (unless empty)."""
        case_id = str(uuid.uuid4())
        self.deliver(handlers.CASE_OPENED, {"case_id": case_id, "reference": f"BY-2026-{uuid.uuid4().int % 99999:05d}",
                                            "country": "LT", "opened_at": "2026-01-05T10:00:00Z"})
        if assignees:
            self.assign(case_id, *assignees)
        return case_id

    def assign(self, case_id: str, *assignees: str, assigned_at: datetime | None = None) -> None:
        """Intake's case.assigned: the case's assignees are now these (user ids, as tokens carry them in `sub`)."""
        self.deliver(handlers.CASE_ASSIGNED, assignment(case_id, *assignees, assigned_at=assigned_at))

    def close_case(self, case_id: str) -> None:
        self.deliver(handlers.CASE_CLOSED, {"case_id": case_id, "closed_at": "2026-02-01T10:00:00Z"})

    def erase_case(self, case_id: str) -> None:
        self.deliver(handlers.CASE_ERASED, {"case_id": case_id, "erased_at": "2026-02-01T10:00:00Z"})

    # ---- the API ---------------------------------------------------------------------------------------------

    async def create_grant(self, **overrides: Any) -> dict[str, Any]:
        today = date.today()
        body = {"donor": "Fund for Freedom", "code": f"G-{uuid.uuid4().hex[:8]}", "currency": "EUR",
                "amount": "10000.00", "starts_on": str(today - timedelta(days=30)),
                "ends_on": str(today + timedelta(days=330)), "categories": ["medical", "housing", "legal"]}
        response = await self.client.post("/api/funds/grants", json={**body, **overrides}, headers=self.finance)
        assert response.status_code == 201, response.text
        return response.json()

    async def request(self, case_id: str, grant: dict[str, Any], *, amount: str = "100.00", category: str = "medical",
                      headers: dict[str, str] | None = None, key: str | None = None,
                      **extra: Any) -> httpx.Response:
        body = {"case_id": case_id, "grant_id": grant["id"], "category": category, "amount": amount,
                "currency": grant["currency"], "purpose": "dental treatment after release", **extra}
        return await self.client.post("/api/funds/disbursements", json=body,
                                      headers={**(headers or self.caseworker), "Idempotency-Key": key or _key()})

    async def requested(self, case_id: str, grant: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        response = await self.request(case_id, grant, **kwargs)
        assert response.status_code == 201, response.text
        return response.json()

    async def act(self, disbursement_id: str, action: str, *, headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.client.post(f"/api/funds/disbursements/{disbursement_id}/{action}",
                                      headers=headers or self.finance_b)

    async def pay(self, disbursement_id: str, *, key: str | None = None, reference: str = "TRX-1",
                  headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.client.post(f"/api/funds/disbursements/{disbursement_id}/pay",
                                      json={"method": "bank_transfer", "reference": reference},
                                      headers={**(headers or self.finance), "Idempotency-Key": key or _key()})

    async def grant(self, grant_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/api/funds/grants/{grant_id}", headers=self.finance)
        assert response.status_code == 200, response.text
        return response.json()

    def audit_actions(self, target_id: str) -> list[str]:
        """The audit trail's actions about one record, oldest first.

        Read from the database: the kit's `/api/funds/audit` route cannot be called yet (kit bug, see the report).
        """
        table = self.runtime.tables.audit
        with db.transaction(self.runtime.session_factory) as session:
            return list(session.execute(select(table.c.action).where(table.c.target_id == target_id)
                                        .order_by(table.c.seq)).scalars())

    async def balanced_grant(self, grant_id: str) -> dict[str, Any]:
        """The grant as the API shows it, after asserting the ledger equation on its decimal strings."""
        grant = await self.grant(grant_id)
        budget, available, committed, paid = (Decimal(grant[k]) for k in ("budget", "available", "committed", "paid"))
        assert budget == available + committed + paid, grant
        assert min(available, committed, paid) >= 0, grant
        return grant

    def rows(self, table: Any) -> list[dict[str, Any]]:
        with db.transaction(self.runtime.session_factory) as session:
            return [dict(r) for r in session.execute(select(table)).mappings()]


def assignment(case_id: str, *assignees: str, assigned_at: datetime | None = None) -> dict[str, Any]:
    """The data of intake's case.assigned."""
    return {"case_id": case_id, "assignees": list(assignees),
            "assigned_at": (assigned_at or datetime.now(UTC)).isoformat()}


async def eventually(check: Callable[[], Any], *, timeout: float = 15.0) -> Any:
    """Poll `check` (sync or async) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def _stream_exists(js: Any, name: str) -> bool:
    try:
        await js.stream_info(name)
        return True
    except nats.js.errors.NotFoundError:
        return False


def _key() -> str:
    return str(uuid.uuid4())


class Books:
    """Funds' use cases called directly, each in its own transaction and session, as two replicas of the service
    would call them: for concurrency and property tests that need no HTTP and no NATS."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def grant(self, *, amount: str = "2000.00", currency: str = "EUR", **overrides: Any) -> GrantPublic:
        today = date.today()
        grant_in = GrantCreate(**{"donor": "Fund for Freedom", "code": f"G-{uuid.uuid4().hex[:8]}",
                                  "currency": currency, "amount": amount, "starts_on": today - timedelta(days=1),
                                  "ends_on": today + timedelta(days=30), "categories": ["medical"], **overrides})
        with db.transaction(self.runtime.session_factory) as session:
            return service.create_grant(session=session, runtime=self.runtime, grant_in=grant_in, actor="finance-anna")

    def case(self) -> str:
        """A case opened and assigned to the caseworker who requests aid here."""
        case_id = str(uuid.uuid4())
        for subject, data in ((handlers.CASE_OPENED, {"case_id": case_id, "reference": "BY-2026-00001"}),
                              (handlers.CASE_ASSIGNED, assignment(case_id, CASEWORKER))):
            handler = next(s.handlers[subject] for s in handlers.subscriptions(self.runtime) if subject in s.handlers)
            with db.transaction(self.runtime.session_factory) as session:
                handler(session, Envelope.new(source="/test", type=subject, subject=case_id, data=data))
        return case_id

    def request(self, case_id: str, grant: GrantPublic, *, amount: str = "100.00", payee: dict | None = None) -> str:
        body = DisbursementCreate(case_id=case_id, grant_id=grant.id, category="medical", amount=amount,
                                  currency=grant.currency, purpose="medicine", payee=payee)
        with db.transaction(self.runtime.session_factory) as session:
            return service.request_disbursement(session=session, runtime=self.runtime, body=body,
                                                principal=Principal(CASEWORKER, frozenset({"caseworker"}))).id

    def act(self, action: str, disbursement_id: str, *, actor: str = "finance-boris",
            payment: PaymentCreate | None = None) -> str:
        """Run one action; its new status, or the kind of the 4xx problem that refused it. `payment`: how to pay
        (in another currency, say), instead of a plain bank transfer in the grant's."""
        try:
            with db.transaction(self.runtime.session_factory) as session:
                if action == "pay":
                    changed, _ = service.pay_disbursement(
                        session=session, runtime=self.runtime, disbursement_id=disbursement_id, actor=actor,
                        payment_in=payment or PaymentCreate(method="bank_transfer", reference="TRX-1"))
                else:
                    use_case = getattr(service, f"{action}_disbursement")
                    changed = use_case(session=session, runtime=self.runtime, disbursement_id=disbursement_id,
                                       actor=actor)
                return changed.status
        except DomainError as error:
            refused = as_problem(error)
            assert 400 <= refused.status < 500, refused.detail
            return refused.kind

    def check(self) -> list[Any]:
        with db.transaction(self.runtime.session_factory) as session:
            return ledger.check(session)


@pytest.fixture
def books(tmp_path: Path, secrets_dir: Path, database_url_factory: Any) -> Iterator[Books]:
    """Funds' database, migrated, and its use cases, without a web server or a bus."""
    settings = FundsSettings(state_dir=tmp_path, secrets_dir=secrets_dir, database_url=database_url_factory("funds"))
    runtime = build_runtime(SPEC, settings)
    migrations.upgrade(runtime.engine, SPEC.migrations_dir)
    yield Books(runtime)
    runtime.engine.dispose()


@pytest.fixture
async def desk(funds_settings: FundsSettings, token_issuer: TokenIssuer) -> AsyncIterator[Desk]:
    app = create_app(funds_settings)
    async with running(app) as client:
        yield Desk(client, token_issuer, app.state.runtime)


@pytest.fixture
def names() -> list[str]:
    return person_names()
