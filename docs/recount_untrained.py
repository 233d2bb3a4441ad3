"""Compare DataEnvGym's untrained-student test answers of two sweeps, run by run, from
their `attempt` events: `.venv/bin/python docs/recount_untrained.py OLD_SWEEP NEW_SWEEP`.

For each old run: whether its test problems are the new sweep's of the same seed, how
many of its untrained answers equal the new sweep's untrained answers of that seed, and
how many equal its own trained answers (an untrained student answered by an adapter).
"""

import json
import sys
from pathlib import Path


def answers(folder: str) -> dict[int, tuple[str, str, dict[str, dict[str, str]], int]]:
    """Run index -> (experiment, seed, phase -> problem id -> reply, right trained answers)."""
    sweep = json.loads((Path(folder) / "sweep.json").read_text())
    found = {}
    for index, job in enumerate(sweep["jobs"]):
        overrides = dict(o.split("=", 1) for o in job)
        events = Path(folder) / str(index) / "events.jsonl"
        if not events.is_file():
            continue
        phases: dict[str, dict[str, str]] = {"test": {}, "test_untrained": {}}
        right = 0
        with open(events, encoding="utf-8") as lines:
            for line in lines:
                event = json.loads(line)
                if event.get("kind") == "attempt" and event.get("phase") in phases:
                    phases[event["phase"]][event["problem_id"]] = event["reasoning"]
                    right += bool(event["correct"]) and event["phase"] == "test"
        found[index] = (overrides.get("experiment", ""), overrides.get("seed", ""), phases, right)
    return found


old, new = answers(sys.argv[1]), answers(sys.argv[2])
base = {}
for index, (experiment, seed, phases, _) in new.items():
    base[seed] = phases["test_untrained"]
    print(f"new run {index} {experiment} seed {seed}: {len(base[seed])} untrained answers")
for index, (experiment, seed, phases, right) in sorted(old.items()):
    untrained, trained, fresh = phases["test_untrained"], phases["test"], base.get(seed, {})
    print(
        f"old run {index} {experiment} seed {seed}: same problems {set(untrained) == set(fresh)}; "
        f"untrained == new untrained {sum(fresh.get(p) == r for p, r in untrained.items())}/{len(untrained)}; "
        f"== its own trained {sum(trained.get(p) == r for p, r in untrained.items())}/{len(untrained)}; "
        f"trained right {right}/{len(trained)}"
    )
