"""Fixtures for referrals' unit tests: the service's tables in an in-memory SQLite, per test."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine
from sqlalchemy.pool import StaticPool
from sqlmodel import Session

from services.referrals.models import ReferralsTable


@pytest.fixture
def session():
    engine = create_engine("sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool)
    ReferralsTable.metadata.create_all(engine)
    with Session(engine) as opened:
        yield opened
    engine.dispose()
