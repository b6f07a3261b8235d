"""Fixtures for the referrals tests: one running app per test, on a real NATS and a real database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.referrals.config import ReferralsSettings
from tests.support.intake_stand_in import IntakeStandIn, intake_stand_in
from tests.integration.referrals.desk import Desk, open_desk


@pytest.fixture
async def intake() -> AsyncIterator[IntakeStandIn]:
    """Where referrals hands a break-glass reason stated to it (tests.support.intake_stand_in)."""
    async with intake_stand_in() as stand_in:
        yield stand_in


@pytest.fixture
def referrals_settings(tmp_path, secrets_dir, nats_url, database_url_factory, intake) -> ReferralsSettings:
    return ReferralsSettings(state_dir=tmp_path, secrets_dir=secrets_dir, nats_url=nats_url,
                             database_url=database_url_factory("referrals"), intake_url=intake.url)


@pytest.fixture
async def desk(referrals_settings, token_issuer) -> AsyncIterator[Desk]:
    async with open_desk(referrals_settings, token_issuer) as opened:
        yield opened
