"""Another service, asked directly (not through the gateway) with the caller's own token: referrals and funds hand a
break-glass reason to intake (kit.need_to_know.ReasonKeeper), intake tells referrals of a changed consent at once
(services/intake/referrals_told.py), referrals reads that consent back (services/referrals/consent_told.py).

Its replicas' base URLs, comma-separated, are asked in turn, the next one when one cannot be reached. One HTTP client
per process, its connections kept (`aclose` at shutdown, as `Runtime.extras` are), never through a proxy named in the
environment: it would see the caller's token."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import httpx
from starlette.requests import Request

from kit import context


class Peer:
    def __init__(self, urls: str, *, timeout_seconds: float, connect_seconds: float) -> None:
        self.urls = [url.strip().rstrip("/") for url in urls.split(",") if url.strip()]
        self.timeout = httpx.Timeout(timeout_seconds, connect=min(connect_seconds, timeout_seconds))
        self._turn = itertools.count()
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout, trust_env=False)
        return self._client

    def in_turn(self) -> Iterator[str]:
        """Every replica's base URL once, starting with the next one's turn (the load shared among them)."""
        start = next(self._turn)
        return (self.urls[(start + i) % len(self.urls)] for i in range(len(self.urls)))

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def on_behalf_of(request: Request) -> dict[str, str | bytes]:
    """The headers that ask a peer as the caller of `request`: their own token (the peer decides, as for any request,
    what they may do), the request id (one trail across both services) and their `Access-Reason` when they stated
    one — as the bytes came, trimmed (a reason in Belarusian is not Latin-1; a header may not start or end with a
    space)."""
    headers: dict[str, str | bytes] = {"authorization": request.headers.get("authorization", ""),
                                       "x-request-id": context.request_id() or ""}
    reason = next((value for name, value in request.scope["headers"] if name == b"access-reason"), None)
    if reason is not None:
        headers["access-reason"] = reason.strip(b" \t")
    return headers
