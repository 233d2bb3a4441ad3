"""The door between `classroom` and a teaching loop: one protocol and a registry.

A loop is a package (``environments/tom/``, ``environments/dataenvgym/``, or a user's
own, outside the repo) holding a class that implements :class:`TeachingLoop`. The
registry :data:`LOOPS` maps a loop's name to where that class lives, as Gymnasium's
``register`` does; ``classroom run env=X`` reads ``env.loop`` from the composed config
and asks :func:`load_loop` for it. Nothing in ``launch/`` names a loop.

A user's loop registers itself when its module is imported::

    # my_loops.py
    from classroom.environments.base import register
    register("toy", "my_loops:ToyLoop")

and a config names it as ``loop: my_loops:toy`` (module, then registered name): the
module is imported first, so its ``register`` call runs.
"""

from __future__ import annotations

import copy
import importlib
import json
import os
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ValidationError

from classroom.agents.actors import spawn
from classroom.agents.class_roster import Seat
from classroom.agents.config_validation import ConfigError, instantiate_plugin
from classroom.agents.learners import Learner
from classroom.agents.roles import Student
from classroom.agents.settings import StudentSettings, TeacherSettings
from classroom.agents.transport import StudentAgent
from classroom.environments.recording import Recorder
from classroom.environments.result import EpisodeResult
from classroom.environments.tasks import Task
from classroom.serving.errors import DataError
from classroom.serving.pool import ModelPool

# name -> "module:attribute" of the loop class.
LOOPS: dict[str, str] = {
    "tom": "classroom.environments.tom:TomLoop",
    "dataenvgym": "classroom.environments.dataenvgym:DataEnvGymLoop",
    "lbt": "classroom.environments.lbt:LbtLoop",
    "supercorrect": "classroom.environments.supercorrect:SuperCorrectLoop",
}
# Installed packages can add loops without an import: `[project.entry-points."classroom.loops"]`.
ENTRY_POINT_GROUP = "classroom.loops"


class LoopError(ConfigError):
    """A loop that cannot be found or does not implement the protocol; one line."""


class ResumeError(DataError):
    """A run directory a loop cannot resume from; one line saying why."""


@dataclass(frozen=True)
class Curve:
    """A learning curve a loop's scores draw in `classroom report`.

    Scores named ``{prefix}@{x}`` are its points; a sweep draws one line per
    configuration with its 95% CI.
    """

    prefix: str
    title: str
    xlabel: str
    ylabel: str
    # A difference between two scores (-1..1 around 0), not a score (0..1).
    difference: bool = False


@dataclass(frozen=True)
class Roles:
    """The shared role settings of a run, validated, with the student's learner built."""

    teacher: TeacherSettings
    student: StudentSettings
    learner: Learner


@dataclass(frozen=True)
class Episode:
    """One episode as `classroom run` hands it to a loop: settings and started services.

    ``config`` is the loop's own config model, validated; ``pool`` maps roles to
    started models; ``recorder`` takes every message and metric; ``run_dir`` is where
    the loop may write its files (the driver's disk: the loop runs on the driver).
    """

    episode_id: str
    config: Any
    task: Task
    roles: Roles
    pool: ModelPool
    recorder: Recorder
    run_dir: Path
    # The class: each student's name, model role and adapter (loaded into its engine).
    students: tuple[Seat, ...] = (Seat("student", "student"),)
    # Role -> the model its vLLM engine serves (a role served otherwise has none): what
    # a learner that trains the role's adapters trains on (:func:`role_learner`).
    base_models: dict[str, str] = field(default_factory=dict)


C = TypeVar("C", bound=BaseModel, contravariant=True)
A = TypeVar("A")


@runtime_checkable
class TeachingLoop(Protocol[C, A]):
    """A teaching loop over its config model ``C`` and the agents ``A`` it spawns.

    - ``name``: the registry name; ``config_model``: the pydantic model of ``env:``
      (the one source of its defaults); ``roles``: the model roles its agents use;
      ``max_students``: how many students of the class it teaches at once (None: any).
    - ``curves``: the learning curves its scores draw in reports.
    - ``prepare(config, task)``: checks that need the task (sizes, skills), before any
      engine starts; raises a one-line ``ConfigError``.
    - ``spawn_agents(episode)``: starts its agents (Ray actors) and returns them in
      the typed holder ``A`` the loop defines; ``run(episode, agents, resume_from)``
      plays the episode and returns its :class:`EpisodeResult` (``scores`` is what
      sweeps table; its ``details`` are the loop's own pydantic model). The runner
      records the scores, tokens and time, and writes ``summary.json``.
    - ``summary_table(result)``: what the terminal shows (rich renderables).
    """

    name: ClassVar[str]
    config_model: ClassVar[type[BaseModel]]
    roles: ClassVar[tuple[str, ...]]
    curves: ClassVar[tuple[Curve, ...]]
    max_students: ClassVar[int | None]

    def prepare(self, config: C, task: Task) -> None: ...

    def spawn_agents(self, episode: Episode) -> A: ...

    async def run(self, episode: Episode, agents: A, resume_from: Any | None = None) -> EpisodeResult[Any]: ...

    def summary_table(self, result: EpisodeResult[Any]) -> list[Any]: ...


@runtime_checkable
class Stateful(Protocol):
    """A loop whose episodes resume: it saves its state and loads it back.

    ``save_state`` is one atomic write of everything the episode needs to go on (a
    kill at any moment leaves the previous state or the new one, whole).
    ``load_state`` reads it back, or raises :class:`ResumeError` saying why not; its
    result is what ``run`` takes as ``resume_from``, and ``episode_id_of`` names the
    episode it belongs to (its agents carry on under that id).
    """

    def save_state(self, run_dir: Path, state: Any) -> None: ...

    def load_state(self, run_dir: Path) -> Any: ...

    def episode_id_of(self, state: Any) -> str: ...


@runtime_checkable
class Trains(Protocol):
    """A loop that trains LoRA adapters of a role's model.

    ``trained_roles(config)`` names, for this config, each learner section it builds
    (``env.sft``) and the role whose model that learner trains (``student``). Each
    learner trains on the model that serves its role (:func:`role_learner`), and
    `classroom run` checks, before any engine starts, that a vLLM engine serves it (an
    adapter is trained for, and loaded into, that engine).
    """

    def trained_roles(self, config: Any) -> dict[str, str]: ...


@dataclass(frozen=True)
class Stage:
    """One stage of an episode as `classroom run --dry-run` prints it: who works in it
    and how many model requests it makes (None: the loop cannot tell before it runs;
    ``at_most``: an upper bound, e.g. corrections of the answers that turn out wrong)."""

    name: str
    # The model role asked (teacher, student), "learner" for a training step, or "" for
    # work no model does (a programmatic teacher, the grader).
    role: str
    requests: int | None = None
    at_most: bool = False
    # The requests are made once for each student of the class (its answers, or the
    # teacher's mental model of it).
    per_student: bool = False

    def describe(self) -> str:
        if self.requests is None:
            count = "requests unknown before it runs" if self.role not in ("", "learner") else ""
        else:
            count = f"{'up to ' if self.at_most else ''}{self.requests} request{'s' if self.requests != 1 else ''}"
            count += " per student" if self.per_student else ""
        who = f"[{self.role}]" if self.role else "[no model]"
        return f"{who:<11} {self.name}" + (f": {count}" if count else "")


@runtime_checkable
class Plans(Protocol):
    """A loop that can say, from its config and task alone, what its episode will do:
    ``stages(config, task)`` in order, with the model requests each makes where that is
    known before the run (`classroom run --dry-run` prints them)."""

    def stages(self, config: Any, task: Task) -> list[Stage]: ...


# What a learner section is checked with in `prepare`, before the run knows its models
# (a learner resolves its base model only when it trains).
UNBOUND_MODEL = "(the model that serves the role)"
L = TypeVar("L")


def role_learner(section: str, node: dict[str, Any], protocol: type[L], *, role: str, base_models: dict[str, str]) -> L:
    """The learner a config section names (``_target_``), on the model that serves
    ``role`` in this run: a learner never names a model of its own."""
    if "base_model" in node:
        raise ConfigError(
            f"config error: {section}.base_model: a learner trains the model that serves the {role} role "
            f"(model.roles.{role}); leave base_model out"
        )
    if role not in base_models:
        raise ConfigError(
            f"config error: {section}: it trains adapters of the {role} role's model, which no vLLM engine serves "
            f"(model.roles.{role}); an adapter needs one (model=embedded, model=vllm_gpu), or an endpoint that loads "
            "adapters at run time (its lora_base_model set)"
        )
    return instantiate_plugin(section, {**node, "base_model": base_models[role]}, protocol)


# The file a checkpointing loop keeps its state in, inside the run directory.
CHECKPOINT = "checkpoint.json"
S = TypeVar("S", bound=BaseModel)


def write_checkpoint(run_dir: Path, state: BaseModel) -> None:
    """One atomic write of a loop's whole state: a kill leaves the previous checkpoint
    (or none) or this one, whole."""
    path = Path(run_dir) / CHECKPOINT
    tmp = path.with_suffix(".json.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(state.model_dump_json())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_checkpoint(run_dir: Path, model: type[S], *, missing: str) -> S:
    """The checkpoint :func:`write_checkpoint` left, or :class:`ResumeError`: ``missing``
    says why a run without one has nothing to resume from."""
    path = Path(run_dir) / CHECKPOINT
    if not path.is_file():
        raise ResumeError(f"{run_dir} has no {CHECKPOINT}: {missing}")
    try:
        return model.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, ValidationError) as exc:
        raise ResumeError(f"{path} is not a checkpoint of this classroom: {str(exc).splitlines()[0]}") from None


def spawn_student(episode: Episode, seat: Seat, *, stateless: bool = False) -> StudentAgent:
    """A Student actor for one seat of the class: its name, its role's model, its
    adapter, and the shared student settings (learner, sampling, prompts).

    ``stateless``: the loop never trains the student nor fills its memory, so Ray may
    restart it after its process dies (see :func:`~classroom.agents.actors.spawn`).
    """
    settings = episode.roles.student
    return StudentAgent(
        spawn(
            Student,
            episode.pool.llm(seat.role),
            num_cpus=settings.num_cpus,
            stateless=stateless,
            name=seat.name,
            episode_id=episode.episode_id,
            learner=copy.deepcopy(episode.roles.learner),
            prompts=settings.prompts,
            sampling=settings.sampling,
            adapter=seat.adapter,
        )
    )


def register(name: str, entry_point: str) -> None:
    """Register a loop: ``name`` -> ``"module:attribute"`` of its class."""
    if ":" not in entry_point:
        raise LoopError(f"loop {name!r}: entry point must be 'module:Class', got {entry_point!r}")
    LOOPS[name] = entry_point


def _known() -> dict[str, str]:
    found = dict(LOOPS)
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(entry.name, entry.value)
    return found


def load_loop(name: str) -> TeachingLoop:
    """The loop registered as ``name`` (an instance), importing ``module:`` first if given."""
    if ":" in name:  # "my_module:toy": importing the module registers its loops
        module, _, name = name.partition(":")
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise LoopError(f"config error: env.loop: cannot import {module!r}: {exc}") from None
    known = _known()
    if name not in known:
        raise LoopError(f"config error: env.loop: unknown loop {name!r} (registered: {', '.join(sorted(known))})")
    module, _, attribute = known[name].partition(":")
    try:
        cls = getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as exc:
        raise LoopError(f"config error: env.loop: {name!r} is registered as {known[name]!r}, which does not import: {exc}") from None
    loop = cls()
    if not isinstance(loop, TeachingLoop):
        raise LoopError(f"config error: env.loop: {known[name]} does not implement TeachingLoop")
    return loop
