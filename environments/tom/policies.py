"""ToM intervention functions: where the teacher's explanation is worth most.

Each is an :class:`InterventionPolicy`: it scores every test problem and the loop
intervenes on the ``budget`` highest. Any importable class implementing the protocol
can be named by ``env.intervention._target_``: that is the plug-in mechanism.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Literal, Protocol, runtime_checkable

from classroom.agents.messages import Attempt, Problem
from classroom.environments.tom.types import InterventionContext


@runtime_checkable
class InterventionPolicy(Protocol):
    """Ranks problems by how much the teacher's explanation is worth on each.

    ``utilities`` returns one score per problem (higher = intervene first), or None for
    a problem the policy will never intervene on. The environment intervenes on the
    ``budget`` highest-scoring problems. A long test set is asked a chunk at a time
    (``context.offset`` is where the chunk starts): a problem's utility may depend on
    its place in the test set, not on the other problems of the call.
    """

    name: str

    async def utilities(
        self, problems: Sequence[Problem], attempts: Sequence[Attempt], context: InterventionContext | None = None
    ) -> list[float | None]: ...


class NoIntervention:
    """Never intervene: the baseline student."""

    name = "none"

    async def utilities(
        self, problems: Sequence[Problem], attempts: Sequence[Attempt], context: InterventionContext | None = None
    ) -> list[float | None]:
        return [None] * len(problems)


class AllIntervention:
    """Intervene everywhere the budget allows, in problem order."""

    name = "all"

    async def utilities(
        self, problems: Sequence[Problem], attempts: Sequence[Attempt], context: InterventionContext | None = None
    ) -> list[float | None]:
        # Equal utility: a stable sort keeps problem order.
        return [1.0] * len(problems)


class RandomIntervention:
    """Intervene on a random subset of the budget's size (the paper's random baseline)."""

    name = "random"

    def __init__(self, seed: int = 0):
        self.seed = seed

    async def utilities(
        self, problems: Sequence[Problem], attempts: Sequence[Attempt], context: InterventionContext | None = None
    ) -> list[float | None]:
        rng = random.Random(self.seed)
        for _ in range(context.offset if context else 0):  # the draws of the chunks before
            rng.random()
        return [rng.random() for _ in problems]


class TeacherConfidence:
    """Intervene where the teacher is surest of its own answer (its answer's probability)."""

    name = "teacher_confidence"

    async def utilities(
        self, problems: Sequence[Problem], attempts: Sequence[Attempt], context: InterventionContext | None = None
    ) -> list[float | None]:
        explanations = context.explanations if context else {}
        return [explanations[p.id].answer_prob or 0.0 if p.id in explanations else None for p in problems]


class StudentConfidence:
    """Intervene where the student is least sure of its answer (analysis only: a real
    teacher rarely sees the student's token probabilities)."""

    name = "student_confidence"

    async def utilities(
        self, problems: Sequence[Problem], attempts: Sequence[Attempt], context: InterventionContext | None = None
    ) -> list[float | None]:
        return [1.0 - (a.answer_prob if a.answer_prob is not None else 0.0) for a in attempts]


class MentalModelUtility:
    """Expected utility from a few-shot mental model of the student (the paper's default).

    The teacher simulates this student, from demonstrations of its real behaviour on
    the seed set, once without and once with the teacher's explanation, and reads the
    probability that the simulated student gives the target answer (``context.targets``:
    the gold answer by default, as in the paper's code; the teacher's own answer for a
    teacher without an answer key): ``both``: P(correct | explanation) - P(correct |
    none); ``no_intervention``: 1 - P(correct | none); ``intervention``: P(correct |
    explanation).
    """

    def __init__(self, mode: Literal["both", "no_intervention", "intervention"] = "both"):
        if mode not in ("both", "no_intervention", "intervention"):
            raise ValueError(f"mode must be both, no_intervention or intervention, got {mode!r}")
        self.mode = mode
        self.name = "mental_model" if mode == "both" else f"mental_model_{mode}"

    async def utilities(
        self, problems: Sequence[Problem], attempts: Sequence[Attempt], context: InterventionContext | None = None
    ) -> list[float | None]:
        if context is None or context.simulate is None:
            raise ValueError("mental-model utility needs the teacher's simulator (context.simulate)")
        if not context.targets:
            raise ValueError("mental-model utility needs the answers it scores (context.targets)")
        explained = [context.explanations.get(p.id) for p in problems]
        targets = [context.targets.get(p.id, "") for p in problems]
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

    async def utilities(
        self, problems: Sequence[Problem], attempts: Sequence[Attempt], context: InterventionContext | None = None
    ) -> list[float | None]:
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

    def __init__(self, inner: InterventionPolicy):
        self.inner = inner
        self.name = f"reversed_{inner.name}"

    async def utilities(
        self, problems: Sequence[Problem], attempts: Sequence[Attempt], context: InterventionContext | None = None
    ) -> list[float | None]:
        return [None if u is None else -u for u in await self.inner.utilities(problems, attempts, context)]


def ranked(utilities: Sequence[float | None]) -> list[int]:
    """Indices by utility, highest first (None excluded), ties in problem order."""
    return sorted((i for i, u in enumerate(utilities) if u is not None), key=lambda i: -utilities[i])  # type: ignore[operator]


def choose_interventions(utilities: Sequence[float | None], budget: int) -> list[int]:
    """Indices of the ``budget`` highest utilities (None never chosen), ties by order."""
    return sorted(ranked(utilities)[: max(budget, 0)])
