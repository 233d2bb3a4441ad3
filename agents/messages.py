"""Typed messages: the only thing agents pass each other and the only thing logged.

Every message is a frozen pydantic model with a ``kind`` literal. The messages every
loop shares are defined here; a loop defines its own beside its code and registers
them with :func:`register_message`, so the discriminated union that
:func:`parse_message` reads covers every kind a run can log::

    line = attempt.model_dump_json()
    again = parse_message(line)          # -> Attempt, equal to `attempt`

Later versions add fields with defaults; the log header carries :data:`SCHEMA_VERSION`
so an old log still loads.
"""

from __future__ import annotations

import functools
import time
import uuid
from typing import Annotated, Any, Literal, TypeVar, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from classroom.serving.errors import DataError
from classroom.serving.types import Usage

# Bump when a field changes meaning, a field is removed or a required field is added.
# Adding an optional field with a default does not need a bump: old logs still validate.
# 2: DataPlan lost `action`; Explanation.style defaults to "unpersonalized"; the
# DataEnvGym and ToM messages moved to their loops' packages (same kinds, same fields).
SCHEMA_VERSION = 2


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


# ------------------------------------------------------------------------------ registry

M = TypeVar("M", bound=BaseModel)
_KINDS: dict[str, type[BaseModel]] = {}


def register_message(cls: type[M]) -> type[M]:
    """Add a message class to the union :func:`parse_message` reads (a class decorator).

    Its ``kind`` must be a ``Literal`` with a default, unique among registered kinds.
    """
    field = cls.model_fields.get("kind")
    kind = field.default if field is not None else None
    if not isinstance(kind, str):
        raise TypeError(f"{cls.__name__} needs a `kind: Literal[...] = ...` field to be a message")
    known = _KINDS.get(kind)
    if known is not None and known.__qualname__ != cls.__qualname__:
        raise ValueError(f"message kind {kind!r} is taken by {known.__module__}.{known.__qualname__}")
    _KINDS[kind] = cls
    _adapter.cache_clear()
    return cls


def message_kinds() -> tuple[str, ...]:
    """Every registered kind, in registration order."""
    return tuple(_KINDS)


@functools.lru_cache(maxsize=1)
def _adapter() -> TypeAdapter[Any]:
    union = Union[tuple(_KINDS.values())]  # type: ignore[valid-type]  # noqa: UP007
    return TypeAdapter(Annotated[union, Field(discriminator="kind")])


class UnknownMessageKind(DataError):
    """A log line whose kind no imported module registered."""


def parse_message(line: str | bytes | dict[str, Any]) -> BaseModel:
    """Parse one JSON line (or dict) into the message type its ``kind`` names."""
    if isinstance(line, dict):
        kind = line.get("kind")
        if kind not in _KINDS:
            raise UnknownMessageKind(f"unknown message kind {kind!r} (known: {', '.join(_KINDS)})")
        return _adapter().validate_python(line)
    try:
        return _adapter().validate_json(line)
    except ValueError as exc:
        if "does not match any of the expected tags" in str(exc):
            raise UnknownMessageKind(
                f"unknown message kind in {str(line)[:80]!r} (known: {', '.join(_KINDS)}); import the loop that defines it"
            ) from None
        raise


# ------------------------------------------------------------------ messages of every loop


@register_message
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


@register_message
class Attempt(MessageBase):
    """A student's (or simulated student's) answer to a problem."""

    kind: Literal["attempt"] = "attempt"
    problem_id: str
    reasoning: str
    final_answer: str | None
    # None: not graded yet, or ungradeable (then ``grade_error`` says why).
    correct: bool | None = None
    # Why the grader could not score it (its scorer timed out or failed).
    grade_error: str | None = None
    # Which phase of a loop produced it (pre_test, with_explanation, post_test ...).
    phase: str = ""
    # Ids of explanations or exemplars the student saw while answering.
    context_ids: tuple[str, ...] = ()
    # Probability the model gave its final answer (from token log-probabilities).
    answer_prob: float | None = None
    usage: Usage = Usage()


@register_message
class Explanation(MessageBase):
    """A teacher's explanation of how to solve a problem."""

    kind: Literal["explanation"] = "explanation"
    problem_id: str
    text: str
    final_answer: str | None = None
    # How it was written: the teacher's own chain of thought (unpersonalized), the
    # task's reference solution (gold), or a loop's own styles.
    style: str = "unpersonalized"
    # Probability the teacher gave its own final answer: its confidence.
    answer_prob: float | None = None
    usage: Usage = Usage()


class SkillSlice(BaseModel):
    """Correct/total counts for one skill, with its sub-skills as children."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    correct: int = 0
    count: int = 0
    children: tuple[SkillSlice, ...] = ()

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.count if self.count else None


@register_message
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
    # Answers the grader could not score (left out of ``count`` and every accuracy).
    ungradeable: int = 0
    # Overall, per skill and per sub-skill: a tree of slices with counts.
    report: SkillSlice | None = None


@register_message
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


@register_message
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


@register_message
class PreferencePair(MessageBase):
    """A DPO preference pair in TRL's conversational format: the same prompt, a chosen
    and a rejected completion, and why (the scores that ordered them)."""

    kind: Literal["preference_pair"] = "preference_pair"
    prompt: tuple[dict[str, str], ...]
    chosen: str
    rejected: str
    chosen_score: float | None = None
    rejected_score: float | None = None
    # What ordered the pair (e.g. "lbt", "correctness", "teacher_correction").
    source: str = ""

    def row(self) -> dict[str, list[dict[str, str]]]:
        """The pair as one row of a TRL preference dataset."""
        return {
            "prompt": [dict(m) for m in self.prompt],
            "chosen": [{"role": "assistant", "content": self.chosen}],
            "rejected": [{"role": "assistant", "content": self.rejected}],
        }


@register_message
class ParseFailure(MessageBase):
    """A model reply that did not parse into the expected message, kept for the record."""

    kind: Literal["parse_failure"] = "parse_failure"
    expected: str
    raw_text: str
    error: str


register_message(Usage)

# Any message a run can log: the registered kinds (loops add theirs).
AnyMessage = Union[MessageBase, Usage]  # noqa: UP007
