"""`classroom bench episode`: one episode's recorded calls replayed in waves, one at a time and all at once."""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from classroom.launch.bench.common import episodes_bench_main


def call_waves(calls: list[Any]) -> list[list[Any]]:
    """The recorded calls in waves: calls whose time spans overlap went to the engine
    together (one stage, or stages that ran at once); waves came one after another."""
    waves: list[list[Any]] = []
    end = float("-inf")
    for call in sorted(calls, key=lambda c: c.started):
        if call.started >= end:
            waves.append([])
        waves[-1].append(call)
        end = max(end, call.ended)
    return waves


async def replay_calls(actor: Any, calls: list[Any], how: str) -> float:
    """Replay recorded calls on an engine actor; returns the wall time. ``waves``: as the
    episode issued them, each wave at once, waves in turn; ``one_at_a_time``: every
    conversation alone, in order (one ``generate`` per example); ``all_at_once``: every
    call at once, no stage barriers."""

    def send(call: Any, conversations: list[Any]) -> Any:
        return actor.chat.remote(conversations, call.params, call.schema_, call.adapter)

    started = time.perf_counter()
    if how == "waves":
        for wave in call_waves(calls):
            await asyncio.gather(*(send(call, call.conversations) for call in wave))
    elif how == "one_at_a_time":
        for call in calls:
            for conversation in call.conversations:
                await send(call, [conversation])
    else:
        await asyncio.gather(*(send(call, call.conversations) for call in calls))
    return time.perf_counter() - started


def run_episode_benchmark(*, rounds: int = 1, extra: list[str] | None = None) -> dict[str, Any]:
    """Record the default ToM episode's model calls on its engine, then replay them three
    ways on that engine in interleaved rounds (reply cache off throughout)."""
    import tempfile
    from pathlib import Path

    import ray

    from classroom.launch.plan import init_ray, prepare
    from classroom.launch.pools import SharedPools
    from classroom.launch.runner import run_episode
    from classroom.launch.settings import ClusterSettings
    from classroom.launch.sweep import compose_jobs

    overrides = ["progress=false", "model.models.embedded.engine.response_cache_size=0", *(extra or [])]
    [config] = compose_jobs([overrides])
    plan = prepare(config)
    started_ray = init_ray(ClusterSettings(**config["cluster"]))
    shared = SharedPools()
    try:
        pool = shared.get(plan.pool)
        [(_, actor)] = pool.engine_actors()
        ray.get(actor.record_calls.remote(True))
        run_dir = Path(tempfile.mkdtemp(prefix="classroom-bench-episode-"))
        summary = run_episode(config, run_dir, show_progress=False, shared=shared)
        calls = ray.get(actor.record_calls.remote(False))
        ways = ("waves", "one_at_a_time", "all_at_once")
        times: dict[str, list[float]] = {way: [] for way in ways}
        for round_index in range(rounds):
            for way in ways if round_index % 2 == 0 else tuple(reversed(ways)):
                times[way].append(asyncio.run(replay_calls(actor, calls, way)))
    finally:
        shared.shutdown()
        if started_ray:
            ray.shutdown()
    median = {way: statistics.median(values) for way, values in times.items()}
    return {
        "overrides": overrides,
        "episode_wall_s": summary.wall_time_s,
        "calls": len(calls),
        "conversations": sum(len(c.conversations) for c in calls),
        "waves": len(call_waves(calls)),
        "rounds": rounds,
        "replay_s": {way: round(value, 2) for way, value in median.items()},
        # Throughput of (a) over (b): how much the episode's batching buys; of (a) over
        # (c): what its stage barriers cost against the engine's ceiling.
        "ratio_a_over_b": round(median["one_at_a_time"] / median["waves"], 2),
        "ratio_a_over_c": round(median["all_at_once"] / median["waves"], 3),
        "run_dir": str(run_dir),
    }


def print_episode_report(result: dict[str, Any]) -> None:
    replay = result["replay_s"]
    labels = {
        "waves": "(a) as the episode issued them, wave by wave",
        "one_at_a_time": "(b) one conversation at a time",
        "all_at_once": "(c) all at once, no stage barriers",
    }
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"episode: {result['conversations']} conversations in {result['calls']} calls, {result['waves']} waves "
        f"(the default ToM episode took {result['episode_wall_s']} s), median of {result['rounds']} round(s)"
    )
    for column in ("replayed", "wall (s)", "throughput vs (a)"):
        table.add_column(column, justify="left" if column == "replayed" else "right")
    for way, label in labels.items():
        table.add_row(label, f"{replay[way]:.2f}", f"{replay['waves'] / replay[way]:.3f}")
    Console().print(table)
    print(
        f"replay s: (a) {replay['waves']}  (b) {replay['one_at_a_time']}  (c) {replay['all_at_once']}; "
        f"(a)/(b) = {result['ratio_a_over_b']}x (goal >= 5x); (a)/(c) = {result['ratio_a_over_c']}"
    )


def bench_episode_main(args: Any) -> int:
    measure = lambda: run_episode_benchmark(rounds=args.rounds, extra=args.overrides)  # noqa: E731
    return 2 if episodes_bench_main("episode", args, measure, print_episode_report) is None else 0
