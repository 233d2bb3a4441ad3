"""Data-generation policies: read an observation, plan what data to make.

Built-ins, one per variant (the programmatic baselines), and :class:`LLMPolicy`, where
the teacher model writes the plan. Any importable class implementing
:class:`DataGenerationPolicy` can be named by ``env.policy._target_``.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Mapping
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from classroom.agents.messages import ParseFailure
from classroom.agents.skills import flat_accuracy, top_skill
from classroom.environments.dataenvgym.plans import apply_to_tree, scale_allocation
from classroom.environments.dataenvgym.types import Action, DataPlan, Exploit, Explore, Observation, Planned, Variant
from classroom.environments.dataenvgym.words import WORD_PROBLEMS, describe
from classroom.serving.llm import LLM
from classroom.serving.prompts import PromptSet
from classroom.serving.structured import chat_structured
from classroom.serving.types import ChatMessage, SamplingParams


@runtime_checkable
class DataGenerationPolicy(Protocol):
    """Reads an observation, plans what data to make (``llm``: the teacher's model)."""

    name: str

    async def plan(self, observation: Observation, llm: LLM | None) -> Planned: ...


@runtime_checkable
class StatefulPolicy(Protocol):
    """A policy with memory across iterations, saved in checkpoints (the bandit's counts)."""

    def state(self) -> dict[str, Any]: ...

    def restore(self, state: Mapping[str, Any]) -> None: ...


class ErrorDrivenPolicy:
    """Open-ended: describe, in words, the kinds of problems the student got wrong.

    One line per kind ("- 6 problems: products of 2 numbers with 2 digits"), read off
    the wrong problems' own arithmetic, the budget shared in proportion to the errors
    of each kind, then a few of the wrong problems as examples. Problems with no
    arithmetic to read (word problems) are asked for as "word problems like the
    examples". The engine acts on the words; no generator settings travel with them.
    """

    name = "error_driven"

    def __init__(self, shown: int = 6, seed: int = 0, prompts: dict[str, str] | None = None):
        self.shown = shown
        self.rng = random.Random(seed)
        self.prompts = PromptSet.load("classroom.environments.dataenvgym", "prompts.yaml", prompts)

    async def plan(self, observation: Observation, llm: LLM | None) -> Planned:
        errors = observation.errors() or list(observation.problems)
        like = self.rng.sample(errors, min(len(errors), observation.budget))
        kinds = Counter(kind.words() if (kind := describe(p.question)) else WORD_PROBLEMS for p in errors)
        allocation = scale_allocation(dict(sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))), observation.budget)
        lines = "\n".join(f"- {n} problems: {words}" for words, n in allocation.items() if n > 0)
        listed = "\n".join(f"- {p.question}" for p in like[: self.shown])
        return Planned(
            DataPlan(
                sender=self.name,
                iteration=observation.iteration,
                count=observation.budget,
                like_problem_ids=tuple(p.id for p in like),
                instructions=self.prompts.render("practise_errors", kinds=lines, problems=listed),
                rationale=f"{len(observation.errors())} of {len(observation.problems)} validation problems wrong, {len(kinds)} kinds",
            )
        )


class UniformSkillsPolicy:
    """The blind baseline: the same data for every skill, whatever the student does.

    It reads only the names of the skills from the observation, never the student's
    answers or accuracy (the paper's baseline: policies that see the student's state
    should beat it).
    """

    name = "blind_uniform"

    async def plan(self, observation: Observation, llm: LLM | None) -> Planned:
        skills = sorted(observation.skills())
        return Planned(
            DataPlan(
                sender=self.name,
                iteration=observation.iteration,
                allocations=scale_allocation(dict.fromkeys(skills, 1.0), observation.budget),
                rationale="uniform over skills, blind to the student",
            )
        )


class WeakSkillsPolicy:
    """Skill-list: allocate the budget to skills in proportion to their errors (+1 each)."""

    name = "weak_skills"

    async def plan(self, observation: Observation, llm: LLM | None) -> Planned:
        report = observation.report.report
        errors = {s.name: s.count - s.correct for s in (report.children if report else ())}
        allocation = scale_allocation({s: e + 1 for s, e in errors.items()}, observation.budget)
        weakest = sorted(errors, key=lambda s: -errors[s])
        return Planned(
            DataPlan(
                sender=self.name,
                iteration=observation.iteration,
                allocations=allocation,
                rationale="errors per skill: " + ", ".join(f"{s} {errors[s]}" for s in weakest),
            )
        )


class BanditTreePolicy:
    """Skill-tree: explore sub-skills a skill has not used, exploit those that pay (UCB).

    The reward of a sub-skill is the change in its validation accuracy (its skill's
    where the validation set has no slice for it) after an iteration that trained on
    it. A skill gets a new sub-skill when it has none yet, or when its known ones are
    mastered or stopped paying; otherwise the budget goes to known sub-skills by
    error rate + mean reward + an exploration bonus.
    """

    name = "bandit_tree"

    def __init__(self, c: float = 0.5, mastery: float = 0.8):
        self.c = c
        self.mastery = mastery
        self.pulls: dict[str, int] = {}
        self.rewards: dict[str, float] = {}
        self.last_accuracy: dict[str, float] = {}
        self.last_trained: list[str] = []

    def _update(self, accuracy: dict[str, float]) -> None:
        for sub in self.last_trained:
            key = sub if sub in accuracy and sub in self.last_accuracy else top_skill(sub)
            if key in accuracy and key in self.last_accuracy:
                self.rewards[sub] = self.rewards.get(sub, 0.0) + accuracy[key] - self.last_accuracy[key]
                self.pulls[sub] = self.pulls.get(sub, 0) + 1
        self.last_accuracy = accuracy

    def _mean(self, sub: str) -> float:
        return self.rewards.get(sub, 0.0) / self.pulls[sub] if self.pulls.get(sub) else 0.0

    async def plan(self, observation: Observation, llm: LLM | None) -> Planned:
        accuracy = flat_accuracy(observation.report.report) if observation.report.report else {}
        self._update(accuracy)
        available = observation.skills()
        known = {sub for subs in observation.tree.values() for sub in subs}
        new: dict[str, str] = {}
        for skill, subs in available.items():
            mine = [s for s in subs if s in known]
            fresh = sorted((s for s in subs if s not in known), key=lambda s: accuracy.get(s, 1.0))
            if not fresh:
                continue
            stalled = mine and all(self.pulls.get(s) and self._mean(s) <= 0 for s in mine)
            mastered = mine and all(accuracy.get(s, accuracy.get(skill, 0.0)) >= self.mastery for s in mine)
            if not mine or stalled or mastered:
                new[skill] = fresh[0]
        if new:
            share = max(observation.budget // (len(known) + len(new)), 1)
            action: Action = Explore(
                sender=self.name,
                iteration=observation.iteration,
                new_subskills=dict.fromkeys(new.values(), share),
                rationale="new sub-skills for "
                + ", ".join(
                    f"{skill} ({'none yet' if not any(top_skill(k) == skill for k in known) else 'known ones mastered or stalled'})"
                    for skill in new
                ),
            )
        else:
            t = 1 + sum(self.pulls.values())
            scores = {
                sub: (1.0 - accuracy.get(sub, accuracy.get(top_skill(sub), 0.0)))
                + self._mean(sub)
                + self.c * math.sqrt(math.log(t + 1) / (self.pulls.get(sub, 0) + 1))
                for sub in known
            }
            action = Exploit(
                sender=self.name,
                iteration=observation.iteration,
                allocations=scale_allocation(scores, observation.budget),
                rationale="UCB scores: " + ", ".join(f"{s} {v:.2f}" for s, v in sorted(scores.items())),
            )
        tree = apply_to_tree(action, observation.tree, observation.budget)
        self.last_trained = [sub for subs in tree.values() for sub, n in subs.items() if n > 0]
        return Planned(action)

    def state(self) -> dict[str, Any]:
        return {"pulls": self.pulls, "rewards": self.rewards, "last_accuracy": self.last_accuracy, "last_trained": self.last_trained}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.pulls = dict(state.get("pulls", {}))
        self.rewards = dict(state.get("rewards", {}))
        self.last_accuracy = dict(state.get("last_accuracy", {}))
        self.last_trained = list(state.get("last_trained", []))


def builtin_policy(variant: Variant, seed: int = 0) -> DataGenerationPolicy:
    """The programmatic policy of a variant."""
    if variant == "open_ended":
        return ErrorDrivenPolicy(seed=seed)
    if variant == "skill_list":
        return WeakSkillsPolicy()
    return BanditTreePolicy()


class _OpenPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")
    instructions: str = Field(min_length=1, max_length=600)


class _SkillPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")
    allocations: dict[str, int]
    rationale: str = ""


class _TreePlan(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["explore", "exploit"]
    allocations: dict[str, int]
    rationale: str = ""


class LLMPolicy:
    """The teacher model writes the plan (free-form, per skill, or explore/exploit).

    A reply that does not parse is recorded and the variant's built-in policy plans
    instead, so a weak teacher model slows learning but never stops the episode.
    """

    name = "llm"

    def __init__(
        self,
        variant: Variant | None = None,
        max_tokens: int = 256,
        temperature: float = 0.0,
        seed: int = 0,
        prompts: dict[str, str] | None = None,
    ):
        self.variant = variant  # None: the observation's
        self.params = SamplingParams(max_tokens=max_tokens, temperature=temperature, seed=seed)
        self.seed = seed
        self.prompts = PromptSet.load("classroom.environments.dataenvgym", "prompts.yaml", prompts)
        self._fallbacks: dict[str, DataGenerationPolicy] = {}

    def fallback(self, variant: Variant) -> DataGenerationPolicy:
        """The built-in policy of a variant, which plans when the model's reply is unusable."""
        if variant not in self._fallbacks:
            self._fallbacks[variant] = builtin_policy(variant, self.seed)
        return self._fallbacks[variant]

    def _prompt(self, observation: Observation, variant: str) -> str:
        errors = observation.errors()
        shown = "\n".join(f"- {p.question} (answer {p.answer})" for p in errors[:6]) or "- none"
        parts = [
            self.prompts.render("state", accuracy=f"{observation.report.accuracy:.0%}"),
            self.prompts.render("errors", errors=shown),
        ]
        if variant != "open_ended":
            per_skill = ", ".join(f"{k} {v:.0%}" for k, v in observation.report.per_skill_accuracy.items())
            parts.append(self.prompts.render("per_skill", per_skill=per_skill))
        if variant == "open_ended":
            parts.append(self.prompts.render("ask_open_ended"))
        elif variant == "skill_list":
            parts.append(self.prompts.render("ask_skill_list", budget=observation.budget, skills=list(observation.skills())))
        else:
            tree = {sub: n for subs in observation.tree.values() for sub, n in subs.items()}
            available = [s for subs in observation.skills().values() for s in subs]
            parts.append(self.prompts.render("ask_skill_tree", tree=tree or "none", available=available, budget=observation.budget))
        return "\n\n".join(parts)

    async def _fall_back(self, variant: Variant, observation: Observation, llm: LLM | None, failure: ParseFailure, tokens: int) -> Planned:
        planned = await self.fallback(variant).plan(observation, llm)
        return Planned(planned.action, (failure, *planned.failures), tokens + planned.tokens)

    async def plan(self, observation: Observation, llm: LLM | None) -> Planned:
        if llm is None:
            raise ValueError("the llm data-generation policy needs the teacher's model")
        variant: Variant = self.variant or observation.variant
        schema = {"open_ended": _OpenPlan, "skill_list": _SkillPlan, "skill_tree": _TreePlan}[variant]
        prompt = [[ChatMessage(role="user", content=self._prompt(observation, variant))]]
        parsed = (await chat_structured(llm, prompt, schema, self.params))[0]
        tokens = parsed.usage.total_tokens
        if parsed.value is None:
            failure = ParseFailure(sender=self.name, expected=schema.__name__, raw_text=parsed.raw, error=parsed.error or "")
            return await self._fall_back(variant, observation, llm, failure, tokens)
        value: Any = parsed.value
        if isinstance(value, _OpenPlan):
            errors = observation.errors() or list(observation.problems)
            return Planned(
                DataPlan(
                    sender=self.name,
                    iteration=observation.iteration,
                    count=observation.budget,
                    instructions=value.instructions,
                    like_problem_ids=tuple(p.id for p in errors[: observation.budget]),
                ),
                tokens=tokens,
            )
        known_skills = observation.skills()
        if isinstance(value, _SkillPlan):
            # Only known skills, with some data: a plan that names none is no plan (it fell
            # back to the uniform, blind allocation unseen); the variant's built-in plans.
            wanted = {k: v for k, v in value.allocations.items() if k in known_skills and v > 0}
            if not wanted:
                failure = ParseFailure(
                    sender=self.name, expected="an allocation over known skills", raw_text=parsed.raw, error="names no known skill"
                )
                return await self._fall_back(variant, observation, llm, failure, tokens)
            return Planned(
                DataPlan(
                    sender=self.name,
                    iteration=observation.iteration,
                    allocations=scale_allocation(wanted, observation.budget),
                    rationale=value.rationale,
                ),
                tokens=tokens,
            )
        subs = {s for ss in known_skills.values() for s in ss}
        wanted = {k: v for k, v in value.allocations.items() if k in subs and v > 0}
        if value.action == "explore" and wanted:
            return Planned(
                Explore(sender=self.name, iteration=observation.iteration, new_subskills=wanted, rationale=value.rationale), tokens=tokens
            )
        if value.action == "exploit" and observation.tree and wanted:
            return Planned(
                Exploit(sender=self.name, iteration=observation.iteration, allocations=wanted, rationale=value.rationale), tokens=tokens
            )
        failure = ParseFailure(
            sender=self.name, expected="a usable skill-tree action", raw_text=parsed.raw, error="names no known sub-skill"
        )
        return await self._fall_back(variant, observation, llm, failure, tokens)

    def state(self) -> dict[str, Any]:
        return {v: p.state() for v, p in self._fallbacks.items() if isinstance(p, StatefulPolicy)}

    def restore(self, state: Mapping[str, Any]) -> None:
        for variant, value in state.items():
            fallback = self.fallback(variant)  # type: ignore[arg-type]
            if isinstance(fallback, StatefulPolicy):
                fallback.restore(value)
