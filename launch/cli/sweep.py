"""`classroom sweep`: a grid of episodes on one Ray and shared engines (the runtime is
:mod:`classroom.launch.sweep`)."""

from __future__ import annotations

import sys
from pathlib import Path

from classroom.launch.cli.arguments import CommandParser, command_parser
from classroom.launch.sweep import SweepJob, compose_jobs, plan_sweep, run_sweep
from classroom.serving.errors import ClassroomError, ConfigError, UsageError

SWEEP_DESCRIPTION = """Every combination of the comma lists (and of a sweep config's grid) is one episode.
sweep.max_concurrent=N runs N at once (default 1); sweep.max_retries=N runs a job stopped
by a fault again up to N times (default 1); hydra.sweep.dir=DIR names the folder."""


def sweep_parser() -> CommandParser:
    parser = command_parser("sweep", SWEEP_DESCRIPTION, settings=True)
    parser.add_argument("--resume", metavar="SWEEP_DIR", type=Path, help="run the jobs of this sweep folder that did not complete")
    parser.add_argument("--dry-run", action="store_true", help="every job checked as `classroom run --dry-run` checks one; nothing started")
    return parser


def sweep_main(argv: list[str]) -> int:
    """Entry of `classroom sweep ARGS` and `classroom sweep --resume SWEEP_DIR`."""
    from classroom.launch.results import write_results

    args = sweep_parser().parse(argv)
    if args.dry_run:
        from classroom.launch.dry_run import sweep_dry_main

        if args.resume is not None:
            raise UsageError("--dry-run plans a new sweep; it takes the grid, not --resume")
        return sweep_dry_main(args.overrides)
    try:
        root, overrides, todo = plan_sweep(args.resume, args.overrides)
    except ClassroomError:
        raise  # classroom's main says it
    except Exception as exc:  # the grid's own syntax (Hydra's override grammar)
        raise ConfigError(f"config error: {str(exc).splitlines()[0]}") from None
    configs = compose_jobs([overrides[n] for n in todo])
    if not todo:
        print(f"[sweep] every job of {root} completed: nothing to run", flush=True)
    else:
        jobs = [SweepJob(n, tuple(overrides[n]), config) for n, config in zip(todo, configs)]
        try:
            run_sweep(root, jobs, len(overrides))
        except ConfigError as exc:  # the cluster section, before any job ran
            print(str(exc), file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print(f"interrupted; finished jobs are in {root} (classroom sweep --resume {root} runs the rest)", file=sys.stderr)
            return 130
    csv_path, md_path, rows = write_results(root)
    print(md_path.read_text().split("## Per run")[0].rstrip())
    print(f"\nresults: {csv_path}\n         {md_path}\nreport:  classroom report {root}")
    failed = [r["run"] for r in rows if r.get("status") != "completed"]
    if failed:
        print(f"[sweep] {len(failed)} of {len(overrides)} jobs did not complete: {', '.join(failed)} (classroom sweep --resume {root})")
    return 0 if rows and not failed else 1
