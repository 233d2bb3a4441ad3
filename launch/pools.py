"""Engine pools shared by the episodes of one process: a sweep's, or every episode
played while :func:`keep_engines` lasts (a notebook, the test suite)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from collections.abc import Callable, Collection, Iterator
from typing import Any

from classroom.serving.pool import PoolConfig
from classroom.serving.types import EngineStats


class SharedPools:
    """The engine pools of a sweep: one per model config, started by the first episode
    that needs it and used by every later or concurrent one (threads of one process)."""

    def __init__(self) -> None:
        self._pools: dict[str, Any] = {}
        # Each pool's engine counters once it had started: utilisation() counts from there.
        self._started: dict[str, dict[str, EngineStats]] = {}
        # Held while a pool starts: a second episode waits for it rather than start another.
        self._lock = threading.Lock()
        # Ctrl-C reaches only the main thread: it relays it to the episodes running in
        # the others through these (each stops its own event loop's episode).
        self._on_interrupt: set[Callable[[], None]] = set()
        self._playing = threading.Condition()
        self.interrupted = threading.Event()

    def relay_interrupt(self, stop: Callable[[], None]) -> Callable[[], None]:
        """Call ``stop`` (thread-safe) on :meth:`interrupt`, at once if that came
        already; returns what un-registers it (when its episode has stopped)."""
        with self._playing:
            self._on_interrupt.add(stop)
        if self.interrupted.is_set():
            stop()

        def unrelay() -> None:
            with self._playing:
                self._on_interrupt.discard(stop)
                self._playing.notify_all()

        return unrelay

    def interrupt(self, wait_s: float) -> None:
        """Stop every episode playing on these pools, as a Ctrl-C stops one, and wait up
        to ``wait_s`` for them to end (and write their summaries). Episodes still
        starting (their engines) are not waited for: they stop when the pools do."""
        self.interrupted.set()
        with self._playing:
            stops = list(self._on_interrupt)
        for stop in stops:
            with contextlib.suppress(RuntimeError):  # its episode just ended: its loop is closed
                stop()
        with self._playing:
            self._playing.wait_for(lambda: not self._on_interrupt, timeout=wait_s)

    def get(self, pool_config: PoolConfig) -> Any:
        """The sweep's pool for ``pool_config``, started on first use; an engine of it
        that is dead for good (restarts spent, its node gone) is started again on a node
        that can hold it: every later job would otherwise fail on it (the jobs that were
        on it fail all the same, and are retried). The pool's live engines are kept;
        where its ledger died too, the whole pool is started anew."""
        from classroom.serving.pool import ModelPool

        key = pool_config.model_dump_json()
        with self._lock:
            pool = self._pools.get(key)
            dead = pool.dead_engines() if pool is not None else []
            if dead:
                print(f"[sweep] {', '.join(dead)} died for good: starting its models again", file=sys.stderr, flush=True)
                try:
                    pool.start_again(dead, pool_config)
                    again = {label.removeprefix("engine ") for label in dead}
                    self._started[key].update({k: v for k, v in read_engines(pool).items() if k in again})
                except ValueError as exc:  # its ledger is gone too
                    print(f"[sweep] {exc}: starting the whole pool again", file=sys.stderr, flush=True)
                    pool.shutdown()
                    del self._pools[key]
            if key not in self._pools:
                self._pools[key] = ModelPool.start(pool_config)
                self._started[key] = read_engines(self._pools[key])
            return self._pools[key]

    def utilisation(self) -> dict[str, dict[str, Any]]:
        """Each engine's figures since its pool started (see :func:`engine_utilisation`):
        how busy the sweep kept it."""
        figures: dict[str, dict[str, Any]] = {}
        with self._lock:
            for key, pool in self._pools.items():
                for engine, reading in read_engines(pool).items():
                    started = self._started[key].get(engine)
                    figures[engine] = (reading.since(started) if started else reading).summary()
        return figures

    def _engine_actors(self) -> list[Any]:
        with self._lock:
            return [actor for pool in self._pools.values() for _, actor in pool.engine_actors()]

    def adapters(self) -> set[str]:
        """The adapters the pools' engines serve now, by name."""
        import ray

        return {name for info in ray.get([actor.info.remote() for actor in self._engine_actors()]) for name in info["adapters"]}

    def reset(self, keep: Collection[str] = ()) -> None:
        """Every engine back to a fresh one's serving state (no adapter but those named
        in ``keep``; see the engine's ``reset``), the engines kept: what one episode
        loaded does not reach the next."""
        import ray

        ray.get([actor.reset.remote(list(keep)) for actor in self._engine_actors()])

    def release(self, pool_config: PoolConfig) -> None:
        """Stop the pool of ``pool_config`` (if started), keeping the others: its engines'
        memory back for what follows; a later episode on it starts it again."""
        with self._lock:
            pool = self._pools.pop(pool_config.model_dump_json(), None)
            self._started.pop(pool_config.model_dump_json(), None)
        if pool is not None:
            with contextlib.suppress(Exception):  # a dead Ray has nothing left to stop
                pool.shutdown()

    def shutdown(self) -> None:
        with self._lock:
            for pool in self._pools.values():
                with contextlib.suppress(Exception):  # a dead Ray has nothing left to stop
                    pool.shutdown()
            self._pools.clear()


# The pools every episode of this process uses while :func:`keep_engines` lasts.
_KEPT: SharedPools | None = None


@contextlib.contextmanager
def keep_engines() -> Iterator[SharedPools]:
    """While the block lasts, every episode this process runs (:func:`run_episode`, and
    `classroom run`, `resume` or `sweep` called in it through ``cli.main``) uses one engine
    pool per model config, started by the first episode that needs it and stopped when
    the block ends. A notebook or a test session that plays many episodes pays each
    engine's start once; :meth:`SharedPools.reset` between episodes unloads what one
    left. Ray is left running between the episodes (started by the first, or before)."""
    global _KEPT
    if _KEPT is not None:
        raise RuntimeError("keep_engines() is already in force in this process")
    _KEPT = SharedPools()
    try:
        yield _KEPT
    finally:
        kept, _KEPT = _KEPT, None
        kept.shutdown()


def kept_engines() -> SharedPools | None:
    """The pools of :func:`keep_engines` while it is in force, else None."""
    return _KEPT


def read_engines(pool: Any) -> dict[str, EngineStats]:
    """Every engine replica's utilisation counters now (endpoints report none)."""
    return asyncio.run(pool.engine_stats())
