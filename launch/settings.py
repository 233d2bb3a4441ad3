"""The run-level config sections that only `classroom` itself reads: where Ray runs."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class PaperEffect(BaseModel):
    """A difference a paper reports for the comparison a sweep pairs (`compare.effects`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    # The configuration it is about, as override values (e.g. `env/intervention: oracle`);
    # its runs are paired with the baseline's.
    when: dict[str, str]
    # The results column it is measured in (a score of the runs' summaries, e.g. `acc@0.4`).
    score: str
    # The paper's difference from the baseline, in that column's units (0.032: 3.2 points).
    effect: float
    # Where the paper reports it (model, dataset, the two figures).
    source: str


class CompareSettings(BaseModel):
    """How a sweep's results pair its runs (`compare:`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    # Override values of the baseline configuration (e.g. `env/intervention: random`):
    # every other run is paired with the baseline run of the same seed and settings.
    baseline: dict[str, str] = Field(default_factory=dict)
    # The papers' differences for the configurations compared: results.md then says, for
    # each, whether the paired CI resolves the measured difference ("not resolved at
    # n = ..." when it holds 0) and how many seeds would resolve the paper's effect at
    # the measured per-pair spread (80% power, two-sided 95%).
    effects: list[PaperEffect] = Field(default_factory=list)


class SweepSettings(BaseModel):
    """How `classroom sweep` runs its jobs (`sweep.*`; `sweep=NAME` picks a grid)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    max_concurrent: int = Field(
        1,
        ge=1,
        description="Episodes run at once. They share one engine pool per model (and its reply cache), so concurrent episodes fill the engines' batches where one episode leaves gaps between its stages; their agents spread over the cluster.",
    )
    max_retries: int = Field(
        1,
        ge=0,
        description="Times a job stopped by a fault outside the code (a node or actor that died, an endpoint down past its retries) is run again from its start; then it is recorded as failed and the sweep goes on.",
    )


_ADDRESS = re.compile(r"^(local|auto|ray://[\w.\-]+:\d+|[\w.\-]+:\d+)$")


class ClusterSettings(BaseModel):
    """Where Ray runs (`cluster:`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    address: str = Field(
        "local", description="`local` (start a Ray on this machine), `auto` (join this node's cluster), `ray://HOST:PORT` or `HOST:PORT`."
    )
    num_cpus: int | None = Field(None, ge=1, description="CPUs of a local Ray; None: every core.")
    runtime_env: dict[str, Any] = Field(
        default_factory=dict,
        description="Ray runtime_env for the workers (env_vars, pip, py_modules, working_dir). Under `ray job submit` Ray merges it with the job's (a field given in both is an error).",
    )
    log_to_driver: bool = Field(
        True,
        description="Actors' output (warnings, errors, tracebacks of a dying actor) printed by this process too, so it reaches the terminal and `ray job logs`.",
    )

    @field_validator("address")
    @classmethod
    def _known_address(cls, value: str) -> str:
        if not _ADDRESS.match(value):
            raise ValueError("must be 'local', 'auto', 'ray://HOST:PORT' or 'HOST:PORT'")
        return value
