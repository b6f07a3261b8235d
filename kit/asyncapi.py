"""AsyncAPI 3 documents generated from the event payload models, so the published contract cannot drift.

Each service serves the channels it publishes at `/asyncapi.json`; the gateway merges them into one document.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from kit.events import Envelope


def _key(subject: str) -> str:
    return subject.replace(".", "_")


def document(title: str, published: dict[str, type[BaseModel]], *, version: str = "1.0.0") -> dict[str, Any]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    envelope_schema = Envelope.model_json_schema()
    envelope_schema["properties"].pop("data", None)
    schemas["Envelope"] = envelope_schema
    for subject, model in sorted(published.items()):
        key = _key(subject)
        payload = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub_schema in payload.pop("$defs", {}).items():
            schemas[name] = sub_schema
        schemas[model.__name__] = payload
        messages[key] = {
            "name": subject,
            "title": subject,
            "contentType": "application/json",
            "summary": (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ else subject,
            "headers": {"type": "object", "properties": {
                "Nats-Msg-Id": {"type": "string", "description": "the event id; JetStream de-duplicates on it"},
                "traceparent": {"type": "string"}, "X-Request-ID": {"type": "string"}}},
            "payload": {"allOf": [{"$ref": "#/components/schemas/Envelope"}, {
                "type": "object", "properties": {"data": {"$ref": f"#/components/schemas/{model.__name__}"},
                                                  "type": {"const": subject}}}]},
        }
        channels[key] = {"address": subject, "messages": {key: {"$ref": f"#/components/messages/{key}"}}}
        operations[f"publish_{key}"] = {"action": "send", "channel": {"$ref": f"#/channels/{key}"},
                                        "messages": [{"$ref": f"#/channels/{key}/messages/{key}"}]}
    return {
        "asyncapi": "3.0.0",
        "info": {"title": title, "version": version,
                 "description": "Events carry ids, categories and amounts only: never personal data."},
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }


def merge(title: str, documents: list[dict[str, Any]]) -> dict[str, Any]:
    merged = document(title, {})
    for doc in documents:
        for section in ("channels", "operations"):
            merged[section].update(doc.get(section, {}))
        for section in ("schemas", "messages"):
            merged["components"][section].update(doc.get("components", {}).get(section, {}))
    return merged


def router(title: str, published: dict[str, type[BaseModel]]) -> APIRouter:
    api = APIRouter()
    doc = document(title, published)

    @api.get("/asyncapi.json", include_in_schema=False)
    async def asyncapi() -> dict[str, Any]:
        return doc

    return api
