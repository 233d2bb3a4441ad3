"""A whole small ToM episode, end to end, on real Ray actors and the real engine."""

from __future__ import annotations

import json
from collections import Counter

from classroom.agents.actors import spawn
from classroom.agents.grading import Grader
from classroom.agents.messages import Attempt, Explanation, InterventionDecision, Problem
from classroom.agents.policies import AllIntervention, InContextLearner
from classroom.agents.roles import Student, Teacher
from classroom.environments.tasks import reasoning_gym
from classroom.environments.tom import TomConfig, TomEnvironment
from classroom.launch.rundir import RunDirectory, read_events, read_metrics
from classroom.serving.pool import ModelPool, RoutedLLM


async def test_episode_end_to_end(engine, tmp_path):
    pool = ModelPool({"embedded": RoutedLLM("embedded", [engine])}, {"teacher": "embedded", "student": "embedded"})
    task = reasoning_gym(size=10, seed=1)
    teacher = spawn(Teacher, pool.llm("teacher"), episode_id="ep", intervention=AllIntervention(), sampling={"max_tokens": 64})
    student = spawn(Student, pool.llm("student"), episode_id="ep", learner=InContextLearner(k=2), sampling={"max_tokens": 48})
    grader = spawn(Grader)
    run = RunDirectory(tmp_path, {"test": True}, show_progress=False)
    env = TomEnvironment(
        TomConfig(num_problems=8, budget=0.5, seed=1), task,
        teacher=teacher, student=student, grader=grader, recorder=run, episode_id="ep",
    )
    summary = await env.run()
    run.write_summary(summary)
    run.close()

    assert summary["problems"] == 8 and summary["teaching_set"] == 4 and summary["post_test_set"] == 4
    assert summary["budget"] == 2 and summary["interventions"] == 2

    header, messages = read_events(tmp_path / "events.jsonl")
    assert header["schema_version"] == 1
    kinds = Counter(m.kind for m in messages)
    assert kinds == {"problem": 8, "attempt": 8 + 2 + 4, "intervention_decision": 4, "explanation": 2}
    attempts = [m for m in messages if isinstance(m, Attempt)]
    assert all(a.correct is not None and a.episode_id == "ep" for a in attempts)
    phases = Counter(a.phase for a in attempts)
    assert phases == {"pre_test": 8, "with_explanation": 2, "post_test": 4}

    # Provenance: answers with an explanation name it; post-test answers name their demos.
    explanations = {m.id for m in messages if isinstance(m, Explanation)}
    for a in attempts:
        if a.phase == "with_explanation":
            assert len(a.context_ids) == 1 and a.context_ids[0] in explanations
        if a.phase == "post_test":
            assert set(a.context_ids) == explanations  # k=2 and two explained problems
    decisions = [m for m in messages if isinstance(m, InterventionDecision)]
    assert sum(d.intervene for d in decisions) == 2 and decisions[-1].budget_left == 0

    # The summary is what the log says.
    pre = [a for a in attempts if a.phase == "pre_test"]
    post = [a for a in attempts if a.phase == "post_test"]
    assert summary["accuracy"]["teaching_before"] == sum(bool(a.correct) for a in pre[:4]) / 4
    assert summary["accuracy"]["post_test_with_demos"] == sum(bool(a.correct) for a in post) / 4
    by_agent = Counter()
    for m in messages:
        if isinstance(m, (Attempt, Explanation)):
            by_agent[m.sender] += m.usage.total_tokens
    assert summary["tokens"] == dict(by_agent) and by_agent["teacher"] > 0

    metrics = {(m["name"], m.get("agent")): m["value"] for m in read_metrics(tmp_path / "metrics.jsonl")}
    assert metrics[("tokens", "student")] == by_agent["student"]
    assert metrics[("accuracy/teaching_before", None)] == summary["accuracy"]["teaching_before"]
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["messages"]["attempt"] == 14


async def test_problems_are_the_same_for_the_same_seed():
    task = reasoning_gym(size=10, seed=1)
    a = [p.id for p in task.sample(5, split="test", seed=3)]
    b = [p.id for p in task.sample(5, split="test", seed=3)]
    assert a == b and all(isinstance(p, Problem) for p in task.split("test"))
