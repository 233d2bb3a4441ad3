"""`classroom regrade RUN_DIR [--write]`: a run's answers graded again (the regrading is
:mod:`classroom.launch.regrade`'s)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from pathlib import Path

from classroom.environments.eventlog import read_events
from classroom.launch.regrade import OUTPUT, graded_answers, line, regrade


def regrade_main(argv: list[str]) -> int:
    """Entry of `classroom regrade RUN_DIR [--write]`."""
    from classroom.launch.cli.arguments import command_parser
    from classroom.serving.errors import DataError

    parser = command_parser("regrade", "Grade a run's answers again with today's grader and math-verify; list the verdicts that change.")
    parser.add_argument("run_dir", metavar="RUN_DIR", type=Path)
    parser.add_argument("--write", action="store_true", help=f"write the new verdicts to RUN_DIR/{OUTPUT}, the old ones beside them")
    args = parser.parse(argv)
    run_dir, write = args.run_dir, args.write
    log = run_dir / "events.jsonl"
    if not log.is_file():
        raise DataError(f"{run_dir} has no events.jsonl (not a run directory)")
    _, messages = read_events(log)  # an EventLogError: classroom's main says it
    results = asyncio.run(regrade(graded_answers(messages)))
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
    return 0
