"""OpenTelemetry traces across the gateway, the services and NATS: off by default, on by setting.

    REHAB_OTEL_ENABLED=true
    REHAB_OTEL_EXPORTER_ENDPOINT=http://collector:4318/v1/traces   (OTLP over HTTP), or `console`

HTTP server spans come from the FastAPI instrumentation, database spans from the SQLAlchemy one, outbound HTTP
(the gateway's forwarding client) from the aiohttp one. NATS is traced by hand: the relay publishes each event in a
producer span whose context rides in the message's `traceparent` header, and a consumer applies the event in a
consumer span that continues it; so one trace runs request → outbox → stream → the other service's handler.

Span data leaves the process, and the people in these records are hunted. So every span passes a scrubber before
any exporter sees it: URLs lose their query strings (a search by name is a query), exception messages and status
descriptions are dropped (a database error quotes the values it refused), only the exception type stays.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from opentelemetry import trace
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from pydantic_settings import BaseSettings, SettingsConfigDict

from kit import logs

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from sqlalchemy import Engine

    from kit.settings import ProcessSettings

log = logs.get("tracing")

_PROPAGATOR = TraceContextTextMapPropagator()
# Probes and scrapes would bury the traces that matter.
_UNTRACED_PATHS = "healthz,readyz,metrics"

# One tracer provider per service name: in production a process is one service; in tests several share a process.
_providers: dict[str, TracerProvider] = {}
_last_service: str | None = None
_client_instrumented = False


class TracingSettings(BaseSettings):
    """Where spans go. Whether they are made at all is `ProcessSettings.otel_enabled` (REHAB_OTEL_ENABLED)."""

    model_config = SettingsConfigDict(env_prefix="REHAB_OTEL_", env_file=".env", extra="ignore")

    exporter_endpoint: str | None = None  # an OTLP/HTTP traces URL, or "console"


# ---- setting up --------------------------------------------------------------------------------------------------

def setup(service: str, settings: ProcessSettings, *, exporter: SpanExporter | None = None) -> TracerProvider | None:
    """Make this process's tracer provider for `service` when tracing is on; None (and nothing done) when it is off.

    `exporter` replaces the configured one (tests pass an in-memory exporter; it gets every span at once).
    """
    global _last_service, _client_instrumented
    if not settings.otel_enabled:
        return None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    provider = _providers.get(service)
    if provider is not None and exporter is None:
        return provider  # set up already (a test may have given it its own exporter first)
    if provider is None:
        provider = TracerProvider(resource=Resource.create({"service.name": f"rehab-{service}"}))
        _providers[service] = provider
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(ScrubbingExporter(exporter)))
    else:
        provider.add_span_processor(BatchSpanProcessor(ScrubbingExporter(_configured_exporter())))
    _last_service = service
    if not _client_instrumented:
        from opentelemetry.instrumentation.aiohttp_client import (
            AioHttpClientInstrumentor,
        )

        # Every aiohttp session made from now on gets client spans, and sends the trace on in `traceparent`.
        AioHttpClientInstrumentor().instrument(tracer_provider=provider, url_filter=_without_query)
        _client_instrumented = True
    log.info("tracing on")
    return provider


def _configured_exporter() -> SpanExporter:
    endpoint = TracingSettings().exporter_endpoint
    if endpoint and endpoint != "console":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter,
        )

        return OTLPSpanExporter(endpoint=endpoint)
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    if not endpoint:
        log.warning("REHAB_OTEL_EXPORTER_ENDPOINT is not set: spans are written to stdout")
    return ConsoleSpanExporter()


def instrument_app(app: FastAPI, service: str | None = None) -> None:
    """Server spans for every request to `app` (the provider of `service`, else the one set up last)."""
    provider = _provider(service)
    if provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    # The instrumentation's middleware wraps the whole stack, so kit.http's middleware runs inside the server span
    # and hands that span's context on (to the outbox, to forwarded requests).
    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider, excluded_urls=_UNTRACED_PATHS,
                                       exclude_spans=["receive", "send"])


def instrument_engine(engine: Engine, service: str) -> None:
    """A span per SQL statement on this engine (statement text only, never the bound values)."""
    provider = _provider(service)
    if provider is None:
        return
    from opentelemetry.instrumentation.sqlalchemy import __version__
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.metrics import NoOpMeterProvider

    # Per engine, not SQLAlchemyInstrumentor().instrument(): that patches create_engine for the whole process, once.
    usage = NoOpMeterProvider().get_meter("rehab").create_up_down_counter("db.client.connections.usage")
    EngineTracer(provider.get_tracer("opentelemetry.instrumentation.sqlalchemy", __version__), engine, usage)


def shutdown() -> None:
    """Flush and forget every provider, and stop client spans (tests turn tracing on and off in one process)."""
    global _last_service, _client_instrumented
    for provider in _providers.values():
        provider.shutdown()
    _providers.clear()
    _last_service = None
    if _client_instrumented:
        from opentelemetry.instrumentation.aiohttp_client import (
            AioHttpClientInstrumentor,
        )

        AioHttpClientInstrumentor().uninstrument()
        _client_instrumented = False


def enabled() -> bool:
    return bool(_providers)


def _provider(service: str | None) -> TracerProvider | None:
    return _providers.get(service or _last_service or "")


# ---- the current trace, for the outbox and for kit.context ----------------------------------------------------

def current_traceparent() -> str | None:
    """The W3C traceparent of the span now current, or None when tracing is off or no span is recording."""
    if not _providers:
        return None
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-{int(span_context.trace_flags):02x}"


# ---- NATS, by hand ------------------------------------------------------------------------------------------------

@contextmanager
def publishing(service: str, subject: str, headers: dict[str, str]) -> Iterator[dict[str, str]]:
    """A producer span for one publish, child of the trace stored with the outbox row; yields the headers to send,
    whose `traceparent` now names this span."""
    provider = _provider(service)
    if provider is None:
        yield headers
        return
    parent = _PROPAGATOR.extract(headers)
    tracer = provider.get_tracer("rehab.bus")
    with tracer.start_as_current_span(f"send {subject}", context=parent, kind=SpanKind.PRODUCER,
                                      attributes=_messaging(subject, headers)):
        sent = dict(headers)
        _PROPAGATOR.inject(sent)
        yield sent


@contextmanager
def consuming(service: str, consumer: str, subject: str, headers: Mapping[str, str] | None,
              fallback_traceparent: str | None = None) -> Iterator[None]:
    """A consumer span around applying one event, continuing the trace from the message's `traceparent` header
    (or the envelope's, for a message published without one)."""
    provider = _provider(service)
    if provider is None:
        yield
        return
    carrier = dict(headers or {})
    if "traceparent" not in carrier and fallback_traceparent:
        carrier["traceparent"] = fallback_traceparent
    parent = _PROPAGATOR.extract(carrier)
    tracer = provider.get_tracer("rehab.bus")
    attributes = {**_messaging(subject, carrier), "messaging.consumer.group.name": consumer}
    with tracer.start_as_current_span(f"process {subject}", context=parent, kind=SpanKind.CONSUMER,
                                      attributes=attributes):
        yield


def _messaging(subject: str, headers: Mapping[str, str]) -> dict[str, str]:
    attributes = {"messaging.system": "nats", "messaging.destination.name": subject}
    if headers.get("Nats-Msg-Id"):
        attributes["messaging.message.id"] = headers["Nats-Msg-Id"]
    return attributes


# ---- what leaves the process -------------------------------------------------------------------------------------

_URL_ATTRIBUTES = frozenset({"http.url", "url.full", "http.target"})
_DROPPED_ATTRIBUTES = frozenset({"url.query", "db.query.parameter", "db.statement.parameters"})
_KEPT_EVENT_ATTRIBUTES = frozenset({"exception.type", "exception.escaped"})


def _without_query(url: Any) -> str:
    """The URL a client span records: no query string, no fragment, no credentials."""
    parts = urlsplit(str(url))
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def _strip_query(value: Any) -> Any:
    return value.split("?", 1)[0].split("#", 1)[0] if isinstance(value, str) else value


def scrub(span: ReadableSpan) -> ReadableSpan:
    """A copy of `span` with nothing that may hold a person's data: no query strings, no exception messages or
    stack traces, no status description."""
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.trace import Status

    attributes = {
        key: _strip_query(value) if key in _URL_ATTRIBUTES else value
        for key, value in (span.attributes or {}).items()
        if key not in _DROPPED_ATTRIBUTES
    }
    events = [
        Event(event.name, {k: v for k, v in (event.attributes or {}).items() if k in _KEPT_EVENT_ATTRIBUTES},
              event.timestamp)
        for event in span.events
    ]
    return ReadableSpan(
        name=span.name, context=span.context, parent=span.parent, resource=span.resource, attributes=attributes,
        events=events, links=span.links, kind=span.kind, status=Status(span.status.status_code),
        start_time=span.start_time, end_time=span.end_time, instrumentation_scope=span.instrumentation_scope,
    )


class ScrubbingExporter:
    """A span exporter that hands the wrapped one scrubbed copies of the spans, never the originals.

    Duck-typed rather than subclassing the SDK's `SpanExporter`, so that importing this module costs nothing while
    tracing is off (the span processors only call these three methods)."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> Any:
        return self.inner.export([scrub(span) for span in spans])

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)
