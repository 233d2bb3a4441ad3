"""Typed messages: the only thing agents pass each other and the only thing logged.

Every message is a frozen pydantic model with a ``kind`` literal, so the discriminated
union :data:`Message` (de)serializes any of them from one JSON line::

    line = attempt.model_dump_json()
    again = parse_message(line)          # -> Attempt, equal to `attempt`

Later loops add fields with defaults; the log header carries :data:`SCHEMA_VERSION`
so an old log still loads.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from classroom.serving.types import Usage

# Bump when a field changes meaning or a required field is added. Adding an optional
# field with a default does not need a bump: old logs still validate.
SCHEMA_VERSION = 1


def new_id() -> str:
    """A short random id; unique enough for one run's messages."""
    return uuid.uuid4().hex[:16]


class MessageBase(BaseModel):
    """Fields every message carries: identity, episode, author and provenance."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str = Field(default_factory=new_id)
    episode_id: str = ""
    sender: str = ""
    # Ids of the messages this one was made from.
    parents: tuple[str, ...] = ()
    created_at: float = Field(default_factory=time.time)


class Problem(MessageBase):
    """A question with its reference answer and the skills it exercises."""

    kind: Literal["problem"] = "problem"
    question: str
    answer: str
    skills: tuple[str, ...] = ()
    task: str = ""
    split: str = ""
    # Task-specific data a scorer may need (e.g. a reasoning-gym entry's metadata).
    metadata: dict[str, Any] = Field(default_factory=dict)


class Attempt(MessageBase):
    """A student's (or simulated student's) answer to a problem."""

    kind: Literal["attempt"] = "attempt"
    problem_id: str
    reasoning: str
    final_answer: str | None
    correct: bool | None = None
    # Which phase of a loop produced it (pre_test, with_explanation, post_test ...).
    phase: str = ""
    # Ids of explanations or exemplars the student saw while answering.
    context_ids: tuple[str, ...] = ()
    # Probability the model gave its final answer (from token log-probabilities).
    answer_prob: float | None = None
    usage: Usage = Usage()


class Explanation(MessageBase):
    """A teacher's explanation of how to solve a problem."""

    kind: Literal["explanation"] = "explanation"
    problem_id: str
    text: str
    final_answer: str | None = None
    # Explanations written to mislead (misaligned teachers) say so here.
    style: str = "helpful"
    # Probability the teacher gave its own final answer: its confidence.
    answer_prob: float | None = None
    usage: Usage = Usage()


class InterventionDecision(MessageBase):
    """Whether the teacher intervenes on a problem, and why."""

    kind: Literal["intervention_decision"] = "intervention_decision"
    problem_id: str
    intervene: bool
    policy: str
    utility: float | None = None
    budget_left: int = 0


class SkillSlice(BaseModel):
    """Correct/total counts for one skill, with its sub-skills as children."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    correct: int = 0
    count: int = 0
    children: tuple["SkillSlice", ...] = ()

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.count if self.count else None


class Feedback(MessageBase):
    """What an environment tells a teacher about its student after an evaluation."""

    kind: Literal["feedback"] = "feedback"
    accuracy: float
    per_skill_accuracy: dict[str, float] = Field(default_factory=dict)
    error_examples: tuple[str, ...] = ()  # ids of wrong Attempts
    weak_skills: tuple[str, ...] = ()
    # The evaluation this reports on: which split, after which iteration (0 = reset).
    split: str = ""
    iteration: int | None = None
    count: int = 0
    # Overall, per skill and per sub-skill: a tree of slices with counts.
    report: SkillSlice | None = None


class DataPlan(MessageBase):
    """A data-generation policy's plan: how many examples of which skills to make.

    Skill-list plans fill ``allocations`` (skill -> count). Open-ended plans leave it
    empty and give free-form ``instructions``, ``count`` and the problems to imitate.
    """

    kind: Literal["data_plan"] = "data_plan"
    allocations: dict[str, int] = Field(default_factory=dict)
    rationale: str = ""
    action: str = "generate"
    instructions: str = ""
    count: int = 0
    like_problem_ids: tuple[str, ...] = ()
    iteration: int | None = None


class Explore(MessageBase):
    """Skill-tree action: add new sub-skills ("skill/sub-skill") with data allocations."""

    kind: Literal["explore"] = "explore"
    new_subskills: dict[str, int]
    rationale: str = ""
    iteration: int | None = None


class Exploit(MessageBase):
    """Skill-tree action: shift the data allocation among known sub-skills."""

    kind: Literal["exploit"] = "exploit"
    allocations: dict[str, int]
    rationale: str = ""
    iteration: int | None = None


class TrainingRun(MessageBase):
    """One round of student learning: what it learned from and what it produced."""

    kind: Literal["training_run"] = "training_run"
    iteration: int
    learner: str
    examples: int
    # LoRA learners: the adapter the engine serves from now on, and where it lies.
    adapter: str | None = None
    adapter_path: str | None = None
    epochs: int | None = None
    train_loss: float | None = None
    seconds: float = 0.0


class TrainingExample(MessageBase):
    """One supervised example for a student: prompt and target completion."""

    kind: Literal["training_example"] = "training_example"
    prompt: str
    completion: str
    answer: str | None = None
    skills: tuple[str, ...] = ()
    source: str = ""
    iteration: int | None = None
    # Quality checks: a dropped example says why and never reaches the student.
    kept: bool = True
    drop_reason: str | None = None
    # Engine-specific data a scorer may need (a reasoning-gym entry).
    metadata: dict[str, Any] = Field(default_factory=dict)


class ThoughtTemplate(MessageBase):
    """A hierarchical thought template: high-level summary plus detailed steps."""

    kind: Literal["thought_template"] = "thought_template"
    problem_id: str
    high_level: str
    detailed_steps: tuple[str, ...] = ()
    key_steps: tuple[int, ...] = ()
    final_answer: str | None = None


class CorrectionTrace(MessageBase):
    """A teacher's correction of a student solution at its first wrong step."""

    kind: Literal["correction_trace"] = "correction_trace"
    problem_id: str
    attempt_id: str
    first_wrong_step: int | None
    cause: str = ""
    correction: str = ""
    corrected_solution: str = ""


class TeachingScore(MessageBase):
    """Learning-by-teaching score of one rationale: students' exam results after it."""

    kind: Literal["teaching_score"] = "teaching_score"
    problem_id: str
    rationale_id: str
    exam_problem_ids: tuple[str, ...] = ()
    exam_correct: tuple[bool, ...] = ()
    score: float = 0.0


class PreferencePair(MessageBase):
    """A DPO preference pair in TRL's format: prompt, chosen, rejected."""

    kind: Literal["preference_pair"] = "preference_pair"
    prompt: str
    chosen: str
    rejected: str
    margin: float | None = None


class ParseFailure(MessageBase):
    """A model reply that did not parse into the expected message, kept for the record."""

    kind: Literal["parse_failure"] = "parse_failure"
    expected: str
    raw_text: str
    error: str


AnyMessage = Union[
    Problem,
    Attempt,
    Explanation,
    InterventionDecision,
    Feedback,
    DataPlan,
    Explore,
    Exploit,
    TrainingRun,
    TrainingExample,
    ThoughtTemplate,
    CorrectionTrace,
    TeachingScore,
    PreferencePair,
    ParseFailure,
    Usage,
]
Message = Annotated[AnyMessage, Field(discriminator="kind")]
MESSAGE_ADAPTER: TypeAdapter[AnyMessage] = TypeAdapter(Message)
MESSAGE_KINDS: tuple[str, ...] = tuple(
    t.model_fields["kind"].default for t in AnyMessage.__args__  # type: ignore[attr-defined]
)


def parse_message(line: str | bytes | dict[str, Any]) -> AnyMessage:
    """Parse one JSON line (or dict) into the message type its ``kind`` names."""
    if isinstance(line, dict):
        return MESSAGE_ADAPTER.validate_python(line)
    return MESSAGE_ADAPTER.validate_json(line)
