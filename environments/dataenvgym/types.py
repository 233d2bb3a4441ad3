"""DataEnvGym's types: its plans (messages), what the agent observes and hands back.

The policy reads an :class:`Observation` (the student's graded attempts and a report
per skill) and emits a typed action: a :class:`DataPlan` (open-ended, skill-list) or an
:class:`Explore` / :class:`Exploit` over a skill tree. The engine turns the action's
:class:`DataRequest` list into training examples; :class:`AgentAction` carries both to
the environment's ``step``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from classroom.agents.messages import (
    Attempt,
    Feedback,
    MessageBase,
    ParseFailure,
    Problem,
    TrainingExample,
    TrainingRun,
    register_message,
)

Variant = Literal["open_ended", "skill_list", "skill_tree"]
VARIANTS: tuple[str, ...] = ("open_ended", "skill_list", "skill_tree")
# skill -> sub-skill path -> examples per iteration: the skill-tree variant's state.
SkillTree = dict[str, dict[str, int]]


@register_message
class DataPlan(MessageBase):
    """A data-generation policy's plan: how many examples of which skills to make.

    Skill-list plans fill ``allocations`` (skill -> count). Open-ended plans leave it
    empty and give free-form ``instructions``, ``count`` and the problems to imitate.
    """

    kind: Literal["data_plan"] = "data_plan"
    allocations: dict[str, int] = Field(default_factory=dict)
    rationale: str = ""
    instructions: str = ""
    count: int = 0
    like_problem_ids: tuple[str, ...] = ()
    iteration: int | None = None


@register_message
class Explore(MessageBase):
    """Skill-tree action: add new sub-skills ("skill/sub-skill") with data allocations."""

    kind: Literal["explore"] = "explore"
    new_subskills: dict[str, int]
    rationale: str = ""
    iteration: int | None = None


@register_message
class Exploit(MessageBase):
    """Skill-tree action: shift the data allocation among known sub-skills."""

    kind: Literal["exploit"] = "exploit"
    allocations: dict[str, int]
    rationale: str = ""
    iteration: int | None = None


Action = Union[DataPlan, Explore, Exploit]  # noqa: UP007


class Observation(BaseModel):
    """What the environment shows the data-generation agent after an evaluation."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    variant: Variant
    iteration: int
    problems: tuple[Problem, ...]  # the validation problems
    attempts: tuple[Attempt, ...]  # the student's graded attempts at them
    report: Feedback
    budget: int  # examples the agent may make this iteration
    examples_so_far: int = 0
    tree: SkillTree = Field(default_factory=dict)

    def errors(self) -> list[Problem]:
        """The validation problems the student got wrong."""
        wrong = {a.problem_id for a in self.attempts if not a.correct}
        return [p for p in self.problems if p.id in wrong]

    def skills(self) -> dict[str, list[str]]:
        """Top-level skills and the sub-skills seen under each (validation labels)."""
        result: dict[str, list[str]] = {}
        if self.report.report is not None:
            for top in self.report.report.children:
                result[top.name] = [sub.name for sub in top.children]
        return result


class DataRequest(BaseModel):
    """One unit of work for an engine: ``count`` examples of a skill, or like some problems."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    count: int = Field(ge=0)
    skill: str | None = None  # "skill" or "skill/sub-skill"; None: open-ended
    instructions: str = ""
    like: tuple[Problem, ...] = ()


class AgentAction(BaseModel):
    """What the agent hands the environment's ``step``: its plan and the data it made."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    plan: Annotated[Action, Field(discriminator="kind")]
    examples: tuple[TrainingExample, ...] = ()
    # Parse failures and requests the engine could not serve: recorded, not fatal.
    notes: tuple[ParseFailure, ...] = ()
    tokens: int = 0  # the teacher model's tokens spent on this action (LLM policies, engines)
    # Plans the model wrote that did not parse, so the built-in policy planned instead.
    fallbacks: int = 0


class StepResult(BaseModel):
    """What ``DataEnvGym.step`` returns."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    observation: Observation
    reward: float
    skill_rewards: dict[str, float] = Field(default_factory=dict)
    done: bool
    kept: int
    dropped: int
    training: TrainingRun | None = None


@dataclass(frozen=True)
class Planned:
    """A policy's action, with the replies that did not parse and the tokens it spent."""

    action: Action
    failures: tuple[ParseFailure, ...] = ()
    tokens: int = 0


@dataclass(frozen=True)
class Generated:
    """An engine's examples, the requests it could not serve, the tokens it spent."""

    examples: list[TrainingExample] = field(default_factory=list)
    failures: list[ParseFailure] = field(default_factory=list)
    tokens: int = 0
