"""What a learning-by-teaching episode will do, stage by stage, before it runs (`--dry-run`).

A student stage's requests are made once per student of the class."""

from __future__ import annotations

from classroom.agents.config_validation import instantiate_plugin
from classroom.environments.base import Stage
from classroom.environments.lbt.config import LbtConfig, M1Settings
from classroom.environments.lbt.exemplars import ExemplarProposer, LLMProposer
from classroom.environments.tasks import Task


def _teaching(problems: int, m1: M1Settings, *, exams: bool, what: str) -> list[Stage]:
    """M1's teaching step on ``problems`` (M2 runs it on its training problems)."""
    plan = [
        Stage(f"the teacher's greedy rationale of each {what}", "teacher", problems),
        Stage(f"the teacher samples {m1.samples} rationales of each {what}", "teacher", problems),
    ]
    if exams:
        plan.append(
            Stage(
                f"exams: {m1.exam_size} similar problems per rationale, {m1.repeats} answers each",
                "student",
                problems * m1.samples * m1.exam_size,
                per_student=True,
            )
        )
    return plan


def stages(config: LbtConfig, task: Task) -> list[Stage]:
    """The stages of ``config.method`` and their model requests (one per conversation;
    sampled ones ask for several completions)."""
    held_out = len(task.sample(config.num_problems, split=config.split, seed=config.seed))
    if config.method == "m1":
        return [*_teaching(held_out, config.m1, exams=True, what="problem"), Stage("each selection rule picks an answer", "")]
    if config.method == "m2":
        m2 = config.m2
        train = len(task.sample(m2.train_problems, split=config.train_split, seed=config.seed))
        plan = []
        if m2.preference != "none":
            plan += _teaching(train, config.m1, exams=m2.preference == "lbt", what="training problem")
            plan.append(Stage(f"DPO of the teacher on its preference pairs ({m2.preference})", "learner"))
        plan.append(
            Stage("the teacher on the held-out problems, before and after DPO", "teacher", held_out * (2 if m2.preference != "none" else 1))
        )
        return plan
    m3 = config.m3
    proposer = instantiate_plugin("env.m3.proposer", m3.proposer, ExemplarProposer)
    items = min(m3.train_items, len(task.sample(m3.train_items * 4, split=config.train_split, seed=config.seed)))
    plan = [Stage(f"the class answers {items} training items with the first {m3.exemplars} exemplars", "student", items, per_student=True)]
    for it in range(1, m3.iterations + 1):
        asks = isinstance(proposer, LLMProposer)
        plan += [
            Stage(f"iteration {it}: {m3.proposals} exemplar sets proposed", "teacher" if asks else "", 1 if asks else None),
            Stage(
                f"iteration {it}: the class answers with each set that parses",
                "student",
                items * m3.proposals,
                at_most=True,
                per_student=True,
            ),
        ]
    plan.append(Stage("the teacher on the held-out problems with the first and the final exemplars", "teacher", 2 * held_out))
    return plan
