"""What a DataEnvGym episode will do, stage by stage, before it runs (`--dry-run`)."""

from __future__ import annotations

from classroom.agents.skills import TeacherSkills
from classroom.environments.base import Stage
from classroom.environments.dataenvgym.config import DataEnvConfig
from classroom.environments.dataenvgym.engines import LLMDataEngine
from classroom.environments.dataenvgym.loop import build_plugins
from classroom.environments.dataenvgym.policies import LLMPolicy
from classroom.environments.tasks import Task


def stages(config: DataEnvConfig, task: Task) -> list[Stage]:
    """The episode's stages and their model requests (one per conversation; a reply that
    does not parse may take one repair request more)."""
    policy, engine, skills = build_plugins(config)
    val = task.sample(config.val_size, split=config.val_split, seed=config.seed)
    test = len(task.sample(config.test_size, split=config.test_split, seed=config.seed, exclude={p.id for p in val}))
    made = config.examples_per_iteration
    teacher_plans, teacher_writes = isinstance(policy, LLMPolicy), isinstance(engine, LLMDataEngine)
    plan = []
    if isinstance(skills, TeacherSkills):
        plan.append(Stage("the teacher labels the validation problems' skills", "teacher"))
    plan.append(Stage("reset: the student answers the validation set", "student", len(val)))
    for it in range(1, config.iterations + 1):
        plan += [
            Stage(
                f"iteration {it}: the {'teacher' if teacher_plans else 'programmatic policy'} plans the data",
                "teacher" if teacher_plans else "",
                1 if teacher_plans else None,
            ),
            Stage(
                f"iteration {it}: the {'teacher writes' if teacher_writes else 'reasoning-gym engine makes'} {made} examples",
                "teacher" if teacher_writes else "",
                made if teacher_writes else None,
            ),
        ]
        if config.drop_known:
            plan.append(Stage(f"iteration {it}: the student tries the examples that pass the checks", "student", made, at_most=True))
        plan += [
            Stage(f"iteration {it}: the student learns from the data so far", "learner"),
            Stage(f"iteration {it}: the student answers the validation set (when it learned)", "student", len(val), at_most=True),
        ]
    plan.append(Stage("test set: the trained and the untrained student", "student", 2 * test))
    return plan
