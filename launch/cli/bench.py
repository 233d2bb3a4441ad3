"""`classroom bench BENCHMARK`: benchmarks that print ratios measured side by side (one
module per benchmark in :mod:`classroom.launch.bench`, imported only when run)."""

from __future__ import annotations

import importlib
import os

from classroom.launch.cli.arguments import CommandParser, command_parser
from classroom.serving.errors import UsageError


def bench_parser() -> CommandParser:
    p = command_parser("bench", "Benchmarks printing side-by-side ratios.")
    sub = p.add_subparsers(dest="which", required=True, metavar="BENCHMARK")
    s = sub.add_parser("serving", help="(a) vLLM engine directly vs (b) via Ray vs (c) via HTTP, one engine")
    s.add_argument("--prompts", type=int, default=64, help="requests per round (default 64)")
    s.add_argument("--max-tokens", type=int, default=64)
    s.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is reported")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--num-cpus", type=int, default=os.cpu_count())
    s.add_argument("--json", default=None, help="also write the figures to this file")
    s = sub.add_parser("learner", help="a new LoRA adapter: (a) hot swap into the running engine vs (b) engine restart")
    s.add_argument("--examples", type=int, default=16, help="examples the adapter is trained on (default 16)")
    s.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is reported")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--num-cpus", type=int, default=os.cpu_count())
    s.add_argument("--json", default=None, help="also write the figures to this file")
    s = sub.add_parser("sweep", help="the same sweep of ToM episodes run serially and several at once, on shared engines")
    s.add_argument("--episodes", type=int, default=8, help="episodes of the sweep (seeds 0..N-1; default 8)")
    s.add_argument("--concurrent", type=int, default=4, help="episodes at once in the concurrent arm (default 4)")
    s.add_argument("--rounds", type=int, default=1, help="interleaved rounds of both arms; the median is reported")
    s.add_argument("--json", default=None, help="also write the figures to this file")
    s.add_argument("overrides", nargs="*", help="config overrides for every episode (e.g. env.num_problems=12)")
    s = sub.add_parser("episode", help="the default ToM episode's model calls replayed: as issued, one at a time, all at once")
    s.add_argument("--rounds", type=int, default=1, help="interleaved rounds of the three replays; the median is reported")
    s.add_argument("--json", default=None, help="also write the figures to this file")
    s.add_argument("overrides", nargs="*", help="config overrides of the recorded episode")
    s = sub.add_parser("soak", help="a long ToM episode against a stub endpoint: RSS of driver and actors, sampled")
    s.add_argument("--problems", type=int, default=2000, help="test problems of the episode (default 2000)")
    s.add_argument("--run-dir", default=None, help="where the episode writes (default: a new temporary folder)")
    s.add_argument("--json", default=None, help="also write the figures to this file")
    return p


# The flags of each benchmark that count something: each must be >= 1.
COUNTS = {
    "serving": ("prompts", "max_tokens", "rounds", "num_cpus"),
    "learner": ("examples", "rounds", "num_cpus"),
    "soak": ("problems",),
    "sweep": ("episodes", "concurrent", "rounds"),
    "episode": ("rounds",),
}


def bench_main(argv: list[str]) -> int:
    """Entry of `classroom bench BENCHMARK ...`: one module per benchmark (bench/NAME.py),
    imported only when run."""
    args = bench_parser().parse(argv)
    for name in COUNTS[args.which]:
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    module = importlib.import_module(f"classroom.launch.bench.{args.which}")
    return getattr(module, f"bench_{args.which}_main")(args)
