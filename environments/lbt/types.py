"""Learning by teaching's types: the LbT score of a rationale, and exemplar sets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from classroom.agents.messages import Attempt, Explanation, MessageBase, Problem, register_message


@register_message
class TeachingScore(MessageBase):
    """How well the students did after learning from one rationale (M1's LbT score).

    Each student took an exam of similar problems, ``repeats`` times, with the
    rationale as its in-context example; the score is the mean of every graded exam
    answer's correctness (0.0 when none could be graded).
    """

    kind: Literal["teaching_score"] = "teaching_score"
    problem_id: str
    rationale_id: str
    # The rationale's own final answer, and whether it is right (for M2's score).
    answer: str | None = None
    correct: bool = False
    exam_problem_ids: tuple[str, ...] = ()
    # Per student: the share of its graded exam answers that were right.
    by_student: dict[str, float] = Field(default_factory=dict)
    # Exam answers graded, and those left out as ungradeable (a scorer that failed).
    exam_answers: int = 0
    ungradeable: int = 0
    score: float = 0.0


@register_message
class ExemplarProposal(MessageBase):
    """An exemplar set proposed in one M3 iteration, its training score and its fate."""

    kind: Literal["exemplar_proposal"] = "exemplar_proposal"
    iteration: int
    exemplars: tuple[dict[str, str], ...]
    score: float | None = None
    kept: bool = False


class Exemplar(BaseModel):
    """One in-context exemplar: a question, its worked solution, its answer."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    question: str = Field(min_length=1, max_length=800)
    solution: str = Field(min_length=1, max_length=1500)
    answer: str = Field(min_length=1, max_length=60)


class ExemplarSet(BaseModel):
    """The exemplars a teacher shows: what M3 refines."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    exemplars: list[Exemplar] = Field(min_length=1, max_length=16)

    def demonstrations(self) -> list[tuple[Problem, Explanation]]:
        """The set as (problem, explanation) demonstrations before a question."""
        demos = []
        for number, exemplar in enumerate(self.exemplars):
            problem = Problem(id=f"exemplar-{number}", question=exemplar.question, answer=exemplar.answer)
            text = f"{exemplar.solution.strip()}\nThe answer is {exemplar.answer}."
            demos.append((problem, Explanation(id=f"exemplar-{number}", problem_id=problem.id, text=text, final_answer=exemplar.answer)))
        return demos


class M3Checkpoint(BaseModel):
    """M3 after its last finished iteration: all the next one needs (each iteration's
    proposals hang on the current set's wrong answers, which the log does not hold)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    # The last finished iteration (0: the first set scored).
    iteration: int
    first: ExemplarSet
    current: ExemplarSet
    score: float
    # The current set's wrong answers, by training item id: the next proposal's feedback.
    errors: list[tuple[str, Attempt]]
    curve: dict[str, float]
    tokens: dict[str, int]
    parse_failures: int
    # Messages in the event log at this point: a resume cuts the log back to it.
    events_logged: int


@dataclass(frozen=True)
class ScoredRationale:
    """One sampled (rationale, answer) of a teaching problem with its LbT score."""

    explanation: Explanation
    answer: str | None
    correct: bool
    score: float
