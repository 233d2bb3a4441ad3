"""Real processes killed mid-episode (SIGKILL), episodes that survive it.

Each test runs `classroom run` in its own process with its own local Ray and embedded
engine, waits on the event log until the episode is under way, and kills a process of
that run: Ray restarts the engine actor, the calls in flight go to the restarted one
(which loads back its adapters), and the episode completes with every problem answered
once per stage. Where the whole run is killed, `classroom resume` continues it in this
process, on the tier's shared engine (the run names the same model config): a resume
reads only the run directory, whichever process and engine it runs on.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from support.cli import CLASSROOM, classroom
from support.engines import SHARED_MODEL

from classroom.agents.messages import Attempt, Explanation, TrainingRun
from classroom.environments.dataenvgym import DataEnvGymLoop
from classroom.launch.rundir import read_events


def actor_process(run: subprocess.Popen, actor_class: str) -> psutil.Process | None:
    """The process of the run's actor of ``actor_class`` (Ray names it ``ray::Class``)."""
    for child in psutil.Process(run.pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if child.cmdline() and child.cmdline()[0].startswith(f"ray::{actor_class}"):
                return child
    return None


def logged(run_dir: Path) -> list:
    """The messages logged so far (a torn last line is skipped)."""
    with contextlib.suppress(FileNotFoundError, ValueError):
        return read_events(run_dir / "events.jsonl")[1]
    return []


def run_until(args: list[str], runs: Path, ready: Callable[[list], bool], *, timeout_s: float = 300) -> tuple[subprocess.Popen, Path]:
    """Start `classroom run ARGS` (its own process group); return once its event log
    satisfies ``ready``."""
    env = {**os.environ, "CLASSROOM_RUNS": str(runs)}
    run = subprocess.Popen(
        [*CLASSROOM, "run", *SHARED_MODEL, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    return run, wait_for(run, runs, ready, timeout_s=timeout_s)


def wait_for(run: subprocess.Popen, runs: Path, ready: Callable[[list], bool], *, timeout_s: float = 300) -> Path:
    """The run's folder, once its event log satisfies ``ready``."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        found = [p for p in runs.glob("*") if p.is_dir()]
        if found and ready(logged(found[0])):
            return found[0]
        # Wait on the child itself (not a blind sleep): a run that ends early fails here.
        with contextlib.suppress(subprocess.TimeoutExpired):
            run.wait(timeout=0.2)
            pytest.fail(f"the run ended before the moment to kill: {run.stderr.read()[-3000:]}")
    run.kill()
    pytest.fail(f"the run did not get there within {timeout_s:g} s")


def kill_actor(run: subprocess.Popen, actor_class: str) -> None:
    process = actor_process(run, actor_class)
    assert process is not None, f"no ray::{actor_class} process under the run"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


def each_answered_once(messages: list) -> None:
    """Message ids are unique, and no student answered a problem twice in one stage
    (with the same explanations or exemplars in view)."""
    assert len({m.id for m in messages}) == len(messages)
    answers = Counter((a.sender, a.phase, a.problem_id, a.context_ids) for a in messages if isinstance(a, Attempt))
    assert answers and max(answers.values()) == 1, answers.most_common(3)


def resume(run_dir: Path) -> dict:
    """`classroom resume RUN_DIR` in this process (on the kept engines), which must
    succeed; the summary it writes."""
    out = classroom("resume", str(run_dir))
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads((run_dir / "summary.json").read_text())


def in_phase(phase: str) -> Callable[[list], bool]:
    return lambda messages: any(isinstance(m, Attempt) and m.phase == phase for m in messages)


TOM = [
    "env.num_problems=8",
    "env.seed_set_size=4",
    "env.post_test_size=4",
    "env.demo_counts=[0,2]",
    "student.sampling.max_tokens=48",
    "teacher.sampling.max_tokens=48",
    "progress=false",
]


def test_tom_episode_survives_its_engine_and_its_student_killed_and_resumes_after_a_kill(kept, tmp_path):
    # The moment the students' pre-test is logged: every later stage needs the engine.
    run, run_dir = run_until(TOM, tmp_path, in_phase("pre_test"))
    kill_actor(run, "VLLMEngineHost")
    # A ToM student learns nothing during the episode: Ray restarts it, calls and all.
    wait_for(run, tmp_path, in_phase("seed_with_explanation"))
    kill_actor(run, "Student")
    # Then the whole run (driver, its Ray, its engine) at once: `classroom resume` takes
    # every stage the log holds whole and asks for the rest.
    os.killpg(run.pid, signal.SIGKILL)
    run.wait(timeout=60)
    before = {m.id for m in logged(run_dir)}
    summary = resume(run_dir)
    assert summary["status"] == "completed" and summary["problems"] == 8
    messages = logged(run_dir)
    each_answered_once(messages)
    # What the killed run had logged was taken from the log, not asked for again.
    assert before <= {m.id for m in messages}
    pre_test = [m for m in messages if isinstance(m, Attempt) and m.phase == "pre_test"]
    assert len(pre_test) == 16 and {m.id for m in pre_test} <= before
    assert {m.episode_id for m in messages if m.episode_id} == {summary["episode_id"]}


def checkpointed_iteration(run_dir: Path) -> int:
    with contextlib.suppress(Exception):
        return DataEnvGymLoop().load_state(run_dir).env.iteration
    return -1


def test_dataenvgym_lora_episode_survives_its_engine_killed_and_resumes_after_its_student_killed(kept, tmp_path):
    args = [
        "experiment=dataenvgym",
        "env.iterations=2",
        "env.val_size=4",
        "env.test_size=4",
        "env.examples_per_iteration=4",
        "student.sampling.max_tokens=32",
        "progress=false",
    ]
    # Killed once the first adapter is trained and loaded: the restarted engine must
    # serve it again for the next evaluation, or the episode fails naming it.
    run, run_dir = run_until(args, tmp_path, lambda ms: any(isinstance(m, TrainingRun) and m.adapter for m in ms), timeout_s=420)
    kill_actor(run, "VLLMEngineHost")
    # The student trains: Ray cannot restart it with its adapter, so its death stops the
    # run in one line, and `classroom resume` goes on from the last checkpoint.
    wait_for(run, tmp_path, lambda _: checkpointed_iteration(run_dir) >= 1, timeout_s=420)
    kill_actor(run, "Student")
    _, err = run.communicate(timeout=300)
    assert run.returncode == 1, err[-3000:]
    assert "Traceback" not in err
    stopped = [line for line in err.splitlines() if line.startswith("episode stopped:")]
    assert len(stopped) == 1 and f"classroom resume {run_dir} continues it" in stopped[0], err[-2000:]

    summary = resume(run_dir)
    assert summary["status"] == "completed" and summary["iterations"] == 2 and summary["resumed_from"] == 1
    messages = logged(run_dir)
    each_answered_once(messages)
    # The iteration the kill cut short was redone: logged once, the cut lines set aside.
    assert sorted(m.iteration for m in messages if isinstance(m, TrainingRun)) == [1, 2]


def test_lbt_episode_survives_its_engine_and_its_student_killed_and_resumes_after_a_kill(kept, tmp_path):
    args = [
        "env=lbt",
        "task=arithmetic_skills",
        "env.num_problems=3",
        "env.m1.samples=2",
        "env.m1.exam_size=2",
        "env.m1.repeats=1",
        "env.m1.rationale_tokens=48",
        "env.m1.answer_tokens=32",
        "progress=false",
    ]
    # Killed once the teacher's rationales are logged: the exams need the engine.
    run, run_dir = run_until(args, tmp_path, lambda ms: any(isinstance(m, Explanation) for m in ms))
    kill_actor(run, "VLLMEngineHost")
    # Students learn nothing in learning by teaching: Ray restarts them, calls and all.
    kill_actor(run, "Student")
    # Then the whole run, its exams in flight: `classroom resume` takes the rationales
    # from the log (asks the teacher nothing) and the exams from the students.
    os.killpg(run.pid, signal.SIGKILL)
    run.wait(timeout=60)
    before = logged(run_dir)
    summary = resume(run_dir)
    assert summary["status"] == "completed" and summary["problems"] == 3
    messages = logged(run_dir)
    each_answered_once(messages)
    assert [m.id for m in messages[: len(before)]] == [m.id for m in before]  # kept, in order
    rationales = [m for m in messages if isinstance(m, Explanation)]
    assert len(rationales) == 3 * (1 + 2) and {m.id for m in rationales} <= {m.id for m in before}


def test_supercorrect_episode_survives_its_engine_killed_and_resumes_after_a_kill_at_its_checkpoint(kept, tmp_path):
    args = [
        "experiment=supercorrect",
        "env.stage=sft",
        "env.train_problems=4",
        "env.num_problems=4",
        "env.localisation=2",
        "env.answer_tokens=48",
        "progress=false",
    ]
    # Killed once stage 1 has trained and loaded its adapter: the evaluations need it back.
    run, run_dir = run_until(args, tmp_path, lambda ms: any(isinstance(m, TrainingRun) for m in ms), timeout_s=420)
    kill_actor(run, "VLLMEngineHost")
    # Then the whole run, the moment stage 1's checkpoint lands: `classroom resume` goes
    # on from it, with what was logged after it set aside and redone.
    wait_for(run, tmp_path, lambda _: (run_dir / "checkpoint.json").is_file(), timeout_s=420)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait(timeout=60)
    summary = resume(run_dir)
    assert summary["status"] == "completed" and summary["test_problems"] == 4
    messages = logged(run_dir)
    each_answered_once(messages)
    assert sum(isinstance(m, TrainingRun) for m in messages) == 1  # stage 1 was not trained again
