"""The event envelope (CloudEvents 1.0 attribute names, structured JSON) and writing events to the outbox."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import insert
from sqlmodel import Session

from kit import context, tracing
from kit.tables import KitTables

SPEC_VERSION = "1.0"


class Envelope(BaseModel):
    """One event. `subject` is the aggregate id; `data` never holds personal data."""

    model_config = ConfigDict(extra="allow")

    specversion: str = SPEC_VERSION
    id: str
    source: str
    type: str
    time: datetime
    subject: str
    datacontenttype: str = "application/json"
    dataschema: str
    data: dict[str, Any]
    traceparent: str | None = None
    requestid: str | None = None

    @classmethod
    def new(cls, *, source: str, type: str, subject: str, data: dict[str, Any], version: int = 1) -> Envelope:
        return cls(
            id=str(uuid.uuid4()),
            source=source,
            type=type,
            time=datetime.now(UTC),
            subject=subject,
            dataschema=f"urn:rehab:events:{type}:v{version}",
            data=data,
            # With tracing on, the span now current (so the consumer's span joins this request's trace).
            traceparent=tracing.current_traceparent() or context.traceparent(),
            requestid=context.request_id(),
        )

    def to_bytes(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Envelope:
        return cls.model_validate_json(raw)


class Publisher:
    """The one way a service publishes: `publish(session, SUBJECT, Payload(...), about=aggregate_id)` in a use case
    writes the event to the outbox in the unit of work's transaction; the relay sends it once that commits. A service
    builds one in its `events.py` from its source and the payload model of each subject it publishes (the same map
    documents its events), and a payload that is not its subject's is refused before anything is written."""

    def __init__(self, source: str, published: Mapping[str, type[BaseModel]], tables: KitTables) -> None:
        self.source = source
        self.published = published
        self.tables = tables

    def __call__(self, session: Session, subject: str, payload: BaseModel, *, about: str) -> Envelope:
        expected = self.published.get(subject)
        if expected is None or not isinstance(payload, expected):
            carries = expected.__name__ if expected else "nothing: it is not one of this service's subjects"
            raise TypeError(f"{subject} carries {carries}, not {type(payload).__name__}")
        return record_event(session, self.tables, source=self.source, type=subject, subject=about,
                            data=payload.model_dump(mode="json"))


def record_event(
    session: Session, tables: KitTables, *, source: str, type: str, subject: str, data: dict[str, Any], version: int = 1
) -> Envelope:
    """Add an event to the outbox inside the caller's transaction; it is published only if that commits (the unit of
    work then wakes the relay: `outbox_dirty`, read by `Bus._wake_on_events`)."""
    envelope = Envelope.new(source=source, type=type, subject=subject, data=data, version=version)
    headers = {"Nats-Msg-Id": envelope.id}
    if envelope.traceparent:
        headers["traceparent"] = envelope.traceparent
    if envelope.requestid:
        headers["X-Request-ID"] = envelope.requestid
    # Parameters apart from the statement: a statement built with `.values(...)` costs more to build than to run.
    session.execute(insert(tables.outbox), {
        "event_id": envelope.id, "subject": type, "aggregate_id": subject, "envelope": envelope.to_bytes().decode(),
        "headers": json.dumps(headers), "created_at": envelope.time, "published_at": None, "attempts": 0,
    })
    session.info["outbox_dirty"] = True
    return envelope
