"""The config sections of the roles every loop shares: teacher and student.

What is particular to one loop (ToM's intervention policy, DataEnvGym's data
generation) lives in that loop's own config, not here.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from classroom.serving.types import SamplingParams


class TeacherSettings(BaseModel):
    """The teacher agent's section (`teacher:`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    sampling: SamplingParams = Field(SamplingParams(max_tokens=192), description="How explanations are sampled.")
    prompts: dict[str, str] = Field(default_factory=dict, description="Replace templates of agents/prompts/teacher.yaml by name.")
    num_cpus: float = Field(0.0, ge=0.0, description="Ray CPUs of the teacher actor (it waits on the model, not the CPU).")


class StudentSettings(BaseModel):
    """The student agents' section (`student:`): how every student of the class learns
    and answers (who the students are, and their adapters: `students:`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    learner: dict[str, Any] = Field(
        default_factory=lambda: {"_target_": "classroom.agents.learners.InContextLearner"},
        description="How the student learns between rounds: a Learner named by `_target_`.",
    )
    sampling: SamplingParams = Field(SamplingParams(max_tokens=160), description="How the students answer (temperature, max_tokens ...).")
    prompts: dict[str, str] = Field(default_factory=dict, description="Replace templates of agents/prompts/student.yaml by name.")
    num_cpus: float = Field(
        0.0, ge=0.0, description="Ray CPUs of each student actor (it waits on the model; its learner trains in a trainer actor of its own)."
    )
