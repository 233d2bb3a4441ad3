"""What a SuperCorrect episode will do, stage by stage, before it runs (`--dry-run`)."""

from __future__ import annotations

from classroom.agents.config_validation import instantiate_plugin
from classroom.environments.base import Stage
from classroom.environments.supercorrect.config import SuperCorrectConfig
from classroom.environments.supercorrect.teachers import ProgrammaticTeacher, TemplateTeacher
from classroom.environments.tasks import Task


def stages(config: SuperCorrectConfig, task: Task) -> list[Stage]:
    """The episode's stages and their model requests (one per conversation)."""
    train = len(task.sample(config.train_problems, split=config.train_split, seed=config.seed))
    test = len(task.sample(config.num_problems, split=config.split, seed=config.seed))
    teacher = instantiate_plugin("env.teacher", config.teacher, TemplateTeacher)
    programmatic = isinstance(teacher, ProgrammaticTeacher)
    # Templates of the test problems too: the localisation benchmark breaks them.
    plan = [
        Stage(
            "the programmatic teacher works thought templates" if programmatic else "the teacher writes thought templates",
            "" if programmatic else "teacher",
            None if programmatic else train + test,
        ),
        Stage(
            f"stage 1: LoRA {'SFT on worked solutions' if config.stage == 'sft' else 'HSFT on templates'} (up to {train} examples)",
            "learner",
        ),
        Stage("the untrained student answers the test problems", "student", test),
        Stage("the stage-1 student answers the test problems", "student", test),
        Stage("the stage-1 student locates the first wrong step (localisation benchmark)", "student", config.localisation, at_most=True),
    ]
    if config.stage == "hsft_dpo":
        solutions = train * config.solutions
        plan += [
            Stage(f"stage 2: the student solves the training problems ({config.solutions} samples each)", "student", solutions),
            Stage(
                "stage 2: the teacher corrects each wrong solution's first wrong step",
                "" if programmatic else "teacher",
                None if programmatic else solutions,
                at_most=not programmatic,
            ),
            Stage("stage 2: the student critiques its own wrong step (structured output)", "student", solutions, at_most=True),
            Stage("stage 2: DPO on the preference pairs, continuing stage 1's adapter", "learner"),
            Stage("the stage-2 student answers the test problems", "student", test),
            Stage("the stage-2 student locates the first wrong step", "student", config.localisation, at_most=True),
        ]
    return plan
