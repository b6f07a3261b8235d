"""A peer is asked as the caller: their token, the request id and their stated reason, the reason as its bytes came."""

from __future__ import annotations

from starlette.requests import Request

from kit import context
from kit.peers import Peer, on_behalf_of


def _request(headers: list[tuple[bytes, bytes]]) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers})


def test_the_callers_token_request_id_and_reason_go_along():
    reason = "Прызначаная калега ў адпачынку, дзяжурства".encode()
    token = context.set_request_id("req-7")
    try:
        headers = on_behalf_of(_request([(b"authorization", b"Bearer abc"), (b"access-reason", b"  " + reason + b"\t")]))
    finally:
        context.reset_request_id(token)
    assert headers == {"authorization": "Bearer abc", "x-request-id": "req-7", "access-reason": reason}


def test_no_reason_stated_sends_none():
    headers = on_behalf_of(_request([(b"authorization", b"Bearer abc")]))
    assert "access-reason" not in headers
    assert headers["authorization"] == "Bearer abc"


def test_replicas_are_asked_in_turn_each_once():
    peer = Peer("http://a:1/, http://b:2 ,,http://c:3", timeout_seconds=2.0, connect_seconds=0.5)
    assert list(peer.in_turn()) == ["http://a:1", "http://b:2", "http://c:3"]
    assert list(peer.in_turn()) == ["http://b:2", "http://c:3", "http://a:1"]
