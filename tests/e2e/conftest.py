"""The whole system as processes, for the end-to-end tests: `rehab up` in a temporary state folder on free ports."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.system import System


@pytest.fixture
def system(tmp_path: Path):  # noqa: ANN201
    running = System(tmp_path)
    try:
        running.start()
        yield running
    finally:
        running.cleanup()
