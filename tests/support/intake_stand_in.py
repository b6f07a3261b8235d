"""Intake's `POST /api/intake/cases/{id}/openings` as referrals and funds meet it in their own tests, which run
without an intake: what each service hands over when a caseworker states a break-glass reason there (the case, the
caller's token, the reason as written, where it was opened), recorded for the test to read; and an intake that
answers otherwise, or not at all, when the test says so. The whole path, with the real intake keeping the reason on
the timeline, is tested in tests/integration/gateway/test_need_to_know_matrix.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class HandedReason:
    case_id: str
    authorization: str
    reason: str
    opened_in: str


@dataclass
class IntakeStandIn:
    url: str
    handed: list[HandedReason] = field(default_factory=list)
    status: int = 204  # what it answers; 503 plays an intake that is sealed

    async def _openings(self, request: web.Request) -> web.Response:
        body = await request.json()
        raw = next((value for name, value in request.raw_headers if name.lower() == b"access-reason"), b"")
        self.handed.append(HandedReason(
            case_id=request.match_info["case_id"], authorization=request.headers.get("Authorization", ""),
            reason=raw.decode("utf-8"), opened_in=body.get("opened_in")))
        return web.Response(status=self.status)


@asynccontextmanager
async def intake_stand_in() -> AsyncIterator[IntakeStandIn]:
    stand_in = IntakeStandIn(url="")
    app = web.Application()
    app.router.add_post("/api/intake/cases/{case_id}/openings", stand_in._openings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    stand_in.url = f"http://{host}:{port}"
    try:
        yield stand_in
    finally:
        await runner.cleanup()
