"""`classroom regrade` on a run directory written here: answers whose logged verdicts a
careful reader grades otherwise (worked by hand below) are listed; `--write` keeps the
logged verdicts beside the new ones and leaves the event log as it was."""

from __future__ import annotations

import json

from support.cli import classroom

from classroom.agents.messages import Attempt, Problem
from classroom.environments.eventlog import EventLog

# (reference, reply, logged final answer, logged verdict, the verdict a reader gives)
CASES = [
    ("7", "10 - 3 leaves 7. The answer is 10 - 3 = 7.", "10 - 3 = 7", False, True),  # an equation: its value
    ("42", "6 * 7 = 42. The answer is 42.", "42", True, True),
    ("5", "2 + 3 makes 6. The answer is 6.", "6", True, False),  # logged right, is wrong
    ("0.5", "Half of one. The answer is \\frac{1}{2}.", "\\frac{1}{2}", True, True),
    # The Minerva form an older extractor read as its last number: extracted again.
    ("10455", "Final Answer: The final answer is $10,455$. I hope it is correct.", "455", False, True),
]


def _run_dir(tmp_path):
    log = EventLog(tmp_path / "events.jsonl", config={})
    messages = []
    for n, (reference, reply, answer, logged, _) in enumerate(CASES):
        problem = Problem(id=f"p{n}", question=f"question {n}", answer=reference)
        messages += [
            problem,
            Attempt(id=f"a{n}", sender="s", problem_id=problem.id, reasoning=reply, final_answer=answer, correct=logged, phase="test"),
        ]
    # Never graded (a critique, a localisation reply): not regraded.
    messages.append(Attempt(id="ungraded", sender="s", problem_id="p0", reasoning="The answer is 3.", final_answer="3", phase="critique"))
    log.append(messages)
    log.close()
    return tmp_path


def test_regrade_lists_the_verdicts_that_change_and_writes_nothing_unless_asked(tmp_path):
    run_dir = _run_dir(tmp_path)
    before = (run_dir / "events.jsonl").read_bytes()
    out = classroom("regrade", str(run_dir))
    assert out.returncode == 0, out.stderr
    # By hand: a0 and a4 wrong -> right, a2 right -> wrong; a1 and a3 stand; "ungraded" is left out.
    assert f"regraded 5 graded answers of {run_dir}: 3 verdicts change (2 wrong -> right, 1 right -> wrong," in out.stdout
    listed = out.stdout.split("verdicts that change:")[1].split("math-verify disagrees:")[0]
    assert "a0 (test, problem p0): wrong -> right" in listed and "a2 (test, problem p2): right -> wrong" in listed
    assert "a4 (test, problem p4): wrong -> right; answer '455' -> '10455'" in listed
    assert "a1 " not in listed and "a3 " not in listed and "ungraded" not in listed
    assert not (run_dir / "regrade.jsonl").exists() and (run_dir / "events.jsonl").read_bytes() == before

    written = classroom("regrade", str(run_dir), "--write")
    assert written.returncode == 0, written.stderr
    rows = [json.loads(line) for line in (run_dir / "regrade.jsonl").read_text().splitlines()]
    assert [(r["attempt_id"], r["logged"], r["current"]) for r in rows] == [(f"a{n}", c[3], c[4]) for n, c in enumerate(CASES)]
    # The second opinion agrees with a reader on the plain forms.
    assert [r["math_verify"] for r in rows][1:3] == [True, False]
    assert (run_dir / "events.jsonl").read_bytes() == before


def test_regrade_of_a_folder_that_is_no_run_is_one_line(tmp_path):
    out = classroom("regrade", str(tmp_path))
    assert out.returncode == 2 and out.stderr.strip() == (
        f"classroom regrade: {tmp_path} has no events.jsonl (not a run directory) and no run directories in it (not a sweep folder)"
    )
    out = classroom("regrade")
    assert out.returncode == 2 and out.stderr.strip() == (
        "classroom regrade: the following arguments are required: RUN_DIR (usage: classroom regrade [-h] [--write] RUN_DIR)"
    )


def test_regrade_of_a_sweep_folder_regrades_each_run_and_adds_them_up(tmp_path):
    sweep = tmp_path / "sweep"
    for n in (0, 1, 10):  # listed in the sweep's order: 0, 1, 10
        (sweep / str(n)).mkdir(parents=True)
        _run_dir(sweep / str(n))
    (sweep / "results.md").write_text("# not a run\n")
    out = classroom("regrade", str(sweep))
    assert out.returncode == 0, out.stderr
    per_run = [line for line in out.stdout.splitlines() if line.startswith("regraded ")]
    # By hand, as above: 5 graded answers and 3 changed verdicts in each run.
    assert per_run == [
        f"regraded 5 graded answers of {sweep / n}: 3 verdicts change" + per_run[0].split("3 verdicts change")[1] for n in ("0", "1", "10")
    ]
    assert out.stdout.strip().splitlines()[-1] == f"in all: 15 graded answers in 3 runs of {sweep}, 9 verdicts change"
    assert not list(sweep.glob("*/regrade.jsonl"))
    assert classroom("regrade", str(sweep), "--write").returncode == 0
    assert len(list(sweep.glob("*/regrade.jsonl"))) == 3
