"""`classroom bench sweep`: the same episodes one at a time and several at once, on shared engines."""

from __future__ import annotations

import statistics
import time
from typing import Any

from classroom.launch.bench.common import episodes_bench_main, json_key


def sweep_bench_overrides(episodes: int, extra: list[str]) -> list[str]:
    """The benchmark's sweep: the default ToM episode under ``episodes`` seeds."""
    return [f"seed={','.join(str(s) for s in range(episodes))}", "progress=false", *extra]


def run_sweep_benchmark(*, episodes: int = 8, concurrent: int = 4, rounds: int = 1, extra: list[str] | None = None) -> dict[str, Any]:
    """The same sweep run serially and with ``concurrent`` episodes at once, in
    interleaved arms (serial first in odd rounds, concurrent first in even ones), each
    on fresh engines (no reply cache carried over): episodes per hour, the ratio, and
    the engines' busy fraction over each arm."""
    import tempfile
    from pathlib import Path

    from classroom.launch.sweep import SweepJob, compose_jobs, expand_jobs, run_sweep

    overrides = sweep_bench_overrides(episodes, list(extra or []))
    root = Path(tempfile.mkdtemp(prefix="classroom-bench-sweep-"))
    arms: dict[str, list[dict[str, Any]]] = {"serial": [], "concurrent": []}
    scores: dict[str, list[Any]] = {}
    for round_index in range(rounds):
        order = ("serial", "concurrent") if round_index % 2 == 0 else ("concurrent", "serial")
        for arm in order:
            width = 1 if arm == "serial" else concurrent
            jobs_overrides = expand_jobs([*overrides, f"sweep.max_concurrent={width}"])
            jobs = [SweepJob(n, tuple(o), c) for n, (o, c) in enumerate(zip(jobs_overrides, compose_jobs(jobs_overrides)))]
            started = time.perf_counter()
            summaries, engines = run_sweep(root / f"{arm}-{round_index}", jobs, len(jobs))
            wall = time.perf_counter() - started
            completed = sum(s.status == "completed" for s in summaries)
            arms[arm].append(
                {
                    "wall_s": round(wall, 1),
                    "completed": completed,
                    "episodes_per_hour": round(completed / wall * 3600, 1),
                    "engines": engines,
                }
            )
            scores[f"{arm}-{round_index}"] = [s.scores for s in summaries]
    serial = statistics.median(a["episodes_per_hour"] for a in arms["serial"])
    parallel = statistics.median(a["episodes_per_hour"] for a in arms["concurrent"])
    return {
        "episodes": episodes,
        "concurrent": concurrent,
        "rounds": rounds,
        "overrides": overrides,
        "arms": arms,
        "episodes_per_hour": {"serial": serial, "concurrent": parallel},
        "ratio_concurrent_over_serial": round(parallel / serial, 3) if serial else None,
        # Greedy and seeded: every arm should score every episode alike.
        "same_scores": len({json_key(v) for v in scores.values()}) == 1,
        "folder": str(root),
    }


def _busy(arm: dict[str, Any]) -> str:
    return ", ".join(f"{name} {figures['busy_fraction']}" for name, figures in arm["engines"].items()) or "n/a"


def print_sweep_report(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"sweep: {result['episodes']} ToM episodes, serial vs {result['concurrent']} at once, {result['rounds']} round(s)")
    for column in ("arm", "wall (s)", "episodes/hour", "engine busy fraction"):
        table.add_column(column, justify="left" if column in ("arm", "engine busy fraction") else "right")
    for arm, runs in result["arms"].items():
        for run in runs:
            table.add_row(arm, f"{run['wall_s']:.1f}", f"{run['episodes_per_hour']:.1f}", _busy(run))
    Console().print(table)
    print(
        f"ratio concurrent/serial = {result['ratio_concurrent_over_serial']} (goal >= 1.5); "
        f"same scores in every arm: {result['same_scores']}; runs in {result['folder']}"
    )


def bench_sweep_main(args: Any) -> int:
    measure = lambda: run_sweep_benchmark(episodes=args.episodes, concurrent=args.concurrent, rounds=args.rounds, extra=args.overrides)  # noqa: E731
    return 2 if episodes_bench_main("sweep", args, measure, print_sweep_report) is None else 0
