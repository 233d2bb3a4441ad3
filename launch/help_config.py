"""`classroom run --help-config [SECTION]`: every config field with its type, default and
description, read from the pydantic models that own them (the defaults are theirs, the
descriptions their ``Field(description=...)``), so the help is never out of date."""

from __future__ import annotations

import json
import re
import typing
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The config model a field holds (``M``, ``M | None``), if it holds one."""
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if not typing.get_args(annotation) else None
    return re.sub(r"\b(?:[a-z_]+\.)+([A-Z]\w*)", r"\1", text or str(annotation))


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "(required)"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    return json.dumps(value, default=str)


def fields(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, str, str, str]]:
    """(dotted name, type, default, description) of every field, a nested model's fields
    under its own name."""
    for name, field in model.model_fields.items():
        nested = _model_of(field.annotation)
        yield f"{prefix}{name}", _type_name(field.annotation), _default(field), field.description or ""
        if nested is not None:
            keyed = typing.get_origin(field.annotation) is dict  # models: {NAME: ModelSpec}
            yield from fields(nested, f"{prefix}{name}.NAME." if keyed else f"{prefix}{name}.")


# Where a section's fields are in the composed config, where that is not its name.
WHERE = {"engine": "model.models.NAME.engine", "endpoint": "model.models.NAME.endpoint"}


def help_sections() -> dict[str, type[BaseModel]]:
    """The sections the help covers: each one Hydra stores defaults for, and `model`."""
    from classroom.launch.config_store import config_sections
    from classroom.serving.pool import PoolConfig

    return {**config_sections(), "model": PoolConfig}


def help_config(section: str | None) -> str:
    """The help of one section (``engine``, ``env/LOOP``; ``env`` is every loop's), or the
    list of sections."""
    sections = help_sections()
    if section is None:
        names = ", ".join(sections)
        return f"config sections: {names}\nclassroom run --help-config SECTION shows each field: its type, default and description"
    chosen = {name: model for name, model in sections.items() if name == section or name.startswith(f"{section}/")}
    if not chosen:
        raise KeyError(section)
    out = []
    for name, model in chosen.items():
        key = WHERE.get(name, name.split("/")[0])  # env/LOOP is the `env:` section
        first = (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ else ""
        out.append(f"{name} ({model.__name__}, at {key}): {first}")
        for dotted, kind, default, description in fields(model):
            out.append(f"  {key}.{dotted}: {kind} = {default}")
            if description:
                out.append(f"      {description}")
    return "\n".join(out)


def help_config_main(section: str | None) -> int:
    from classroom.serving.errors import UsageError

    try:
        print(help_config(section))
    except KeyError:
        raise UsageError(f"--help-config: no config section {section!r} (sections: {', '.join(help_sections())}, env)") from None
    return 0
