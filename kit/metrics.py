"""Prometheus metrics every process exposes on /metrics. Declared once per process, labelled by service.

They are served on a listener of their own (`REHAB_METRICS_HOST`:`REHAB_METRICS_PORT`), never on the process's main
one: counts of sign-ins, creations and erasures say what an organisation is doing, so they stay on the internal
network (SPEC §3). Port 0 serves no metrics at all.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import Counter, Gauge, Histogram, start_http_server

HTTP_REQUESTS = Counter(
    "rehab_http_requests_total", "HTTP requests answered", ["service", "method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "rehab_http_request_duration_seconds",
    "HTTP request latency",
    ["service", "method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
OUTBOX_BACKLOG = Gauge("rehab_outbox_backlog", "Events committed but not yet published", ["service"])
OUTBOX_OLDEST_AGE = Gauge("rehab_outbox_oldest_age_seconds", "Age of the oldest unpublished event", ["service"])
EVENTS_PUBLISHED = Counter("rehab_events_published_total", "Events published to JetStream", ["service"])
EVENTS_DUPLICATE_PUBACK = Counter(
    "rehab_events_duplicate_puback_total", "Publishes the stream recognised as duplicates", ["service"]
)
EVENTS_CONSUMED = Counter("rehab_events_consumed_total", "Events applied by a consumer", ["service", "consumer"])
EVENTS_REDELIVERED_IGNORED = Counter(
    "rehab_events_duplicates_suppressed_total", "Events already applied, acked without effect", ["service", "consumer"]
)
CONSUMER_LAG = Gauge("rehab_consumer_pending", "Messages waiting for a consumer", ["service", "consumer"])
DEAD_LETTERS = Counter("rehab_dead_letters_total", "Events parked after too many failed deliveries", ["service", "consumer"])
NATS_CONNECTED = Gauge("rehab_nats_connected", "1 while connected to NATS", ["service"])


# ---- the metrics listener ------------------------------------------------------------------------------------------


@dataclass
class MetricsListener:
    """prometheus_client's own HTTP server, on a thread beside the event loop: it answers a scrape even while the
    loop is busy, and it needs nothing of the application (no routes, no middleware, no token)."""

    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return self.server.server_port

    def close(self) -> None:
        self.server.shutdown()  # returns once serve_forever has stopped (it polls every 0.5 s)
        self.server.server_close()
        self.thread.join(timeout=5)


def listen(host: str, port: int) -> MetricsListener | None:
    """Serve every metric of this process on `host`:`port` (any path); nothing when `port` is 0.

    A port that is taken raises OSError: the process does not start rather than run without its metrics."""
    if not port:
        return None
    server, thread = start_http_server(port, addr=host)
    return MetricsListener(server, thread)


Lifespan = Callable[[Any], AbstractAsyncContextManager[None]]


def served_beside(lifespan: Lifespan, host: str, port: int) -> Lifespan:
    """`lifespan` with the metrics listener open around it: up before start-up, closed after shut-down."""

    @asynccontextmanager
    async def with_metrics(app: Any) -> AsyncIterator[None]:
        listener = listen(host, port)
        try:
            async with lifespan(app):
                yield
        finally:
            if listener is not None:
                await asyncio.to_thread(listener.close)

    return with_metrics
