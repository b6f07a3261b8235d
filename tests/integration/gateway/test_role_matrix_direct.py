"""The role × route matrix on each service's own port, with no gateway in front (SPEC §2: every service re-checks the
role and the partner binding itself; the gateway is not the only wall).

Each service's own /openapi.json is walked as each role, with tokens signed by the gateway's key as the gateway
would sign them, against the same table that judges the gateway's merged document (matrix.py). The service's paths
are the gateway's paths (the gateway forwards a path as it is, by the prefixes of gateway/routing.py), so one table
says who may use what on both sides; a path the service serves outside its prefixes, other than its health, is a
failure (nothing says who may use it).
"""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.integration.gateway.door import SERVICES, Backends
from tests.integration.gateway.matrix import PARTNER_ROLES, PUBLIC, ROLES, service_operations, walk

pytestmark = pytest.mark.integration


def token_for(backends: Backends, role: str, partner_id: str | None = None) -> dict[str, str]:
    """A token as the gateway issues it (a staff handle in `username`), for a new user or API client."""
    sub = str(uuid.uuid4())
    if role in PARTNER_ROLES:
        partner_id = partner_id or str(uuid.uuid4())
    extra = None if role == "partner" else {"username": f"{role}.{sub[:8]}"}
    token = backends.issuer().issue(sub=sub, roles=[role], partner_id=partner_id, extra=extra)
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("service", SERVICES)
async def test_every_route_of_a_service_answers_each_role_on_its_own_port_as_the_spec_says(backends: Backends,
                                                                                           service: str):
    if service not in backends.urls:
        pytest.skip(f"{service} does not exist in this checkout yet")
    tokens = {role: token_for(backends, role) for role in ROLES}
    other_partner = token_for(backends, "partner")
    async with httpx.AsyncClient(base_url=backends.urls[service], timeout=10) as client:
        document = (await client.get("/openapi.json")).json()
        ops, strays = service_operations(document, service)
        assert not strays, f"{service} serves paths outside the prefixes the gateway forwards to it: {strays}"
        # Each says who may use it (x-roles, checked against the table by the walk), not only a 403 once tried.
        unsaid = [f"{method} {path}" for method, path, operation in ops
                  if "x-roles" not in operation and path not in PUBLIC]
        assert not unsaid, f"{service}'s document does not say who may use: {unsaid}"

        mismatches, walked = await walk(client, ops, tokens, other_partner, where=f"on {service}'s own port",
                                        documents_security=False)

    # Every service has a handful of routes of its own (intake: cases, referrals: partners and referrals, …);
    # reports has one (the programme report) beside the audit routes every service has.
    fewest = 3 if service == "reports" else 4
    assert walked >= fewest * len(ROLES), f"too few operations of {service} walked: is its /openapi.json complete?"
    assert not mismatches, "\n".join(mismatches)
