"""The `reports` part (issue #20): the programme report over one year of activity of a million cases, through the
gateway, against a bare FastAPI answering a JSON body in the same run.

The reports service keeps aggregates, not events: a year of a million cases leaves as many rows as a year of a
thousand — counts per month, category and urgency, status or outcome (about 1,100 rows), money per month, category,
currency and group (about 1,000), and one histogram per month, span and category (168 rows) — only the numbers in them
grow. So the part writes those rows straight into the reports database, as a million cases would leave them and in
the worst shape for reading (every histogram bucket filled: tenths of a day up to ten days, whole days up to a year),
instead of replaying ten million events, and then asks for the year's report.

Measured, each `--rounds` times (the best round counts, as elsewhere in the bench): the report for the last twelve
months as JSON and as CSV, from 1 and from 4 clients, p50/p95/p99; the baseline is `bench.baseline_app`'s JSON
answer from the same load generator at the same concurrency. Target (issue #20): the JSON report's p95 under 200 ms.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine

from bench import api, scenarios
from bench.harness import baseline_server, run_load
from bench.load_spec import LoadSpec, RequestSpec
from bench.system import ADMIN_PASSWORD, Backing, System
from services.reports import domain
from services.reports.models import CurrencyDigits, DurationHistogram, MonthlyAmount, MonthlyCount
from services.reports.queries import write_buckets

CASES = 1_000_000
CLIENTS = (1, 4)
TARGET_P95_MS = 200.0
CURRENCIES = {"EUR": 2, "PLN": 2, "GEL": 2}
# A need per case and a half, a referral per need in two of three, as the programme's own figures go.
NEEDS_PER_CASE, REFERRALS_PER_NEED = 1.5, 0.66


def seed(database_url: str, *, cases: int = CASES, seed_value: int = 2026) -> dict[str, int]:
    """Write a year of aggregates for `cases` cases into the reports database; the rows written, by table."""
    chance = random.Random(seed_value)
    months = domain.period(None, None)
    per_month = cases // len(months)
    counts: list[dict[str, Any]] = []
    amounts: list[dict[str, Any]] = []
    histograms: list[dict[str, Any]] = []

    def spread(total: int, parts: tuple[str, ...]) -> dict[str, int]:
        weights = [chance.uniform(0.3, 1.7) for _ in parts]
        return {part: int(total * weight / sum(weights)) for part, weight in zip(parts, weights, strict=True)}

    for month in months:
        for move, share in (("opened", 1.0), ("closed", 0.7), ("erased", 0.01)):
            counts.append({"month": month, "measure": "cases", "category": "", "detail": move,
                           "count": int(per_month * share)})
        needs = spread(int(per_month * NEEDS_PER_CASE), domain.CATEGORIES)
        for category, n in needs.items():
            for urgency, m in spread(n, domain.URGENCIES).items():
                counts.append({"month": month, "measure": "needs.assessed", "category": category, "detail": urgency,
                               "count": m})
            for status, share in (("in_progress", 0.8), ("met", 0.6), ("dropped", 0.1)):
                counts.append({"month": month, "measure": "needs.moved", "category": category, "detail": status,
                               "count": int(n * share)})
            sent = int(n * REFERRALS_PER_NEED)
            for outcome, share in (("sent", 1.0), ("accepted", 0.8), ("declined", 0.1), ("started", 0.7),
                                   ("completed", 0.6), ("cancelled", 0.05)):
                counts.append({"month": month, "measure": "referrals", "category": category, "detail": outcome,
                               "count": int(sent * share)})
            for span, spread_days in (("sent_to_accepted", 60), ("sent_to_completed", 365)):
                buckets = {tenths: chance.randint(1, 400) for tenths in range(domain.FINE_DAYS * 10)}
                buckets |= {day * 10: chance.randint(1, 200) for day in range(domain.FINE_DAYS, spread_days + 1)}
                histograms.append({"month": month, "measure": span, "category": category,
                                   "buckets": write_buckets(buckets)})
            for currency in CURRENCIES:
                for stage, basis in (("approved", "grant"), ("paid", "grant"), ("paid", "fx_paid"),
                                     ("paid", "fx_grant")):
                    payments = chance.randint(5, 3000)
                    amounts.append({"month": month, "stage": stage, "basis": basis, "category": category,
                                    "currency": currency, "payments": payments,
                                    "people": max(5, payments // chance.randint(1, 3)),  # some paid more than once
                                    "amount_minor": payments * chance.randint(5_000, 60_000)})
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            for table in (MonthlyCount, MonthlyAmount, DurationHistogram):
                connection.execute(table.__table__.delete())  # type: ignore[attr-defined]
            connection.execute(MonthlyCount.__table__.insert(), counts)  # type: ignore[attr-defined]
            connection.execute(MonthlyAmount.__table__.insert(), amounts)  # type: ignore[attr-defined]
            connection.execute(DurationHistogram.__table__.insert(), histograms)  # type: ignore[attr-defined]
            connection.execute(CurrencyDigits.__table__.delete())  # type: ignore[attr-defined]
            connection.execute(CurrencyDigits.__table__.insert(),  # type: ignore[attr-defined]
                               [{"currency": c, "digits": d} for c, d in CURRENCIES.items()])
    finally:
        engine.dispose()
    return {"monthly_counts": len(counts), "monthly_amounts": len(amounts), "duration_histograms": len(histograms)}


def reports(run: scenarios.Run, workdir: Path, backing: Callable[[], Backing], *,
            progress: Callable[[str], None]) -> None:
    settings = run.settings
    system = System(workdir / "reports", backing())
    part: dict[str, Any] = {"cases": CASES, "target_p95_ms": TARGET_P95_MS}
    try:
        system.start()
        progress(f"reports: writing a year of aggregates for {CASES:,} cases")
        part["rows"] = seed(system.database_url("reports"))
        coordinator = api.staff(system.url, ADMIN_PASSWORD, {"bench.coordinator": ["coordinator"]})[
            "bench.coordinator"]
        months = domain.period(None, None)
        query = f"/api/reports/programme?from={months[0]}&to={months[-1]}"
        check = coordinator.call("GET", query)
        assert check["cases"]["total"] != 0, "the seeded year is not what the report reads"
        headers = coordinator.auth
        with baseline_server() as (baseline_url, _pid):
            for clients in CLIENTS:
                for round_ in range(settings.rounds):
                    progress(f"reports: {clients} client(s), round {round_ + 1}")
                    for name, base, path in (("baseline", baseline_url, "/healthz"),
                                             ("json", system.url, query + "&format=json"),
                                             ("csv", system.url, query + "&format=csv")):
                        result = run_load(LoadSpec(
                            base_url=base, requests=[RequestSpec(path=path, headers=headers if base != baseline_url
                                                                 else {})],
                            concurrency=clients, duration=settings.duration, warmup=settings.warmup))
                        kept = part.setdefault(f"{name}@{clients}", None)
                        if kept is None or result.latency_ms.p95 < kept["latency_ms"]["p95"]:
                            part[f"{name}@{clients}"] = result.model_dump()
    finally:
        system.stop()
        system.backing.drop_databases()
    run.results["reports"] = part
