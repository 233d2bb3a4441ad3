"""Settings of a learning-by-teaching episode (`env:` with `loop: lbt`): the one source
of their defaults. One loop, three methods (M1, M2, M3), each with its own section."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class M1Settings(BaseModel):
    """M1: rationales scored by how well students learn from them."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    # Rationales the teacher samples per teaching problem (N), at this temperature.
    samples: int = Field(8, ge=1)
    temperature: float = Field(0.8, gt=0.0)
    # Similar problems in an exam (K), and how often each student takes it (R).
    exam_size: int = Field(3, ge=1)
    repeats: int = Field(2, ge=1)
    # The students' sampling in exams (R > 1 samples need a temperature above 0).
    exam_temperature: float = Field(0.7, ge=0.0)
    # Tokens of a rationale, and of an exam answer.
    rationale_tokens: int = Field(160, ge=8)
    answer_tokens: int = Field(96, ge=8)


class M2Settings(BaseModel):
    """M2: LbT scores become preference pairs and a DPO step for the teacher."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    # What orders the pairs: `none` (no DPO: the baseline), `correctness` (alone) or
    # `lbt` (correctness_weight x correctness + the rest x LbT score, the paper's).
    preference: Literal["none", "correctness", "lbt"] = "lbt"
    correctness_weight: float = Field(0.5, ge=0.0, le=1.0)
    # Pairs whose scores differ by more than this, at most so many per problem.
    min_gap: float = Field(0.3, ge=0.0)
    max_pairs_per_problem: int = Field(8, ge=1)
    # Problems whose rationales make the pairs (from env.train_split).
    train_problems: int = Field(16, ge=1)
    # The learner of the teacher (a DPOLearner named by `_target_`).
    dpo: dict[str, Any] = Field(default_factory=lambda: {"_target_": "classroom.agents.learners.DPOLearner", "nll_weight": 1.0})


class M3Settings(BaseModel):
    """M3: in-context exemplars refined with feedback from the students."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    # Exemplars in a set (K), sets proposed per iteration (C), iterations (T).
    exemplars: int = Field(4, ge=1, le=16)
    proposals: int = Field(3, ge=1)
    iterations: int = Field(3, ge=1)
    # Training items the sets are scored on (from env.train_split).
    train_items: int = Field(16, ge=1)
    # Who proposes sets: the programmatic teacher or the teacher model (`_target_`).
    proposer: dict[str, Any] = Field(default_factory=lambda: {"_target_": "classroom.environments.lbt.exemplars.ProgrammaticProposer"})
    # Tokens of an answer with the exemplars.
    answer_tokens: int = Field(96, ge=8)


class LbtConfig(BaseModel):
    """One learning-by-teaching episode: which method, which problems, its settings."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    loop: Literal["lbt"] = "lbt"
    method: Literal["m1", "m2", "m3"] = "m1"
    # Problems scored at the end: M1's teaching problems, M2's and M3's held-out test.
    num_problems: int = Field(12, ge=1)
    split: str = "test"
    # Where M2's rationales and M3's training items and candidate exemplars come from.
    train_split: str = "train"
    seed: int = 0
    m1: M1Settings = M1Settings()
    m2: M2Settings = M2Settings()
    m3: M3Settings = M3Settings()
