"""Every config model's defaults, registered in Hydra's ConfigStore under ``schema/``.

Defaults live once, in the pydantic models. A YAML file pulls its section's defaults
in (``defaults: [/schema/env/LOOP@_here_, _self_]``) and sets only what differs, so
every key is in the composed config: overridable as ``env.num_problems=50`` and shown
by ``classroom run --cfg job``. Hydra imports ``classroom.conf``, which calls
:func:`register_schemas` before any config is composed.
"""

from __future__ import annotations

import json
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


def config_sections() -> dict[str, type[BaseModel]]:
    """Each config section's model, by the name its defaults are stored under in
    ``schema/`` (``env/LOOP`` for every registered loop)."""
    from classroom.agents.settings import StudentSettings, TeacherSettings
    from classroom.environments.base import LOOPS, load_loop
    from classroom.launch.settings import ClusterSettings, SweepSettings
    from classroom.serving.engine_config import VLLMEngineConfig
    from classroom.serving.pool import OpenAIEndpointConfig

    sections: dict[str, type[BaseModel]] = {
        "teacher": TeacherSettings,
        "student": StudentSettings,
        "cluster": ClusterSettings,
        "sweep": SweepSettings,
        "engine": VLLMEngineConfig,
        "endpoint": OpenAIEndpointConfig,
    }
    for loop_name in LOOPS:
        sections[f"env/{loop_name}"] = load_loop(loop_name).config_model
    return sections


def register_schemas() -> None:
    """Store the defaults of every built-in section and of every registered loop's config."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    for name, model in config_sections().items():
        group, _, leaf = f"schema/{name}".rpartition("/")
        store.store(group=group, name=leaf, node=defaults_of(model))
