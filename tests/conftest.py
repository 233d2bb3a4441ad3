"""The test tiers and what every tier shares.

- ``tests/unit``: no Ray, no engine (pure functions, parsers, config models, graders,
  planners, the CLI's one-line errors called in-process); ``make test-fast``.
- ``tests/integration``: a real local Ray and the real embedded engine, started once for
  the whole tier and shared (``tests/integration/conftest.py``).
- ``tests/cluster``: a real multi-raylet Ray cluster on this machine, started once.

Each test is marked with its tier (``pytest -m unit``); helpers and fault doubles live
in ``tests/support/``. ``make test`` runs every tier.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
DATA_DIR = Path(os.environ.get("CLASSROOM_DATA_DIR", REPO.parent / "shared" / "data"))
TIERS = ("unit", "integration", "cluster")


def pytest_collection_modifyitems(config, items):
    for item in items:
        tier = Path(str(item.path)).resolve().relative_to(TESTS).parts[0]
        if tier not in TIERS:
            raise pytest.UsageError(f"{item.nodeid}: a test belongs in one of tests/{{{','.join(TIERS)}}}/")
        item.add_marker(tier)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA_DIR.is_dir():
        pytest.fail(f"shared data not found at {DATA_DIR} (set CLASSROOM_DATA_DIR)")
    return DATA_DIR
