"""Fixtures for the gateway tests (helpers in door.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.config import GatewaySettings
from tests.integration.gateway.door import (
    ADMIN_PASSWORD,
    CHEAP_HASHING,
    SERVICES,
    Backends,
    Door,
    backends_running,
    existing_services,
    open_gateway,
)
from tests.support.nats import free_port


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backends]:
    """Every service this checkout has, running as processes for the whole test module."""
    with backends_running(tmp_path_factory.mktemp("backends"), existing_services()) as running_backends:
        yield running_backends


@pytest.fixture
def gateway_settings(tmp_path: Path, database_url_factory: Callable[[str], str]) -> Callable[..., GatewaySettings]:
    """Settings for a gateway on a fresh database; services default to ports where nothing listens."""

    def make(secrets_dir: Path, **overrides: Any) -> GatewaySettings:
        nowhere = {f"{name}_url": f"http://127.0.0.1:{free_port()}" for name in SERVICES}
        values: dict[str, Any] = {
            "state_dir": tmp_path / "gateway", "secrets_dir": secrets_dir,
            "database_url": database_url_factory("gateway"), "admin_password": ADMIN_PASSWORD,
            # These gateways sign people in many times a minute, and a TOTP code works once per 30 s: the second
            # factor is proved by test_gateway_mfa.py and the console's tests, which pass the default back.
            "mfa_required_roles": "",
            # The gateway's own events wait in its outbox unless a test gives it a NATS (test_gateway_events.py).
            "nats_url": f"nats://127.0.0.1:{free_port()}",
            **CHEAP_HASHING, **nowhere,
        }
        values.update(overrides)
        return GatewaySettings(**values)

    return make


@pytest.fixture
async def door(gateway_settings: Callable[..., GatewaySettings], secrets_dir: Path) -> AsyncIterator[Door]:
    """A gateway with no services behind it: identity, tokens, limits and its own audit trail."""
    async with open_gateway(gateway_settings(secrets_dir)) as opened:
        yield opened
