"""Roles as Ray actors, and plug-in classes that travel to them.

Roles wait on models, not on CPUs, so their actors claim no CPU by default: the
engine actors hold the cores.
"""

from __future__ import annotations

import importlib
import sys
import sysconfig
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
    options: dict[str, Any] = {"num_cpus": num_cpus}
    if stateless:
        options.update(max_restarts=STATELESS_RESTARTS, max_task_retries=-1)
    if actor_name:
        options["name"] = actor_name
    return ray.remote(role_cls).options(**options).remote(*args, **kwargs)
