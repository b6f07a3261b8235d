"""Who may pass the gateway: a verified token, a subject that is still enabled, and a request budget left.

Everything here runs on every forwarded request, so each step is a dictionary look-up in the common case:
verified tokens are remembered until they expire (kit.auth.VerifiedTokens, as in every service), and a subject's
standing (enabled user, unrevoked client) for about a second, or until the gateway itself changes it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from gateway.service import Standing as SubjectStanding
from kit.audit import record_refusal
from kit.auth import (ACCESS_REFUSED, Principal, VerifiedTokens, asked, bearer_in, bearer_token,
                      enrolment_required)
from kit.errors import RefusalEntry
from kit.problems import Problem
from kit.rates import RateLimit

if TYPE_CHECKING:  # gateway.runtime imports this module
    from gateway.runtime import GatewayRuntime


_MAX_REMEMBERED = 10_000

NO_LONGER_VALID = Problem(401, "The access token is no longer valid: its session ended, its user is disabled or its "
                          "client revoked.",
                          kind="invalid-token", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


class Standing:
    """Whether a token's subject may still act, asked of the database at most once per `ttl` seconds per subject:
    the subject still enabled, the roles the token claims still held, the token's session (`sid`) not revoked."""

    def __init__(self, lookup: Callable[[str, str | None], SubjectStanding | None], ttl: float) -> None:
        self._lookup = lookup  # (sub, partner_id) → what it may do now, or None
        self._ttl = ttl
        self._known: dict[str, tuple[float, SubjectStanding | None]] = {}

    def allows(self, principal: Principal) -> bool:
        now = time.monotonic()
        entry = self._known.get(principal.sub)
        if entry is None or entry[0] <= now:
            found = self._lookup(principal.sub, principal.partner_id)
            if len(self._known) >= _MAX_REMEMBERED:
                self._known.clear()
            entry = (now + self._ttl, found)
            self._known[principal.sub] = entry
        standing = entry[1]
        # A token may not claim more than its subject holds now (roles are never widened by an old token).
        return (standing is not None and principal.roles <= standing.roles
                and principal.claims.get("sid") not in standing.revoked_sessions)

    def forget(self, sub: str) -> None:
        """Called when the gateway changes a subject, so the change holds from the next request on."""
        self._known.pop(sub, None)


class Gatekeeper:
    """The three checks, in the order a request meets them."""

    def __init__(self, tokens: VerifiedTokens, standing: Standing, budget: RateLimit) -> None:
        self.tokens = tokens
        self.standing = standing
        self.budget = budget

    async def admit(self, authorization: str | None, *, enrolling: bool = False) -> Principal:
        """The verified, still-enabled caller with budget left; a 401 or 429 problem otherwise. A token that opens
        only the second factor's enrolment passes only where `enrolling` says the path is part of it (403)."""
        principal = self.tokens.verify(bearer_in(authorization))
        if not self.standing.allows(principal):
            raise NO_LONGER_VALID
        await self.budget.spend(principal.sub)
        if principal.enrolling and not enrolling:
            raise enrolment_required()
        return principal

    def stranger(self, authorization: str | None) -> Problem | None:
        """The 401 `admit` would answer for want of a token that verifies, found from the request's head alone (no
        lookup, no budget spent): kit.http's guard asks before it reads a JSON body, so that a stranger's megabyte
        is never parsed. None for a token signed here and unexpired; the route's `admit` checks the rest."""
        try:
            self.tokens.verify(bearer_in(authorization))
        except Problem as refusal:
            return refusal
        return None

    async def refuse_role(self, runtime: GatewayRuntime, principal: Principal, method: str, template: str) -> Problem:
        """The 403 for a caller whose roles the route does not admit, once the refusal is in the gateway's audit trail:
        who, and what they asked as the method and the route's path template (`GET /api/partner/{path}`), never the
        path or query sent, which may hold ids or whatever a caller typed. A stolen session feeling its way leaves
        a trace; one short write per refusal in the gateway's own unit of work (budgeted by `admit` already), no call
        to anything else. An entry that cannot be written (the database away, the keys sealed) is logged as missing
        and the refusal answered all the same."""
        await record_refusal(runtime, RefusalEntry(principal.sub, ACCESS_REFUSED, asked(method, template)))
        return Problem(403, "Your role does not allow this action.", kind="forbidden")


async def gateway_principal(request: Request) -> Principal:
    """The dependency for the gateway's own protected routes; kit's role checks then reuse what it found."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        if cached.enrolling:
            raise enrolment_required()
        return cached
    bearer_token(request)  # the same 401 as everywhere when there is no bearer token
    principal = await request.app.state.gatekeeper.admit(request.headers.get("authorization"))
    request.state.principal = principal
    return principal


async def enrolling_principal(request: Request) -> Principal:
    """For /auth/me and /auth/mfa/…: any signed-in caller, one whose token opens only enrolment included."""
    bearer_token(request)
    principal = await request.app.state.gatekeeper.admit(request.headers.get("authorization"), enrolling=True)
    request.state.principal = principal
    return principal


GatewayPrincipal = Annotated[Principal, Depends(gateway_principal)]
EnrollingPrincipal = Annotated[Principal, Depends(enrolling_principal)]


def gateway_role(*roles: str):  # noqa: ANN201
    """A dependency letting through only callers holding one of `roles`, checked after `gateway_principal`; a
    refusal audited (`Gatekeeper.refuse_role`)."""
    wanted = frozenset(roles)

    async def _check(request: Request, principal: GatewayPrincipal) -> Principal:
        if not principal.roles & wanted:
            route = request.scope.get("route")
            raise await request.app.state.gatekeeper.refuse_role(
                request.app.state.runtime, principal, request.method, getattr(route, "path", ""))
        return principal

    _check.__name__ = "require_" + "_or_".join(sorted(roles))
    _check.roles = wanted  # type: ignore[attr-defined]  # said in the OpenAPI document (kit.openapi.roles_of)
    return _check
