"""A run's plan: the composed config validated and built as far as it goes without Ray
or engines (task, roles, learners, students, model pool), and Ray's start-up."""

from __future__ import annotations

import inspect
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from classroom.agents.class_roster import StudentSpec, check_class
from classroom.agents.config_validation import ConfigError, instantiate_plugin, record_target, validate_section
from classroom.agents.learners import Learner, LoRAFitting
from classroom.agents.settings import StudentSettings, TeacherSettings
from classroom.environments.base import Roles, TeachingLoop, Trains, load_loop
from classroom.environments.tasks import Task
from classroom.launch.settings import ClusterSettings, CompareSettings
from classroom.serving.openai_backend import key_is_missing
from classroom.serving.pool import PoolConfig

# Held while an episode builds its task and validates its config: the episodes of a
# concurrent sweep are threads, and task libraries keep global registries that are not
# safe to fill from two threads at once (reasoning-gym's lost a dataset that way).
PREPARING = threading.Lock()


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def first_line(text: str) -> str:
    """The first non-empty line of an error's text, colour codes removed."""
    lines = _ANSI.sub("", text).strip().splitlines()
    return lines[0] if lines else ""


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
        raise ConfigError(f"config error: task._target_: cannot import {target!r}: {first_line(str(exc))}") from None
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
        reason = first_line(str(exc)) or type(exc).__name__
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
