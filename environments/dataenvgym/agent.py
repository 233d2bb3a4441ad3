"""The data-generation agent: skill discovery, a policy that plans, an engine that makes data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from classroom.agents.messages import Problem
from classroom.agents.skills import Discovered, SkillDiscovery, TaskSkills
from classroom.environments.dataenvgym.engines import DataGenerationEngine
from classroom.environments.dataenvgym.plans import requests_for
from classroom.environments.dataenvgym.policies import DataGenerationPolicy, StatefulPolicy
from classroom.environments.dataenvgym.types import AgentAction, Observation
from classroom.serving.llm import LLM


class DataGenerator:
    """The data-generation agent (a Ray actor): one teacher-model handle, three plug-ins."""

    def __init__(
        self,
        llm: LLM | None,
        *,
        policy: DataGenerationPolicy,
        engine: DataGenerationEngine,
        skills: SkillDiscovery | None = None,
        name: str = "data_generator",
        episode_id: str = "",
        seed: int = 0,
    ):
        self.llm = llm
        self.policy = policy
        self.engine = engine
        self.skill_discovery = skills or TaskSkills()
        self.name = name
        self.episode_id = episode_id
        self.seed = seed

    async def discover_skills(self, problems: Sequence[Problem]) -> Discovered:
        """The problems labelled with skills, the replies that did not parse, the tokens spent."""
        return await self.skill_discovery.discover(problems, self.llm)

    async def act(self, observation: Observation) -> AgentAction:
        """Plan from the observation, make the data, stamp it with this episode."""
        stamp = {"episode_id": self.episode_id}
        planned = await self.policy.plan(observation, self.llm)
        plan = planned.action.model_copy(update={**stamp, "iteration": observation.iteration + 1})
        made = await self.engine.generate(requests_for(plan, observation), self.llm, seed=self.seed * 1000 + observation.iteration)
        return AgentAction(
            plan=plan,
            examples=tuple(
                e.model_copy(update={**stamp, "parents": (plan.id,), "iteration": observation.iteration + 1}) for e in made.examples
            ),
            notes=tuple(f.model_copy(update=stamp) for f in (*planned.failures, *made.failures)),
            tokens=planned.tokens + made.tokens,
            fallbacks=len(planned.failures),
        )

    def save_state(self) -> dict[str, Any]:
        """The policy's memory (a bandit's counts), for checkpoints."""
        return self.policy.state() if isinstance(self.policy, StatefulPolicy) else {}

    def load_state(self, state: Mapping[str, Any]) -> None:
        if isinstance(self.policy, StatefulPolicy):
            self.policy.restore(state)
