"""Referrals told at once when a case's consent changes or the case is erased (SPEC §4: "open referrals stop showing
personal data to the partner at once").

Referrals learns consent from intake's events, and an event may wait: with NATS away it waits until NATS is back, and
all that time the partner would still read a packet the person no longer agrees to share. So once the change has
committed here, intake also tells referrals directly — `POST /api/referrals/cases/{id}/consent-changed`, no body, with
the caller's own token (and their `Access-Reason`, when they opened the case by one) — and referrals reads the
consent in force back from intake with that same token (`services/referrals/consent_told.py`): it takes nothing on
the word of whoever calls, and intake decides, as for every read, whether the caller may see the case. It is a word
ahead of the event, not instead of it: when referrals cannot be reached or refuses, it is logged and the event does
it when it arrives. Nothing personal is sent."""

from __future__ import annotations

from urllib.parse import quote

import httpx
from fastapi import Request

from kit import logs
from kit.peers import Peer, on_behalf_of

log = logs.get("intake.referrals_told")


class ReferralsTold:
    PATH = "/api/referrals/cases/{case_id}/consent-changed"

    def __init__(self, referrals_urls: str, *, timeout_seconds: float = 2.0) -> None:
        self.referrals = Peer(referrals_urls, timeout_seconds=timeout_seconds, connect_seconds=0.5)

    async def aclose(self) -> None:
        await self.referrals.aclose()

    async def changed(self, request: Request, case_id: str) -> None:
        """The case's consent changed, or the case was erased: referrals looks again now."""
        headers = on_behalf_of(request)
        for url in self.referrals.in_turn():
            try:
                answer = await self.referrals.client.post(url + self.PATH.format(case_id=quote(case_id, safe="")),
                                                          headers=headers)
            except httpx.HTTPError as exc:
                log.warning("referrals not reached with a consent change; its event will do it",
                            error_type=type(exc).__name__)
                continue
            if answer.status_code != 204:
                log.warning("referrals did not take a consent change; its event will do it", status=answer.status_code)
            return


def told(request: Request) -> ReferralsTold:
    """The process's one teller, on `settings.referrals_url` (made on first use)."""
    runtime = request.app.state.runtime
    teller = runtime.extras.get("referrals_told")
    if teller is None:
        teller = runtime.extras["referrals_told"] = ReferralsTold(runtime.settings.referrals_url)
    return teller
