"""Validation of a composed run config, with one-line errors that name the key.

Hydra composes the YAML; each section is then validated by a pydantic model here (or
the component's own config model), and plug-ins named by ``_target_`` are imported
and checked against their protocol.
"""

from __future__ import annotations

import re
from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from classroom.serving.types import SamplingParams


class ConfigError(ValueError):
    """A config value that cannot be used; the message is one line naming the key."""


def describe_validation_error(section: str, exc: ValidationError) -> str:
    """``section.key: what is wrong (got value)`` for the first error."""
    first = exc.errors()[0]
    key = ".".join([section, *(str(p) for p in first.get("loc", ()))])
    got = first.get("input")
    message = first.get("msg", "invalid")
    if first.get("type") == "extra_forbidden":
        message = "unknown key"
    shown = "" if isinstance(got, (dict, list)) or got is None else f" (got {got!r})"
    return f"config error: {key}: {message}{shown}"


def validate_section(model: type[BaseModel], section: str, values: Mapping[str, Any]) -> Any:
    try:
        return model.model_validate(dict(values))
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(section, exc)) from None


_ADDRESS = re.compile(r"^(local|auto|ray://[\w.\-]+:\d+|[\w.\-]+:\d+)$")


class ClusterSettings(BaseModel):
    """Where Ray runs."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    address: str = "local"
    num_cpus: int | None = Field(None, ge=1)
    runtime_env: dict[str, Any] = Field(default_factory=dict)

    @field_validator("address")
    @classmethod
    def _known_address(cls, value: str) -> str:
        if not _ADDRESS.match(value):
            raise ValueError("must be 'local', 'auto', 'ray://HOST:PORT' or 'HOST:PORT'")
        return value


class TeacherSettings(BaseModel):
    """The teacher agent's section."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    intervention: dict[str, Any]
    explanation: Literal["unpersonalized", "personalized", "gold", "deceptive"] = "unpersonalized"
    mental_model_demos: int = Field(4, ge=0)
    sampling: SamplingParams = SamplingParams(max_tokens=192)
    reveal_answer: bool = False
    seed: int = 0
    prompts: dict[str, str] = Field(default_factory=dict)
    num_cpus: float = Field(0.0, ge=0.0)


class StudentSettings(BaseModel):
    """The student agent's section."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    learner: dict[str, Any]
    sampling: SamplingParams = SamplingParams(max_tokens=160)
    prompts: dict[str, str] = Field(default_factory=dict)
    adapter: str | None = None
    num_cpus: float = Field(0.0, ge=0.0)


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
        raise ConfigError(
            f"config error: {section}._target_: {target!r} does not implement {protocol.__name__}"
        )
    return obj
