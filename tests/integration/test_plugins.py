"""A policy class from a module outside the repo, named by _target_, runs in an actor."""

from __future__ import annotations

import textwrap

import pytest

from classroom.agents.actors import spawn
from classroom.agents.config_validation import instantiate_plugin
from classroom.agents.messages import Attempt, Problem
from classroom.agents.transport import Agent
from classroom.environments.tom.policies import InterventionPolicy
from classroom.environments.tom.teacher import TomTeacher

PLUGIN = textwrap.dedent(
    '''
    class LongestQuestionFirst:
        """Intervene where the question is longest (a user's own policy)."""

        name = "longest_first"

        def __init__(self, weight: float = 1.0):
            self.weight = weight

        async def utilities(self, problems, attempts, context=None):
            return [self.weight * len(p.question) for p in problems]
    '''
)


@pytest.fixture
def plugin_module(tmp_path, monkeypatch):
    folder = tmp_path / "user_code"
    folder.mkdir()
    (folder / "my_policies.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(folder))
    return "my_policies.LongestQuestionFirst"


async def test_plugin_policy_from_outside_the_repo_runs_in_a_teacher_actor(engine, plugin_module):
    policy = instantiate_plugin("env.intervention", {"_target_": plugin_module, "weight": 2.0}, InterventionPolicy)
    assert policy.name == "longest_first" and policy.weight == 2.0
    problems = [Problem(id=f"p{i}", question="x" * n, answer="1") for i, n in enumerate([5, 50, 20])]
    attempts = [Attempt(problem_id=p.id, reasoning="", final_answer=None) for p in problems]
    teacher = Agent(spawn(TomTeacher, engine, intervention=policy))  # the actor cannot import my_policies
    decisions = await teacher.call(TomTeacher.decide, problems, attempts, 1)
    assert [d.intervene for d in decisions] == [False, True, False]
    assert decisions[1].policy == "longest_first" and decisions[1].utility == 100.0
