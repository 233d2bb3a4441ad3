"""Real processes killed mid-episode (SIGKILL), episodes that survive it.

Each test runs `classroom run` in its own process with its own local Ray (and, where it
kills one, its own embedded engine; LbT's plays on the tier's over HTTP), waits on the
event log until the episode is under way, and kills a process of that run: Ray restarts
the engine actor, the calls in flight go to the restarted one
(which loads back its adapters), and the episode completes with every problem answered
once per stage. Where the whole run is killed, `classroom resume` continues it in this
process, on the tier's shared engine (the run names the same model config): a resume
reads only the run directory, whichever process and engine it runs on. (SuperCorrect's
killed run is the one test_supercorrect.py reads for both of its stages.)
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from support.kills import each_answered_once, in_phase, kill_actor, kill_run, logged, resume, run_until, wait_for

from classroom.agents.messages import Attempt, Explanation, TrainingRun
from classroom.environments.dataenvgym import DataEnvGymLoop

TOM = [
    "env.num_problems=8",
    "env.seed_set_size=4",
    "env.post_test_size=4",
    "env.demo_counts=[0,2]",
    "student.sampling.max_tokens=24",
    "teacher.sampling.max_tokens=24",
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
    kill_run(run)
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


# The tier's shared engine over HTTP (as `classroom serve` opens one): a run that kills
# no engine of its own starts none.
OVER_HTTP = ["model=openai", "model.models.remote.endpoint.keyless=true"]


def test_lbt_episode_survives_its_student_killed_and_resumes_after_a_kill(engine_url, tmp_path):
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
    env = {"CLASSROOM_OPENAI_BASE_URL": engine_url, "CLASSROOM_OPENAI_MODEL": "embedded"}
    # Killed once the teacher's rationales are logged, the exams under way. (An engine
    # killed here as well would show nothing the ToM and DataEnvGym tests above do not:
    # the whole run is killed before any restart could be observed.)
    run, run_dir = run_until(args, tmp_path, lambda ms: any(isinstance(m, Explanation) for m in ms), model=OVER_HTTP, env=env)
    # Students learn nothing in learning by teaching: Ray restarts them, calls and all.
    kill_actor(run, "Student")
    # Then the whole run, its exams in flight: `classroom resume` takes the rationales
    # from the log (asks the teacher nothing) and the exams from the students.
    kill_run(run)
    before = logged(run_dir)
    summary = resume(run_dir, env=env)
    assert summary["status"] == "completed" and summary["problems"] == 3
    messages = logged(run_dir)
    each_answered_once(messages)
    assert [m.id for m in messages[: len(before)]] == [m.id for m in before]  # kept, in order
    rationales = [m for m in messages if isinstance(m, Explanation)]
    assert len(rationales) == 3 * (1 + 2) and {m.id for m in rationales} <= {m.id for m in before}
