"""Policies: the decisions of a role, as small typed protocols with built-ins.

A role (Teacher, Student) does the prompting and parsing; *what* to do is a policy.
Any importable class that implements the protocol can be named in a Hydra config by
``_target_``: that is the plug-in mechanism.
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Protocol, Sequence, runtime_checkable

from classroom.agents.messages import Attempt, Explanation, Problem


@runtime_checkable
class InterventionPolicy(Protocol):
    """Ranks problems by how much the teacher's explanation is worth on each.

    ``utilities`` returns one score per problem (higher = intervene first), or None for
    a problem the policy will never intervene on. The environment intervenes on the
    ``budget`` highest-scoring problems.
    """

    name: str

    async def utilities(
        self, problems: Sequence[Problem], attempts: Sequence[Attempt]
    ) -> list[float | None]: ...


class NoIntervention:
    """Never intervene: the baseline student."""

    name = "none"

    async def utilities(self, problems: Sequence[Problem], attempts: Sequence[Attempt]) -> list[float | None]:
        return [None] * len(problems)


class AllIntervention:
    """Intervene everywhere the budget allows, in problem order."""

    name = "all"

    async def utilities(self, problems: Sequence[Problem], attempts: Sequence[Attempt]) -> list[float | None]:
        # Equal utility: a stable sort keeps problem order.
        return [1.0] * len(problems)


class RandomIntervention:
    """Intervene on a random subset of the budget's size (the paper's random baseline)."""

    name = "random"

    def __init__(self, seed: int = 0):
        self.seed = seed

    async def utilities(self, problems: Sequence[Problem], attempts: Sequence[Attempt]) -> list[float | None]:
        rng = random.Random(self.seed)
        return [rng.random() for _ in problems]


def choose_interventions(utilities: Sequence[float | None], budget: int) -> list[int]:
    """Indices of the ``budget`` highest utilities (None never chosen), ties by order."""
    ranked = sorted(
        (i for i, u in enumerate(utilities) if u is not None),
        key=lambda i: -utilities[i],  # type: ignore[operator]
    )
    return sorted(ranked[: max(budget, 0)])


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
