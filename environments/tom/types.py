"""The ToM loop's types: its decision message and what an intervention policy sees."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from classroom.agents.messages import Attempt, Explanation, MessageBase, Problem, register_message


@register_message
class InterventionDecision(MessageBase):
    """Whether the teacher intervenes on a problem, and why."""

    kind: Literal["intervention_decision"] = "intervention_decision"
    problem_id: str
    # Which student of the class it is about ("" in a one-student episode).
    student: str = ""
    intervene: bool
    policy: str
    utility: float | None = None
    budget_left: int = 0


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
    # The answer the mental model scores, by problem id: the gold answer (a teacher with
    # the answer key, as in the paper's code) or the teacher's own final answer.
    targets: dict[str, str] = field(default_factory=dict)
    # Where the problems a policy is given start in the test set: the loop asks for a
    # chunk of it at a time (a utility may depend on the problem's place, not on the
    # other problems of the call).
    offset: int = 0


@dataclass(frozen=True, slots=True)
class Graded:
    """What an episode keeps of a graded attempt once it is logged: what its summary
    needs (ids, correctness, whether an answer parsed), not the text."""

    id: str
    problem_id: str
    correct: bool | None
    parsed: bool

    @classmethod
    def of(cls, attempt: Attempt) -> Graded:
        return cls(attempt.id, attempt.problem_id, attempt.correct, attempt.final_answer is not None)
