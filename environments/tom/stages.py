"""What a theory-of-mind episode will do, stage by stage, before it runs (`--dry-run`).

A student stage's requests are made once per student of the class."""

from __future__ import annotations

from classroom.agents.config_validation import instantiate_plugin
from classroom.environments.base import Stage
from classroom.environments.tom.config import TomConfig
from classroom.environments.tom.policies import InterventionPolicy, MentalModelUtility, Reversed


def stages(config: TomConfig) -> list[Stage]:
    """The episode's stages and their model requests (one per conversation)."""
    seed, test, post = config.seed_set_size, config.num_problems, config.post_test_size
    policy = instantiate_plugin("env.intervention", config.intervention, InterventionPolicy)
    policy = policy.inner if isinstance(policy, Reversed) else policy
    personal = config.explanation == "personalized"
    plan = [
        Stage("pre-test: each student alone on the seed, test and post-test problems", "student", seed + test + post, per_student=True),
        *_explains("seed", seed, "unpersonalized" if personal else config.explanation, per_student=False),
        *_explains("test", test, config.explanation, per_student=personal),
        Stage("each student with the explanations, seed and test set", "student", seed + test, per_student=True),
    ]
    if isinstance(policy, MentalModelUtility):
        # One simulation of the student per problem without the explanation, one with it.
        simulations = 2 if policy.mode == "both" else 1
        plan.append(
            Stage("the teacher's mental model of the student rates each test problem", "teacher", test * simulations, per_student=True)
        )
    plan.append(Stage(f"the policy spends each budget of {list(config.budgets)} on its top-rated problems", ""))
    asked = [c for c in config.demo_counts if c != 0]
    if asked:
        plan.append(
            Stage(f"multi-turn: the post-test with {asked} demonstrations", "student", post * len(asked), at_most=True, per_student=True)
        )
    return plan


def _explains(which: str, problems: int, style: str, *, per_student: bool) -> list[Stage]:
    """The teacher's explanations of a set (gold ones are the task's worked solutions)."""
    if style == "gold":
        return [Stage(f"the {which} set's gold explanations, from the task's worked solutions", "")]
    return [Stage(f"the teacher explains the {which} set ({style})", "teacher", problems, per_student=per_student)]
