"""The unit tier: no Ray and no engine, so that `pytest tests/unit` answers in seconds.
A test here that starts Ray fails, naming where it belongs."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def no_ray(monkeypatch):
    import ray

    def refused(*args, **kwargs):
        raise AssertionError("a unit test started Ray: it belongs in tests/integration")

    monkeypatch.setattr(ray, "init", refused)
