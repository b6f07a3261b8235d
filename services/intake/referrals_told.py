"""Referrals told at once when a case's consent narrows or the case is erased (SPEC §4: "open referrals stop showing
personal data to the partner at once").

Referrals learns consent from intake's events, and an event may wait: with NATS away it waits until NATS is back, and
all that time the partner would still read a packet the person no longer agrees to share. So once the change has
committed here, intake also tells referrals directly, with the caseworker's own token (referrals checks that the case
is theirs): `POST /api/referrals/cases/{id}/consent-narrowed`. Referrals only ever narrows by it. It is a word ahead of
the event, not instead of it: when referrals cannot be reached or refuses, it is logged and the event does it when it
arrives. Nothing personal is sent: categories, two flags, dates."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from urllib.parse import quote

import httpx
from fastapi import Request

from kit import context, logs
from kit.peers import Peer

log = logs.get("intake.referrals_told")


class ReferralsTold:
    PATH = "/api/referrals/cases/{case_id}/consent-narrowed"

    def __init__(self, referrals_urls: str, *, timeout_seconds: float = 2.0) -> None:
        self.referrals = Peer(referrals_urls, timeout_seconds=timeout_seconds, connect_seconds=0.5)

    async def aclose(self) -> None:
        await self.referrals.aclose()

    async def consent(self, request: Request, case_id: str, *, categories: list[str], share_contact: bool,
                      share_health: bool, expires_on: date | None, recorded_at: datetime) -> None:
        await self._tell(request, case_id, {
            "categories": categories, "share_contact": share_contact, "share_health": share_health,
            "expires_on": expires_on.isoformat() if expires_on else None, "recorded_at": recorded_at.isoformat()})

    async def erased(self, request: Request, case_id: str, at: datetime) -> None:
        await self._tell(request, case_id, {"categories": [], "share_contact": False, "share_health": False,
                                            "recorded_at": at.isoformat(), "erased": True})

    async def _tell(self, request: Request, case_id: str, body: dict[str, Any]) -> None:
        headers = {"authorization": request.headers.get("authorization", ""),
                   "x-request-id": context.request_id() or ""}
        for url in self.referrals.in_turn():
            try:
                answer = await self.referrals.client.post(url + self.PATH.format(case_id=quote(case_id, safe="")),
                                                          headers=headers, json=body)
            except httpx.HTTPError as exc:
                log.warning("referrals not reached with a narrowed consent; its event will do it",
                            error_type=type(exc).__name__)
                continue
            if answer.status_code != 204:
                log.warning("referrals did not take a narrowed consent; its event will do it",
                            status=answer.status_code)
            return


def told(request: Request) -> ReferralsTold:
    """The process's one teller, on `settings.referrals_url` (made on first use)."""
    runtime = request.app.state.runtime
    teller = runtime.extras.get("referrals_told")
    if teller is None:
        teller = runtime.extras["referrals_told"] = ReferralsTold(runtime.settings.referrals_url)
    return teller
