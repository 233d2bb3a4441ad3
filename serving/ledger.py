"""The serving ledger: what the serving layer saw and what each engine must serve.

Backends are copied into every agent actor that calls a model, so a counter on a
backend only knows its own process. The pool starts one small actor, the ledger, and
every copy reports its faults to it (fire and forget); the run's summary reads it.
The ledger also keeps the adapters each engine replica was asked to load: an engine
actor that Ray restarts after its process died reads them back.
"""

from __future__ import annotations

from collections import Counter


class ServingLedger:
    """Fault counts by model and kind, and each engine's adapters (a Ray actor)."""

    def __init__(self) -> None:
        self._faults: Counter[tuple[str, str]] = Counter()
        self._adapters: dict[str, dict[str, str]] = {}  # engine id -> name -> path

    def register_adapter(self, engine_id: str, name: str, path: str) -> None:
        self._adapters.setdefault(engine_id, {})[name] = path

    def adapters_of(self, engine_id: str) -> dict[str, str]:
        """The adapters an engine serves, in the order they were first loaded."""
        return dict(self._adapters.get(engine_id, {}))

    def add(self, model: str, kind: str, count: int = 1) -> None:
        self._faults[(model, kind)] += count

    def faults(self) -> dict[str, dict[str, int]]:
        """model -> fault kind -> count."""
        out: dict[str, dict[str, int]] = {}
        for (model, kind), count in sorted(self._faults.items()):
            out.setdefault(model, {})[kind] = count
        return out


def fault_delta(before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """The faults counted between two readings (a sweep's jobs share one ledger)."""
    delta: dict[str, dict[str, int]] = {}
    for model, kinds in after.items():
        for kind, count in kinds.items():
            grown = count - before.get(model, {}).get(kind, 0)
            if grown:
                delta.setdefault(model, {})[kind] = grown
    return delta
