"""`classroom run`: compose the config, start Ray and the models, play one episode.

Only this module knows Hydra, Ray start-up and the run directory. The loop it runs is
whatever ``env.loop`` names in the registry (:mod:`classroom.environments.base`); this
module knows no loop by name, and the loop is the same on a laptop and on a cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from classroom.agents.actors import placement, recording_spawned
from classroom.agents.class_roster import Seat, StudentSpec, check_class, seat_class
from classroom.agents.config_validation import ConfigError, instantiate_plugin, record_target, validate_section
from classroom.agents.learners import Learner, LoRAFitting
from classroom.agents.settings import StudentSettings, TeacherSettings
from classroom.environments.base import Episode, LoopError, ResumeError, Roles, Stateful, TeachingLoop, Trains, load_loop
from classroom.environments.tasks import Task
from classroom.launch.rundir import RunDirectory
from classroom.launch.settings import ClusterSettings, CompareSettings
from classroom.serving.errors import BackendError, EpisodeStopped
from classroom.serving.ledger import fault_delta
from classroom.serving.openai_backend import key_is_missing
from classroom.serving.pool import PoolConfig
from classroom.serving.secrets import redact_hydra_folder
from classroom.serving.types import EngineStats
from classroom.serving.vllm_engine import EngineStartupTimeout, EngineUnplaceable

CONFIG_MODULE = "classroom.conf"
# Held while an episode builds its task and validates its config: the episodes of a
# concurrent sweep are threads, and task libraries keep global registries that are not
# safe to fill from two threads at once (reasoning-gym's lost a dataset that way).
_PREPARING = threading.Lock()


class SharedPools:
    """The engine pools of a sweep: one per model config, started by the first episode
    that needs it and used by every later or concurrent one (threads of one process)."""

    def __init__(self) -> None:
        self._pools: dict[str, Any] = {}
        # Each pool's engine counters once it had started: utilisation() counts from there.
        self._started: dict[str, dict[str, EngineStats]] = {}
        # Held while a pool starts: a second episode waits for it rather than start another.
        self._lock = threading.Lock()
        # Ctrl-C reaches only the main thread: it relays it to the episodes running in
        # the others through these (each stops its own event loop's episode).
        self._on_interrupt: set[Callable[[], None]] = set()
        self._playing = threading.Condition()
        self.interrupted = threading.Event()

    def relay_interrupt(self, stop: Callable[[], None]) -> Callable[[], None]:
        """Call ``stop`` (thread-safe) on :meth:`interrupt`, at once if that came
        already; returns what un-registers it (when its episode has stopped)."""
        with self._playing:
            self._on_interrupt.add(stop)
        if self.interrupted.is_set():
            stop()

        def unrelay() -> None:
            with self._playing:
                self._on_interrupt.discard(stop)
                self._playing.notify_all()

        return unrelay

    def interrupt(self, wait_s: float) -> None:
        """Stop every episode playing on these pools, as a Ctrl-C stops one, and wait up
        to ``wait_s`` for them to end (and write their summaries). Episodes still
        starting (their engines) are not waited for: they stop when the pools do."""
        self.interrupted.set()
        with self._playing:
            stops = list(self._on_interrupt)
        for stop in stops:
            with contextlib.suppress(RuntimeError):  # its episode just ended: its loop is closed
                stop()
        with self._playing:
            self._playing.wait_for(lambda: not self._on_interrupt, timeout=wait_s)

    def get(self, pool_config: PoolConfig) -> Any:
        """The sweep's pool for ``pool_config``, started on first use; an engine of it
        that is dead for good (restarts spent, its node gone) is started again on a node
        that can hold it: every later job would otherwise fail on it (the jobs that were
        on it fail all the same, and are retried). The pool's live engines are kept;
        where its ledger died too, the whole pool is started anew."""
        from classroom.serving.pool import ModelPool

        key = pool_config.model_dump_json()
        with self._lock:
            pool = self._pools.get(key)
            dead = pool.dead_engines() if pool is not None else []
            if dead:
                print(f"[sweep] {', '.join(dead)} died for good: starting its models again", file=sys.stderr, flush=True)
                try:
                    pool.start_again(dead, pool_config)
                    again = {label.removeprefix("engine ") for label in dead}
                    self._started[key].update({k: v for k, v in read_engines(pool).items() if k in again})
                except ValueError as exc:  # its ledger is gone too
                    print(f"[sweep] {exc}: starting the whole pool again", file=sys.stderr, flush=True)
                    pool.shutdown()
                    del self._pools[key]
            if key not in self._pools:
                self._pools[key] = ModelPool.start(pool_config)
                self._started[key] = read_engines(self._pools[key])
            return self._pools[key]

    def utilisation(self) -> dict[str, dict[str, Any]]:
        """Each engine's figures since its pool started (see :func:`engine_utilisation`):
        how busy the sweep kept it."""
        figures: dict[str, dict[str, Any]] = {}
        with self._lock:
            for key, pool in self._pools.items():
                for engine, reading in read_engines(pool).items():
                    started = self._started[key].get(engine)
                    figures[engine] = (reading.since(started) if started else reading).summary()
        return figures

    def _engine_actors(self) -> list[Any]:
        with self._lock:
            return [actor for pool in self._pools.values() for _, actor in pool.engine_actors()]

    def adapters(self) -> set[str]:
        """The adapters the pools' engines serve now, by name."""
        import ray

        return {name for info in ray.get([actor.info.remote() for actor in self._engine_actors()]) for name in info["adapters"]}

    def reset(self, keep: Collection[str] = ()) -> None:
        """Every engine back to a fresh one's serving state (no adapter but those named
        in ``keep``; see the engine's ``reset``), the engines kept: what one episode
        loaded does not reach the next."""
        import ray

        ray.get([actor.reset.remote(list(keep)) for actor in self._engine_actors()])

    def release(self, pool_config: PoolConfig) -> None:
        """Stop the pool of ``pool_config`` (if started), keeping the others: its engines'
        memory back for what follows; a later episode on it starts it again."""
        with self._lock:
            pool = self._pools.pop(pool_config.model_dump_json(), None)
            self._started.pop(pool_config.model_dump_json(), None)
        if pool is not None:
            with contextlib.suppress(Exception):  # a dead Ray has nothing left to stop
                pool.shutdown()

    def shutdown(self) -> None:
        with self._lock:
            for pool in self._pools.values():
                with contextlib.suppress(Exception):  # a dead Ray has nothing left to stop
                    pool.shutdown()
            self._pools.clear()


# The pools every episode of this process uses while :func:`keep_engines` lasts.
_KEPT: SharedPools | None = None


@contextlib.contextmanager
def keep_engines() -> Iterator[SharedPools]:
    """While the block lasts, every episode this process runs (:func:`run_episode`, and
    `classroom run`, `resume` or `sweep` called in it through ``cli.main``) uses one engine
    pool per model config, started by the first episode that needs it and stopped when
    the block ends. A notebook or a test session that plays many episodes pays each
    engine's start once; :meth:`SharedPools.reset` between episodes unloads what one
    left. Ray is left running between the episodes (started by the first, or before)."""
    global _KEPT
    if _KEPT is not None:
        raise RuntimeError("keep_engines() is already in force in this process")
    _KEPT = SharedPools()
    try:
        yield _KEPT
    finally:
        kept, _KEPT = _KEPT, None
        kept.shutdown()


def kept_engines() -> SharedPools | None:
    """The pools of :func:`keep_engines` while it is in force, else None."""
    return _KEPT


def task_loader(task_cfg: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The loader ``task._target_`` names and the keyword arguments it takes, checked."""
    import importlib

    values = dict(task_cfg)
    target = values.pop("_target_", None)
    if not target:
        raise ConfigError("config error: task._target_: missing (name the loader function)")
    # Located here, not by hydra.utils.get_method, which logs a multi-line error first.
    module, _, name = str(target).rpartition(".")
    try:
        loader = getattr(importlib.import_module(module), name) if module else None
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"config error: task._target_: cannot import {target!r}: {_first_line(str(exc))}") from None
    if not callable(loader):
        raise ConfigError(f"config error: task._target_: {target!r} is not a loader function (module.function)")
    accepted = inspect.signature(loader).parameters
    if "name" not in accepted:
        values.pop("name", None)
    unknown = sorted(set(values) - set(accepted))
    if unknown:
        raise ConfigError(
            f"config error: task.{unknown[0]}: unknown key for {target} (allowed: {', '.join(k for k in accepted if k != 'name')})"
        )
    return loader, values


def build_task(task_cfg: dict[str, Any]) -> Task:
    """Call the task loader named by ``task._target_`` with the section's values."""
    loader, values = task_loader(task_cfg)
    try:
        task = loader(**values)
    except FileNotFoundError as exc:
        raise ConfigError(f"data error: task: {exc}") from None
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"config error: task: {exc}") from None
    if task.skipped_rows and not len(task):
        raise ConfigError(f"data error: task: every row is malformed ({len(task.skipped_rows)} skipped; first: {task.skipped_rows[0]})")
    record_target(str(task_cfg["_target_"]))
    return task


def init_ray(cluster: ClusterSettings) -> bool:
    """Start or join Ray as the config says; returns whether this process started it."""
    import ray

    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": cluster.log_to_driver}
    if cluster.runtime_env:
        kwargs["runtime_env"] = cluster.runtime_env
    if cluster.address == "local":
        # address="local": a new local instance, whatever RAY_ADDRESS or a session file
        # left by a killed cluster (ray_current_cluster) name.
        ray.init(address="local", num_cpus=cluster.num_cpus or os.cpu_count(), **kwargs)
        return True
    probe_cluster_address(cluster.address)
    try:
        ray.init(address=cluster.address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        reason = _first_line(str(exc)) or type(exc).__name__
        raise ConfigError(f"cluster error: cluster.address={cluster.address}: cannot join a Ray cluster ({reason})") from None
    return True


def probe_cluster_address(address: str, timeout_s: float = 5.0) -> None:
    """Fail in seconds, in one line, where nothing listens at the cluster's address (Ray
    itself retries a dead GCS for minutes). ``auto`` is resolved as Ray resolves it
    (RAY_ADDRESS, a running instance, the session file); ``ray://`` is left to Ray."""
    import socket

    resolved = address
    if address == "auto":
        try:
            from ray._private.services import get_ray_address_from_environment

            resolved = get_ray_address_from_environment("auto", None) or ""
        except (ImportError, AttributeError, ConnectionError):  # Ray decides, as it would
            return
    host, sep, port = resolved.rpartition(":")
    if not sep or "://" in resolved or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()  # [::1]:6379 too
    except OSError as exc:
        named = f"cluster.address={address}" + (f" (it names {resolved})" if resolved != address else "")
        raise ConfigError(f"cluster error: {named}: no Ray cluster answers there ({exc.strerror or type(exc).__name__})") from None


@dataclass(frozen=True)
class RunPlan:
    """A composed config, validated and built as far as it goes without Ray or engines."""

    loop: TeachingLoop
    loop_config: Any
    task: Task
    roles: Roles
    pool: PoolConfig
    cluster: ClusterSettings
    students: tuple[StudentSpec, ...] = ()


def prepare(cfg: dict[str, Any]) -> RunPlan:
    """Validate every section and build what needs no Ray: fails fast, before engines."""
    env_values = dict(cfg["env"])
    loop_name = env_values.get("loop")
    if not loop_name:
        from classroom.environments.base import LOOPS

        raise ConfigError(f"config error: env.loop: missing (registered loops: {', '.join(sorted(LOOPS))})")
    loop = load_loop(str(loop_name))
    # A `module:name` loop reference was for importing; the loop's config holds its name.
    env_values["loop"] = loop.name
    loop_config = validate_section(loop.config_model, "env", env_values)
    pool = validate_section(PoolConfig, "model", cfg["model"])
    check_keys(pool)
    for role in loop.roles:
        if role not in pool.roles:
            raise ConfigError(f"config error: model.roles.{role}: missing (the {loop.name} loop needs it; roles: {', '.join(pool.roles)})")
    student = validate_section(StudentSettings, "student", cfg["student"])
    roles = Roles(
        teacher=validate_section(TeacherSettings, "teacher", cfg["teacher"]),
        student=student,
        learner=student_learner(student, pool),
    )
    validate_section(CompareSettings, "compare", cfg.get("compare") or {})
    students = check_students(cfg.get("students") or [{"name": "student"}], pool, loop)
    task = build_task(cfg["task"])
    loop.prepare(loop_config, task)
    check_trained_roles(loop, loop_config, pool)
    cluster = validate_section(ClusterSettings, "cluster", cfg["cluster"])
    return RunPlan(loop, loop_config, task, roles, pool, cluster, students)


def student_learner(student: StudentSettings, pool: PoolConfig) -> Learner:
    """The student's learner; a LoRA learner trains the model that serves the student role."""
    node = dict(student.learner)
    engine_model = pool.adapter_bases().get("student")
    if "base_model" in node and node["base_model"] is None:  # conf/student/lora.yaml found no engine
        raise ConfigError(
            f"config error: student.learner: LoRA training needs the student role served by a vLLM engine or an "
            f"endpoint that loads adapters; model.roles.student is {pool.roles['student']!r} "
            f"({pool.models[pool.roles['student']].backend}); use a model config with engines (model=embedded, "
            f"model=vllm_gpu), set model.models.{pool.roles['student']}.endpoint.lora_base_model for a server that "
            "loads LoRA adapters at run time, or an in-context student (student=default)"
        )
    learner = instantiate_plugin("student.learner", node, Learner)
    if isinstance(learner, LoRAFitting) and learner.base_model != engine_model:
        raise ConfigError(
            f"config error: student.learner.base_model: {learner.base_model!r} is not the student role's model "
            f"({engine_model!r}): an adapter is trained for the engine that serves it; leave base_model to the config"
        )
    return learner


def check_trained_roles(loop: TeachingLoop, config: Any, pool: PoolConfig) -> None:
    """Every role whose adapters the loop trains is served by a vLLM engine or an endpoint
    that loads adapters (an adapter is trained on the model that serves the role and
    loaded into its server), before any engine starts."""
    if not isinstance(loop, Trains):
        return
    served = pool.adapter_bases()
    for section, role in loop.trained_roles(config).items():
        if role not in served:
            backend = pool.models[pool.roles[role]].backend
            raise ConfigError(
                f"config error: {section}: the {loop.name} loop trains adapters of the {role} role's model, and "
                f"model.roles.{role} ({pool.roles[role]!r}) is served by {backend!r}, which cannot load them; "
                "serve it with a vLLM engine (model=embedded, model=vllm_gpu), or set "
                f"model.models.{pool.roles[role]}.endpoint.lora_base_model for a server that loads LoRA adapters at run time"
            )


def check_keys(pool: PoolConfig) -> None:
    """Every endpoint that needs an API key finds its variable set (before anything starts)."""
    for name, spec in pool.models.items():
        ep = spec.endpoint
        if ep is not None and key_is_missing(ep.api_key_env, keyless=ep.keyless):
            raise ConfigError(
                f"config error: model.models.{name}.endpoint: ${ep.api_key_env} is not set "
                f"(set it, or model.models.{name}.endpoint.keyless=true for a server that takes no key)"
            )


def check_students(values: list[Any], pool: PoolConfig, loop: TeachingLoop) -> tuple[StudentSpec, ...]:
    """The class, validated: names once, roles the pool serves, as many as the loop teaches."""
    if not isinstance(values, list):
        raise ConfigError("config error: students: must be a list of students ({name, role, adapter | recipe})")
    specs = tuple(validate_section(StudentSpec, f"students.{i}", value) for i, value in enumerate(values))
    try:
        check_class(specs)
    except ValueError as exc:
        raise ConfigError(f"config error: {exc}") from None
    for i, spec in enumerate(specs):
        if spec.role not in pool.roles:
            raise ConfigError(f"config error: students.{i}.role: no model for role {spec.role!r} (roles: {', '.join(pool.roles)})")
        if spec.recipe is not None and pool.models[pool.roles[spec.role]].engine is None:
            raise ConfigError(
                f"config error: students.{i}.recipe: role {spec.role!r} is not served by a vLLM engine, which an adapter needs"
            )
        if spec.adapter is not None and not Path(spec.adapter, "adapter_config.json").is_file():
            raise ConfigError(f"config error: students.{i}.adapter: {spec.adapter} has no adapter_config.json")
    if loop.max_students is not None and len(specs) > loop.max_students:
        raise ConfigError(
            f"config error: students: the {loop.name} loop teaches {loop.max_students} student(s) at once; the class has {len(specs)}"
        )
    return specs


async def seat_students(plan: RunPlan, pool: Any) -> tuple[Seat, ...]:
    """Train the recipes' adapters (once, cached) and load every adapter into its engine."""
    if not any(spec.adapter or spec.recipe for spec in plan.students):
        return tuple(Seat(spec.name, spec.role) for spec in plan.students)
    base_models = plan.pool.adapter_bases()
    from classroom.serving.prompts import PromptSet

    prompts = PromptSet.load("classroom.agents", "prompts/student.yaml", plan.roles.student.prompts)
    llms = {role: pool.llm(role) for role in plan.pool.roles}
    return tuple(await seat_class(plan.students, llms, base_models=base_models, prompts=prompts))


def run_episode(
    cfg: dict[str, Any], run_dir: Path, *, show_progress: bool = True, resume: bool = False, shared: SharedPools | None = None
) -> dict[str, Any]:
    """Run one episode from a resolved config dict into ``run_dir``; returns the summary.

    Raises :class:`ConfigError` for bad config and :class:`ResumeError` for a run that
    cannot resume; a Ctrl-C leaves a readable log and a summary with status
    ``interrupted``. ``resume`` continues the episode whose state ``run_dir`` holds.
    With ``shared`` (a sweep's), the episode uses the sweep's Ray and engine pools and
    leaves both running.
    """
    import ray

    from classroom.agents.messages import new_id
    from classroom.serving.pool import ModelPool

    shared = shared if shared is not None else _KEPT
    with _PREPARING:
        plan = prepare(cfg)
    skipped = skipped_rows(plan.task)
    if skipped:  # told before the episode starts, and kept in the summary
        print(f"data: {skipped['count']} row(s) of task {plan.task.name!r} skipped; first: {skipped['first'][0]}", file=sys.stderr)
    resume_from = None
    episode_id = new_id()
    if resume:
        if not isinstance(plan.loop, Stateful):
            raise ResumeError(f"{plan.loop.name} episodes cannot be resumed (the loop keeps no state); run it again")
        resume_from = plan.loop.load_state(run_dir)
        episode_id = plan.loop.episode_id_of(resume_from)  # the agents carry on under the id they had
    recorder = RunDirectory(run_dir, cfg, loop=str(cfg["env"]["loop"]), show_progress=show_progress)
    started = time.time()
    summary: dict[str, Any] = {"status": "failed", "episode_id": episode_id}
    started_ray = False
    pool = None
    faults_before: dict[str, dict[str, int]] = {}
    engines_before: dict[str, EngineStats] = {}
    where: dict[str, Any] = {}
    try:
        started_ray = init_ray(plan.cluster) and shared is None
        recorder.stage("starting models", None)
        try:
            pool = shared.get(plan.pool) if shared is not None else ModelPool.start(plan.pool)
        except (EngineUnplaceable, EngineStartupTimeout) as exc:  # what the cluster lacks, in one line
            raise ConfigError(f"cluster error: {exc}") from None
        # The log's header says where each engine runs (node id, resources), before any
        # message; the agents, spawned as the episode needs them, are in the summary.
        with contextlib.suppress(Exception):  # an engine that does not answer is the episode's to find
            recorder.events.amend_header(placement=placement(pool.engine_actors()))
        episode = Episode(
            episode_id=episode_id,
            config=plan.loop_config,
            task=plan.task,
            roles=plan.roles,
            pool=pool,
            recorder=recorder,
            run_dir=run_dir,
            base_models=plan.pool.adapter_bases(),
        )

        faults_before = pool.faults()
        engines_before = read_engines(pool)
        with recording_spawned() as spawned:
            interrupted = False
            try:
                summary = {"status": "completed", **play_interruptibly(plan, episode, resume_from, shared)}
            except KeyboardInterrupt:
                interrupted = True  # the user is waiting for the prompt: ask no actor
                raise
            finally:
                # Where the actors ran (for clusters), a failed run's too: its summary
                # says on which node what died.
                if not interrupted:
                    with contextlib.suppress(Exception):
                        where = placement([*pool.engine_actors(), *spawned])
                del spawned[:]  # handles held would keep the actors alive
    except KeyboardInterrupt:
        summary = {"status": "interrupted", "episode_id": episode_id}
        raise
    except Exception as exc:
        summary = {"status": "failed", "episode_id": episode_id, "error": one_line_error(exc)}
        raise
    finally:
        summary["total_time_s"] = round(time.time() - started, 2)
        summary["run_dir"] = str(run_dir)
        if where:
            summary["placement"] = where
        if skipped:
            summary["skipped_rows"] = skipped
        if plan.task.duplicates:  # a question both splits held, kept in test only
            summary["duplicate_questions"] = {"count": len(plan.task.duplicates), "first": plan.task.duplicates[:5]}
        if pool is not None:
            with contextlib.suppress(Exception):  # a dead Ray must not cost the summary
                faults = fault_delta(faults_before, pool.faults())
                if faults:  # retried or repaired replies of a flaky endpoint, by kind
                    summary["serving_faults"] = faults
            with contextlib.suppress(Exception):
                engines = engine_utilisation(engines_before, read_engines(pool), recorder)
                if engines:
                    summary["engines"] = engines
        recorder.write_summary(summary)
        recorder.close()
        if pool is not None and shared is None:
            pool.shutdown()
        if started_ray:
            ray.shutdown()
    return summary


def read_engines(pool: Any) -> dict[str, EngineStats]:
    """Every engine replica's utilisation counters now (endpoints report none)."""
    return asyncio.run(pool.engine_stats())


def engine_utilisation(before: dict[str, EngineStats], after: dict[str, EngineStats], recorder: RunDirectory) -> dict[str, Any]:
    """Per engine, over the run: busy fraction (time with requests in flight / wall
    time; verl's idle ratio is its complement), mean requests in flight and generated
    tokens per second, written to metrics.jsonl; returns them for the summary. An engine
    shared by a concurrent sweep counts every episode's requests: it is the engine's
    utilisation while this run went."""
    figures: dict[str, Any] = {}
    for key, reading in after.items():
        stretch = reading.since(before[key]) if key in before else reading
        figures[key] = stretch.summary()
        for name in ("busy_fraction", "mean_in_flight", "tokens_per_s", "requests"):
            value = figures[key][name]
            if value is not None:
                recorder.metric(f"engine_{name}", value, engine=key)
    return figures


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _first_line(text: str) -> str:
    """The first non-empty line of an error's text, colour codes removed."""
    lines = _ANSI.sub("", text).strip().splitlines()
    return lines[0] if lines else ""


def one_line_error(exc: BaseException) -> str:
    """An error as one plain line: an actor's error is its cause (Ray wraps it in a
    RayTaskError whose first line names only the call), without colour codes."""
    from ray.exceptions import RayTaskError

    where = ""
    while isinstance(exc, RayTaskError) and exc.cause is not None:
        where = f" (in {exc.function_name})" if getattr(exc, "function_name", None) else where
        exc = exc.cause
    return f"{type(exc).__name__}: {_first_line(str(exc))}{where}"


def stopped_by_fault(exc: BaseException) -> bool:
    """Whether an error is (or wraps) a fault outside the code: a model that could not
    answer (an endpoint down, an engine dead) or an actor that died and was not restarted."""
    from ray.exceptions import RayActorError, RayTaskError

    while isinstance(exc, RayTaskError) and exc.cause is not None:
        exc = exc.cause
    return isinstance(exc, (RayActorError, BackendError))


def resume_hint(cfg: dict[str, Any], run_dir: Path) -> str:
    """How to go on after a stop: resume where the loop keeps state, else run again."""
    try:
        loop = load_loop(str(cfg["env"]["loop"]))
    except LoopError:
        return "run it again"
    return f"classroom resume {run_dir} continues it" if isinstance(loop, Stateful) else "run it again"


def skipped_rows(task: Task, shown: int = 5) -> dict[str, Any] | None:
    """The dataset rows the task's loader skipped (malformed), counted, the first few
    with their reasons; None if it skipped none."""
    if not task.skipped_rows:
        return None
    return {"count": len(task.skipped_rows), "first": task.skipped_rows[:shown]}


def play_interruptibly(plan: RunPlan, episode: Episode, resume_from: Any, shared: SharedPools | None = None) -> dict[str, Any]:
    """Seat the class, spawn the loop's agents and run its episode; Ctrl-C always ends
    it as interrupted.

    asyncio's own Ctrl-C cancels the running task, but an await on a Ray object can
    absorb that cancellation and the episode would go on (and exit 0): here the signal
    is remembered, and an episode that saw one raises KeyboardInterrupt however it ended.
    An episode off the main thread (a sweep's) gets no signal: the main thread relays
    it through ``shared``.
    """
    interrupted = False

    async def play() -> dict[str, Any]:
        nonlocal interrupted
        running, main = asyncio.get_running_loop(), asyncio.current_task()

        def on_interrupt() -> None:
            nonlocal interrupted
            interrupted = True
            if main is not None:
                main.cancel()

        unrelay: Callable[[], None] = lambda: None  # noqa: E731
        if threading.current_thread() is threading.main_thread():
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # a platform without
                running.add_signal_handler(signal.SIGINT, on_interrupt)
        elif shared is not None:
            unrelay = shared.relay_interrupt(lambda: running.call_soon_threadsafe(on_interrupt))
        try:
            seated = replace(episode, students=await seat_students(plan, episode.pool))
            agents = plan.loop.spawn_agents(seated)
            return await plan.loop.run(seated, agents, resume_from)
        finally:
            unrelay()

    try:
        result = asyncio.run(play())
    except asyncio.CancelledError:
        if interrupted:
            raise KeyboardInterrupt from None
        raise
    if interrupted:
        raise KeyboardInterrupt
    return result


def print_summary(loop: TeachingLoop, summary: dict[str, Any]) -> None:
    """The loop's own tables, then what every episode reports: tokens, time, where."""
    from rich.console import Console

    console = Console()
    for renderable in loop.summary_table(summary):
        console.print(renderable)
    tokens = ", ".join(f"{k}: {v:,}" for k, v in summary.get("tokens", {}).items())
    console.print(f"tokens  {tokens}")
    console.print(f"wall time  episode {summary.get('wall_time_s')} s, total {summary.get('total_time_s')} s")
    for engine, figures in summary.get("engines", {}).items():
        console.print(
            f"engine  {engine}: busy {figures.get('busy_fraction')}, mean in flight {figures.get('mean_in_flight')}, "
            f"{figures.get('tokens_per_s')} tokens/s, {figures.get('requests')} requests"
        )
    for model, kinds in summary.get("serving_faults", {}).items():
        console.print(f"faults  {model}: " + ", ".join(f"{kind} {count}" for kind, count in kinds.items()) + " (retried or repaired)")
    skipped = summary.get("skipped_rows")
    if skipped:
        console.print(f"data  {skipped['count']} malformed row(s) skipped (summary.json: skipped_rows)")
    console.print(f"run directory  {summary.get('run_dir')}")


def _hydra_entry() -> None:
    import hydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import DictConfig, OmegaConf

    @hydra.main(config_path="pkg://classroom.conf", config_name="config", version_base=None)
    def _run(cfg: DictConfig) -> None:
        try:
            resolved = OmegaConf.to_container(cfg, resolve=True)
        except Exception as exc:
            print(f"config error: {str(exc).splitlines()[0]}", file=sys.stderr)
            sys.exit(2)
        hydra_config = HydraConfig.get()
        run_dir = Path(hydra_config.runtime.output_dir)
        # Hydra has written its copies of the config and overrides: mask their secrets.
        if hydra_config.output_subdir is not None:
            redact_hydra_folder(run_dir / hydra_config.output_subdir)
        try:
            summary = run_episode(resolved, run_dir, show_progress=bool(resolved.get("progress", True)))
        except ConfigError as exc:
            from classroom.launch.experiments import with_experiment_hint

            print(with_experiment_hint(str(exc), hydra_config.runtime.choices), file=sys.stderr)
            sys.exit(2)
        except EpisodeStopped as exc:
            print(f"episode stopped: {exc}; what ran is in {run_dir}", file=sys.stderr)
            sys.exit(1)
        except KeyboardInterrupt:
            print(f"interrupted; what ran so far is in {run_dir}", file=sys.stderr)
            sys.exit(130)
        except Exception as exc:
            if not stopped_by_fault(exc):
                raise
            # An endpoint that stayed down past its retries, or a process of the run that
            # Ray could not bring back with its state (a student that trains): one line,
            # and how to go on.
            print(f"episode stopped: {one_line_error(exc)}; what ran is in {run_dir} ({resume_hint(resolved, run_dir)})", file=sys.stderr)
            sys.exit(1)
        print_summary(load_loop(str(resolved["env"]["loop"])), summary)

    _run()


def _search_path_overrides(flags: dict[str, str]) -> list[str]:
    """``--config-dir DIR`` as the override a plain compose understands."""
    folder = flags.get("--config-dir") or flags.get("-cd")
    return [f"hydra.searchpath=[file://{Path(folder).resolve()}]"] if folder else []


def check_overrides(overrides: list[str]) -> str | None:
    """Compose once with the overrides; a one-line error for unknown options or keys."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import MissingConfigException

    GlobalHydra.instance().clear()
    try:
        with initialize_config_module(config_module=CONFIG_MODULE, version_base=None):
            compose(config_name="config", overrides=overrides)
    except MissingConfigException as exc:
        options = list(getattr(exc, "options", None) or [])
        group = (getattr(exc, "missing_cfg_file", "") or "").rsplit("/", 1)[0]
        text = str(exc).splitlines()[0]
        if options:
            return f"config error: {text.rstrip('.')} (allowed in {group or 'this group'}: {', '.join(sorted(options))})"
        return f"config error: {text}"
    except Exception as exc:  # bad override syntax, unknown key
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        return "config error: " + (" ".join(lines[:2]) if lines else type(exc).__name__)
    finally:
        GlobalHydra.instance().clear()
    return None


TAKES_VALUE = {"--cfg", "-c", "--package", "-p", "--config-name", "-cn", "--config-path", "-cp", "--config-dir", "-cd", "--info", "-i"}


def split_args(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    """Hydra flags (with their values) and plain overrides."""
    flags: dict[str, str] = {}
    overrides: list[str] = []
    pending: str | None = None
    for arg in argv:
        if pending is not None:
            flags[pending] = arg
            pending = None
        elif arg.startswith("-"):
            flags[arg] = ""
            pending = arg if arg in TAKES_VALUE else None
        else:
            overrides.append(arg)
    return flags, overrides


# Hydra's own flags, as `classroom run` passes them on.
HYDRA_FLAGS = TAKES_VALUE | {
    "--help",
    "-h",
    "--hydra-help",
    "--multirun",
    "-m",
    "--resolve",
    "--run",
    "-r",
    "--version",
    "--shell-completion",
    # classroom's own: the plan, checked against this machine, nothing started; each
    # config field with its default and description.
    "--dry-run",
    "--help-config",
    "-sc",
}


def run_main(argv: list[str]) -> int:
    """Entry of `classroom run ARGS`: validate overrides, then hand over to Hydra."""
    flags, overrides = split_args(argv)
    if "--help-config" in flags:
        from classroom.launch.help_config import help_config_main

        return help_config_main(overrides[0] if overrides else None)
    unknown = sorted(flag for flag in flags if flag.split("=", 1)[0] not in HYDRA_FLAGS)
    if unknown:
        print(
            f"classroom run: unknown option {unknown[0]} (options: {', '.join(sorted(f for f in HYDRA_FLAGS if f.startswith('--')))}; settings are key=value)",
            file=sys.stderr,
        )
        return 2
    wants_help_or_multirun = set(flags) & {"--help", "-h", "--hydra-help", "-m", "--multirun"}
    if not wants_help_or_multirun:
        problem = check_overrides([*_search_path_overrides(flags), *overrides])
        if problem:
            print(problem, file=sys.stderr)
            return 2
    if "--dry-run" in flags:
        from classroom.launch.dry_run import run_dry_main

        return run_dry_main([*_search_path_overrides(flags), *overrides])
    sys.argv = ["classroom run", *argv]
    _hydra_entry()
    return 0


__all__ = ["ConfigError", "LoopError", "ResumeError", "RunPlan", "prepare", "print_summary", "run_episode", "run_main"]
