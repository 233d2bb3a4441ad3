"""Settings of a DataEnvGym episode (`env:` with `loop: dataenvgym`): the one source of their defaults."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from classroom.environments.dataenvgym.types import Variant

# The programmatic policy each variant plans with unless `policy` names another.
VARIANT_POLICIES: dict[str, str] = {
    "open_ended": "classroom.environments.dataenvgym.policies.ErrorDrivenPolicy",
    "skill_list": "classroom.environments.dataenvgym.policies.WeakSkillsPolicy",
    "skill_tree": "classroom.environments.dataenvgym.policies.BanditTreePolicy",
}


class DataEnvConfig(BaseModel):
    """One DataEnvGym episode: the variant, its budgets and its three plug-ins."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    loop: Literal["dataenvgym"] = Field("dataenvgym", description="The loop this section configures (set by env=dataenvgym, dataenvgym_*).")
    variant: Variant = Field("skill_list", description="Structure of state and action: free-form errors, skills, or a skill tree.")
    iterations: int = Field(3, ge=1, description="Steps after reset (the paper: 10).")
    examples_per_iteration: int = Field(24, ge=1, description="Data the agent may make per step (the paper: 120).")
    max_examples: int = Field(1000, ge=1, description="Data budget: done once this many examples were kept (the paper: 1,000).")
    val_size: int = Field(30, ge=1, description="Validation problems: the reward (from val_split).")
    test_size: int = Field(30, ge=1, description="Test problems: scored once, at the end (from test_split).")
    val_split: str = Field("train", description="The split the validation problems come from (never the test split).")
    test_split: str = Field("test", description="The split the test problems come from.")
    drop_known: bool = Field(True, description="Quality check: drop generated examples the student already answers correctly.")
    seed: int = Field(0, description="Seeds the problem draws and the agent's choices.")
    policy: dict[str, Any] | None = Field(
        None, description="Who plans what data to make (a DataGenerationPolicy named by `_target_`); None: the variant's built-in policy."
    )
    engine: dict[str, Any] = Field(
        default_factory=lambda: {"_target_": "classroom.environments.dataenvgym.engines.ReasoningGymEngine"},
        description="Who makes the data: problems, worked solutions and answers (a DataGenerationEngine named by `_target_`).",
    )
    skills: dict[str, Any] = Field(
        default_factory=lambda: {"_target_": "classroom.agents.skills.TaskSkills"},
        description="Who names the skills of a problem (a SkillDiscovery named by `_target_`): the task's own, or the teacher model's.",
    )

    def policy_node(self) -> dict[str, Any]:
        """The policy to build: the configured one, or the variant's built-in."""
        if self.policy is not None:
            return dict(self.policy)
        node: dict[str, Any] = {"_target_": VARIANT_POLICIES[self.variant]}
        if self.variant == "open_ended":
            node["seed"] = self.seed
        return node
