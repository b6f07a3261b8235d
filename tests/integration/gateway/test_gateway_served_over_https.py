"""REHAB_SERVED_OVER_HTTPS: behind a proxy that ends TLS, the gateway's own connection is plain HTTP, and unless the
proxy is named in REHAB_TRUSTED_PROXIES its X-Forwarded-Proto is not believed: the console's cookies went without
`Secure` (a reviewer's find on deploy/k8s, where the list ships empty). With the setting every cookie is `Secure`;
without it (`make run`, plain HTTP on loopback) a cookie is `Secure` only on a request that came by HTTPS."""

from __future__ import annotations

import pytest

from tests.integration.gateway.door import open_gateway

pytestmark = pytest.mark.integration


async def _cookies(settings, *, base_url: str = "http://testserver") -> list[str]:  # noqa: ANN001
    async with open_gateway(settings) as door:
        door.client.base_url = base_url
        answer = await door.client.get("/")  # the sign-in form, with its pre-session cookie
        cookies = answer.headers.get_list("set-cookie")
        assert answer.status_code == 200 and cookies, answer.text
        return cookies


async def test_served_over_https_every_cookie_is_secure(gateway_settings, secrets_dir):
    cookies = await _cookies(gateway_settings(secrets_dir, served_over_https=True))
    assert all("; secure" in cookie.lower() for cookie in cookies), cookies


async def test_by_default_a_cookie_is_secure_only_on_a_request_that_came_by_https(gateway_settings, secrets_dir):
    assert not any("; secure" in c.lower() for c in await _cookies(gateway_settings(secrets_dir)))
    on_https = await _cookies(gateway_settings(secrets_dir), base_url="https://testserver")
    assert all("; secure" in cookie.lower() for cookie in on_https), on_https
