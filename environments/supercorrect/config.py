"""Settings of a SuperCorrect episode (`env:` with `loop: supercorrect`): the one source of their defaults."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class SuperCorrectConfig(BaseModel):
    """One SuperCorrect episode: which stages run, on which problems, with which parts."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    loop: Literal["supercorrect"] = Field("supercorrect", description="The loop this section configures (set by env=supercorrect).")
    stage: Literal["sft", "hsft", "hsft_dpo"] = Field(
        "hsft_dpo",
        description="What the student learns: `sft` (plain worked solutions: the baseline), `hsft` (hierarchical thought templates, stage 1) or `hsft_dpo` (then cross-model DPO on correction traces, stage 2).",
    )
    train_problems: int = Field(32, ge=1, description="Problems the student learns from (env.train_split) and is tested on (env.split).")
    num_problems: int = Field(30, ge=1, description="Test problems every stage's student answers (from env.split).")
    split: str = Field("test", description="The split the test problems come from.")
    train_split: str = Field(
        "train", description="The split the training problems (templates, stage-2 solutions) come from; disjoint from env.split."
    )
    localisation: int = Field(24, ge=0, description="Corrupted templates in the error-localisation benchmark.")
    seed: int = Field(0, description="Seeds the problem draws, the corruptions of the localisation benchmark and stage 2's sampling.")
    teacher: dict[str, Any] = Field(
        default_factory=lambda: {"_target_": "classroom.environments.supercorrect.teachers.ProgrammaticTeacher"},
        description="Who writes templates and corrections: the programmatic teacher (reasoning-gym tasks) or the teacher model (`_target_`).",
    )
    sft: dict[str, Any] = Field(
        default_factory=lambda: {"_target_": "classroom.agents.learners.LoRALearner", "epochs": 3},
        description="Stage 1's learner (LoRA SFT on templates, or on plain solutions for env.stage=sft), named by `_target_`; it trains the student role's model.",
    )
    dpo: dict[str, Any] = Field(
        default_factory=lambda: {"_target_": "classroom.agents.learners.DPOLearner", "nll_weight": 1.0, "epochs": 2},
        description="Stage 2's learner (DPO on the correction pairs, continuing stage 1's adapter), named by `_target_`.",
    )
    solutions: int = Field(2, ge=1, description="Stage 2: solutions the student writes per training problem (sampled), for wrong ones.")
    temperature: float = Field(
        0.7, ge=0.0, description="Sampling temperature of stage 2's solutions (several per problem need one above 0)."
    )
    answer_tokens: int = Field(192, ge=16, description="Tokens of a template answer.")
    localisation_tokens: int | None = Field(
        None,
        ge=8,
        description="Tokens of a reply to the localisation benchmark (which step is the first wrong one); None: answer_tokens. A model that reasons before naming the step needs room.",
    )
    critique_tokens: int | None = Field(
        None,
        ge=16,
        description="Tokens of the student's own critique of its first wrong step (stage 2's rejected side; a reply that does not fit gets one repair turn); None: answer_tokens.",
    )
    prompts: dict[str, str] = Field(
        default_factory=dict, description="Replace templates of environments/supercorrect/prompts.yaml by name."
    )
