"""What the load generator is told and what it answers: shared by the harness and `bench.load`'s own process."""

from __future__ import annotations

import ipaddress
import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, model_validator

MAX_DURATION_SECONDS = 120.0  # no single run may go on longer, whatever a caller asks


class RequestSpec(BaseModel):
    method: str = "GET"
    path: str
    headers: dict[str, str] = Field(default_factory=dict)
    json_body: Any = None
    # A body as bytes from a file (a multipart upload of megabytes, which JSON would carry badly); its Content-Type
    # goes in `headers`. Read once per file by the generator, however many requests send it.
    body_file: str | None = None

    @model_validator(mode="after")
    def _one_body(self) -> RequestSpec:
        if self.json_body is not None and self.body_file is not None:
            raise ValueError("a request has a JSON body or a body file, not both")
        return self


class LoadSpec(BaseModel):
    """One bounded run against one server on this machine."""

    base_url: str
    requests: list[RequestSpec] = Field(min_length=1)
    cycle: bool = True  # start the list again when it is used up; False: each request is sent at most once
    concurrency: int = Field(1, ge=1, le=1024)
    duration: float = Field(5.0, gt=0, le=MAX_DURATION_SECONDS)
    max_requests: int | None = Field(None, ge=1)
    warmup: float = Field(0.0, ge=0, le=30)
    rate: float | None = Field(None, gt=0, le=10_000)  # requests per second (open loop); None: closed loop
    timeout: float = Field(30.0, gt=0)
    collect: str | None = None  # a field of each 2xx JSON answer to return (for example "id")
    # With `collect`: each value as [value, due, answered, index of its request in `requests`], the times in seconds
    # of CLOCK_MONOTONIC (`time.monotonic()`, the same clock in every process on this machine), so that another
    # process can time what each answer set off.
    timeline: bool = False

    @model_validator(mode="after")
    def _warm_up_needs_reusable_requests(self) -> LoadSpec:
        if self.warmup and not self.cycle:
            raise ValueError("a warm-up would spend requests meant to be sent once: set cycle or no warm-up")
        return self


class Latency(BaseModel):
    p50: float
    p95: float
    p99: float
    max: float
    mean: float


class LoadResult(BaseModel):
    requests: int
    seconds: float
    rps: float
    ok: int  # 2xx answers
    statuses: dict[str, int]
    latency_ms: Latency
    collected: list[Any] = Field(default_factory=list)
    error_samples: dict[str, str] = Field(default_factory=dict)  # the start of one answer per status that is not 2xx
    # Filled in by the harness, not the generator: the cores each process kept busy during the run (harness.CpuUse).
    cpu_cores: dict[str, float] = Field(default_factory=dict)


class PreparedRequest:
    """A request with its body already encoded, so the hot loop only sends bytes."""

    __slots__ = ("method", "path", "headers", "body", "index")

    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes | None, index: int = 0) -> None:
        self.method, self.path, self.headers, self.body, self.index = method, path, headers, body, index

    @classmethod
    def from_spec(cls, spec: RequestSpec, index: int = 0) -> PreparedRequest:
        headers = dict(spec.headers)
        body = None
        if spec.json_body is not None:
            body = json.dumps(spec.json_body, ensure_ascii=False).encode()
            headers.setdefault("Content-Type", "application/json")
        elif spec.body_file is not None:
            body = _file_bytes(spec.body_file)
        return cls(spec.method, spec.path, headers, body, index)


@lru_cache(maxsize=8)
def _file_bytes(path: str) -> bytes:
    return Path(path).read_bytes()


def check_loopback(url: str) -> None:
    """Refuse any target but this machine's loopback: the generator is for our own servers only."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise ValueError(f"the load generator only targets loopback addresses, not {host!r}")


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list (0 for an empty one)."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def summarize(latencies: list[float], statuses: dict[str, int], seconds: float, *, collected: list[Any] | None = None,
              samples: dict[str, str] | None = None) -> LoadResult:
    ordered = sorted(latencies)
    ms = [x * 1000 for x in ordered]
    ok = sum(count for status, count in statuses.items() if status.startswith("2"))
    return LoadResult(
        requests=len(ordered), seconds=round(seconds, 3), rps=round(ok / seconds, 1) if seconds > 0 else 0.0, ok=ok,
        statuses=statuses,
        latency_ms=Latency(p50=round(percentile(ms, 0.50), 2), p95=round(percentile(ms, 0.95), 2),
                           p99=round(percentile(ms, 0.99), 2), max=round(ms[-1], 2) if ms else 0.0,
                           mean=round(sum(ms) / len(ms), 2) if ms else 0.0),
        collected=collected or [], error_samples=samples or {},
    )
