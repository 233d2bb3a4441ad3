"""Learning by teaching (Ning et al. 2024) behind the TeachingLoop protocol.

One loop, three methods, chosen by ``env.method``: M1 (:mod:`.m1`) picks answers by
how well students learn from the rationales, M2 (:mod:`.m2`) turns the scores into
preference pairs and a DPO step for the teacher, M3 (:mod:`.m3`) refines in-context
exemplars with feedback from the students. The class is the run's students (several
LoRA adapters on one engine); the teacher is the `teacher` role's model.
"""

from __future__ import annotations

from typing import Any, ClassVar

from classroom.agents.actors import spawn
from classroom.agents.class_roster import Seat
from classroom.agents.config_validation import ConfigError, instantiate_plugin
from classroom.agents.grading import Grader
from classroom.agents.learners import DPOLearner
from classroom.agents.roles import Teacher
from classroom.agents.transport import Agent
from classroom.environments.base import UNBOUND_MODEL, Curve, Episode, Stage, role_learner, spawn_student
from classroom.environments.lbt import stages as lbt_stages
from classroom.environments.lbt.config import LbtConfig
from classroom.environments.lbt.exemplars import ExemplarProposer
from classroom.environments.lbt.m1 import run_m1
from classroom.environments.lbt.m2 import run_m2
from classroom.environments.lbt.m3 import m3_checkpoint, run_m3
from classroom.environments.lbt.rationale_scores import LbtAgents
from classroom.environments.lbt.summary import LbtResultDetails, lbt_summary_table
from classroom.environments.replay import Replay, ResumesByReplay
from classroom.environments.result import EpisodeResult
from classroom.environments.tasks import Task


class LbtLoop(ResumesByReplay):
    """Learning by teaching: M1, M2 and M3 over a class of students."""

    name: ClassVar[str] = "lbt"
    config_model: ClassVar[type[LbtConfig]] = LbtConfig
    roles: ClassVar[tuple[str, ...]] = ("teacher", "student")
    max_students: ClassVar[int | None] = None
    curves: ClassVar[tuple[Curve, ...]] = (
        Curve("m3_train", "M3: students' accuracy on training items with the kept exemplars", "iteration", "accuracy"),
    )

    def prepare(self, config: LbtConfig, task: Task) -> None:
        """The splits exist and hold enough problems; the method's plug-in builds."""
        for key, split in (("split", config.split), ("train_split", config.train_split)):
            if split not in task.splits():
                raise ConfigError(f"config error: env.{key}: task {task.name!r} has no split {split!r} (has: {', '.join(task.splits())})")
        needs = {"m1": 0, "m2": config.m2.train_problems, "m3": 2 * config.m3.train_items}[config.method]
        if len(task.split(config.train_split)) < needs:
            raise ConfigError(
                f"config error: env.train_split: task {task.name!r} split {config.train_split!r} has {len(task.split(config.train_split))} "
                f"problems; {config.method} needs {needs}"
            )
        if config.method == "m2":
            role_learner("env.m2.dpo", config.m2.dpo, DPOLearner, role="teacher", base_models={"teacher": UNBOUND_MODEL})
        if config.method == "m3":
            instantiate_plugin("env.m3.proposer", config.m3.proposer, ExemplarProposer)

    def stages(self, config: LbtConfig, task: Task) -> list[Stage]:
        return lbt_stages.stages(config, task)

    def trained_roles(self, config: LbtConfig) -> dict[str, str]:
        """M2 trains the teacher's adapter (unless its baseline trains nothing)."""
        return {"env.m2.dpo": "teacher"} if config.method == "m2" and config.m2.preference != "none" else {}

    def spawn_agents(self, episode: Episode) -> LbtAgents:
        teacher = episode.roles.teacher
        return LbtAgents(
            teacher=Agent(
                spawn(
                    Teacher,
                    episode.pool.llm("teacher"),
                    num_cpus=teacher.num_cpus,
                    episode_id=episode.episode_id,
                    prompts=teacher.prompts,
                    sampling=teacher.sampling,
                )
            ),
            students=tuple(spawn_student(episode, seat, stateless=True) for seat in episode.students),
            names=tuple(seat.name for seat in episode.students),
            grader=Agent(spawn(Grader, stateless=True)),
            teacher_as_student=spawn_student(episode, Seat("teacher", "teacher")),
        )

    async def run(self, episode: Episode, agents: LbtAgents, resume_from: Replay | None = None) -> EpisodeResult[LbtResultDetails]:
        config: LbtConfig = episode.config
        if config.method == "m3":
            # M3's iterations hang on answers it does not log (each set's wrong answers
            # feed the next proposal): it goes on from its checkpoint after the last
            # finished iteration, the log cut back to it; without one it starts again.
            checkpoint = m3_checkpoint(episode) if resume_from is not None else None
            if resume_from is not None:
                episode.recorder.rewind(checkpoint.events_logged if checkpoint is not None else 0)
            result: EpisodeResult[Any] = await run_m3(episode, agents, checkpoint)
        else:
            result = await (run_m1 if config.method == "m1" else run_m2)(episode, agents, resume_from)
        return result

    # Stateful (ResumesByReplay): the event log is the state. A resumed M1 or M2 episode
    # takes the rationales, exams and pairs it finds logged and asks for the rest (M2's
    # DPO step is trained again); M3 goes on after its last finished iteration (its checkpoint).

    def summary_table(self, result: EpisodeResult[LbtResultDetails]) -> list[Any]:
        return lbt_summary_table(result)
