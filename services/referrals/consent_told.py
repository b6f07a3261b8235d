"""Intake's word that a case's consent changed, or that the case was erased (services/intake/referrals_told.py), and
what referrals does with it: it reads the consent in force back from intake — `GET /api/intake/cases/{id}/consent`,
with the caller's own token (and `Access-Reason`, when they opened the case by one) — so that intake decides, as for
every read, whether the caller may see the case, and nothing is taken on the word of whoever calls. What intake
answers is applied at once as its event will be (`staff.apply_told_consent`): the partner stops seeing a packet the
consent no longer covers, or any packet of an erased case, even while NATS holds the event up."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import quote

import httpx
from fastapi import Request

from kit import logs
from kit.peers import Peer, on_behalf_of
from kit.problems import Problem
from kit.service import Runtime

PATH = "/api/intake/cases/{case_id}/consent"
log = logs.get("referrals.consent_told")


@dataclass(frozen=True)
class ConsentTold:
    erased: bool
    current: dict[str, Any] | None  # `projections.apply_consent`'s arguments, None before any consent was recorded


async def consent_in_force(request: Request, runtime: Runtime, case_id: str) -> ConsentTold:
    """The case's consent as intake has it now, asked with the caller's token; intake's refusal (403, 404, 422) is
    the caller's answer too, and 503 when intake cannot be asked."""
    peer = runtime.extras.get("intake")
    if peer is None:
        peer = runtime.extras["intake"] = Peer(runtime.settings.intake_url, timeout_seconds=2.0, connect_seconds=0.5)
    headers = on_behalf_of(request)
    for url in peer.in_turn():
        try:
            answer = await peer.client.get(url + PATH.format(case_id=quote(case_id, safe="")), headers=headers)
        except httpx.HTTPError as exc:
            log.warning("intake not reached to read a changed consent", error_type=type(exc).__name__)
            continue
        if answer.status_code == 200:
            return _told(answer.json())
        if answer.status_code in (403, 404, 422):  # 422: what the caller sent (its Access-Reason) was wrong there
            body = answer.json() if answer.headers.get("content-type", "").endswith("json") else {}
            kind = str(body.get("type", "")).rsplit("/", 1)[-1] or "refused"
            raise Problem(answer.status_code, str(body.get("detail") or "Intake refused to tell the case's consent."),
                          kind=kind)
        log.warning("intake did not tell a changed consent", status=answer.status_code)
        break
    raise Problem(503, "Intake could not be asked for the case's consent; its event will bring the change.",
                  kind="intake-unavailable", headers={"Retry-After": "1"})


def _told(view: dict[str, Any]) -> ConsentTold:
    if view.get("case_status") == "erased":
        return ConsentTold(erased=True, current=None)
    current = view.get("current")
    if not current:
        return ConsentTold(erased=False, current=None)
    return ConsentTold(erased=False, current={
        "categories": list(current["categories"]), "share_contact": bool(current["share_contact"]),
        "share_health": bool(current["share_health"]),
        "expires_on": date.fromisoformat(current["expires_on"]) if current.get("expires_on") else None,
        "recorded_at": datetime.fromisoformat(current["recorded_at"])})
