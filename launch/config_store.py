"""Every config model's defaults, registered in Hydra's ConfigStore under ``schema/``.

Defaults live once, in the pydantic models. A YAML file pulls its section's defaults
in (``defaults: [/schema/env/LOOP@_here_, _self_]``) and sets only what differs, so
every key is in the composed config: overridable as ``env.num_problems=50`` and shown
by ``classroom run --cfg job``. Hydra imports ``classroom.conf``, which calls
:func:`register_schemas` before any config is composed.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel


def defaults_of(model: type[BaseModel]) -> dict[str, Any]:
    """The fields of ``model`` that have a default, with it, as plain JSON values."""
    values: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        if field.is_required():
            continue
        value = field.get_default(call_default_factory=True)
        values[name] = json.loads(json.dumps(value.model_dump(mode="json") if isinstance(value, BaseModel) else value))
    return values


def builtin_sections() -> dict[str, type[BaseModel]]:
    """Each built-in config section's model, by the name its defaults are stored under in
    ``schema/``."""
    from classroom.agents.settings import StudentSettings, TeacherSettings
    from classroom.launch.settings import ClusterSettings, SweepSettings
    from classroom.serving.engine_config import VLLMEngineConfig
    from classroom.serving.pool import OpenAIEndpointConfig

    return {
        "teacher": TeacherSettings,
        "student": StudentSettings,
        "cluster": ClusterSettings,
        "sweep": SweepSettings,
        "engine": VLLMEngineConfig,
        "endpoint": OpenAIEndpointConfig,
    }


def config_sections() -> dict[str, type[BaseModel]]:
    """Every config section's model: the built-in ones and ``env/LOOP`` for every
    registered loop (importing every loop: for `--help-config`, not for composing)."""
    from classroom.environments.base import LOOPS, load_loop

    return {**builtin_sections(), **{f"env/{name}": load_loop(name).config_model for name in LOOPS}}


def _store(name: str, model: type[BaseModel]) -> None:
    from hydra.core.config_store import ConfigStore

    group, _, leaf = f"schema/{name}".rpartition("/")
    ConfigStore.instance().store(group=group, name=leaf, node=defaults_of(model))


def register_schemas() -> None:
    """Store the defaults of every built-in section. A loop's (``schema/env/LOOP``) is
    stored when a config first asks for it (:func:`register_loop_schema`): composing a
    config imports only the loop it selects."""
    for name, model in builtin_sections().items():
        _store(name, model)


# `schema/env/NAME`, as Hydra names a schema no one has stored yet.
LOOP_SCHEMA = re.compile(r"^/?schema/env/(\w+)$")


def register_loop_schema(missing: str) -> bool:
    """Store the defaults of the loop whose schema ``missing`` (Hydra's name of a config
    it could not load) is, importing that loop alone; False when it names no loop."""
    from classroom.environments.base import LoopError, load_loop

    matched = LOOP_SCHEMA.match(missing or "")
    if matched is None:
        return False
    try:
        model = load_loop(matched.group(1)).config_model
    except LoopError:
        return False
    _store(f"env/{matched.group(1)}", model)
    return True
