"""Cursor pagination: `?limit=&cursor=` → `{"items": [...], "next_cursor": null | "..."}`."""

from __future__ import annotations

import base64
from typing import Generic, TypeVar

from pydantic import BaseModel

from kit.problems import Problem

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except Exception as exc:
        raise Problem(400, "The cursor is not one this API gave out.", kind="invalid-cursor") from exc
