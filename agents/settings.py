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
    # How explanations are sampled.
    sampling: SamplingParams = SamplingParams(max_tokens=192)
    # Replace templates of agents/prompts/teacher.yaml by name.
    prompts: dict[str, str] = Field(default_factory=dict)
    # Ray CPUs of the teacher actor (it waits on the model, not the CPU).
    num_cpus: float = Field(0.0, ge=0.0)


class StudentSettings(BaseModel):
    """The student agents' section (`student:`): how every student of the class learns
    and answers (who the students are, and their adapters: `students:`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    # How the student learns between rounds: a Learner named by `_target_`.
    learner: dict[str, Any] = Field(default_factory=lambda: {"_target_": "classroom.agents.learners.InContextLearner"})
    sampling: SamplingParams = SamplingParams(max_tokens=160)
    # Replace templates of agents/prompts/student.yaml by name.
    prompts: dict[str, str] = Field(default_factory=dict)
    num_cpus: float = Field(0.0, ge=0.0)
