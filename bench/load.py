"""The load generator: `python -m bench.load SPEC.json` sends HTTP requests with aiohttp from its own process and
prints one JSON result (throughput, latency percentiles, status counts) on stdout.

It is the same generator for the bare baseline and for the system, so their ratio is fair. Bounded by design:
every run stops after `duration` seconds or `max_requests` requests, whichever comes first, and only loopback
addresses are accepted as targets.

Two ways to drive load:
- closed loop (default): `concurrency` clients, each sending its next request as soon as the previous answered;
- open loop (`rate` set): requests start on a fixed schedule, at most `concurrency` in flight; a request's latency
  counts from when it was due, not when it was sent, so a stalled server shows up in the percentiles instead of
  silently slowing the schedule down (coordinated omission).

A spec is a `LoadSpec` as JSON (see `bench.load_spec`). Requests are sent in list order, each one once; with
`cycle`, the list starts again when it is used up.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.load_spec import LoadResult, LoadSpec, PreparedRequest, check_loopback, summarize


class _Requests:
    """Hands out the spec's requests in order; None once the run must end."""

    def __init__(self, spec: LoadSpec, deadline: float) -> None:
        self._requests = [PreparedRequest.from_spec(r, index) for index, r in enumerate(spec.requests)]
        self._cycle = spec.cycle
        self._max = spec.max_requests
        self._deadline = deadline
        self.handed_out = 0

    def next(self) -> PreparedRequest | None:
        if time.perf_counter() >= self._deadline:
            return None
        if self._max is not None and self.handed_out >= self._max:
            return None
        index = self.handed_out
        if index >= len(self._requests):
            if not self._cycle:
                return None
            index %= len(self._requests)
        self.handed_out += 1
        return self._requests[index]


class _Tally:
    def __init__(self, collect: str | None, *, timeline: bool = False) -> None:
        self.latencies: list[float] = []
        self.statuses: dict[str, int] = {}
        self.collect = collect
        self.collected: list[Any] = []
        self.samples: dict[str, str] = {}  # one body per unexpected status, to say what went wrong
        self.timeline = timeline
        # perf_counter (the schedule's clock) → monotonic (the one shared with other processes); both are
        # CLOCK_MONOTONIC on Linux, so this is ~0 there.
        self.to_monotonic = time.monotonic() - time.perf_counter()

    def add(self, status: str, seconds: float) -> None:
        self.latencies.append(seconds)
        self.statuses[status] = self.statuses.get(status, 0) + 1


async def _send(session: aiohttp.ClientSession, base_url: str, request: PreparedRequest, tally: _Tally,
                started: float) -> None:
    try:
        async with session.request(request.method, base_url + request.path, headers=request.headers,
                                   data=request.body) as response:
            body = await response.read()
            status = str(response.status)
    except (aiohttp.ClientError, asyncio.TimeoutError) as error:
        status, body = type(error).__name__, b""
    tally.add(status, time.perf_counter() - started)
    if status.startswith("2"):
        if tally.collect:
            value = json.loads(body).get(tally.collect)
            if tally.timeline:
                value = [value, round(started + tally.to_monotonic, 6), round(time.monotonic(), 6), request.index]
            tally.collected.append(value)
    elif status not in tally.samples:
        tally.samples[status] = body[:300].decode("utf-8", "replace")


async def _closed_loop(session: aiohttp.ClientSession, spec: LoadSpec, requests: _Requests, tally: _Tally) -> None:
    async def client() -> None:
        while (request := requests.next()) is not None:
            await _send(session, spec.base_url, request, tally, time.perf_counter())

    await asyncio.gather(*(client() for _ in range(spec.concurrency)))


async def _open_loop(session: aiohttp.ClientSession, spec: LoadSpec, requests: _Requests, tally: _Tally) -> None:
    assert spec.rate is not None
    in_flight = asyncio.Semaphore(spec.concurrency)
    tasks: set[asyncio.Task] = set()
    interval = 1.0 / spec.rate
    due = time.perf_counter()

    async def one(request: PreparedRequest, due_at: float) -> None:
        async with in_flight:
            await _send(session, spec.base_url, request, tally, due_at)

    while (request := requests.next()) is not None:
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(request, due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        due += interval
    if tasks:
        await asyncio.gather(*tasks)


async def run(spec: LoadSpec) -> LoadResult:
    """Warm up (results dropped), then measure; the spec's bounds hold for each part."""
    check_loopback(spec.base_url)
    connector = aiohttp.TCPConnector(limit=spec.concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=spec.timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False,
                                     cookie_jar=aiohttp.DummyCookieJar()) as session:
        drive = _open_loop if spec.rate else _closed_loop
        if spec.warmup > 0:
            warm = spec.model_copy(update={"max_requests": None})
            await drive(session, warm, _Requests(warm, time.perf_counter() + spec.warmup), _Tally(None))
        tally = _Tally(spec.collect, timeline=spec.timeline)
        started = time.perf_counter()
        await drive(session, spec, _Requests(spec, started + spec.duration), tally)
        elapsed = time.perf_counter() - started
    return summarize(tally.latencies, tally.statuses, elapsed, collected=tally.collected, samples=tally.samples)


def _loop_runner():  # noqa: ANN202
    """uvloop, as the servers use (a dependency of the project, so normally there); else asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    return uvloop.run


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m bench.load SPEC.json", file=sys.stderr)
        return 2
    spec = LoadSpec.model_validate_json(Path(argv[0]).read_text())
    result = _loop_runner()(run(spec))
    sys.stdout.write(result.model_dump_json())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
