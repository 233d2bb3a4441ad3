"""Settings of a learning-by-teaching episode (`env:` with `loop: lbt`): the one source
of their defaults. One loop, three methods (M1, M2, M3), each with its own section."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class M1Settings(BaseModel):
    """M1: rationales scored by how well students learn from them."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    samples: int = Field(8, ge=1, description="Rationales the teacher samples per teaching problem (N).")
    temperature: float = Field(0.8, gt=0.0, description="The teacher's sampling temperature for rationales (N > 1 needs one above 0).")
    exam_size: int = Field(3, ge=1, description="Similar problems in an exam (K): the same generator and settings with other seeds.")
    repeats: int = Field(2, ge=1, description="Times each student takes each exam (R), sampled at exam_temperature.")
    exam_temperature: float = Field(0.7, ge=0.0, description="The students' sampling in exams (R > 1 samples need a temperature above 0).")
    rationale_tokens: int = Field(160, ge=8, description="Tokens of a rationale, and of an exam answer.")
    answer_tokens: int = Field(
        96, ge=8, description="Tokens of the students' answers where no rationale is written (correctness-only scoring)."
    )


class M2Settings(BaseModel):
    """M2: LbT scores become preference pairs and a DPO step for the teacher."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    preference: Literal["none", "correctness", "lbt"] = Field(
        "lbt",
        description="What orders the pairs: `none` (no DPO: the baseline), `correctness` (alone) or `lbt` (correctness_weight x correctness + the rest x LbT score, the paper's).",
    )
    correctness_weight: float = Field(
        0.5, ge=0.0, le=1.0, description="The weight of correctness in a rationale's score (the paper's 0.5); the LbT score has the rest."
    )
    min_gap: float = Field(0.3, ge=0.0, description="A pair's chosen and rejected scores differ by more than this (the paper's 0.3).")
    max_pairs_per_problem: int = Field(8, ge=1, description="At most this many pairs per problem (the paper's 8).")
    train_problems: int = Field(16, ge=1, description="Problems whose rationales make the pairs (from env.train_split).")
    dpo: dict[str, Any] = Field(
        default_factory=lambda: {"_target_": "classroom.agents.learners.DPOLearner", "nll_weight": 1.0},
        description="The learner of the teacher (a DPOLearner named by `_target_`).",
    )


class M3Settings(BaseModel):
    """M3: in-context exemplars refined with feedback from the students."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    exemplars: int = Field(4, ge=1, le=16, description="Exemplars in a set (K).")
    proposals: int = Field(3, ge=1, description="Sets the proposer offers per iteration (C).")
    iterations: int = Field(3, ge=1, description="Refinement iterations (T).")
    train_items: int = Field(16, ge=1, description="Training items the sets are scored on (from env.train_split).")
    proposer: dict[str, Any] = Field(
        default_factory=lambda: {"_target_": "classroom.environments.lbt.exemplars.ProgrammaticProposer"},
        description="Who proposes sets: the programmatic teacher or the teacher model (`_target_`).",
    )
    answer_tokens: int = Field(96, ge=8, description="Tokens of an answer with the exemplars.")


class LbtConfig(BaseModel):
    """One learning-by-teaching episode: which method, which problems, its settings."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    loop: Literal["lbt"] = Field("lbt", description="The loop this section configures (set by env=lbt_m1, lbt_m2, lbt_m3).")
    method: Literal["m1", "m2", "m3"] = Field(
        "m1",
        description="Which method runs: `m1` (rationales scored by exams, answers chosen by them), `m2` (the scores as DPO pairs for the teacher) or `m3` (exemplars refined with the students' errors).",
    )
    num_problems: int = Field(12, ge=1, description="Problems scored at the end: M1's teaching problems, M2's and M3's held-out test.")
    split: str = Field("test", description="The split the scored problems come from; disjoint from env.train_split.")
    train_split: str = Field("train", description="Where M2's rationales and M3's training items and candidate exemplars come from.")
    seed: int = Field(0, description="Seeds the problem draws, the exams' similar problems and the sampling.")
    m1: M1Settings = Field(M1Settings(), description="M1's settings (also used by M2, which scores rationales the same way).")
    m2: M2Settings = Field(M2Settings(), description="M2's settings.")
    m3: M3Settings = Field(M3Settings(), description="M3's settings.")
