"""The `classroom` command: run, resume, sweep, report, serve, bench."""

from __future__ import annotations

import logging
import re
import sys

# A line that already says its kind ("config error: ...", "cluster error: ...", "data
# error: ...") is printed as it is; any other gets the command's name before it.
KIND_SAID = re.compile(r"^\w+ error: ")

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


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        from classroom.environments.base import LOOPS

        print(USAGE.format(loops=", ".join(sorted(LOOPS))))
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"classroom: unknown command {command!r} (commands: {', '.join(COMMANDS)})", file=sys.stderr)
        return 2
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
        print(line if KIND_SAID.match(line) else f"classroom {command}: {line}", file=sys.stderr)
        return exc.exit_code


# Each command: the module that owns it and its entry, ``main(argv) -> exit code``; each
# parses its own arguments with one parser style (launch/cli/arguments.py) and is imported
# only when called.
COMMANDS: dict[str, str] = {
    "run": "classroom.launch.cli.run:run_main",
    "resume": "classroom.launch.cli.resume:resume_main",
    "sweep": "classroom.launch.cli.sweep:sweep_main",
    "report": "classroom.launch.cli.report:report_main",
    "regrade": "classroom.launch.cli.regrade:regrade_main",
    "export": "classroom.launch.cli.export:export_main",
    "merge": "classroom.launch.cli.merge:merge_main",
    "package": "classroom.launch.cli.package:package_main",
    "serve": "classroom.launch.cli.serve:serve_main",
    "bench": "classroom.launch.cli.bench:bench_main",
}


def _command(command: str, rest: list[str]) -> int:
    """Run ``classroom COMMAND REST``; its exit code."""
    import importlib

    module, _, entry = COMMANDS[command].partition(":")
    return getattr(importlib.import_module(module), entry)(rest)


if __name__ == "__main__":
    sys.exit(main())
