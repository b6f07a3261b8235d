"""The console's requests with an Idempotency-Key: a form sent twice at once (a double click) is answered 409 "still
in flight" for the second while the first runs (SPEC §4); the console asks again, briefly, until the first's answer is
replayed, so the person sees what the form did, not "still being processed". Bounded, and only for that 409."""

from __future__ import annotations

import asyncio
import sys
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from gateway.console.router import Visit, call
from gateway.replicas import SILENT_AFTER, Replicas
from kit.auth import Principal
from tests.console.test_console_finance import (
    QUEUE,
    ask,
    case_of,
    form_in,
    grant_of,
    person,
    state_of,
)

console = sys.modules[call.__module__]  # the module (the package's `router` is its APIRouter)

IN_FLIGHT = {"type": "https://rehab.support/problems/idempotency-key-in-flight", "title": "in flight", "status": 409}
CREATED = {"id": "case-1"}


class Service:
    """Answers each request with the next of `answers` (the last one again once they run out), noting what it got."""

    def __init__(self, *answers: tuple[int, dict[str, Any], dict[str, str]]) -> None:
        self.answers = list(answers)
        self.got: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.got.append(request)
        status, body, headers = self.answers[min(len(self.got), len(self.answers)) - 1]
        return httpx.Response(status, json=body, headers=headers)


def in_flight(retry_after: str = "1") -> tuple[int, dict[str, Any], dict[str, str]]:
    return 409, IN_FLIGHT, {"Retry-After": retry_after, "Content-Type": "application/problem+json"}


def visit_to(service: Service) -> Visit:
    """A caseworker's visit to a console whose only service is `service` (gateway.replicas' interface, in short)."""
    replicas = Replicas("intake", ("http://intake",))
    urls = type("Urls", (), {"replicas": lambda _self, _backend: replicas,
                             "__getitem__": lambda _self, _backend: "http://intake"})()
    settings = SimpleNamespace(backend_timeout_seconds=5, backend_connect_timeout_seconds=1)
    runtime = SimpleNamespace(settings=settings, calls=httpx.AsyncClient(transport=httpx.MockTransport(service)))
    app = SimpleNamespace(state=SimpleNamespace(backend_urls=urls, runtime=runtime))
    # The browser's request a form came in: a JSON one, so not a form sent again by "Send it again".
    sent = SimpleNamespace(app=app, method="POST", headers={"content-type": "application/json"})
    return Visit(request=sent, token="t",  # type: ignore[arg-type]
                 principal=Principal(sub="cw", roles=frozenset({"caseworker"})), language="en")


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    monkeypatch.setattr(console, "IN_FLIGHT_PAUSE_SECONDS", 0.01)


async def test_a_form_sent_while_its_first_sending_still_runs_ends_with_the_first_answer():
    service = Service(in_flight(), in_flight(), (201, CREATED, {"Idempotent-Replayed": "true"}))
    answer = await call(visit_to(service), "POST", "/api/intake/cases", json={"full_name": "A"}, idempotency_key="k")
    assert answer.status == 201 and answer.body == CREATED
    assert len(service.got) == 3
    assert {r.headers["Idempotency-Key"] for r in service.got} == {"k"} and len({r.content for r in service.got}) == 1


@pytest.mark.parametrize("sent", [
    {"idempotency_key": None},  # no key: the 409 is not "still in flight" of this request's key
    {"idempotency_key": "k", "retry_after": "20"},  # a claim a crash may have left: not worth waiting for here
    {"idempotency_key": "k", "files": {"document": ("a.pdf", b"%PDF", "application/pdf")}},  # never sent twice
])
async def test_other_in_flight_answers_are_answers_at_once(sent):
    service = Service(in_flight(sent.pop("retry_after", "1")), (201, CREATED, {}))
    answer = await call(visit_to(service), "POST", "/api/intake/cases", **sent)
    assert answer.status == 409 and answer.kind == "idempotency-key-in-flight" and len(service.got) == 1


async def test_another_conflict_is_not_asked_again():
    service = Service((409, {"type": "https://rehab.support/problems/case-closed", "status": 409},
                       {"Retry-After": "1"}), (201, CREATED, {}))
    answer = await call(visit_to(service), "POST", "/api/intake/cases", json={}, idempotency_key="k")
    assert answer.status == 409 and answer.kind == "case-closed" and len(service.got) == 1


async def test_a_request_in_flight_for_too_long_is_answered_409_after_a_bounded_wait(monkeypatch):
    monkeypatch.setattr(console, "IN_FLIGHT_WAIT_SECONDS", 0.2)
    service = Service(in_flight())
    answer = await call(visit_to(service), "POST", "/api/intake/cases", json={}, idempotency_key="k")
    assert answer.status == 409 and answer.kind == "idempotency-key-in-flight"
    assert 2 <= len(service.got) <= 21


async def test_a_pay_form_sent_twice_at_once_ends_on_the_success_page_both_times_and_pays_once(door):
    """The double click through the whole console: the second sending meets the first still in flight at funds (409),
    asks again and gets the first's answer replayed: both end on "paid", and the money went out once."""
    anna, boris = await person(door, "finance"), await person(door, "finance")
    olga = await person(door, "caseworker")
    grant = await grant_of(door, anna.api, amount="1000.00")
    asked = await ask(door, olga.api, await case_of(door, olga.api), grant, amount="250.00")
    approve = f"{QUEUE}/{asked['id']}/approve"
    queue = await boris.visitor.get(QUEUE)
    assert (await boris.visitor.post(approve, data=form_in(queue.text, approve))).status_code == 303

    pay = f"{QUEUE}/{asked['id']}/pay"
    payment = {**form_in((await boris.visitor.get(QUEUE)).text, pay), "method": "bank_transfer", "reference": "TX-1"}
    both = await asyncio.gather(boris.visitor.post(pay, data=payment), boris.visitor.post(pay, data=payment))
    assert [(a.status_code, a.headers.get("location")) for a in both] == [(303, f"{QUEUE}?done=paid")] * 2
    assert (await state_of(door, anna.api, asked["id"]))["status"] == "paid"
    balances = (await door.client.get(f"/api/funds/grants/{grant['id']}", headers=anna.api)).json()
    assert (balances["paid"], balances["available"]) == ("250.00", "750.00")


@pytest.mark.parametrize(("method", "said"), [("POST", (504, "service-timeout")), ("GET", (503, ""))])
async def test_a_page_waiting_on_a_service_that_hangs_is_answered_once_its_probes_go_unanswered(method, said):
    """A stopped process accepts the console's call and never answers: the page is answered when the gateway takes
    the service for silent (gateway.replicas), not at the end of the backend timeout (an outside review's find). A
    change is said as maybe done (the process carries it out when it wakes: a reviewer was told "nothing changed"
    of a referral accepted after); a read, as the service away."""

    async def hangs(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)
        raise AssertionError("never answered")

    visit = visit_to(hangs)  # type: ignore[arg-type]
    replicas = visit.request.app.state.backend_urls.replicas("intake")

    async def probes_unanswered() -> None:
        def no_answer(request: httpx.Request) -> httpx.Response:
            raise httpx.ReadTimeout("no answer", request=request)

        async with httpx.AsyncClient(transport=httpx.MockTransport(no_answer)) as probes:
            for _ in range(SILENT_AFTER):
                await asyncio.sleep(0.05)
                await replicas.probe(probes, timeout=0.1)

    answer, _ = await asyncio.wait_for(asyncio.gather(call(visit, method, "/api/intake/cases"), probes_unanswered()),
                                       timeout=4)  # the backend timeout here is 5 s
    assert (answer.status, answer.kind) == said


@pytest.mark.parametrize(("error", "said"), [
    (httpx.ReadTimeout, (504, "problem_timeout")),  # sent, no answer in time: it may be done
    (httpx.RemoteProtocolError, (504, "problem_timeout")),  # the connection closed before an answer: the same
    (httpx.ConnectError, (503, "problem_unavailable")),  # never reached the service: nothing was done
])
async def test_a_change_sent_and_never_answered_is_said_as_maybe_done_not_as_refused(error, said):
    from gateway.console import i18n

    def fails(request: httpx.Request) -> httpx.Response:
        raise error("no answer", request=request)

    answer = await call(visit_to(fails), "POST", "/api/intake/cases", json={"full_name": "A"},  # type: ignore[arg-type]
                        idempotency_key="k")
    assert (answer.status, answer.problem) == (said[0], i18n.MESSAGES["en"][said[1]])
    read = await call(visit_to(fails), "GET", "/api/intake/cases")  # type: ignore[arg-type]
    assert (read.status, read.problem) == (503, i18n.MESSAGES["en"]["problem_unavailable"])
