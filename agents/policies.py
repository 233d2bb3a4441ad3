"""Policies: the decisions of a role, as small typed protocols with built-ins.

A role (Teacher, Student) does the prompting and parsing; *what* to do is a policy.
Any importable class that implements the protocol can be named in a Hydra config by
``_target_``: that is the plug-in mechanism.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Literal, Protocol, Sequence, runtime_checkable

from classroom.agents.messages import Attempt, Explanation, Problem


@dataclass(frozen=True)
class SeedObservation:
    """What the teacher saw of this student on one held-out seed problem."""

    problem: Problem
    attempt: Attempt  # the student alone
    explanation: Explanation  # the teacher's explanation
    helped: Attempt  # the student after the explanation


# simulate(problems, explanations (None: no intervention), targets) -> P(student answers target)
Simulator = Callable[[Sequence[Problem], Sequence[Explanation | None], Sequence[str]], Awaitable[list[float]]]


@dataclass
class InterventionContext:
    """What a policy may use besides the problems and the student's own attempts."""

    # The teacher's explanation of each problem, by problem id.
    explanations: dict[str, Explanation] = field(default_factory=dict)
    # The student's behaviour on the seed set: the mental model's demonstrations.
    seed: list[SeedObservation] = field(default_factory=list)
    # The student's answer after each explanation, by problem id. Only an oracle may
    # look: using it is knowing the future.
    outcomes: dict[str, Attempt] = field(default_factory=dict)
    # The teacher's mental model of the student (few-shot simulation).
    simulate: Simulator | None = None


@runtime_checkable
class InterventionPolicy(Protocol):
    """Ranks problems by how much the teacher's explanation is worth on each.

    ``utilities`` returns one score per problem (higher = intervene first), or None for
    a problem the policy will never intervene on. The environment intervenes on the
    ``budget`` highest-scoring problems.
    """

    name: str

    async def utilities(
        self, problems: Sequence[Problem], attempts: Sequence[Attempt], context: InterventionContext | None = None
    ) -> list[float | None]: ...


class NoIntervention:
    """Never intervene: the baseline student."""

    name = "none"

    async def utilities(self, problems: Sequence[Problem], attempts: Sequence[Attempt], context: InterventionContext | None = None) -> list[float | None]:
        return [None] * len(problems)


class AllIntervention:
    """Intervene everywhere the budget allows, in problem order."""

    name = "all"

    async def utilities(self, problems: Sequence[Problem], attempts: Sequence[Attempt], context: InterventionContext | None = None) -> list[float | None]:
        # Equal utility: a stable sort keeps problem order.
        return [1.0] * len(problems)


class RandomIntervention:
    """Intervene on a random subset of the budget's size (the paper's random baseline)."""

    name = "random"

    def __init__(self, seed: int = 0):
        self.seed = seed

    async def utilities(self, problems: Sequence[Problem], attempts: Sequence[Attempt], context: InterventionContext | None = None) -> list[float | None]:
        rng = random.Random(self.seed)
        return [rng.random() for _ in problems]


class TeacherConfidence:
    """Intervene where the teacher is surest of its own answer (its answer's probability)."""

    name = "teacher_confidence"

    async def utilities(self, problems: Sequence[Problem], attempts: Sequence[Attempt], context: InterventionContext | None = None) -> list[float | None]:
        explanations = context.explanations if context else {}
        return [
            explanations[p.id].answer_prob or 0.0 if p.id in explanations else None for p in problems
        ]


class StudentConfidence:
    """Intervene where the student is least sure of its answer (analysis only: a real
    teacher rarely sees the student's token probabilities)."""

    name = "student_confidence"

    async def utilities(self, problems: Sequence[Problem], attempts: Sequence[Attempt], context: InterventionContext | None = None) -> list[float | None]:
        return [1.0 - (a.answer_prob if a.answer_prob is not None else 0.0) for a in attempts]


class MentalModelUtility:
    """Expected utility from a few-shot mental model of the student (the paper's default).

    The teacher simulates this student, from demonstrations of its real behaviour on
    the seed set, once without and once with the teacher's explanation, and reads the
    probability that the simulated student gives the teacher's answer:
    ``both``: P(correct | explanation) - P(correct | none); ``no_intervention``:
    1 - P(correct | none); ``intervention``: P(correct | explanation).
    """

    def __init__(self, mode: Literal["both", "no_intervention", "intervention"] = "both"):
        if mode not in ("both", "no_intervention", "intervention"):
            raise ValueError(f"mode must be both, no_intervention or intervention, got {mode!r}")
        self.mode = mode
        self.name = "mental_model" if mode == "both" else f"mental_model_{mode}"

    async def utilities(self, problems: Sequence[Problem], attempts: Sequence[Attempt], context: InterventionContext | None = None) -> list[float | None]:
        if context is None or context.simulate is None:
            raise ValueError("mental-model utility needs the teacher's simulator (context.simulate)")
        explained = [context.explanations.get(p.id) for p in problems]
        # The teacher takes its own answer as the correct one: it has no answer key.
        targets = [(e.final_answer if e and e.final_answer else "") for e in explained]
        p_none = p_with = [0.0] * len(problems)
        if self.mode in ("both", "no_intervention"):
            p_none = await context.simulate(problems, [None] * len(problems), targets)
        if self.mode in ("both", "intervention"):
            p_with = await context.simulate(problems, explained, targets)
        utilities: list[float | None] = []
        for e, none, with_ in zip(explained, p_none, p_with):
            if e is None:
                utilities.append(None)
            elif self.mode == "both":
                utilities.append(with_ - none)
            elif self.mode == "no_intervention":
                utilities.append(1.0 - none)
            else:
                utilities.append(with_)
        return utilities


class Oracle:
    """Knows whether each explanation will flip the student: an upper bound for plots."""

    name = "oracle"

    async def utilities(self, problems: Sequence[Problem], attempts: Sequence[Attempt], context: InterventionContext | None = None) -> list[float | None]:
        outcomes = context.outcomes if context else {}
        if not outcomes:
            raise ValueError("the oracle needs the outcomes of every explanation (context.outcomes)")
        result: list[float | None] = []
        for attempt in attempts:
            after = outcomes.get(attempt.problem_id)
            if after is None:
                result.append(None)
            else:
                result.append(float(bool(after.correct)) - float(bool(attempt.correct)))
        return result


class Reversed:
    """A misaligned teacher: the ranking of ``inner``, reversed (worst first)."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.name = f"reversed_{getattr(inner, 'name', 'policy')}"

    async def utilities(self, problems: Sequence[Problem], attempts: Sequence[Attempt], context: InterventionContext | None = None) -> list[float | None]:
        return [None if u is None else -u for u in await self.inner.utilities(problems, attempts, context)]


def ranked(utilities: Sequence[float | None]) -> list[int]:
    """Indices by utility, highest first (None excluded), ties in problem order."""
    return sorted((i for i, u in enumerate(utilities) if u is not None), key=lambda i: -utilities[i])  # type: ignore[operator]


def choose_interventions(utilities: Sequence[float | None], budget: int) -> list[int]:
    """Indices of the ``budget`` highest utilities (None never chosen), ties by order."""
    return sorted(ranked(utilities)[: max(budget, 0)])


@runtime_checkable
class Learner(Protocol):
    """How a student learns between questions.

    In-context learners keep a memory of demonstrations; fine-tuning learners (LoRA
    SFT/DPO) train an adapter the serving backend loads for the next round.
    """

    def learn(self, problems: Sequence[Problem], explanations: Sequence[Explanation]) -> None: ...

    def demonstrations(self, problem: Problem) -> list[tuple[Problem, Explanation]]: ...


class InContextLearner:
    """A memory of (problem, explanation) demonstrations, retrieved by shared skill.

    For each question the ``k`` demonstrations sharing most skills with it come first,
    then the most recent ones; none is the question itself.
    """

    def __init__(self, k: int = 4):
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        self.k = k
        self.memory: list[tuple[Problem, Explanation]] = []

    def learn(self, problems: Sequence[Problem], explanations: Sequence[Explanation]) -> None:
        by_id = {p.id: p for p in problems}
        for explanation in explanations:
            problem = by_id.get(explanation.problem_id)
            if problem is not None:
                self.memory.append((problem, explanation))

    def demonstrations(self, problem: Problem) -> list[tuple[Problem, Explanation]]:
        skills = set(problem.skills)
        candidates = [(i, p, e) for i, (p, e) in enumerate(self.memory) if p.id != problem.id]
        candidates.sort(key=lambda c: (-len(skills & set(c[1].skills)), -c[0]))
        return [(p, e) for _, p, e in candidates[: self.k]]

    def skills_covered(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for problem, _ in self.memory:
            for skill in problem.skills:
                counts[skill] += 1
        return dict(counts)
