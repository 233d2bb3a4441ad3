"""Settings of a ToM episode (`env:` with `loop: tom`): the one source of their defaults."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

ExplanationStyle = Literal["unpersonalized", "personalized", "gold", "deceptive"]


class TomConfig(BaseModel):
    """One ToM episode: the problem sets, the budgets, and the teacher's ToM behaviour."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    loop: Literal["tom"] = Field("tom", description="The loop this section configures (set by env=tom).")
    num_problems: int = Field(30, ge=1, description="Test problems the teacher may intervene on.")
    seed_set_size: int = Field(8, ge=0, description="Held-out problems that show the teacher how this student behaves.")
    post_test_size: int = Field(10, ge=0, description="Never-explained problems for the multi-turn test.")
    split: str = Field("test", description="The split the test, seed-set and post-test problems come from.")
    seed_split: str | None = Field(None, description="Where the seed set comes from; None: the same split (disjoint problems).")
    budgets: tuple[float, ...] = Field(
        (0.0, 0.3, 1.0),
        description="Fractions of the test set the teacher may explain; the policy ranks once and each budget takes its top, so one episode gives the whole curve.",
    )
    demo_counts: tuple[int, ...] = Field(
        (0, 2, 4), description="Numbers of explained demonstrations the student sees in the multi-turn test."
    )
    intervention: dict[str, Any] = Field(
        default_factory=lambda: {"_target_": "classroom.environments.tom.policies.RandomIntervention"},
        description="Where to intervene: an InterventionPolicy named by `_target_` (env/intervention/).",
    )
    explanation: ExplanationStyle = Field(
        "unpersonalized",
        description="How the teacher explains: its own chain of thought, few-shot with the explanations that flipped this student (personalized), the task's reference solution (gold), or arguing for a wrong answer (deceptive: a misaligned teacher).",
    )
    mental_model_demos: int = Field(
        4,
        ge=0,
        description="Seed-set demonstrations in the mental model's prompt (a mix of the student's right and wrong answers: the prompt needs both).",
    )
    mental_model_target: Literal["gold", "teacher"] = Field(
        "gold",
        description="The answer the mental model scores: `gold` (the reference answer: the paper's, for tasks with answers) or `teacher` (the teacher's own answer: no answer key).",
    )
    reveal_answer: bool = Field(False, description="The teacher sees the reference answer (an answer-key tutor, not a solver).")
    prompts: dict[str, str] = Field(default_factory=dict, description="Replace templates of environments/tom/prompts.yaml by name.")
    seed: int = Field(0, description="Seeds the problem draw, random policies and the deceptive teacher's wrong answers.")
    chunk_size: int = Field(
        64,
        ge=1,
        description="Problems per call to an agent: every stage streams its problems in chunks of this size, each logged when it is done, so neither an agent nor the driver ever holds a whole stage's batch (memory stays flat however long the episode). Results do not depend on it: each problem is asked on its own.",
    )
    chunks_in_flight: int = Field(
        4,
        ge=1,
        description="Chunks of one stage asked at once: the engines still get large batches (up to chunk_size x chunks_in_flight requests per stage and student).",
    )

    @field_validator("budgets")
    @classmethod
    def _budgets_are_fractions(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value:
            raise ValueError("needs at least one budget")
        bad = [b for b in value if not 0.0 <= b <= 1.0]
        if bad:
            raise ValueError(f"budgets are fractions in [0, 1]; got {bad}")
        return tuple(sorted(set(value)))

    @field_validator("demo_counts")
    @classmethod
    def _counts_are_sizes(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(c < 0 for c in value):
            raise ValueError(f"demo counts must be >= 0; got {list(value)}")
        return tuple(sorted(set(value)))

    def problems_needed(self) -> int:
        """Problems the episode draws from ``split``."""
        separate_seed = self.seed_split is not None and self.seed_split != self.split
        return self.num_problems + self.post_test_size + (0 if separate_seed else self.seed_set_size)
