"""The `classroom` command: run, resume, sweep, report, serve, bench."""

from __future__ import annotations

import argparse
import logging
import os
import sys

USAGE = """usage: classroom COMMAND [ARGS]

commands:
  run     run one teaching episode (a Hydra app: `classroom run env=ENV task=gsm8k
          env.KEY=VALUE ...`; `classroom run --cfg job` prints the composed config)
  serve   serve a model behind an OpenAI-compatible HTTP server on 127.0.0.1
  sweep   a grid of episodes on one Ray and shared engines: `classroom sweep sweep=NAME`
          or any comma lists (`classroom sweep env.KEY=a,b seed=0,1`), up to
          sweep.max_concurrent at once; writes results.csv and results.md in the sweep
          folder; `classroom sweep --resume SWEEP_DIR` runs the jobs that did not complete
  resume  `classroom resume RUN_DIR` continues a killed episode from its last saved
          state (loops that save one)
  report  `classroom report RUN_OR_SWEEP_DIR` writes a self-contained report.html
  regrade `classroom regrade RUN_DIR [--write]` grades a run's answers again with
          today's grader and math-verify, and lists the verdicts that change
  export  `classroom export RUN_DIR OUT` copies the data a run produced (dataset/) to OUT
  merge   `classroom merge ADAPTER OUT` merges a trained LoRA adapter into its base
          model's weights: a model folder an engine serves at base speed
  package `classroom package OUT` writes classroom's code to OUT/classroom, for a Ray
          job's runtime_env (`py_modules`): see docs/cluster.md
  bench   benchmarks that print ratios measured side by side (`classroom bench serving`,
          `classroom bench learner`, `classroom bench sweep`, `classroom bench episode`,
          `classroom bench soak`)

loops: {loops} (`classroom run env=...` picks one of conf/env/)
"""


def _serve_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="classroom serve", description="Serve a model over HTTP (OpenAI protocol).")
    p.add_argument("--model", default="embedded", help="'embedded', a local folder or a hub id (default: embedded)")
    p.add_argument("--served-model-name", default=None, help="name clients use (default: the model value)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--dtype", default=None, help="default: float32 on cpu, auto on cuda")
    p.add_argument("--kv-cache-gib", type=float, default=2.0, help="CPU KV cache size")
    p.add_argument("--max-model-len", type=int, default=2048)
    p.add_argument("--tensor-parallel-size", type=int, default=1)
    p.add_argument("--ray-address", default="local", help="'local' (start one), 'auto' or ray://HOST:PORT")
    p.add_argument(
        "--runtime-lora",
        action="store_true",
        help="clients may load LoRA adapters by path (POST /v1/load_lora_adapter, as vLLM's "
        "VLLM_ALLOW_RUNTIME_LORA_UPDATING): a run trains adapters for it with the endpoint's lora_base_model "
        "set to --model. The server reads any folder a client names: for clients you trust only",
    )
    return p


def _bench_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="classroom bench", description="Benchmarks printing side-by-side ratios.")
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


def _positive(name: str, value: int) -> None:
    if value < 1:
        raise SystemExit(f"classroom: error: {name} must be >= 1, got {value}")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        from classroom.environments.base import LOOPS

        print(USAGE.format(loops=", ".join(sorted(LOOPS))))
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from classroom.serving.secrets import install_log_redaction

    install_log_redaction()  # Hydra logs each job's overrides; warnings may quote a URL
    from classroom.serving.errors import ClassroomError

    try:
        return _command(command, rest)
    except ClassroomError as exc:
        # The one place an error classroom raised on purpose becomes an exit: its line
        # as it is (a config error names its key itself), its kind's code, no traceback.
        line = str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(line if line.startswith("config error") else f"classroom {command}: {line}", file=sys.stderr)
        return exc.exit_code


def _command(command: str, rest: list[str]) -> int:
    """Run ``classroom COMMAND REST``; its exit code."""
    if command == "run":
        from classroom.launch.app import run_main

        return run_main(rest)
    if command == "serve":
        args = _serve_parser().parse_args(rest)
        _positive("--port", args.port + 1)
        from classroom.launch.serve import serve_main

        return serve_main(args)
    if command == "bench":
        args = _bench_parser().parse_args(rest)
        counts = {
            "serving": ("prompts", "max_tokens", "rounds", "num_cpus"),
            "learner": ("examples", "rounds", "num_cpus"),
            "soak": ("problems",),
            "sweep": ("episodes", "concurrent", "rounds"),
            "episode": ("rounds",),
        }
        for name in counts[args.which]:
            _positive("--" + name.replace("_", "-"), getattr(args, name))
        import importlib

        # One module per benchmark (launch/bench/NAME.py), imported only when run.
        module = importlib.import_module(f"classroom.launch.bench.{args.which}")
        return getattr(module, f"bench_{args.which}_main")(args)
    if command == "sweep":
        from classroom.launch.sweep import sweep_main

        return sweep_main(rest)
    if command == "report":
        from classroom.launch.report import report_main

        return report_main(rest)
    if command == "regrade":
        from classroom.launch.regrade import regrade_main

        return regrade_main(rest)
    if command == "export":
        from classroom.launch.export import export_main

        return export_main(rest)
    if command == "merge":
        from classroom.launch.merge import merge_main

        return merge_main(rest)
    if command == "package":
        from classroom.launch.package import package_main

        return package_main(rest)
    if command == "resume":
        from classroom.launch.resume import resume_main

        return resume_main(rest)
    print(
        f"classroom: unknown command {command!r} (commands: run, resume, sweep, report, regrade, export, merge, package, serve, bench)",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
