"""Fixtures for the console tests: every service as a process (once per module) behind a gateway in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.integration.gateway.door import Backends, Door, open_gateway
from tests.integration.gateway.conftest import backends, gateway_settings  # noqa: F401 (fixtures, re-used as they are)


@pytest.fixture
async def door(backends: Backends, gateway_settings) -> AsyncIterator[Door]:  # noqa: F811
    """The gateway in front of every service, on their NATS: the staff it creates reach intake's staff directory (a
    case is given only to enabled caseworkers the directory knows). A test module may define its own."""
    settings = gateway_settings(backends.secrets_dir, nats_url=backends.nats_url,
                                **{f"{name}_url": url for name, url in backends.urls.items()})
    async with open_gateway(settings) as opened:
        yield opened
