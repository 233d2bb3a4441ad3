"""The serving ledger: what the serving layer saw and what each engine must serve.

Backends are copied into every agent actor that calls a model, so a counter on a
backend only knows its own process. The pool starts one small actor, the ledger, and
every copy reports its faults to it (fire and forget); the run's summary reads it.
The ledger also keeps the adapters each engine replica was asked to load: an engine
actor that Ray restarts after its process died reads them back.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence

from classroom.serving.adapters import AdapterFiles


class RoutingBoard:
    """Where a model's next conversations go: the replica with the fewest requests in
    flight, ties to the one used least, a replica that failed resting for ``rest_s``.

    One board per process when the pool is local; the ledger holds the one every
    agent's copy of the pool shares, so a replica busy with one actor's requests is
    busy for all of them.
    """

    def __init__(self) -> None:
        self.outstanding: dict[str, list[int]] = {}
        self.routed: dict[str, list[int]] = {}  # conversations sent to each, ever
        self.failed_at: dict[str, dict[int, float]] = {}  # replica -> when it last failed

    def _model(self, model: str, replicas: int) -> None:
        if len(self.outstanding.get(model, ())) != replicas:
            self.outstanding[model] = [0] * replicas
            self.routed[model] = [0] * replicas
            self.failed_at[model] = {}

    def route(self, model: str, replicas: int, count: int, exclude: Sequence[int] = (), rest_s: float = 60.0) -> list[int]:
        """A replica for each of ``count`` conversations (counted in flight until
        released); fewer when every replica is excluded."""
        self._model(model, replicas)
        outstanding, routed, failed_at = self.outstanding[model], self.routed[model], self.failed_at[model]
        now = time.monotonic()
        allowed = [i for i in range(replicas) if i not in set(exclude)]
        resting = {i for i in allowed if i in failed_at and now - failed_at[i] < rest_s}
        candidates = [i for i in allowed if i not in resting] or allowed  # all resting: try them anyway
        picks: list[int] = []
        for _ in range(count if candidates else 0):
            replica = min(candidates, key=lambda i: (outstanding[i], routed[i]))
            outstanding[replica] += 1
            routed[replica] += 1
            picks.append(replica)
        return picks

    def release(self, model: str, replica: int, count: int, failed: bool = False) -> None:
        """``count`` conversations of ``replica`` are done (or it failed them)."""
        self.outstanding[model][replica] -= count
        if failed:
            self.failed_at[model][replica] = time.monotonic()

    def view(self, model: str) -> dict[str, list[int]]:
        """In flight and routed ever, per replica (for monitoring and tests)."""
        return {"outstanding": list(self.outstanding.get(model, ())), "routed": list(self.routed.get(model, ()))}


class ServingLedger:
    """Fault counts by model and kind, each engine's adapters and the shared routing
    board (a named Ray actor)."""

    def __init__(self) -> None:
        self._faults: Counter[tuple[str, str]] = Counter()
        # engine id -> name -> the adapter's files (any node's engine can write them)
        self._adapters: dict[str, dict[str, AdapterFiles]] = {}
        self.board = RoutingBoard()

    def route(self, model: str, replicas: int, count: int, exclude: Sequence[int] = (), rest_s: float = 60.0) -> list[int]:
        return self.board.route(model, replicas, count, exclude, rest_s)

    def release(self, model: str, replica: int, count: int, failed: bool = False) -> None:
        self.board.release(model, replica, count, failed)

    def routing(self, model: str) -> dict[str, list[int]]:
        return self.board.view(model)

    def register_adapter(self, engine_id: str, name: str, files: AdapterFiles) -> None:
        self._adapters.setdefault(engine_id, {})[name] = files

    def forget_adapter(self, engine_id: str, name: str) -> None:
        """An adapter the engine no longer serves: a restart does not load it back."""
        self._adapters.get(engine_id, {}).pop(name, None)

    def adapters_of(self, engine_id: str) -> dict[str, AdapterFiles]:
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
