"""The gateway's replicas of a service: round-robin over the healthy ones, ejection and return, probes."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest

from gateway.config import GatewaySettings
from gateway.replicas import SILENT_AFTER, Backends, Replicas, split_urls

A, B, C = "http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_setting_names_one_url_or_several() -> None:
    assert split_urls("http://127.0.0.1:8101/") == ("http://127.0.0.1:8101",)
    assert split_urls(f"{A}, {B}/,") == (A, B)
    with pytest.raises(ValueError):
        split_urls(" , ")


def test_the_gateway_settings_keep_the_single_url_form(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REHAB_INTAKE_URL", f"{A},{B}")
    backends = Backends(GatewaySettings().backends)
    assert backends.replicas("intake").urls == (A, B)
    assert backends.replicas("funds").urls == ("http://127.0.0.1:8103",)
    assert backends["funds"] == "http://127.0.0.1:8103"


def test_requests_take_the_replicas_in_turn() -> None:
    replicas = Replicas("intake", (A, B, C))
    assert Counter(replicas.choose() for _ in range(30)) == {A: 10, B: 10, C: 10}


def test_an_ejected_replica_is_left_out_until_its_time_is_up() -> None:
    clock = Clock()
    replicas = Replicas("intake", (A, B), eject_seconds=5, clock=clock)
    replicas.eject(A, why="test")
    assert {replicas.choose() for _ in range(10)} == {B}
    clock.now += 5.1
    assert {replicas.choose() for _ in range(10)} == {A, B}


def test_a_replica_restored_by_a_probe_comes_back_at_once() -> None:
    clock = Clock()
    replicas = Replicas("intake", (A, B), eject_seconds=60, clock=clock)
    replicas.eject(A, why="test")
    replicas.restore(A)
    assert {replicas.choose() for _ in range(10)} == {A, B}


def test_with_every_replica_ejected_they_are_still_tried_in_turn() -> None:
    replicas = Replicas("intake", (A, B))
    replicas.eject(A, why="test")
    replicas.eject(B, why="test")
    assert {replicas.choose() for _ in range(10)} == {A, B}


def test_a_second_try_goes_elsewhere_and_there_is_no_third() -> None:
    replicas = Replicas("intake", (A, B))
    for _ in range(5):
        first = replicas.choose()
        assert replicas.choose(besides=(first,)) == ({A, B} - {first}).pop()
    assert replicas.choose(besides=(A, B)) is None


def test_a_lone_replica_is_never_ejected() -> None:
    replicas = Replicas("intake", (A,))
    replicas.eject(A, why="test")
    assert replicas.healthy() == [A]


def test_a_probe_ejects_on_503_or_no_answer_and_restores_on_200() -> None:
    answers = {A: 200, B: 503, C: None}

    def handler(request: httpx.Request) -> httpx.Response:
        base = f"{request.url.scheme}://{request.url.host}:{request.url.port}"
        assert request.url.path == "/readyz"
        if answers[base] is None:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(answers[base])

    replicas = Replicas("intake", (A, B, C))
    replicas.eject(A, why="earlier")

    async def probe() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            await replicas.probe(client, timeout=1)

    asyncio.run(probe())
    assert replicas.healthy() == [A]
    answers.update({B: 200, C: 500})  # a 500 is a bug of one request, not a replica that cannot serve
    asyncio.run(probe())
    assert replicas.healthy() == [A, B]


def test_every_replica_is_probed_and_a_lone_one_that_never_answers_is_silent_but_never_ejected() -> None:
    """A lone replica has nowhere else to send requests, so it is never ejected; but one whose probes go unanswered
    again and again (hung) is silent, and its routes are answered at once (gateway.forward)."""
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        if str(request.url).startswith(C):
            raise httpx.ReadTimeout("no answer", request=request)
        return httpx.Response(200)

    backends = Backends({"intake": f"{A},{B}", "funds": C})

    async def watch_briefly() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            task = asyncio.create_task(backends.watch(client, every=0.01))

            async def rounds() -> None:
                while len(asked) < 3 * (SILENT_AFTER + 1):
                    await asyncio.sleep(0.01)

            await asyncio.wait_for(rounds(), 10)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(watch_briefly())
    assert {url.rsplit("/", 1)[0] for url in asked} == {A, B, C}
    funds, intake = backends.replicas("funds"), backends.replicas("intake")
    assert funds.all_silent() and funds.healthy() == [C] and backends["funds"] == C
    assert not intake.all_silent()
