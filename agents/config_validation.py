"""Plug-ins and config errors: how a Hydra section becomes a checked object.

A plug-in is any importable class named by ``_target_`` (Hydra's convention) that
implements a declared Protocol. Config sections are validated by pydantic models;
whatever is wrong becomes one :class:`ConfigError` line that names the key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from classroom.serving.errors import ConfigError

T = TypeVar("T", bound=BaseModel)

TARGETS_LOG = "CLASSROOM_TARGETS_LOG"
"""Environment variable: a file to which every ``_target_`` built from a config is
appended, one per line (in every process of a run: Ray's workers inherit it). The test
suite sets it and then checks that every ``_target_`` a shipped config names was built."""


def record_target(target: str) -> None:
    """Note ``target`` in :data:`TARGETS_LOG`'s file when that variable is set."""
    path = os.environ.get(TARGETS_LOG)
    if path:
        with open(path, "a", encoding="utf-8") as f:  # one short line: an atomic append
            f.write(f"{target}\n")


def describe_validation_error(section: str, exc: ValidationError) -> str:
    """``config error: section.key: what is wrong (got value)`` for the first error."""
    first = exc.errors()[0]
    key = ".".join([section, *(str(p) for p in first.get("loc", ()))])
    got = first.get("input")
    message = first.get("msg", "invalid")
    if first.get("type") == "extra_forbidden":
        message = "unknown key"
    shown = "" if isinstance(got, (dict, list)) or got is None else f" (got {got!r})"
    return f"config error: {key}: {message}{shown}"


def validate_section(model: type[T], section: str, values: Mapping[str, Any]) -> T:
    """``values`` validated by ``model``; a :class:`ConfigError` naming ``section.key`` if not."""
    try:
        return model.model_validate(dict(values))
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(section, exc)) from None


def instantiate_plugin(section: str, node: Mapping[str, Any], protocol: type) -> Any:
    """Instantiate ``node`` (a dict with ``_target_``) and check it implements ``protocol``."""
    from hydra.utils import instantiate

    target = node.get("_target_")
    if not target:
        raise ConfigError(f"config error: {section}._target_: missing (name the class to use)")
    try:
        obj = instantiate(dict(node), _convert_="all")
    except Exception as exc:  # hydra wraps import and constructor errors alike
        cause = exc.__cause__ or exc
        reason = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        raise ConfigError(f"config error: {section}._target_: cannot build {target!r}: {reason}") from None
    if not isinstance(obj, protocol):
        raise ConfigError(f"config error: {section}._target_: {target!r} does not implement {protocol.__name__}")
    record_target(str(target))
    return obj
