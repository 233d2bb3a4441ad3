"""The DataEnvGym loop: the agent acts, the environment steps, until done; resumable.

:meth:`DataEnvGymLoop.run` reads top to bottom as the paper's loop: reset (evaluate the
untrained student), then, until the iterations or the data budget run out, the agent
plans and makes data from the observation and the environment steps (quality checks,
training, evaluation, reward). After each step the whole state (environment, student,
agent) is checkpointed in one atomic write, so a killed episode resumes after its
last finished step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from classroom.agents.actors import spawn
from classroom.agents.config_validation import ConfigError, instantiate_plugin
from classroom.agents.grading import Grader, is_reasoning_gym_problem
from classroom.agents.roles import Student
from classroom.agents.skills import SkillDiscovery, TaskSkills
from classroom.agents.transport import Agent, StudentAgent
from classroom.environments.base import Curve, Episode, Stage, read_checkpoint, spawn_student, write_checkpoint
from classroom.environments.dataenvgym.agent import DataGenerator
from classroom.environments.dataenvgym.config import DataEnvConfig
from classroom.environments.dataenvgym.engines import DataGenerationEngine, ReasoningGymEngine
from classroom.environments.dataenvgym.env import DataEnvGym, EnvState
from classroom.environments.dataenvgym.policies import DataGenerationPolicy
from classroom.environments.dataenvgym.summary import DataEnvGymDetails, dataenvgym_summary_table
from classroom.environments.result import EpisodeResult
from classroom.environments.tasks import Task
from classroom.serving.errors import EpisodeStopped


class SkillTreeError(EpisodeStopped):
    """A skill-tree episode whose skills have no sub-skills: it would plan nothing."""


class DataEnvCheckpoint(BaseModel):
    """Everything a resumed DataEnvGym episode needs, written in one piece."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    env: EnvState
    student: dict[str, Any] = Field(default_factory=dict)
    generator: dict[str, Any] = Field(default_factory=dict)
    # Messages in the event log when it was written: a resume cuts the log back here,
    # since it redoes (and logs again) whatever came after. None: an older checkpoint.
    events_logged: int | None = None


@dataclass(frozen=True)
class DataEnvAgents:
    """The agents of a DataEnvGym episode."""

    generator: Agent[DataGenerator]
    student: StudentAgent
    grader: Agent[Grader]


def build_plugins(config: DataEnvConfig) -> tuple[DataGenerationPolicy, DataGenerationEngine, SkillDiscovery]:
    """The policy, engine and skill discovery the config names (a ConfigError if one does not build)."""
    return (
        instantiate_plugin("env.policy", config.policy_node(), DataGenerationPolicy),
        instantiate_plugin("env.engine", config.engine, DataGenerationEngine),
        instantiate_plugin("env.skills", config.skills, SkillDiscovery),
    )


class DataEnvGymLoop:
    """DataEnvGym behind the TeachingLoop and Stateful protocols."""

    name: ClassVar[str] = "dataenvgym"
    config_model: ClassVar[type[DataEnvConfig]] = DataEnvConfig
    roles: ClassVar[tuple[str, ...]] = ("teacher", "student")
    max_students: ClassVar[int | None] = 1
    curves: ClassVar[tuple[Curve, ...]] = (Curve("val", "student validation accuracy by iteration", "iteration", "validation accuracy"),)

    def prepare(self, config: DataEnvConfig, task: Task) -> None:
        """The plug-ins build, the splits exist, the engine can make this task's kind of
        problem, and a skill tree has sub-skills to grow (else one line, before engines)."""
        _, engine, skills = build_plugins(config)
        for key, split in (("val_split", config.val_split), ("test_split", config.test_split)):
            if split not in task.splits():
                raise ConfigError(f"config error: env.{key}: task {task.name!r} has no split {split!r} (has: {', '.join(task.splits())})")
        problems = task.split(config.val_split)
        if isinstance(engine, ReasoningGymEngine) and not any(is_reasoning_gym_problem(p) for p in problems):
            raise ConfigError(
                f"config error: env.engine: ReasoningGymEngine makes reasoning-gym problems and task {task.name!r} has none; "
                "use env/engine=llm (the teacher model writes the data)"
            )
        if config.variant == "skill_tree" and isinstance(skills, TaskSkills) and not any("/" in s for p in problems for s in p.skills):
            raise ConfigError(
                f"config error: env.variant: skill_tree needs sub-skills and task {task.name!r} has none; "
                "use a reasoning_gym_skills task (task=arithmetic_skills) or let the teacher find them (env.skills._target_=classroom.agents.skills.TeacherSkills)"
            )

    def stages(self, config: DataEnvConfig, task: Task) -> list[Stage]:
        from classroom.environments.dataenvgym.stages import stages  # it builds the loop's plug-ins

        return stages(config, task)

    def spawn_agents(self, episode: Episode) -> DataEnvAgents:
        config: DataEnvConfig = episode.config
        policy, engine, skills = build_plugins(config)
        return DataEnvAgents(
            generator=Agent(
                spawn(
                    DataGenerator,
                    episode.pool.llm("teacher"),
                    policy=policy,
                    engine=engine,
                    skills=skills,
                    episode_id=episode.episode_id,
                    seed=config.seed,
                )
            ),
            student=spawn_student(episode, episode.students[0]),
            grader=Agent(spawn(Grader, stateless=True)),
        )

    async def run(
        self, episode: Episode, agents: DataEnvAgents, resume_from: DataEnvCheckpoint | None = None
    ) -> EpisodeResult[DataEnvGymDetails]:
        """Reset (or resume), let the agent act until done, score the test set."""
        started = time.time()
        env = DataEnvGym(
            episode.config,
            episode.task,
            generator=agents.generator,
            student=agents.student,
            grader=agents.grader,
            recorder=episode.recorder,
            run_dir=episode.run_dir,
            episode_id=episode.episode_id,
        )
        if resume_from is None:
            observation = await env.reset()
            if env.config.variant == "skill_tree" and not any(observation.skills().values()):
                raise SkillTreeError(
                    f"skill_tree found no sub-skills after skill discovery (skills: {', '.join(observation.skills()) or 'none'}): "
                    "nothing to explore; use the skill_list variant or a task with sub-skills"
                )
            await self._checkpoint(episode.run_dir, env, agents)
        else:
            if resume_from.events_logged is not None:
                episode.recorder.rewind(resume_from.events_logged)
            observation = env.restore(resume_from.env)
            await agents.student.restore_from_checkpoint(resume_from.student)
            await agents.generator.call(DataGenerator.load_state, resume_from.generator)
        while not env.done:
            episode.recorder.stage(f"iteration {env.iteration + 1}: the agent plans and makes data", None)
            action = await agents.generator.call(DataGenerator.act, observation)
            result = await env.step(action)
            await self._checkpoint(episode.run_dir, env, agents)
            observation = result.observation
        return await env.finish(started, resumed_from=resume_from.env.iteration if resume_from else None)

    async def _checkpoint(self, run_dir: Path, env: DataEnvGym, agents: DataEnvAgents) -> None:
        state = DataEnvCheckpoint(
            env=env.snapshot(),
            student=await agents.student.call(Student.save_state),
            generator=await agents.generator.call(DataGenerator.save_state),
            events_logged=env.recorder.logged(),
        )
        self.save_state(run_dir, state)

    # ------------------------------------------------------------------- Stateful

    def save_state(self, run_dir: Path, state: DataEnvCheckpoint) -> None:
        write_checkpoint(run_dir, state)

    def load_state(self, run_dir: Path) -> DataEnvCheckpoint:
        return read_checkpoint(run_dir, DataEnvCheckpoint, missing="the episode finished no iteration to resume from")

    def episode_id_of(self, state: DataEnvCheckpoint) -> str:
        return state.env.episode_id

    def summary_table(self, result: EpisodeResult[DataEnvGymDetails]) -> list[Any]:
        return dataenvgym_summary_table(result)
