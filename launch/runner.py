"""The episode runner: start the models, seat the class, play the loop, record its
result once (scores, tokens, time) and write the summary; errors in one line."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from classroom.agents.actors import placement, recording_spawned
from classroom.agents.class_roster import Seat, seat_class
from classroom.agents.config_validation import ConfigError
from classroom.environments.base import Episode, LoopError, ResumeError, Stateful, TeachingLoop, load_loop
from classroom.environments.result import EpisodeResult
from classroom.environments.tasks import Task
from classroom.launch.plan import PREPARING, RunPlan, first_line, init_ray, prepare
from classroom.launch.pools import SharedPools, kept_engines, read_engines
from classroom.launch.rundir import RunDirectory, RunSummary
from classroom.serving.errors import BackendError, EngineStartupTimeout, EngineUnplaceable
from classroom.serving.ledger import fault_delta
from classroom.serving.types import EngineStats


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
) -> RunSummary:
    """Run one episode from a resolved config dict into ``run_dir``; returns its summary
    (what ``summary.json`` holds, typed, with the loop's :class:`EpisodeResult`).

    Raises :class:`ConfigError` for bad config and :class:`ResumeError` for a run that
    cannot resume; a Ctrl-C leaves a readable log and a summary with status
    ``interrupted``. ``resume`` continues the episode whose state ``run_dir`` holds.
    With ``shared`` (a sweep's), the episode uses the sweep's Ray and engine pools and
    leaves both running.
    """
    import ray

    from classroom.agents.messages import new_id
    from classroom.serving.pool import ModelPool

    shared = shared if shared is not None else kept_engines()
    with PREPARING:
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
    result: EpisodeResult[Any] | None = None
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
                result = play_interruptibly(plan, episode, resume_from, shared)
                record_result(recorder, result)
                summary = {"status": "completed", **result.summary()}
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
    return RunSummary.of(summary, result)


def record_result(recorder: RunDirectory, result: EpisodeResult[Any]) -> None:
    """The metrics every episode records, once, from its result: each score, each
    agent's tokens, the wall time."""
    for key, value in result.scores.items():
        if value is not None:
            recorder.metric(f"score/{key}", value)
    for sender, count in result.tokens.items():
        recorder.metric("tokens", count, agent=sender)
    recorder.metric("wall_time_s", round(result.wall_time_s, 2))


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


def one_line_error(exc: BaseException) -> str:
    """An error as one plain line: an actor's error is its cause (Ray wraps it in a
    RayTaskError whose first line names only the call), without colour codes."""
    from ray.exceptions import RayTaskError

    where = ""
    while isinstance(exc, RayTaskError) and exc.cause is not None:
        where = f" (in {exc.function_name})" if getattr(exc, "function_name", None) else where
        exc = exc.cause
    return f"{type(exc).__name__}: {first_line(str(exc))}{where}"


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


def play_interruptibly(plan: RunPlan, episode: Episode, resume_from: Any, shared: SharedPools | None = None) -> EpisodeResult[Any]:
    """Seat the class, spawn the loop's agents and run its episode; Ctrl-C always ends
    it as interrupted.

    asyncio's own Ctrl-C cancels the running task, but an await on a Ray object can
    absorb that cancellation and the episode would go on (and exit 0): here the signal
    is remembered, and an episode that saw one raises KeyboardInterrupt however it ended.
    An episode off the main thread (a sweep's) gets no signal: the main thread relays
    it through ``shared``.
    """
    interrupted = False

    async def play() -> EpisodeResult[Any]:
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


def print_summary(loop: TeachingLoop, summary: RunSummary) -> None:
    """The loop's own tables, then what every episode reports: tokens, time, where."""
    from rich.console import Console

    console = Console()
    if summary.result is not None:
        for renderable in loop.summary_table(summary.result):
            console.print(renderable)
    tokens = ", ".join(f"{k}: {v:,}" for k, v in summary.tokens.items())
    console.print(f"tokens  {tokens}")
    console.print(f"wall time  episode {summary.wall_time_s} s, total {summary.total_time_s} s")
    if summary.counts is not None:
        counted = [f"{kind} {n}" for kind, n in summary.counts.failures.items()]
        counted += [f"{kind} {n} (fallback)" for kind, n in summary.counts.fallbacks.items()]
        console.print("recorded  " + ", ".join(counted))
    for engine, figures in summary.engines.items():
        console.print(
            f"engine  {engine}: busy {figures.get('busy_fraction')}, mean in flight {figures.get('mean_in_flight')}, "
            f"{figures.get('tokens_per_s')} tokens/s, {figures.get('requests')} requests"
        )
    for model, kinds in summary.serving_faults.items():
        console.print(f"faults  {model}: " + ", ".join(f"{kind} {count}" for kind, count in kinds.items()) + " (retried or repaired)")
    if summary.skipped_rows:
        console.print(f"data  {summary.skipped_rows['count']} malformed row(s) skipped (summary.json: skipped_rows)")
    console.print(f"run directory  {summary.run_dir}")
