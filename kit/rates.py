"""A budget of requests per key (a caller, an address) in a fixed window, in this process's memory: the gateway's
requests per user and sign-ins per address, intake's duplicate checks per caseworker. Each replica keeps its own
count, so N replicas allow up to N times the rule: a bound on abuse, not an exact quota."""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import FixedWindowRateLimiter

from kit.problems import Problem


class RateLimit:
    """`limits`' in-memory fixed window, answering 429 with Retry-After once a key has spent its budget."""

    def __init__(self, rule: str, *, scope: str, detail: str = "Too many requests; try again later.") -> None:
        self.item: RateLimitItem = parse(rule)
        self.scope = scope
        self.detail = detail
        self._limiter = FixedWindowRateLimiter(MemoryStorage())

    async def spend(self, key: str) -> None:
        if await self._limiter.hit(self.item, self.scope, key):
            return
        reset_at, _remaining = await self._limiter.get_window_stats(self.item, self.scope, key)
        retry_after = max(1, math.ceil(reset_at - time.time()))
        raise Problem(429, self.detail, kind="rate-limited", headers={"Retry-After": str(retry_after)})
