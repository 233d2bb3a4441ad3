"""What the benchmarks share: prompts, timing, ratio tables, the command wrapper."""

from __future__ import annotations

import asyncio
import random
import sys
import time
from typing import Any


def bench_prompts(count: int, seed: int) -> list[str]:
    """Short arithmetic word problems, fixed by seed."""
    rng = random.Random(seed)
    items = ("apples", "books", "coins", "marbles", "pencils")
    prompts = []
    for _ in range(count):
        a, b = rng.randint(2, 60), rng.randint(2, 60)
        prompts.append(f"Tom has {a} {rng.choice(items)} and gets {b} more. How many does he have? Explain step by step.")
    return prompts


async def timed(coro: Any) -> tuple[int, float]:
    started = time.perf_counter()
    tokens = await coro
    return tokens, time.perf_counter() - started


def ratio_table(title: str, columns: tuple[str, str], rows: dict[str, tuple[str, float]], base_key: str, formats: tuple[str, str]) -> None:
    """One rich table: a row per alternative with its value and its ratio to ``base_key``'s.

    ``columns`` names the alternatives' column and the value's; ``formats`` are
    ``str.format`` patterns for the value and the ratio.
    """
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column(columns[0])
    table.add_column(columns[1], justify="right")
    table.add_column("vs (a)", justify="right")
    base = rows[base_key][1]
    for label, value in rows.values():
        table.add_row(label, formats[0].format(value), formats[1].format(value / base))
    Console().print(table)


def bench_main(args: Any, measure: Any, report: Any) -> int:
    """Start a local Ray, run ``measure()`` (a coroutine), stop Ray, print and save the result."""
    import ray

    ray.init(num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False)
    try:
        result = asyncio.run(measure())
    finally:
        ray.shutdown()
    report(result)
    if args.json:
        import json

        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


def episodes_bench_main(name: str, args: Any, measure: Any, report: Any) -> dict[str, Any] | None:
    """Run a benchmark that plays episodes (``measure()``, it starts its own Ray), print
    and save its result; None (told in one line) if its config is refused."""
    from classroom.agents.config_validation import ConfigError
    from classroom.launch.compose import check_overrides

    # An override Hydra refuses is told in one line before anything starts.
    error = check_overrides(list(getattr(args, "overrides", None) or []))
    if error is not None:
        print(f"classroom bench {name}: {error}", file=sys.stderr)
        return None
    try:
        result = measure()
    except ConfigError as exc:
        print(f"classroom bench {name}: {exc}", file=sys.stderr)
        return None
    report(result)
    if args.json:
        import json

        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


def json_key(value: Any) -> str:
    import json

    return json.dumps(value, sort_keys=True)
