"""kit.context: a caller's traceparent keeps its trace id only when it is one (32 lowercase hex digits, not all zero).
It rides on every outbox row and event, kept on the stream for good: a reviewer wrote a name in its 32 characters."""

from __future__ import annotations

import re

import pytest

from kit.context import new_traceparent

SHAPE = re.compile(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01")


def test_a_valid_trace_id_is_kept_with_a_new_span():
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    made = new_traceparent(parent)
    assert SHAPE.fullmatch(made) and made.split("-")[1] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert made.split("-")[2] != "00f067aa0ba902b7"


@pytest.mark.parametrize("parent", [
    "00-ZQXWVtraceparent0000000000000000-1315b1d88be4d2f4-01",  # 32 characters, not hex: the reviewer's
    "00-Ivan Ivanov 14 03 1987 Hrodna-1315b1d88be4d2f4-01",
    "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  # upper case is not the W3C form
    "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # all zero: invalid by the spec
    "garbage", "",
])
def test_anything_else_is_replaced_by_a_fresh_trace_id(parent):
    made = new_traceparent(parent)
    assert SHAPE.fullmatch(made), made
    assert made.split("-")[1] not in parent
