"""Defence in depth: a token that opens only the second factor's enrolment is refused by every service itself,
not only by the gateway; and a partner's staff member acts for exactly one partner, like its API client."""

from __future__ import annotations

from typing import Annotated

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from kit import problems
from kit.auth import Principal, TokenIssuer, TokenVerifier, require_partner, require_roles


def app_and_issuer() -> tuple[TestClient, TokenIssuer]:
    key = Ed25519PrivateKey.generate()
    issuer = TokenIssuer(key, issuer="rehab-gateway", audience="rehab-api")
    app = FastAPI()
    problems.install(app)
    app.state.token_verifier = TokenVerifier(key.public_key(), issuer="rehab-gateway", audience="rehab-api")

    @app.get("/cases")
    async def cases(principal: Annotated[Principal, Depends(require_roles("caseworker"))]) -> dict:
        return {"sub": principal.sub}

    @app.get("/partner")
    async def partner(principal: Annotated[Principal, Depends(require_partner)]) -> dict:
        return {"partner_id": principal.partner_id}

    return TestClient(app), issuer


def test_an_enrolment_token_is_refused_by_the_service():
    client, issuer = app_and_issuer()
    enrolling = issuer.issue(sub="u1", roles=["caseworker"], extra={"scope": "mfa_enrol"})
    full = issuer.issue(sub="u1", roles=["caseworker"], extra={"sid": "s1"})

    refused = client.get("/cases", headers={"Authorization": f"Bearer {enrolling}"})

    assert refused.status_code == 403 and refused.json()["type"].endswith("/mfa-enrolment-required")
    assert client.get("/cases", headers={"Authorization": f"Bearer {full}"}).status_code == 200


def test_partner_staff_pass_the_partner_door_for_their_partner_and_no_mixed_token_does():
    client, issuer = app_and_issuer()
    staff = issuer.issue(sub="u2", roles=["partner_staff"], partner_id="p-1")
    mixed = issuer.issue(sub="u3", roles=["partner_staff", "caseworker"], partner_id="p-1")
    unbound = issuer.issue(sub="u4", roles=["partner_staff"])

    assert client.get("/partner", headers={"Authorization": f"Bearer {staff}"}).json() == {"partner_id": "p-1"}
    assert client.get("/partner", headers={"Authorization": f"Bearer {mixed}"}).status_code == 401
    assert client.get("/partner", headers={"Authorization": f"Bearer {unbound}"}).status_code == 401
    assert client.get("/cases", headers={"Authorization": f"Bearer {staff}"}).status_code == 403
