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


def register_schemas() -> None:
    """Store the defaults of every built-in section and of every registered loop's config."""
    from hydra.core.config_store import ConfigStore

    from classroom.agents.settings import StudentSettings, TeacherSettings
    from classroom.environments.base import LOOPS, load_loop
    from classroom.launch.settings import ClusterSettings, SweepSettings
    from classroom.serving.pool import OpenAIEndpointConfig
    from classroom.serving.vllm_engine import VLLMEngineConfig

    store = ConfigStore.instance()
    for name, model in {
        "teacher": TeacherSettings,
        "student": StudentSettings,
        "cluster": ClusterSettings,
        "sweep": SweepSettings,
        "engine": VLLMEngineConfig,
        "endpoint": OpenAIEndpointConfig,
    }.items():
        store.store(group="schema", name=name, node=defaults_of(model))
    for loop_name in LOOPS:
        store.store(group="schema/env", name=loop_name, node=defaults_of(load_loop(loop_name).config_model))
