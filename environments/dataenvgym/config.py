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
    loop: Literal["dataenvgym"] = "dataenvgym"
    # Structure of state and action: free-form errors, skills, or a skill tree.
    variant: Variant = "skill_list"
    # Steps after reset (the paper: 10).
    iterations: int = Field(3, ge=1)
    # Data the agent may make per step (the paper: 120).
    examples_per_iteration: int = Field(24, ge=1)
    # Data budget: done once this many examples were kept (the paper: 1,000).
    max_examples: int = Field(1000, ge=1)
    # Validation problems: the reward (from val_split).
    val_size: int = Field(30, ge=1)
    # Test problems: scored once, at the end (from test_split).
    test_size: int = Field(30, ge=1)
    val_split: str = "train"
    test_split: str = "test"
    # Quality check: drop generated examples the student already answers correctly.
    drop_known: bool = True
    seed: int = 0
    # Plug-ins (Hydra `_target_`): who plans (None: the variant's built-in policy),
    # who makes the data, who names the skills.
    policy: dict[str, Any] | None = None
    engine: dict[str, Any] = Field(default_factory=lambda: {"_target_": "classroom.environments.dataenvgym.engines.ReasoningGymEngine"})
    skills: dict[str, Any] = Field(default_factory=lambda: {"_target_": "classroom.agents.skills.TaskSkills"})

    def policy_node(self) -> dict[str, Any]:
        """The policy to build: the configured one, or the variant's built-in."""
        if self.policy is not None:
            return dict(self.policy)
        node: dict[str, Any] = {"_target_": VARIANT_POLICIES[self.variant]}
        if self.variant == "open_ended":
            node["seed"] = self.seed
        return node
