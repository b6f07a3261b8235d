"""Resolving a webhook's host and checking every address it has (SSRF defence), at registration and again before
each attempt: DNS may answer differently from one minute to the next, so the attempt connects to the very address
checked here (`Target.pinned_url`), never to a second lookup's answer.

Lookups run on a small thread pool of their own with a time limit: a resolver that hangs holds those threads, never
the default pool the unit of work commits on.
"""

from __future__ import annotations

import asyncio
import socket
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from services.referrals.webhook_rules import Target, TargetRefused, check_addresses

_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="webhook-dns")
    return _POOL


async def addresses_of(target: Target, *, timeout: float) -> list[str]:
    """Every address the target's host resolves to (its own address when it is one), in the resolver's order."""
    if target.literal:
        return [target.host]
    lookup = partial(socket.getaddrinfo, target.host, target.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    try:
        answers = await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(_pool(), lookup), timeout)
    except (OSError, UnicodeError, TimeoutError):
        raise TargetRefused("The webhook's host does not resolve.", reason="unresolved") from None
    return list(dict.fromkeys(str(info[4][0]) for info in answers))


async def checked_address(target: Target, *, allow_private: bool, timeout: float) -> str:
    """The address to connect to: the first the host resolves to, once every one of them is allowed
    (TargetRefused otherwise, a 422 at registration, a failed attempt at delivery)."""
    found = await addresses_of(target, timeout=timeout)
    check_addresses(found, allow_private=allow_private)
    return found[0]
