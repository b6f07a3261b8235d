"""The test desk: a running referrals app, the people who call it, and a stand-in for intake that publishes real
intake-shaped events onto the INTAKE stream (the referrals service learns cases from nothing else)."""

from __future__ import annotations

import asyncio
import csv
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext, redirect_stdout
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TextIO

import httpx
import nats
from fastapi import FastAPI
from nats.js import JetStreamContext
from sqlalchemy import select
from sqlmodel import Session

from kit.auth import TokenIssuer
from kit.events import Envelope
from kit.service import Runtime
from services.referrals import projections
from services.referrals.config import ReferralsSettings
from services.referrals.main import create_app
from tests.support.apps import bearer, running
from tests.support.nats import patient_jetstream
from tests.support.polling import wait_for
from tests.support.shared import NAME_VARIANTS

NAMES = NAME_VARIANTS
DURABLE = "referrals-intake"
CASEWORKER = "caseworker-1"  # the caseworker every case the desk opens is assigned to, unless told otherwise


def people() -> list[dict[str, str]]:
    """Made-up Belarusian names written six ways each (/work/shared/data)."""
    with NAMES.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))




@dataclass
class Desk:
    """One running referrals app, the people who use it, and intake's side of the bus."""

    app: FastAPI
    client: httpx.AsyncClient
    runtime: Runtime
    issuer: TokenIssuer
    js: JetStreamContext

    # ---- who is calling ----

    def admin(self) -> dict[str, str]:
        return bearer(self.issuer, "admin", sub="admin-1")

    def caseworker(self, sub: str = CASEWORKER) -> dict[str, str]:
        return bearer(self.issuer, "caseworker", sub=sub)

    def staff(self, role: str) -> dict[str, str]:
        return bearer(self.issuer, role, sub=f"{role}-1")

    def partner(self, partner_id: str) -> dict[str, str]:
        return bearer(self.issuer, "partner", sub=f"client-{partner_id[:8]}", partner_id=partner_id)

    # ---- intake, as its events tell it ----

    async def intake_event(self, subject: str, case_id: str, data: dict[str, Any], *, msg_id: str | None = None,
                           envelope: Envelope | None = None) -> Envelope:
        """Publish an intake event (or an earlier one again) and wait until referrals has applied it."""
        envelope = envelope or Envelope.new(source="/rehab/intake", type=subject, subject=case_id, data=data)
        await self.js.publish(subject, envelope.to_bytes(), headers={"Nats-Msg-Id": msg_id or envelope.id})
        await wait_for(lambda: self.applied(envelope.id))
        return envelope

    async def acknowledged(self, timeout: float = 15) -> None:
        """Wait until referrals has been handed every message on INTAKE and acknowledged each one. An erasure is
        acknowledged only once its traces have left the disk (the write-ahead log truncated after the COMMIT),
        while its inbox row can be seen a moment before that: a test that searches the files waits for this."""
        deadline = time.monotonic() + timeout
        while True:
            last = (await self.js.stream_info("INTAKE")).state.last_seq
            info = await self.js.consumer_info("INTAKE", DURABLE)
            if info.delivered.stream_seq >= last and not info.num_ack_pending and not info.num_pending:
                return
            assert time.monotonic() < deadline, f"referrals did not acknowledge its events in time: {info.delivered}"
            await asyncio.sleep(0.02)

    def applied(self, event_id: str) -> bool:
        inbox = self.runtime.tables.inbox
        with self.session() as session:
            return session.execute(select(inbox.c.event_id).where(
                inbox.c.consumer == DURABLE, inbox.c.event_id == event_id)).first() is not None

    async def open_case(self, *, categories: list[str] | None = None, share_contact: bool = True,
                        share_health: bool = True, expires_on: date | None = None,
                        assignees: tuple[str, ...] = (CASEWORKER,)) -> str:
        """A case as intake would announce it: opened, assigned (to `assignees`, unless empty), then (unless
        `categories` is None) its consent."""
        case_id = str(uuid.uuid4())
        await self.intake_event("rehab.intake.case.opened", case_id, {
            "case_id": case_id, "reference": f"BY-2026-{uuid.uuid4().int % 100000:05d}", "country": "LT",
            "opened_at": datetime.now(UTC).isoformat()})
        if assignees:
            await self.assign(case_id, *assignees)
        if categories is not None:
            await self.consent(case_id, categories, share_contact=share_contact, share_health=share_health,
                               expires_on=expires_on)
        return case_id

    async def consent(self, case_id: str, categories: list[str], *, share_contact: bool = True,
                      share_health: bool = True, expires_on: date | None = None,
                      recorded_at: datetime | None = None) -> Envelope:
        return await self.intake_event("rehab.intake.consent.changed", case_id, {
            "case_id": case_id, "categories": categories, "share_contact": share_contact,
            "share_health": share_health, "expires_on": expires_on.isoformat() if expires_on else None,
            "recorded_at": (recorded_at or datetime.now(UTC)).isoformat()})

    async def assign(self, case_id: str, *assignees: str, assigned_at: datetime | None = None) -> Envelope:
        """Intake's case.assigned: the case's assignees are now these (user ids, as tokens carry them in `sub`)."""
        return await self.intake_event("rehab.intake.case.assigned", case_id, {
            "case_id": case_id, "assignees": list(assignees),
            "assigned_at": (assigned_at or datetime.now(UTC)).isoformat()})

    async def close_case(self, case_id: str) -> Envelope:
        return await self.intake_event("rehab.intake.case.closed", case_id,
                                       {"case_id": case_id, "closed_at": datetime.now(UTC).isoformat()})

    async def erase_case(self, case_id: str) -> Envelope:
        return await self.intake_event("rehab.intake.case.erased", case_id,
                                       {"case_id": case_id, "erased_at": datetime.now(UTC).isoformat()})

    # ---- the directory and referrals ----

    async def add_partner(self, category: str = "medical", **fields: Any) -> str:
        body = {"name": f"Clinic {uuid.uuid4().hex[:6]}", "category": category, "countries": ["LT"],
                "cities": ["Vilnius"], "languages": ["be", "ru"], "contact_email": "intake@clinic.example",
                **fields}
        response = await self.client.post("/api/referrals/partners", json=body, headers=self.admin())
        assert response.status_code == 201, response.text
        return response.json()["id"]

    async def refer(self, case_id: str, partner_id: str, category: str = "medical",
                    packet: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
        body = {"case_id": case_id, "partner_id": partner_id, "need_category": category,
                "packet": packet or {"display_name": people()[0]["latin_passport"], "language": "be"}}
        return await self.client.post("/api/referrals/referrals", json=body, headers=headers or self.caseworker())

    async def sent_referral(self, case_id: str, partner_id: str, **kwargs: Any) -> str:
        response = await self.refer(case_id, partner_id, **kwargs)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    async def partner_step(self, partner_id: str, referral_id: str, action: str, body: Any = None) -> httpx.Response:
        return await self.client.post(f"/api/partner/referrals/{referral_id}/{action}", json=body,
                                      headers=self.partner(partner_id))

    # ---- looking inside ----

    def session(self) -> Session:
        return self.runtime.session_factory()

    async def watch(self) -> int:
        """What the background watch does every few seconds (`projections.watch`), once."""
        return await self.runtime.uow.run(lambda session: projections.keep_watch(session=session, runtime=self.runtime))

    async def audit_trail(self, target_id: str | None = None) -> list[tuple[str, str]]:
        """(actor, action) of the audit entries, oldest first, as an auditor reads them; the chain must verify."""
        auditor = self.staff("auditor")
        verdict = (await self.client.get("/api/referrals/audit/verify", headers=auditor)).json()
        assert verdict["ok"] is True, verdict
        query = f"?limit=500&target_id={target_id}" if target_id else "?limit=500"
        page = (await self.client.get(f"/api/referrals/audit{query}", headers=auditor)).json()
        assert page["next_cursor"] is None
        return [(entry["actor"], entry["action"]) for entry in page["items"]]

    async def published(self) -> list[Envelope]:
        """Every event the service has committed, once the relay has put them all on the REFERRALS stream."""
        outbox = self.runtime.tables.outbox
        with self.session() as session:
            committed = len(session.execute(select(outbox.c.seq)).all())

        async def on_stream() -> int:
            try:
                return (await self.js.stream_info("REFERRALS")).state.messages
            except Exception:
                return 0

        deadline = time.monotonic() + 15
        while (await on_stream()) < committed:
            assert time.monotonic() < deadline, f"fewer than {committed} events on the stream"
            await asyncio.sleep(0.02)
        return [Envelope.from_bytes((await self.js.get_msg("REFERRALS", seq)).data)
                for seq in range(1, await on_stream() + 1)]


@asynccontextmanager
async def open_desk(settings: ReferralsSettings, issuer: TokenIssuer, *, log_to: TextIO | None = None) -> AsyncIterator[Desk]:
    """Start the app (its logs written to `log_to` when given) and connect to NATS as intake would."""
    # The service logs to whatever stdout is when it writes: redirected for the desk's whole life.
    with redirect_stdout(log_to) if log_to else nullcontext():
        app = create_app(settings)
        async with running(app) as client:
            runtime: Runtime = app.state.runtime
            await wait_for(lambda: runtime.bus.js is not None)
            await runtime.bus.ensure_stream("intake")  # intake's stream, as intake itself would create it
            nc = await nats.connect(settings.nats_url)
            try:
                yield Desk(app=app, client=client, runtime=runtime, issuer=issuer, js=patient_jetstream(nc))
            finally:
                await nc.close()
