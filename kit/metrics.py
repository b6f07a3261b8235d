"""Prometheus metrics every process exposes on /metrics. Declared once per process, labelled by service."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "rehab_http_requests_total", "HTTP requests answered", ["service", "method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "rehab_http_request_seconds",
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
