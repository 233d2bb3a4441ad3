"""What a teaching loop's episode returns: :class:`EpisodeResult`, typed.

Every loop returns the same envelope: the ``scores`` a sweep tables and plots, the
``tokens`` each agent spent, the episode's wall time, what failed or fell back
(counted by kind), and the loop's own figures as its own pydantic ``details`` model.
The runner records scores, tokens and time once, for every loop, and writes
``summary.json`` as :meth:`EpisodeResult.summary` flattens it (the details at the top
level, as before the envelope existed, so older readers and files agree).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from classroom.agents.messages import Usage


class Details(BaseModel):
    """The base of a loop's own figures (one model per loop, every field described by
    its comment or name). Its fields become top-level keys of ``summary.json``."""

    model_config = ConfigDict(extra="forbid")


D = TypeVar("D", bound=Details)

# Keys of summary.json that the envelope and the runner own: a loop's details cannot use them.
ENVELOPE_KEYS = frozenset(
    {"scores", "tokens", "wall_time_s", "counts", "status", "error", "total_time_s", "run_dir", "placement", "engines", "serving_faults"}
)


class Counts(BaseModel):
    """What went wrong in an episode and was recorded, not guessed: ``failures`` (model
    output that did not parse, answers the grader could not score, ...) and
    ``fallbacks`` (a default used in place of what a model or a policy should have
    given), each by kind. A kind that did not happen is absent, not 0."""

    model_config = ConfigDict(extra="forbid")
    failures: dict[str, int] = Field(default_factory=dict, description="Recorded failures by kind (each one is in the event log).")
    fallbacks: dict[str, int] = Field(default_factory=dict, description="Defaults used in place of a model's or policy's output, by kind.")


class EpisodeResult(BaseModel, Generic[D]):
    """One episode's outcome, as every loop returns it."""

    model_config = ConfigDict(extra="forbid")
    scores: dict[str, float | None] = Field(
        description="The numbers a sweep tables and plots, by name (``acc@0.5``, ``test``); None: not measured in this run."
    )
    tokens: dict[str, int] = Field(default_factory=dict, description="Tokens (prompt + completion) each agent spent, by sender.")
    wall_time_s: float = Field(description="Seconds the loop's run took (the runner adds start-up in total_time_s).")
    counts: Counts = Field(default_factory=Counts, description="Failures and fallbacks, counted by kind.")
    details: D = Field(description="The loop's own figures.")

    def summary(self) -> dict[str, JsonValue]:
        """The flat form ``summary.json`` holds: the details' fields, then the envelope's."""
        flat: dict[str, JsonValue] = self.details.model_dump(mode="json")
        clash = sorted(ENVELOPE_KEYS & set(flat))
        if clash:
            raise ValueError(f"{type(self.details).__name__} uses keys the envelope owns: {', '.join(clash)}")
        flat["scores"] = dict(self.scores)
        flat["tokens"] = dict(self.tokens)
        flat["wall_time_s"] = round(self.wall_time_s, 2)
        if self.counts.failures or self.counts.fallbacks:
            flat["counts"] = self.counts.model_dump(mode="json")
        return flat


class Replied(Protocol):
    """A message a model wrote (an Attempt, an Explanation, a critique): who, and its usage."""

    sender: str
    usage: Usage


def tokens_by_sender(messages: Iterable[Replied], into: dict[str, int] | None = None) -> dict[str, int]:
    """Tokens (prompt + completion) of ``messages``, summed by sender; added to ``into``
    (and returned) when given."""
    tokens = into if into is not None else {}
    for message in messages:
        tokens[message.sender] = tokens.get(message.sender, 0) + message.usage.total_tokens
    return tokens


def mean(values: Sequence[float | bool]) -> float | None:
    """The mean of ``values``; None for none (not 0: nothing was measured)."""
    return sum(values) / len(values) if values else None


def pct(value: float | None) -> str:
    """A fraction as the terminal tables show it: 0.25 -> "25.0%", None -> "-"."""
    return "-" if value is None else f"{100 * value:.1f}%"
