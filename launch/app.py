"""`classroom run`: compose the config, start Ray and the models, play one episode.

Only this module knows Hydra, Ray start-up and the run directory; the environment it
runs is the same on a laptop and on a cluster.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import sys
import time
from pathlib import Path
from typing import Any

from classroom.launch.rundir import RunDirectory
from classroom.launch.settings import (
    ClusterSettings,
    ConfigError,
    StudentSettings,
    TeacherSettings,
    instantiate_plugin,
    validate_section,
)

CONFIG_MODULE = "classroom.conf"
# Set by `classroom sweep`: jobs share one Ray and one set of engines.
SWEEP_ENV = "CLASSROOM_SWEEP_TOTAL"
_SHARED_POOLS: dict[str, Any] = {}


def in_sweep() -> bool:
    return SWEEP_ENV in os.environ


def shared_pool(pool_config: Any) -> Any:
    """A sweep's pool for this model config, started by the first job that needs it."""
    from classroom.serving.pool import ModelPool

    key = pool_config.model_dump_json()
    if key not in _SHARED_POOLS:
        _SHARED_POOLS[key] = ModelPool.start(pool_config)
    return _SHARED_POOLS[key]


def shutdown_shared() -> None:
    import ray

    for pool in _SHARED_POOLS.values():
        pool.shutdown()
    _SHARED_POOLS.clear()
    if ray.is_initialized():
        ray.shutdown()


def build_task(task_cfg: dict[str, Any]) -> Any:
    """Call the task loader named by ``task._target_`` with the section's values."""
    from hydra.utils import get_method

    values = dict(task_cfg)
    target = values.pop("_target_", None)
    if not target:
        raise ConfigError("config error: task._target_: missing (name the loader function)")
    try:
        loader = get_method(target)
    except Exception as exc:
        raise ConfigError(f"config error: task._target_: cannot import {target!r}: {exc}") from None
    accepted = inspect.signature(loader).parameters
    if "name" not in accepted:
        values.pop("name", None)
    unknown = sorted(set(values) - set(accepted))
    if unknown:
        raise ConfigError(
            f"config error: task.{unknown[0]}: unknown key for {target} (allowed: {', '.join(k for k in accepted if k != 'name')})"
        )
    try:
        return loader(**values)
    except FileNotFoundError as exc:
        raise ConfigError(f"data error: task: {exc}") from None
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"config error: task: {exc}") from None


def environment_class(env_cfg: dict[str, Any]) -> type:
    from hydra.utils import get_class

    target = env_cfg.get("_target_")
    try:
        cls = get_class(target)
    except Exception as exc:
        raise ConfigError(f"config error: env._target_: cannot import {target!r}: {exc}") from None
    if not hasattr(cls, "config_class"):
        raise ConfigError(f"config error: env._target_: {target} has no config_class")
    return cls


def init_ray(cluster: ClusterSettings) -> bool:
    """Start or join Ray as the config says; returns whether this process started it."""
    import ray

    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    if cluster.runtime_env:
        kwargs["runtime_env"] = cluster.runtime_env
    if cluster.address == "local":
        ray.init(num_cpus=cluster.num_cpus or os.cpu_count(), **kwargs)
    else:
        ray.init(address=cluster.address, **kwargs)
    return True


def prepare(cfg: dict[str, Any]) -> dict[str, Any]:
    """Validate every section and build what needs no Ray: fails fast, before engines."""
    from classroom.agents.policies import InterventionPolicy, Learner
    from classroom.serving.pool import PoolConfig

    env_cls = environment_class(cfg["env"])
    env_values = {k: v for k, v in cfg["env"].items() if k not in ("_target_", "name")}
    parts: dict[str, Any] = {
        "env_cls": env_cls,
        "env_config": validate_section(env_cls.config_class, "env", env_values),
        "cluster": validate_section(ClusterSettings, "cluster", cfg["cluster"]),
        "teacher": validate_section(TeacherSettings, "teacher", cfg["teacher"]),
        "student": validate_section(StudentSettings, "student", cfg["student"]),
        "pool": validate_section(PoolConfig, "model", cfg["model"]),
    }
    parts["intervention"] = instantiate_plugin("teacher.intervention", parts["teacher"].intervention, InterventionPolicy)
    parts["learner"] = instantiate_plugin("student.learner", parts["student"].learner, Learner)
    for role in ("teacher", "student"):
        if role not in parts["pool"].roles:
            raise ConfigError(f"config error: model.roles.{role}: missing (roles: {', '.join(parts['pool'].roles)})")
    if hasattr(env_cls, "plugins"):
        parts["env_plugins"] = env_cls.plugins(parts["env_config"])
    parts["task"] = build_task(cfg["task"])
    return parts


async def play(parts: dict[str, Any], pool: Any, recorder: Any, episode_id: str, run_dir: Path, resume: bool = False) -> dict[str, Any]:
    if hasattr(parts["env_cls"], "play"):  # environments that spawn their own agents
        return await parts["env_cls"].play(parts, pool, recorder, episode_id, run_dir, resume)
    if resume:
        raise ConfigError(f"env {parts['env_cls'].name}: episodes of this loop cannot be resumed; run it again")
    from classroom.agents.actors import spawn
    from classroom.agents.grading import Grader
    from classroom.agents.roles import Student, Teacher

    t, s = parts["teacher"], parts["student"]
    teacher = spawn(
        Teacher, pool.llm("teacher"), name=None, num_cpus=t.num_cpus,
        episode_id=episode_id, intervention=parts["intervention"], prompts=t.prompts,
        sampling=t.sampling, reveal_answer=t.reveal_answer, explanation=t.explanation,
        mental_model_demos=t.mental_model_demos, seed=t.seed,
    )
    student = spawn(
        Student, pool.llm("student"), num_cpus=s.num_cpus,
        episode_id=episode_id, learner=parts["learner"], prompts=s.prompts,
        sampling=s.sampling, adapter=s.adapter,
    )
    grader = spawn(Grader)
    env = parts["env_cls"](
        parts["env_config"], parts["task"], teacher=teacher, student=student, grader=grader,
        recorder=recorder, episode_id=episode_id,
    )
    return await env.run()


def run_episode(cfg: dict[str, Any], run_dir: Path, *, show_progress: bool = True, resume: bool = False) -> dict[str, Any]:
    """Run one episode from a resolved config dict into ``run_dir``; returns the summary.

    Raises :class:`ConfigError` for bad config; a Ctrl-C leaves a readable log and a
    summary with status ``interrupted``. ``resume`` continues the episode whose
    checkpoint ``run_dir`` holds (environments that checkpoint: dataenvgym).
    """
    import ray

    from classroom.agents.messages import new_id
    from classroom.serving.pool import ModelPool

    parts = prepare(cfg)
    episode_id = new_id()
    recorder = RunDirectory(run_dir, cfg, show_progress=show_progress)
    started = time.time()
    summary: dict[str, Any] = {"status": "failed", "episode_id": episode_id}
    started_ray = False
    pool = None
    try:
        started_ray = init_ray(parts["cluster"]) and not in_sweep()
        recorder.stage("starting models", None)
        if in_sweep():
            pool = shared_pool(parts["pool"])
        else:
            pool = ModelPool.start(parts["pool"])
        summary = {"status": "completed", **asyncio.run(play(parts, pool, recorder, episode_id, run_dir, resume))}
    except KeyboardInterrupt:
        summary = {"status": "interrupted", "episode_id": episode_id}
        raise
    except Exception as exc:
        summary = {"status": "failed", "episode_id": episode_id, "error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
        raise
    finally:
        summary["total_time_s"] = round(time.time() - started, 2)
        summary["run_dir"] = str(run_dir)
        recorder.write_summary(summary)
        recorder.close()
        if pool is not None and not in_sweep():
            pool.shutdown()
        if started_ray:
            ray.shutdown()
    return summary


def print_dataenvgym_summary(summary: dict[str, Any]) -> None:
    """Validation accuracy per iteration (overall and per skill), then the test score."""
    from rich.console import Console
    from rich.table import Table

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.1f}%"

    console = Console()
    history = summary.get("history", [])
    skills = sorted({s for row in history for s in row.get("per_skill", {}) if "/" not in s})
    table = Table(title=(
        f"dataenvgym ({summary.get('variant')}) on {summary.get('task')}: {summary.get('validation_problems')} "
        f"validation problems" + (f", resumed after iteration {summary['resumed_from']}" if summary.get("resumed_from") is not None else "")
    ))
    for column in ("iteration", "val accuracy", *skills, "kept / made", "train s"):
        table.add_column(column, justify="right")
    for row in history:
        table.add_row(
            str(row["iteration"]), pct(row["val_accuracy"]), *(pct(row["per_skill"].get(s)) for s in skills),
            f"{row['kept']} / {row['generated']}", f"{row['training_seconds']:.0f}",
        )
    console.print(table)
    console.print(
        f"test ({summary.get('test_problems')} problems): trained {pct(summary.get('test_accuracy'))}, "
        f"untrained {pct(summary.get('test_accuracy_untrained'))}"
    )
    tokens = ", ".join(f"{k}: {v:,}" for k, v in summary.get("tokens", {}).items())
    console.print(f"tokens  {tokens}")
    console.print(f"wall time  episode {summary.get('wall_time_s')} s, total {summary.get('total_time_s')} s")
    console.print(f"run directory  {summary.get('run_dir')}")


def print_summary(summary: dict[str, Any]) -> None:
    """The accuracy-vs-budget and multi-turn tables of a ToM episode."""
    from rich.console import Console
    from rich.table import Table

    if summary.get("env") == "dataenvgym":
        print_dataenvgym_summary(summary)
        return

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.1f}%"

    console = Console()
    title = (
        f"{summary.get('env', 'episode')} on {summary.get('task', '?')}: {summary.get('problems')} test problems, "
        f"policy {summary.get('intervention_policy')}, {summary.get('explanation_style')} explanations"
    )
    table = Table(title=title)
    table.add_column("budget", justify="right")
    table.add_column("interventions", justify="right")
    table.add_column("student accuracy", justify="right")
    for budget, value in summary.get("accuracy_by_budget", {}).items():
        table.add_row(budget, str(summary.get("interventions", {}).get(budget, "")), pct(value))
    console.print(table)
    acc = summary.get("accuracy", {})
    console.print(
        f"no intervention {pct(acc.get('no_intervention'))}; every problem explained {pct(acc.get('with_every_explanation'))}"
    )
    multiturn = summary.get("multiturn_by_demos", {})
    if multiturn:
        turns = Table(title=f"multi-turn: {summary.get('post_test_set')} unexplained problems")
        turns.add_column("explained demonstrations", justify="right")
        turns.add_column("student accuracy", justify="right")
        for count, value in multiturn.items():
            turns.add_row(count, pct(value))
        console.print(turns)
    tokens = ", ".join(f"{k}: {v:,}" for k, v in summary.get("tokens", {}).items())
    console.print(f"tokens  {tokens}")
    console.print(f"wall time  episode {summary.get('wall_time_s')} s, total {summary.get('total_time_s')} s")
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
        run_dir = Path(HydraConfig.get().runtime.output_dir)
        sweeping = in_sweep()
        try:
            summary = run_episode(resolved, run_dir, show_progress=bool(resolved.get("progress", True)) and not sweeping)
        except ConfigError as exc:
            print(str(exc), file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print(f"interrupted; what ran so far is in {run_dir}", file=sys.stderr)
            sys.exit(130)
        except Exception as exc:
            if not sweeping:
                raise
            # One failed job must not end the sweep: its summary records the error.
            print(f"job {run_dir.name} failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", file=sys.stderr)
            summary = None
        if sweeping:
            from classroom.launch.sweep import report_job_done

            report_job_done(HydraConfig.get().job.num, summary)
        else:
            print_summary(summary)

    _run()


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


def run_main(argv: list[str]) -> int:
    """Entry of `classroom run ARGS`: validate overrides, then hand over to Hydra."""
    flags: set[str] = set()
    overrides: list[str] = []
    takes_value = {"--cfg", "-c", "--package", "-p", "--config-name", "-cn", "--config-path", "-cp", "--config-dir", "-cd", "--info", "-i"}
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg.startswith("-"):
            flags.add(arg)
            skip = arg in takes_value
        else:
            overrides.append(arg)
    wants_help_or_multirun = flags & {"--help", "-h", "--hydra-help", "-m", "--multirun"}
    if not wants_help_or_multirun:
        problem = check_overrides(overrides)
        if problem:
            print(problem, file=sys.stderr)
            return 2
    sys.argv = ["classroom run", *argv]
    _hydra_entry()
    return 0
