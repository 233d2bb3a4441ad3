"""The run-level config sections that only `classroom` itself reads: where Ray runs."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class CompareSettings(BaseModel):
    """How a sweep's results pair its runs (`compare:`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    # Override values of the baseline configuration (e.g. `env/intervention: random`):
    # every other run is paired with the baseline run of the same seed and settings.
    baseline: dict[str, str] = Field(default_factory=dict)


_ADDRESS = re.compile(r"^(local|auto|ray://[\w.\-]+:\d+|[\w.\-]+:\d+)$")


class ClusterSettings(BaseModel):
    """Where Ray runs (`cluster:`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    # `local` (start a Ray on this machine), `auto` (join this node's cluster),
    # `ray://HOST:PORT` or `HOST:PORT`.
    address: str = "local"
    # CPUs of a local Ray; None: every core.
    num_cpus: int | None = Field(None, ge=1)
    # Ray runtime_env for the workers (env_vars, pip, working_dir).
    runtime_env: dict[str, Any] = Field(default_factory=dict)

    @field_validator("address")
    @classmethod
    def _known_address(cls, value: str) -> str:
        if not _ADDRESS.match(value):
            raise ValueError("must be 'local', 'auto', 'ray://HOST:PORT' or 'HOST:PORT'")
        return value
