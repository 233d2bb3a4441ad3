"""What a teaching loop is written against, in one import (docs/extending.md).

A loop of one's own, inside the repo or outside it, needs the protocol it implements
and the episode it is handed (:mod:`classroom.environments.base`), the task, the agents
it spawns and the one transport they are called through (:mod:`classroom.agents`), the messages they exchange and the
one-line config error. They live where they belong; this module names them once, for
loop authors, as Gymnasium's top-level package does for environments::

    from classroom.environments.api import Agent, Episode, Teacher, register, spawn_student

Nothing in classroom imports this module: it is the public face, not a layer.
"""

from __future__ import annotations

from classroom.agents.actors import spawn
from classroom.agents.config_validation import ConfigError, validate_section
from classroom.agents.grading import Grader
from classroom.agents.messages import Attempt, Explanation, ParseFailure, Problem
from classroom.agents.roles import Student, Teacher
from classroom.agents.transport import Agent, StudentAgent
from classroom.environments.base import (
    Curve,
    Episode,
    Plans,
    Roles,
    Stage,
    Stateful,
    TeachingLoop,
    Trains,
    read_checkpoint,
    register,
    role_learner,
    spawn_student,
    write_checkpoint,
)
from classroom.environments.recording import Recorder
from classroom.environments.result import Counts, Details, EpisodeResult, tokens_by_sender
from classroom.environments.tasks import Task

__all__ = [
    "Agent",
    "Attempt",
    "ConfigError",
    "Counts",
    "Curve",
    "Details",
    "Episode",
    "EpisodeResult",
    "Explanation",
    "Grader",
    "ParseFailure",
    "Plans",
    "Problem",
    "Recorder",
    "Roles",
    "Stage",
    "Stateful",
    "Student",
    "StudentAgent",
    "Task",
    "Teacher",
    "TeachingLoop",
    "Trains",
    "read_checkpoint",
    "register",
    "role_learner",
    "spawn",
    "spawn_student",
    "tokens_by_sender",
    "validate_section",
    "write_checkpoint",
]
