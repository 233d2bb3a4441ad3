"""The data-generation agent of DataEnvGym: a policy that plans, an engine that makes data.

The policy reads an :class:`Observation` (the student's graded attempts and a report
per skill) and emits a typed action: a :class:`DataPlan` (open-ended, skill-list) or
an :class:`Explore` / :class:`Exploit` over a skill tree. The engine turns the action's
requests into :class:`TrainingExample` messages: the teacher LLM writing problems,
worked solutions and answers, or reasoning-gym generators with exact answers.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from typing import Annotated, Any, Literal, Protocol, Sequence, Union, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from classroom.agents.grading import REASONING_GYM_KEY, reasoning_gym_dataset
from classroom.agents.messages import (
    Attempt,
    DataPlan,
    Exploit,
    Explore,
    Feedback,
    ParseFailure,
    Problem,
    TrainingExample,
)
from classroom.agents.skills import SkillDiscovery, TaskSkills, flat_accuracy, top_skill
from classroom.serving.llm import LLM
from classroom.serving.structured import chat_structured
from classroom.serving.types import ChatMessage, SamplingParams

Variant = Literal["open_ended", "skill_list", "skill_tree"]
Action = Union[DataPlan, Explore, Exploit]
# skill -> sub-skill path -> examples per iteration: the skill-tree variant's state.
SkillTree = dict[str, dict[str, int]]


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


def scale_allocation(allocation: dict[str, float], budget: int) -> dict[str, int]:
    """Non-negative weights -> whole counts summing to ``budget`` (largest remainders)."""
    weights = {k: max(float(v), 0.0) for k, v in allocation.items()}
    total = sum(weights.values())
    if budget <= 0 or not weights:
        return {k: 0 for k in weights}
    if total <= 0:
        weights = {k: 1.0 for k in weights}
        total = float(len(weights))
    exact = {k: budget * w / total for k, w in weights.items()}
    counts = {k: int(v) for k, v in exact.items()}
    for key in sorted(exact, key=lambda k: counts[k] - exact[k])[: budget - sum(counts.values())]:
        counts[key] += 1
    return counts


def apply_to_tree(action: Action, tree: SkillTree, budget: int) -> SkillTree:
    """The skill tree after an Explore (adds sub-skills) or Exploit (reallocates)."""
    flat = {sub: n for subs in tree.values() for sub, n in subs.items()}
    if isinstance(action, Explore):
        flat.update({sub: n for sub, n in action.new_subskills.items() if "/" in sub})
    elif isinstance(action, Exploit):
        # Exploit moves data among known sub-skills only; anything else is ignored.
        flat = {sub: action.allocations.get(sub, 0) for sub in flat}
    else:
        return tree
    new: SkillTree = {}
    for sub, n in scale_allocation(flat, budget).items():
        new.setdefault(top_skill(sub), {})[sub] = n
    return new


def requests_for(action: Action, observation: Observation) -> list[DataRequest]:
    """The engine requests an action stands for."""
    if isinstance(action, (Explore, Exploit)):
        tree = apply_to_tree(action, observation.tree, observation.budget)
        return [DataRequest(skill=sub, count=n) for subs in tree.values() for sub, n in subs.items() if n > 0]
    if action.allocations:
        return [DataRequest(skill=s, count=n, instructions=action.instructions) for s, n in action.allocations.items() if n > 0]
    by_id = {p.id: p for p in observation.problems}
    like = tuple(by_id[i] for i in action.like_problem_ids if i in by_id)
    return [DataRequest(count=action.count, instructions=action.instructions, like=like)] if action.count > 0 else []


# ------------------------------------------------------------------------------ policies


@runtime_checkable
class DataGenerationPolicy(Protocol):
    """Reads an observation, emits a typed plan of what data to make."""

    async def plan(self, observation: Observation, llm: LLM | None) -> Action: ...


class ErrorDrivenPolicy:
    """Open-ended: make problems like the ones the student got wrong."""

    name = "error_driven"

    def __init__(self, shown: int = 6, seed: int = 0):
        self.shown = shown
        self.rng = random.Random(seed)

    async def plan(self, observation: Observation, llm: LLM | None) -> DataPlan:
        errors = observation.errors() or list(observation.problems)
        like = self.rng.sample(errors, min(len(errors), observation.budget))
        listed = "\n".join(f"- {p.question}" for p in like[: self.shown])
        return DataPlan(
            sender=self.name, iteration=observation.iteration, count=observation.budget,
            like_problem_ids=tuple(p.id for p in like),
            instructions=f"Write new problems that practise what the student got wrong, like:\n{listed}",
            rationale=f"{len(observation.errors())} of {len(observation.problems)} validation problems wrong",
        )


class WeakSkillsPolicy:
    """Skill-list: allocate the budget to skills in proportion to their errors (+1 each)."""

    name = "weak_skills"

    async def plan(self, observation: Observation, llm: LLM | None) -> DataPlan:
        report = observation.report.report
        errors = {s.name: s.count - s.correct for s in (report.children if report else ())}
        allocation = scale_allocation({s: e + 1 for s, e in errors.items()}, observation.budget)
        weakest = sorted(errors, key=lambda s: -errors[s])
        return DataPlan(
            sender=self.name, iteration=observation.iteration, allocations=allocation,
            rationale="errors per skill: " + ", ".join(f"{s} {errors[s]}" for s in weakest),
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

    async def plan(self, observation: Observation, llm: LLM | None) -> Action:
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
                sender=self.name, iteration=observation.iteration,
                new_subskills={sub: share for sub in new.values()},
                rationale="new sub-skills for " + ", ".join(
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
                sender=self.name, iteration=observation.iteration,
                allocations=scale_allocation(scores, observation.budget),
                rationale="UCB scores: " + ", ".join(f"{s} {v:.2f}" for s, v in sorted(scores.items())),
            )
        tree = apply_to_tree(action, observation.tree, observation.budget)
        self.last_trained = [sub for subs in tree.values() for sub, n in subs.items() if n > 0]
        return action

    def state(self) -> dict[str, Any]:
        return {"pulls": self.pulls, "rewards": self.rewards, "last_accuracy": self.last_accuracy, "last_trained": self.last_trained}

    def restore(self, state: dict[str, Any]) -> None:
        self.pulls = dict(state.get("pulls", {}))
        self.rewards = dict(state.get("rewards", {}))
        self.last_accuracy = dict(state.get("last_accuracy", {}))
        self.last_trained = list(state.get("last_trained", []))


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

    def __init__(self, variant: Variant | None = None, max_tokens: int = 256, temperature: float = 0.0, seed: int = 0):
        self.variant = variant  # None: the observation's
        self.params = SamplingParams(max_tokens=max_tokens, temperature=temperature, seed=seed)
        self.seed = seed
        self._fallbacks: dict[str, Any] = {}
        self.failures: list[ParseFailure] = []
        self.tokens_used = 0

    def fallback(self, variant: str) -> Any:
        """The built-in policy of a variant, which plans when the model's reply is unusable."""
        if variant not in self._fallbacks:
            self._fallbacks[variant] = {"open_ended": ErrorDrivenPolicy(seed=self.seed), "skill_list": WeakSkillsPolicy(), "skill_tree": BanditTreePolicy()}[variant]
        return self._fallbacks[variant]

    def _prompt(self, observation: Observation, variant: str) -> str:
        errors = observation.errors()
        shown = "\n".join(f"- {p.question} (answer {p.answer})" for p in errors[:6]) or "- none"
        lines = [
            f"You make training data for a student. Its validation accuracy is {observation.report.accuracy:.0%}.",
            f"Problems it got wrong:\n{shown}",
        ]
        if variant != "open_ended":
            lines.append("Accuracy per skill: " + ", ".join(f"{k} {v:.0%}" for k, v in observation.report.per_skill_accuracy.items()))
        if variant == "open_ended":
            lines.append('Write instructions for new practice problems. Reply as JSON {"instructions": "..."}.')
        elif variant == "skill_list":
            lines.append(
                f"Split {observation.budget} new examples among the skills {list(observation.skills())}. "
                'Reply as JSON {"allocations": {"skill": count, ...}, "rationale": "..."}.'
            )
        else:
            tree = {sub: n for subs in observation.tree.values() for sub, n in subs.items()}
            lines.append(
                f"Known sub-skills and their data: {tree or 'none'}. Sub-skills available: "
                f"{[s for subs in observation.skills().values() for s in subs]}. Either explore (add sub-skills) or "
                f"exploit (move data among known ones), {observation.budget} examples in all. Reply as JSON "
                '{"action": "explore" or "exploit", "allocations": {"skill/sub-skill": count, ...}, "rationale": "..."}.'
            )
        return "\n\n".join(lines)

    async def plan(self, observation: Observation, llm: LLM | None) -> Action:
        if llm is None:
            raise ValueError("the llm data-generation policy needs the teacher's model")
        variant = self.variant or observation.variant
        schema = {"open_ended": _OpenPlan, "skill_list": _SkillPlan, "skill_tree": _TreePlan}[variant]
        parsed = (await chat_structured(llm, [[ChatMessage(role="user", content=self._prompt(observation, variant))]], schema, self.params))[0]
        self.tokens_used += parsed.usage.total_tokens
        if parsed.value is None:
            self.failures.append(ParseFailure(sender=self.name, expected=schema.__name__, raw_text=parsed.raw, error=parsed.error or ""))
            return await self.fallback(variant).plan(observation, llm)
        value: Any = parsed.value
        if isinstance(value, _OpenPlan):
            errors = observation.errors() or list(observation.problems)
            return DataPlan(
                sender=self.name, iteration=observation.iteration, count=observation.budget,
                instructions=value.instructions, like_problem_ids=tuple(p.id for p in errors[: observation.budget]),
            )
        known_skills = observation.skills()
        if isinstance(value, _SkillPlan):
            wanted = {k: v for k, v in value.allocations.items() if k in known_skills}
            return DataPlan(sender=self.name, iteration=observation.iteration,
                            allocations=scale_allocation(wanted or {k: 1 for k in known_skills}, observation.budget),
                            rationale=value.rationale)
        subs = {s for ss in known_skills.values() for s in ss}
        wanted = {k: v for k, v in value.allocations.items() if k in subs}
        if value.action == "explore" and wanted:
            return Explore(sender=self.name, iteration=observation.iteration, new_subskills=wanted, rationale=value.rationale)
        if value.action == "exploit" and observation.tree:
            return Exploit(sender=self.name, iteration=observation.iteration, allocations=wanted, rationale=value.rationale)
        self.failures.append(ParseFailure(sender=self.name, expected="a usable skill-tree action", raw_text=parsed.raw, error="names no known sub-skill"))
        return await self.fallback(variant).plan(observation, llm)

    def state(self) -> dict[str, Any]:
        return {v: p.state() for v, p in self._fallbacks.items() if hasattr(p, "state")}

    def restore(self, state: dict[str, Any]) -> None:
        for variant, value in state.items():
            self.fallback(variant).restore(value)


# ------------------------------------------------------------------------------- engines


@runtime_checkable
class DataGenerationEngine(Protocol):
    """Makes training examples for requests (problem, worked solution, answer)."""

    async def generate(self, requests: Sequence[DataRequest], llm: LLM | None, *, seed: int) -> tuple[list[TrainingExample], list[ParseFailure]]: ...


def worked_solution(expression: str | None, answer: str) -> str:
    """A short worked solution for "a + b - c" or "a * b" chains; the answer line always."""
    tokens = (expression or "").split()
    steps: list[str] = []
    if len(tokens) >= 3 and len(tokens) % 2 == 1 and all(t in "+-*" for t in tokens[1::2]):
        try:
            total = int(tokens[0])
            for op, term in zip(tokens[1::2], tokens[2::2]):
                value = int(term)
                new = total + value if op == "+" else total - value if op == "-" else total * value
                steps.append(f"{total} {op} {value} = {new}.")
                total = new
        except ValueError:
            steps = []
    return " ".join([*steps, f"The answer is {answer}."])


class ReasoningGymEngine:
    """Programmatic engine: reasoning-gym generators with exact answers.

    ``catalogue`` maps a dataset to named sub-skills (``create_dataset`` settings), as
    the ``reasoning_gym_skills`` task does; open-ended requests imitate a problem by
    drawing fresh entries from the generator and settings that made it.
    """

    name = "reasoning_gym"

    def __init__(self, catalogue: dict[str, dict[str, dict[str, Any]]] | None = None):
        self.catalogue = catalogue or {}

    def _settings(self, skill: str) -> list[tuple[str, str, dict[str, Any]]]:
        dataset, _, sub = skill.partition("/")
        subs = self.catalogue.get(dataset, {})
        if sub:
            return [(dataset, skill, dict(subs[sub]))] if sub in subs else []
        if subs:
            return [(dataset, f"{dataset}/{name}", dict(s)) for name, s in subs.items()]
        from classroom.environments.tasks import REASONING_GYM_DEFAULTS
        from reasoning_gym.factory import DATASETS

        return [(dataset, dataset, dict(REASONING_GYM_DEFAULTS.get(dataset, {})))] if dataset in DATASETS else []

    def _make(self, dataset: str, path: str, settings: dict[str, Any], count: int, seed: int, note: str) -> list[TrainingExample]:
        kwargs = {**{k: v for k, v in settings.items() if k not in ("size", "seed")}, "size": count, "seed": seed}
        data = reasoning_gym_dataset(dataset, kwargs)
        examples = []
        for index in range(count):
            entry = data[index]
            answer = str(entry["answer"])
            skills = (dataset,) if path == dataset else (dataset, path)
            examples.append(TrainingExample(
                sender=self.name, prompt=entry["question"], answer=answer, skills=skills, source=note,
                completion=worked_solution(entry.get("metadata", {}).get("expression"), answer),
                metadata={REASONING_GYM_KEY: {"dataset": dataset, "config": kwargs, "entry": entry}},
            ))
        return examples

    async def generate(self, requests: Sequence[DataRequest], llm: LLM | None, *, seed: int) -> tuple[list[TrainingExample], list[ParseFailure]]:
        examples: list[TrainingExample] = []
        failures: list[ParseFailure] = []
        for number, request in enumerate(requests):
            # Far from the task's seeds (seed * 1000 + k): fresh problems, not copies.
            base = 10_000_000 + seed * 10_000 + number * 100
            if request.skill is None:
                sources = [p.metadata[REASONING_GYM_KEY] for p in request.like if REASONING_GYM_KEY in p.metadata]
                if not sources:
                    failures.append(ParseFailure(sender=self.name, expected="reasoning-gym problems to imitate", raw_text=request.instructions[:200], error="open-ended request names no reasoning-gym problem"))
                    continue
                per = Counter(i % len(sources) for i in range(request.count))
                for i, n in per.items():
                    info = sources[i]
                    examples += self._make(info["dataset"], info["dataset"], info.get("config", {}), n, base + i, "like an error")
                continue
            targets = self._settings(request.skill)
            if not targets:
                failures.append(ParseFailure(sender=self.name, expected="a skill this engine can generate", raw_text=request.skill, error=f"no reasoning-gym generator for skill {request.skill!r}"))
                continue
            per = Counter(i % len(targets) for i in range(request.count))
            for i, n in per.items():
                dataset, path, settings = targets[i]
                examples += self._make(dataset, path, settings, n, base + i, f"skill {path}")
        return examples, failures


class _WrittenProblem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=1, max_length=800)
    reasoning: str = Field(max_length=1500)
    answer: str = Field(min_length=1, max_length=60)


WRITE_PROMPT = (
    "Write one new math word problem for a student to practise{topic}.{instructions}{examples}\n"
    'Reply as JSON {{"question": "...", "reasoning": "step by step solution", "answer": "final number"}}.'
)


class LLMDataEngine:
    """The teacher model writes problems, worked solutions and answers for a request.

    Each example is its own request (sampled with its own seed), so a batch of them
    goes to the engine at once. Replies that do not parse are recorded and skipped.
    """

    name = "llm"

    def __init__(self, max_tokens: int = 384, temperature: float = 0.8, examples_shown: int = 3):
        self.params = SamplingParams(max_tokens=max_tokens, temperature=temperature)
        self.examples_shown = examples_shown
        self.tokens_used = 0

    async def generate(self, requests: Sequence[DataRequest], llm: LLM | None, *, seed: int) -> tuple[list[TrainingExample], list[ParseFailure]]:
        if llm is None:
            raise ValueError("the llm data engine needs the teacher's model")
        jobs: list[tuple[DataRequest, list[ChatMessage], int]] = []
        for number, request in enumerate(requests):
            shown = "".join(f"\n- {p.question}" for p in request.like[: self.examples_shown])
            prompt = WRITE_PROMPT.format(
                topic=f" the skill '{request.skill}'" if request.skill else "",
                instructions=f"\n{request.instructions}" if request.instructions else "",
                examples=f"\nProblems like these:{shown}" if shown else "",
            )
            for i in range(request.count):
                jobs.append((request, [ChatMessage(role="user", content=prompt)], seed * 100_003 + number * 1000 + i))
        if not jobs:
            return [], []
        # One call per distinct seed would serialize; one batch keeps the engine busy.
        replies = await chat_structured(llm, [c for _, c, _ in jobs], _WrittenProblem, self.params)
        self.tokens_used += sum(r.usage.total_tokens for r in replies)
        examples: list[TrainingExample] = []
        failures: list[ParseFailure] = []
        for (request, _, _), parsed in zip(jobs, replies):
            if parsed.value is None:
                failures.append(ParseFailure(sender=self.name, expected="_WrittenProblem", raw_text=parsed.raw, error=parsed.error or ""))
                continue
            value = parsed.value
            skills = () if request.skill is None else tuple(dict.fromkeys((top_skill(request.skill), request.skill)))
            examples.append(TrainingExample(
                sender=self.name, prompt=value.question.strip(), answer=value.answer.strip(), skills=skills,
                completion=f"{value.reasoning.strip()} The answer is {value.answer.strip()}.".strip(),
                source=f"skill {request.skill}" if request.skill else "open-ended",
            ))
        return examples, failures


# --------------------------------------------------------------------------------- agent


class DataGenerator:
    """The data-generation agent: skill discovery, a policy and an engine, one LLM handle."""

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

    async def discover_skills(self, problems: Sequence[Problem]) -> tuple[list[Problem], list[ParseFailure], int]:
        """The problems labelled with skills, the replies that did not parse, the tokens spent."""
        spent = self._tokens()
        problems, recorded = await self.skill_discovery.discover(problems, self.llm)
        return problems, [m for m in recorded if isinstance(m, ParseFailure)], self._tokens() - spent

    async def act(self, observation: Observation) -> AgentAction:
        """Plan from the observation, make the data, stamp it with this episode."""
        stamp = {"episode_id": self.episode_id}
        spent = self._tokens()
        plan = (await self.policy.plan(observation, self.llm)).model_copy(update={**stamp, "iteration": observation.iteration + 1})
        examples, failures = await self.engine.generate(
            requests_for(plan, observation), self.llm, seed=self.seed * 1000 + observation.iteration
        )
        failures += getattr(self.policy, "failures", [])
        if hasattr(self.policy, "failures"):
            self.policy.failures = []
        return AgentAction(
            plan=plan,
            examples=tuple(e.model_copy(update={**stamp, "parents": (plan.id,), "iteration": observation.iteration + 1}) for e in examples),
            notes=tuple(f.model_copy(update=stamp) for f in failures),
            tokens=self._tokens() - spent,
        )

    def _tokens(self) -> int:
        return sum(getattr(part, "tokens_used", 0) for part in (self.policy, self.engine, self.skill_discovery))

    def state(self) -> dict[str, Any]:
        return getattr(self.policy, "state", dict)()

    def restore(self, state: dict[str, Any]) -> None:
        if hasattr(self.policy, "restore"):
            self.policy.restore(state)
