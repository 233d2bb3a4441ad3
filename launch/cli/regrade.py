"""`classroom regrade DIR [--write]`: a run's answers graded again, or every run's of a
sweep folder (the regrading is :mod:`classroom.launch.regrade`'s)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from pathlib import Path

from classroom.agents.grading import Grader
from classroom.environments.eventlog import read_events
from classroom.launch.regrade import OUTPUT, graded_answers, line, regrade


def regrade_main(argv: list[str]) -> int:
    """Entry of `classroom regrade DIR [--write]` (DIR: a run directory or a sweep folder)."""
    from classroom.launch.cli.arguments import command_parser
    from classroom.serving.errors import DataError

    parser = command_parser(
        "regrade",
        "Grade a run's answers (or every run's of a sweep folder) again with today's grader and math-verify; list the verdicts that change.",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", type=Path, help="a run directory, or a sweep folder: each run in it")
    parser.add_argument("--write", action="store_true", help=f"write the new verdicts to each run's {OUTPUT}, the old ones beside them")
    args = parser.parse(argv)
    root: Path = args.run_dir
    if (root / "events.jsonl").is_file():
        runs = [root]
    else:
        runs = sorted((p.parent for p in root.glob("*/events.jsonl")), key=lambda p: (len(p.name), p.name))
        if not runs:
            raise DataError(f"{root} has no events.jsonl (not a run directory) and no run directories in it (not a sweep folder)")
    answers = changed = 0
    grader = Grader()  # one grader (and its worker process) for every run
    try:
        for run_dir in runs:
            graded, moved = regrade_run(run_dir, grader, write=args.write)
            answers, changed = answers + graded, changed + moved
    finally:
        grader.close()
    if len(runs) > 1:
        print(f"in all: {answers} graded answers in {len(runs)} runs of {root}, {changed} verdicts change")
    return 0


def regrade_run(run_dir: Path, grader: Grader, *, write: bool) -> tuple[int, int]:
    """Regrade one run, print what changes; (answers regraded, verdicts that change)."""
    _, messages = read_events(run_dir / "events.jsonl")  # an EventLogError: classroom's main says it
    results = asyncio.run(regrade(graded_answers(messages), grader))
    changed = [r for r in results if r.changed]
    disputed = [r for r in results if r.math_verify is not None and r.current is not None and r.math_verify != r.current]
    up = sum(r.logged is False and r.current is True for r in changed)
    down = sum(r.logged is True and r.current is False for r in changed)
    print(
        f"regraded {len(results)} graded answers of {run_dir}: {len(changed)} verdicts change"
        f" ({up} wrong -> right, {down} right -> wrong, {len(changed) - up - down} to or from ungradeable);"
        f" math-verify on the whole reply disagrees with the grader on {len(disputed)}"
    )
    if changed:
        print("verdicts that change:")
        print("\n".join(map(line, changed)))
    if disputed:
        print("math-verify disagrees:")
        print("\n".join(map(line, disputed)))
    if write:
        with open(run_dir / OUTPUT, "w", encoding="utf-8") as out:
            for r in results:
                out.write(json.dumps(asdict(r)) + "\n")
        print(f"wrote {run_dir / OUTPUT} (the logged verdicts beside the new ones; events.jsonl is unchanged)")
    return len(results), len(changed)
