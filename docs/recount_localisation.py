"""Recount SuperCorrect's localisation scores in a sweep's run logs with today's reply
parser (`named_step`): `.venv/bin/python docs/recount_localisation.py SWEEP_DIR`.

docs/results.md quotes it for the sweep whose runs predate b05c6fa, whose parser read a
template's own <Step1> tag as the answer "step 1". One line per run: per localisation
phase, the replies that name the broken step, and those that name no step."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from classroom.environments.supercorrect.localisation import named_step

PHASES = ("locate_student_stage1", "locate_student_stage2", "locate_teacher")


def recount(run: Path) -> str:
    events = [json.loads(line) for line in (run / "events.jsonl").open()]
    answers = {e["id"]: e["answer"] for e in events if e.get("kind") == "problem"}
    row = [run.name, json.loads((run / "summary.json").read_text())["stage"]]
    for phase in PHASES:
        replies = [e for e in events if e.get("kind") == "attempt" and e.get("phase") == phase]
        if replies:
            named = [named_step(e["reasoning"]) for e in replies]
            right = sum(n is not None and n == int(answers[e["problem_id"]]) for n, e in zip(named, replies, strict=True))
            row.append(f"{phase}: {right}/{len(replies)} right, {sum(n is None for n in named)} name no step")
    return " | ".join(row)


if __name__ == "__main__":
    root = Path(sys.argv[1])
    for run in sorted((p for p in root.iterdir() if p.name.isdigit()), key=lambda p: int(p.name)):
        print(recount(run))
