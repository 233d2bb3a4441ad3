"""Settings of a SuperCorrect episode (`env:` with `loop: supercorrect`): the one source of their defaults."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class SuperCorrectConfig(BaseModel):
    """One SuperCorrect episode: which stages run, on which problems, with which parts."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    loop: Literal["supercorrect"] = "supercorrect"
    # What the student learns: `sft` (plain worked solutions: the baseline), `hsft`
    # (hierarchical thought templates, stage 1) or `hsft_dpo` (then cross-model DPO on
    # correction traces, stage 2).
    stage: Literal["sft", "hsft", "hsft_dpo"] = "hsft_dpo"
    # Problems the student learns from (env.train_split) and is tested on (env.split).
    train_problems: int = Field(32, ge=1)
    num_problems: int = Field(30, ge=1)
    split: str = "test"
    train_split: str = "train"
    # Corrupted templates in the error-localisation benchmark.
    localisation: int = Field(24, ge=0)
    seed: int = 0
    # Who writes templates and corrections: the programmatic teacher (reasoning-gym
    # tasks) or the teacher model (`_target_`).
    teacher: dict[str, Any] = Field(
        default_factory=lambda: {"_target_": "classroom.environments.supercorrect.teachers.ProgrammaticTeacher"}
    )
    # Stage 1's learner (LoRA SFT) and stage 2's (DPO, continuing stage 1's adapter).
    sft: dict[str, Any] = Field(default_factory=lambda: {"_target_": "classroom.agents.learners.LoRALearner", "epochs": 3})
    dpo: dict[str, Any] = Field(
        default_factory=lambda: {"_target_": "classroom.agents.learners.DPOLearner", "nll_weight": 1.0, "epochs": 2}
    )
    # Stage 2: solutions the student writes per training problem (sampled), for wrong ones.
    solutions: int = Field(2, ge=1)
    temperature: float = Field(0.7, ge=0.0)
    # Tokens of a template answer.
    answer_tokens: int = Field(192, ge=16)
    # Tokens of a reply to the localisation benchmark (which step is the first wrong
    # one); None: answer_tokens. A model that reasons before naming the step needs room.
    localisation_tokens: int | None = Field(None, ge=8)
    # Replace templates of environments/supercorrect/prompts.yaml by name.
    prompts: dict[str, str] = Field(default_factory=dict)
