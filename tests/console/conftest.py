"""Fixtures for the console tests: every service as a process (once per module) behind a gateway in-process."""

from __future__ import annotations

from tests.integration.gateway.conftest import backends, gateway_settings  # noqa: F401 (fixtures, re-used as they are)
