"""The team's shared test data (../shared/data beside the checkout): made-up Belarusian names written six ways."""

from __future__ import annotations

import os
from pathlib import Path


def _find() -> Path:
    candidates = [
        Path(os.environ["REHAB_SHARED_DATA"]) if os.environ.get("REHAB_SHARED_DATA") else None,
        Path(__file__).resolve().parents[3] / "shared" / "data",  # <checkout>/../shared/data
        Path("/work/shared/data"),
    ]
    for candidate in candidates:
        if candidate is not None and (candidate / "name-variants.csv").exists():
            return candidate
    raise FileNotFoundError("shared test data not found: set REHAB_SHARED_DATA to the folder with name-variants.csv")


SHARED_DATA = _find()
NAME_VARIANTS = SHARED_DATA / "name-variants.csv"
NAME_DISTINCT = SHARED_DATA / "name-distinct.csv"
