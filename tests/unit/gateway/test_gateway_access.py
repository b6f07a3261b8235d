"""The checks on every forwarded request: verified tokens remembered, subjects' standing, budgets, headers."""

from __future__ import annotations

import time
import pytest

from gateway.access import Gatekeeper, RateLimit, Standing
from gateway.forward import request_headers, response_headers
from gateway.service import Standing as SubjectStanding
from kit import context
from kit.auth import Principal, TokenIssuer, TokenVerifier, VerifiedTokens
from kit.problems import Problem


@pytest.fixture
def tokens(token_issuer: TokenIssuer) -> VerifiedTokens:
    return VerifiedTokens(TokenVerifier(token_issuer.public_key(), issuer="rehab-gateway", audience="rehab-api"))


class CountingVerifier(TokenVerifier):
    calls = 0

    def verify(self, token: str) -> Principal:
        self.calls += 1
        return super().verify(token)


def test_a_token_is_verified_once_and_again_after_its_expiry(token_issuer: TokenIssuer):
    verifier = CountingVerifier(token_issuer.public_key(), issuer="rehab-gateway", audience="rehab-api")
    tokens = VerifiedTokens(verifier)
    token = token_issuer.issue(sub="u1", roles=["caseworker"])

    principal = tokens.verify(token)
    assert tokens.verify(token) is principal and verifier.calls == 1

    principal.claims["exp"] = time.time() - 1  # as it will be once its minutes have passed
    tokens.verify(token)
    assert verifier.calls == 2  # the signature and every claim are checked again by the kit's verifier
    with pytest.raises(Problem) as forged:
        tokens.verify(token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"))
    assert forged.value.status == 401


def test_standing_is_asked_again_after_its_time_or_when_forgotten():
    asked: list[str] = []
    current: dict[str, SubjectStanding | None] = {"u1": SubjectStanding(frozenset({"caseworker"}))}

    def lookup(sub: str, _partner_id: str | None) -> SubjectStanding | None:
        asked.append(sub)
        return current[sub]

    standing = Standing(lookup, ttl=60)
    principal = Principal(sub="u1", roles=frozenset({"caseworker"}))
    assert standing.allows(principal) and standing.allows(principal)
    assert asked == ["u1"]

    current["u1"] = None  # disabled
    assert standing.allows(principal)  # still trusted until asked again…
    standing.forget("u1")
    assert not standing.allows(principal)  # …which a change made through the gateway forces at once
    assert Standing(lookup, ttl=0).allows(principal) is False  # and with no trust period, always asked


def test_a_token_may_not_claim_more_roles_than_its_subject_holds_now():
    standing = Standing(lambda _sub, _pid: SubjectStanding(frozenset({"caseworker"})), ttl=60)

    assert not standing.allows(Principal(sub="u1", roles=frozenset({"caseworker", "admin"})))


def test_a_token_of_a_revoked_session_is_refused_and_the_others_pass():
    standing = Standing(lambda _sub, _pid: SubjectStanding(frozenset({"caseworker"}), frozenset({"s-old"})), ttl=60)

    def token(sid: str) -> Principal:
        return Principal(sub="u1", roles=frozenset({"caseworker"}), claims={"sid": sid})

    assert not standing.allows(token("s-old"))
    assert standing.allows(token("s-new"))


async def test_a_spent_budget_is_429_with_retry_after():
    budget = RateLimit("2/minute", scope="test")
    await budget.spend("a")
    await budget.spend("a")

    with pytest.raises(Problem) as limited:
        await budget.spend("a")
    await budget.spend("b")  # another principal has its own budget

    assert limited.value.status == 429
    assert 1 <= int(limited.value.headers["Retry-After"]) <= 60


async def test_the_gatekeeper_wants_a_bearer_token(tokens: VerifiedTokens, token_issuer: TokenIssuer):
    keeper = Gatekeeper(tokens, Standing(lambda _s, _p: SubjectStanding(frozenset({"auditor"})), ttl=1), RateLimit("5/minute", scope="t"))

    for header in (None, "", "Basic dXNlcjpwdw==", "Bearer ", f"bearer{token_issuer.issue(sub='x', roles=['auditor'])}"):
        with pytest.raises(Problem) as refused:
            await keeper.admit(header)
        assert refused.value.status == 401
    principal = await keeper.admit(f"Bearer {token_issuer.issue(sub='x', roles=['auditor'])}")
    assert principal.sub == "x"


def test_hop_by_hop_headers_stay_behind_and_forwarding_headers_are_the_gateways():
    scope = {
        "type": "http", "scheme": "https", "client": ("203.0.113.7", 50000),
        "headers": [
            (b"host", b"rehab.example"), (b"authorization", b"Bearer t"), (b"content-type", b"application/json"),
            (b"connection", b"keep-alive, x-private-hop"), (b"x-private-hop", b"1"), (b"keep-alive", b"timeout=5"),
            (b"te", b"trailers"), (b"upgrade", b"websocket"), (b"proxy-authorization", b"Basic abc"),
            (b"x-forwarded-for", b"10.0.0.1"), (b"cookie", b"session=1"), (b"content-length", b"2"),
            (b"idempotency-key", b"k1"), (b"if-match", b'"v1"'),
        ],
    }
    token = context.set_request_id("rid-1")
    try:
        headers = request_headers(scope)
    finally:
        context.reset_request_id(token)

    names = {name.lower() for name in headers}
    assert {"authorization", "content-type", "idempotency-key", "if-match"} <= names
    for gone in ("connection", "x-private-hop", "keep-alive", "te", "upgrade", "proxy-authorization", "cookie",
                 "host", "content-length"):
        assert gone not in names
    assert headers["X-Forwarded-For"] == "203.0.113.7"  # not what the caller claimed
    assert headers["X-Forwarded-Proto"] == "https" and headers["X-Forwarded-Host"] == "rehab.example"
    assert headers["X-Request-ID"] == "rid-1" and headers["traceparent"].startswith("00-")


def test_the_answer_loses_hop_by_hop_headers_and_gets_its_own_length():
    raw = ((b"Content-Type", b"application/json"), (b"Transfer-Encoding", b"chunked"), (b"Connection", b"x-hop"),
           (b"X-Hop", b"1"), (b"ETag", b'"v2"'), (b"Server", b"uvicorn"), (b"Content-Length", b"999"))

    kept = dict(response_headers(raw, 17))

    assert kept == {b"content-type": b"application/json", b"etag": b'"v2"', b"content-length": b"17"}


def test_no_length_on_answers_that_have_no_body_and_the_real_one_for_head():
    raw = ((b"content-length", b"0"), (b"etag", b'"v3"'))
    head_raw = ((b"content-length", b"512"), (b"content-type", b"application/json"), (b"connection", b"close"))

    assert dict(response_headers(raw, 0, status=204)) == {b"etag": b'"v3"'}
    assert dict(response_headers(head_raw, 0, status=200, method="HEAD")) == {
        b"content-length": b"512", b"content-type": b"application/json"}
