"""Roles as Ray actors, and plug-in classes that travel to them.

Roles wait on models, not on CPUs, so their actors claim no CPU by default: the
engine actors hold the cores.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import os
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_PACKAGE_ROOTS = {Path(p).resolve() for p in (sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"])}


def _installed(module_file: str) -> bool:
    path = Path(module_file).resolve()
    return any(root in path.parents for root in _PACKAGE_ROOTS)


def ship_by_value(obj: Any) -> None:
    """Let Ray send ``obj``'s class to actors by value when workers cannot import it.

    A user's policy often lives in a module on the driver's path only (a script's
    folder, a notebook). Installed packages and classroom itself go by reference.
    """
    module_name = type(obj).__module__ if not isinstance(obj, type) else obj.__module__
    if module_name.split(".")[0] in {"classroom", "builtins"}:
        return
    module = sys.modules.get(module_name) or importlib.import_module(module_name)
    module_file = getattr(module, "__file__", None)
    if module_file and _installed(module_file):
        return
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(module)


# While a run records them (:func:`recording_spawned`), the actors spawned with their
# labels: its summary says which node each ran on (see :func:`placement`). Nothing is
# kept otherwise: a handle held here would keep its actor alive. A context variable:
# the concurrent episodes of a sweep (threads, each with its event loop) keep apart.
_SPAWNED: contextvars.ContextVar[list[tuple[str, Any]] | None] = contextvars.ContextVar("classroom_spawned", default=None)


@contextlib.contextmanager
def recording_spawned() -> Iterator[list[tuple[str, Any]]]:
    """Collect (label, handle) of every actor spawned inside the block (in this thread
    and the tasks it starts)."""
    spawned: list[tuple[str, Any]] = []
    token = _SPAWNED.set(spawned)
    try:
        yield spawned
    finally:
        _SPAWNED.reset(token)


# How many times Ray restarts an actor whose calls depend only on their arguments (a
# grader, a student that learns nothing during the episode) when its process dies; the
# calls it had in flight are sent again to the restarted actor.
STATELESS_RESTARTS = 3


def spawn(
    role_cls: type,
    *args: Any,
    num_cpus: float = 0.0,
    actor_name: str | None = None,
    stateless: bool = False,
    **kwargs: Any,
) -> Any:
    """Start ``role_cls(*args, **kwargs)`` as a Ray actor (named ``actor_name`` in Ray,
    if given); returns its handle. A ``stateless`` actor is restarted if its process
    dies (its calls retried); any other dies with its state, and its episode stops with
    a line saying so (a loop that keeps checkpoints then resumes)."""
    import ray

    ship_by_value(role_cls)
    for value in (*args, *kwargs.values()):
        if value is not None and not isinstance(value, (str, int, float, bool, dict, list, tuple)):
            ship_by_value(value)
    # SPREAD: a run's agents go to different nodes where there are several (their
    # memory and event loops shared out), the engines placed by their own resources.
    options: dict[str, Any] = {"num_cpus": num_cpus, "scheduling_strategy": "SPREAD"}
    if stateless:
        options.update(max_restarts=STATELESS_RESTARTS, max_task_retries=-1)
    if actor_name:
        options["name"] = actor_name
    handle = ray.remote(role_cls).options(**options).remote(*args, **kwargs)
    spawned = _SPAWNED.get()
    if spawned is not None:
        spawned.append((role_cls.__name__ + (f" {kwargs['name']}" if isinstance(kwargs.get("name"), str) else ""), handle))
    return handle


def _where(actor: Any) -> dict[str, Any]:
    import ray

    context = ray.get_runtime_context()
    return {
        "node_id": context.get_node_id(),
        "node_ip": ray.util.get_node_ip_address(),
        "pid": str(os.getpid()),
        # What Ray gave the actor (CPUs, GPUs, node labels such as `student_node`).
        "resources": context.get_assigned_resources(),
    }


def placement(actors: list[tuple[str, Any]], timeout_s: float = 10.0) -> dict[str, dict[str, Any]]:
    """Where each (label, actor handle) runs: node id, node IP, process id and the
    resources it was given; an actor that does not answer within ``timeout_s`` (all of
    them together: dead, or its node gone) is reported as such."""
    import time

    import ray

    refs = [(label, actor.__ray_call__.remote(_where)) for label, actor in actors]
    deadline = time.monotonic() + timeout_s
    found: dict[str, dict[str, Any]] = {}
    for label, ref in refs:
        key, n = label, 2
        while key in found:  # two actors of one class without names
            key, n = f"{label} #{n}", n + 1
        try:
            found[key] = ray.get(ref, timeout=max(deadline - time.monotonic(), 0.1))
        except Exception as exc:  # an actor that died is reported, not fatal to the summary
            found[key] = {"error": type(exc).__name__}
    return found
