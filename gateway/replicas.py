"""Several replicas behind one service name: requests spread round-robin over the healthy ones.

A backend setting may name several URLs, comma-separated (`REHAB_INTAKE_URL=http://a:8101,http://b:8101`); one URL
works as before. A replica is put aside ("ejected") for `eject_seconds` when a connection to it fails, or when its
`/readyz` answers 502/503 or not at all; the probe (`watch`) asks every replica of a service that has more than one
again and again, so an ejected one comes back as soon as it answers 200. With every replica ejected the gateway
still tries them in turn: a probe may be wrong, and a 503 from the service itself says more than one of ours.

Which requests may go to a second replica is `forward`'s decision (gateway.forward): only one that never reached
the first (the connection failed), or an idempotent read.

A process that hangs (stopped, stuck in a loop) still accepts connections, so every request to it would wait out the
gateway's timeout and end in a 504, one after another. So every service is probed, a single replica too, and one
whose probes got no answer at all `SILENT_AFTER` times in a row is taken for silent; while every replica of a
service is, its routes answer 503 at once (`all_silent`), until a probe gets any answer again. A slow answer, even a
503, is an answer: only a replica that does not answer within the probe's timeout, again and again, is silent.
Probes go out every `every` seconds whether or not the last ones came back, so a replica that stops is taken for
silent about `timeout + (SILENT_AFTER - 1) × every` later (4 s by default), and the requests already waiting on it
are answered then (`silence_of`, gateway.forward), not at the end of the whole backend timeout (an outside review
found 10 s of 504s, one after another, before the first fast 503).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import TypeVar

import httpx

from kit import logs

log = logs.get("gateway.replicas")

EJECT_SECONDS = 5.0
PROBE_SECONDS = 1.0
SILENT_AFTER = 3  # probes in a row with no answer at all
# What a probe takes for "this replica cannot serve now"; any other answer (a 500 of a bug, a 404) is left to requests.
UNHEALTHY_STATUSES = frozenset({502, 503})


def split_urls(setting: str) -> tuple[str, ...]:
    """The replicas a backend setting names: comma-separated URLs, without trailing slashes."""
    urls = tuple(part.strip().rstrip("/") for part in setting.split(",") if part.strip())
    if not urls:
        raise ValueError("a backend needs at least one URL")
    return urls


class Replicas:
    """The replicas of one service and which of them are ejected until when."""

    def __init__(self, name: str, urls: tuple[str, ...], *, eject_seconds: float = EJECT_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.urls = urls
        self.eject_seconds = eject_seconds
        self._clock = clock
        self._ejected_until: dict[str, float] = {}
        self._unanswered: dict[str, int] = {}  # probes in a row that got no answer, by replica
        self._silenced: dict[str, asyncio.Future[None]] = {}  # done once the replica is taken for silent
        self._turn = itertools.count()

    def all_silent(self) -> bool:
        """Has every replica left `SILENT_AFTER` probes in a row without any answer?"""
        return all(self.is_silent(url) for url in self.urls)

    def is_silent(self, url: str) -> bool:
        return self._unanswered.get(url, 0) >= SILENT_AFTER

    def silence_of(self, url: str) -> asyncio.Future[None]:
        """A future done once this replica is taken for silent (done already if it is): a request waiting on it
        stops waiting then. One per replica and event loop, shared by every request."""
        loop = asyncio.get_running_loop()
        silenced = self._silenced.get(url)
        if silenced is None or silenced.get_loop() is not loop or (silenced.done() and not self.is_silent(url)):
            silenced = self._silenced[url] = loop.create_future()
        if self.is_silent(url) and not silenced.done():
            silenced.set_result(None)
        return silenced

    def _heard_nothing(self, url: str) -> None:
        self._unanswered[url] = self._unanswered.get(url, 0) + 1
        if self._unanswered[url] == SILENT_AFTER:
            log.warning("replica silent", backend=self.name, replica=self.urls.index(url))
            silenced = self._silenced.get(url)
            if silenced is not None and not silenced.done() and silenced.get_loop() is asyncio.get_running_loop():
                silenced.set_result(None)

    def healthy(self) -> list[str]:
        now = self._clock()
        return [url for url in self.urls if self._ejected_until.get(url, 0.0) <= now]

    def choose(self, *, besides: tuple[str, ...] = ()) -> str | None:
        """The next replica in turn among the healthy ones not in `besides`; among all not in `besides` when none
        is healthy; None when `besides` holds every one."""
        left = [url for url in self.healthy() if url not in besides] \
            or [url for url in self.urls if url not in besides]
        if not left:
            return None
        return left[next(self._turn) % len(left)]

    def eject(self, url: str, *, why: str) -> None:
        if url not in self.urls or len(self.urls) == 1:
            return  # with one replica there is nowhere else to go: nothing to put aside
        if self._ejected_until.get(url, 0.0) <= self._clock():
            log.warning("replica ejected", backend=self.name, replica=self.urls.index(url), reason=why)
        self._ejected_until[url] = self._clock() + self.eject_seconds

    def restore(self, url: str) -> None:
        if self._ejected_until.pop(url, None) is not None and url in self.urls:
            log.info("replica back", backend=self.name, replica=self.urls.index(url))

    async def probe(self, client: httpx.AsyncClient, *, timeout: float) -> None:
        """Ask every replica's /readyz once, side by side: 200 brings it back, 502/503 or no answer ejects it."""

        async def one(url: str) -> None:
            try:
                answer = await client.get(url + "/readyz", timeout=timeout)
            except httpx.HTTPError as error:
                self.eject(url, why=type(error).__name__)
                self._heard_nothing(url)
                return
            if self._unanswered.pop(url, 0) >= SILENT_AFTER:
                log.info("replica answers again", backend=self.name, replica=self.urls.index(url))
            if answer.status_code == 200:
                self.restore(url)
            elif answer.status_code in UNHEALTHY_STATUSES:
                self.eject(url, why=f"readyz {answer.status_code}")

        await asyncio.gather(*(one(url) for url in self.urls))


class ReplicaSilent(Exception):
    """The replica was taken for silent while a request waited for its answer."""


T = TypeVar("T")


async def unless_silent(replicas: Replicas, url: str, waiting: Awaitable[T],
                        keep_on: Callable[[], bool] = lambda: False) -> T:
    """What `waiting` (a request to the replica at `url`) gives, or ReplicaSilent as soon as that replica is taken
    for silent: a hung process would only let the request wait out the whole backend timeout. `keep_on()` true
    (its answer has begun reaching the caller) lets it run to its end, or to its own timeout."""
    attempt = asyncio.ensure_future(waiting)
    try:
        await asyncio.wait((attempt, replicas.silence_of(url)), return_when=asyncio.FIRST_COMPLETED)
        if not attempt.done() and not keep_on():
            attempt.cancel()
            raise ReplicaSilent
        return await attempt
    finally:
        if not attempt.done():  # the request itself was cancelled (the gateway stopping)
            attempt.cancel()


class Backends(Mapping[str, str]):
    """Every service's replicas. As a mapping, `backends[name]` is the next replica's URL in turn, so code that wants
    one address of a service (the console's calls, the merged OpenAPI document, readiness) spreads as well."""

    def __init__(self, settings: Mapping[str, str], *, eject_seconds: float = EJECT_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._replicas = {name: Replicas(name, split_urls(setting), eject_seconds=eject_seconds, clock=clock)
                          for name, setting in settings.items()}

    def replicas(self, name: str) -> Replicas:
        return self._replicas[name]

    def __getitem__(self, name: str) -> str:
        chosen = self._replicas[name].choose()
        assert chosen is not None  # nothing excluded: there is always one
        return chosen

    def __iter__(self) -> Iterator[str]:
        return iter(self._replicas)

    def __len__(self) -> int:
        return len(self._replicas)

    async def watch(self, client: httpx.AsyncClient, *, every: float = PROBE_SECONDS, timeout: float = 1.0) -> None:
        """Probe every replica of every service, every `every` seconds, until cancelled (a lone replica is never
        ejected, but it may be silent). A round starts on time whether or not the last one has ended: a hung
        replica's probes then time out `every` apart, not `timeout + every` apart."""
        every_service = list(self._replicas.values())

        async def one_round() -> None:
            try:
                await asyncio.gather(*(replicas.probe(client, timeout=timeout) for replicas in every_service))
            except Exception as error:  # a probe must never end the watch
                log.warning("replica probe failed", error_type=type(error).__name__)

        rounds: set[asyncio.Task[None]] = set()
        try:
            while True:
                started = asyncio.create_task(one_round())
                rounds.add(started)
                started.add_done_callback(rounds.discard)
                await asyncio.sleep(every)
        finally:
            for unfinished in list(rounds):
                unfinished.cancel()
