"""Which experiment wrote a key: a config error about an unknown key the user did not
write (an experiment's task-specific ``task.skills`` under a ``task=`` override) says
which experiment set it and how to drop it."""

from __future__ import annotations

import importlib.resources
import re
from collections.abc import Iterator, Mapping
from typing import Any

import yaml

_KEY = re.compile(r"^config error: ([\w.]+):")


def _experiment_file(name: str) -> dict[str, Any]:
    resource = importlib.resources.files("classroom.conf").joinpath("experiment", f"{name}.yaml")
    return (yaml.safe_load(resource.read_text()) or {}) if resource.is_file() else {}


def _leaves(value: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(value, dict) and value:
        for key, inner in value.items():
            yield from _leaves(inner, f"{prefix}.{key}" if prefix else str(key))
    elif prefix:
        yield prefix


def experiment_keys(name: str) -> tuple[set[str], str | None]:
    """The dotted keys experiment ``name`` (and the experiments it extends) writes, and
    the task it picks (``override /task: ...``), if any."""
    written = _experiment_file(name)
    keys = set(_leaves({k: v for k, v in written.items() if k != "defaults"}))
    task = None
    for entry in written.get("defaults", []):
        if isinstance(entry, str) and entry != "_self_" and "/" not in entry:  # an experiment it extends
            inherited, inherited_task = experiment_keys(entry)
            keys |= inherited
            task = task or inherited_task
        elif isinstance(entry, dict):
            for group, option in entry.items():
                if str(group).removeprefix("override ").strip("/ ") == "task":
                    task = str(option)
    return keys, task


def with_experiment_hint(message: str, choices: Mapping[str, Any]) -> str:
    """``message``, with where its key came from when the chosen experiment wrote it."""
    experiment, matched = choices.get("experiment"), _KEY.match(message)
    # Only a key that should not be there: a bad value the user gave is theirs to fix.
    if not experiment or not matched or "unknown key" not in message:
        return message
    key = matched.group(1)
    keys, task = experiment_keys(str(experiment))
    if not any(k == key or k.startswith(key + ".") for k in keys):
        return message
    own = f" for its task {task}" if task and task != choices.get("task") else ""
    return f"{message}; experiment={experiment} sets {key}{own}: add ~{key} to drop it"
