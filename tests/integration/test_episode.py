"""A whole small ToM episode, end to end, on real Ray actors and the real engine."""

from __future__ import annotations

import json
from collections import Counter

from classroom.agents.actors import spawn
from classroom.agents.grading import Grader
from classroom.agents.learners import InContextLearner
from classroom.agents.messages import Attempt, Explanation, Problem
from classroom.agents.roles import Student
from classroom.agents.transport import Agent, StudentAgent
from classroom.environments.eventlog import read_events
from classroom.environments.tasks import reasoning_gym
from classroom.environments.tom import TomAgents, TomConfig, TomEpisode
from classroom.environments.tom.policies import AllIntervention
from classroom.environments.tom.teacher import TomTeacher
from classroom.environments.tom.types import InterventionDecision
from classroom.launch.rundir import RunDirectory, read_metrics
from classroom.launch.runner import record_result
from classroom.serving.pool import ModelPool, RoutedLLM


async def test_episode_end_to_end(engine, tmp_path):
    pool = ModelPool({"embedded": RoutedLLM("embedded", [engine])}, {"teacher": "embedded", "student": "embedded"})
    task = reasoning_gym(size=12, seed=1)
    agents = TomAgents(
        teacher=Agent(spawn(TomTeacher, pool.llm("teacher"), episode_id="ep", intervention=AllIntervention(), sampling={"max_tokens": 48})),
        students=(
            StudentAgent(spawn(Student, pool.llm("student"), episode_id="ep", learner=InContextLearner(k=2), sampling={"max_tokens": 40})),
        ),
        grader=Agent(spawn(Grader)),
    )
    run = RunDirectory(tmp_path, {"test": True}, loop="tom", show_progress=False)
    config = TomConfig(num_problems=4, seed_set_size=2, post_test_size=2, budgets=(0.0, 0.5, 1.0), demo_counts=(0, 2, 8), seed=1)
    result = await TomEpisode(config, task, agents, run, episode_id="ep").run()
    record_result(run, result)  # what classroom run records from every loop's result
    summary = result.summary()
    run.write_summary(summary)
    run.close()

    assert (summary["problems"], summary["seed_set"], summary["post_test_set"]) == (4, 2, 2)
    assert summary["interventions"] == {"0": 0, "0.5": 2, "1": 4}

    header, messages = read_events(tmp_path / "events.jsonl")
    assert header["schema_version"] == 2 and header["loop"] == "tom"
    kinds = Counter(m.kind for m in messages)
    # attempts: 8 alone + 2 seed with explanation + 4 test with explanation + 2 post-test with 2 demos
    assert kinds == {"problem": 8, "attempt": 16, "intervention_decision": 4, "explanation": 6}
    attempts = [m for m in messages if isinstance(m, Attempt)]
    assert all(a.correct is not None and a.episode_id == "ep" for a in attempts)
    assert Counter(a.phase for a in attempts) == {"pre_test": 8, "seed_with_explanation": 2, "with_explanation": 4, "post_test_2_demos": 2}
    # Confidence comes from the answer's token log-probabilities.
    assert any(a.answer_prob is not None and 0.0 < a.answer_prob <= 1.0 for a in attempts)

    # Provenance: answers with an explanation name it; post-test answers name their demos.
    explanations = {m.id: m for m in messages if isinstance(m, Explanation)}
    for a in attempts:
        if a.phase.endswith("with_explanation"):
            assert len(a.context_ids) == 1 and explanations[a.context_ids[0]].problem_id == a.problem_id
        if a.phase == "post_test_2_demos":
            assert len(a.context_ids) == 2 and all(c in explanations for c in a.context_ids)
    decisions = [m for m in messages if isinstance(m, InterventionDecision)]
    assert all(d.intervene for d in decisions) and decisions[-1].budget_left == 0

    # The summary is what the log says.
    by_problem = {m.id: m for m in messages if isinstance(m, Problem)}
    test_ids = [d.problem_id for d in decisions]
    pre = {a.problem_id: a for a in attempts if a.phase == "pre_test"}
    helped = {a.problem_id: a for a in attempts if a.phase == "with_explanation"}
    assert set(test_ids) <= set(by_problem)
    assert summary["accuracy_by_budget"]["0"] == sum(bool(pre[i].correct) for i in test_ids) / 4
    assert summary["accuracy_by_budget"]["1"] == sum(bool(helped[i].correct) for i in test_ids) / 4
    assert summary["multiturn_by_demos"]["8"] is None  # only 4 problems were explained
    assert summary["scores"]["acc@0.5"] == summary["accuracy_by_budget"]["0.5"]
    by_agent = Counter()
    for m in messages:
        if isinstance(m, (Attempt, Explanation)):
            by_agent[m.sender] += m.usage.total_tokens
    assert summary["tokens"] == dict(by_agent) and by_agent["teacher"] > 0

    metrics = {(m["name"], m.get("agent")): m["value"] for m in read_metrics(tmp_path / "metrics.jsonl")}
    assert metrics[("tokens", "student")] == by_agent["student"]
    assert metrics[("score/acc@0", None)] == summary["accuracy_by_budget"]["0"]
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["messages"]["attempt"] == 16
