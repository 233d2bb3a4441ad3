"""Config documented where it is read: every field of every config section (and of the
models nested in them) has a description, and `classroom run --help-config SECTION`
prints each field with its type, default and description."""

from __future__ import annotations

import typing

from pydantic import BaseModel
from support.cli import classroom

from classroom.launch.help_config import help_sections


def reachable(models: list[type[BaseModel]]) -> list[type[BaseModel]]:
    """The models and every config model their fields hold, however nested."""
    seen: list[type[BaseModel]] = []
    todo = list(models)
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.append(model)
        for field in model.model_fields.values():
            stack = [field.annotation]
            while stack:
                annotation = stack.pop()
                if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                    todo.append(annotation)
                stack.extend(typing.get_args(annotation))
    return seen


def test_every_config_field_has_a_description():
    models = reachable(list(help_sections().values()))
    names = {m.__name__ for m in models}
    # The walk reaches the nested sections (a broken walk would pass vacuously).
    assert {"VLLMEngineConfig", "ModelSpec", "SamplingParams", "M1Settings", "M3Settings", "TomConfig"} <= names
    undocumented = [
        f"{m.__name__}.{name}" for m in models for name, field in m.model_fields.items() if not (field.description or "").strip()
    ]
    assert not undocumented, f"config fields without a description: {undocumented}"


def test_help_config_prints_each_field_with_its_default_and_description():
    out = classroom("run", "--help-config", "engine")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    # Written out by hand from serving/engine_config.py: the field, where it sits, its default.
    at = lines.index("  model.models.NAME.engine.kv_cache_gib: float = 2.0")
    assert lines[at + 1].strip().startswith("CPU: KV cache size in GiB")
    # A nested model's fields under its own name; `env` is every loop's section.
    loops = classroom("run", "--help-config", "env").stdout
    assert "  env.m1.samples: int = 8" in loops and "env/tom (TomConfig, at env)" in loops and "env/supercorrect" in loops
    listing = classroom("run", "--help-config")
    assert listing.returncode == 0 and "engine" in listing.stdout and "env/lbt" in listing.stdout
    unknown = classroom("run", "--help-config", "nope")
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1 and "no config section 'nope'" in unknown.stderr
