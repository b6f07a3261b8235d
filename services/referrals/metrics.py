"""Referrals' own metrics, declared once per process at import (prometheus_client refuses a second declaration)."""

from prometheus_client import Counter, Gauge, Histogram

OVERDUE = Gauge("rehab_referrals_overdue", "Referrals left in `sent` longer than REHAB_REFERRALS_OVERDUE_AFTER_HOURS")

# Partners' webhooks (webhook_delivery.py). No partner label: how often one organisation hears from us is its own.
WEBHOOK_ATTEMPTS = Counter("rehab_webhook_attempts_total", "Webhook delivery attempts, by outcome",
                           ["outcome"])  # delivered | failed
WEBHOOK_DEAD_LETTERS = Counter("rehab_webhook_dead_letters_total",
                               "Webhook deliveries still failing after the retry window (dead letters)")
WEBHOOK_PENDING = Gauge("rehab_webhook_pending", "Webhook deliveries waiting for their first attempt or a retry")
WEBHOOK_LATENCY = Histogram(
    "rehab_webhook_delivery_seconds", "From a delivery's writing to the receiver's 2xx",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600, 86400),
)
