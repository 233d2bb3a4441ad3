"""The run directory: resolved config, event log, metrics, summary, live progress.

The event log (``events.jsonl``, written and read by
:mod:`classroom.environments.eventlog`, its one owner) is one of its files.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, PrivateAttr

from classroom.agents.messages import AnyMessage, Attempt
from classroom.environments.eventlog import EVENTS, EventLog
from classroom.environments.result import Counts, EpisodeResult
from classroom.serving.secrets import redact

METRICS = "metrics.jsonl"
SUMMARY = "summary.json"
CONFIG = "config.yaml"
# The overrides a run was composed from, as Hydra's launchers write them (the results
# tables read a run's configuration there).
OVERRIDES = ".hydra/overrides.yaml"


def write_overrides(run_dir: Path, overrides: Sequence[str]) -> None:
    """``.hydra/overrides.yaml`` in ``run_dir`` (made if missing), secrets masked."""
    import yaml

    path = run_dir / OVERRIDES
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(redact(list(overrides)), sort_keys=False))


class RunDirectory:
    """A run's folder and the Recorder that fills it (with live progress on screen)."""

    def __init__(self, path: Path | str, config: dict[str, Any], *, loop: str | None = None, show_progress: bool = True):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        import yaml

        # Secrets (API keys, runtime_env variables, URL credentials) are never written.
        config = redact(config)
        (self.path / CONFIG).write_text(yaml.safe_dump(config, sort_keys=False))
        self.events = EventLog(self.path / EVENTS, config=config, loop=loop)
        self._metrics = open(self.path / METRICS, "a", encoding="utf-8")  # noqa: SIM115 - held open for the run
        self.message_counts: dict[str, int] = {}
        # Attempts the grader could not score (timed out or failed), by reason.
        self.ungradeable: dict[str, int] = {}
        self._progress: Any = None
        self._task: Any = None
        if show_progress:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                transient=False,
            )
            self._progress.start()

    # Recorder -------------------------------------------------------------------------

    def record(self, messages: Sequence[AnyMessage]) -> None:
        self.events.append(messages)
        for message in messages:
            self.message_counts[message.kind] = self.message_counts.get(message.kind, 0) + 1
            if isinstance(message, Attempt) and message.grade_error:
                self.ungradeable[message.grade_error] = self.ungradeable.get(message.grade_error, 0) + 1

    def logged(self) -> int:
        return self.events.count

    def rewind(self, count: int) -> None:
        self.events.rewind(count)

    def metric(self, name: str, value: float, **tags: Any) -> None:
        self._metrics.write(json.dumps({"name": name, "value": value, "time": time.time(), **tags}) + "\n")
        self._metrics.flush()

    def stage(self, name: str, total: int | None = None) -> None:
        if self._progress is None:
            return
        if self._task is not None:  # close the previous stage's bar
            done = self._progress.tasks[-1]
            self._progress.update(self._task, total=done.total or 1, completed=done.total or 1)
        self._task = self._progress.add_task(name, total=total)

    def advance(self, count: int = 1) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, count)

    # ----------------------------------------------------------------------------------

    def write_summary(self, summary: dict[str, Any]) -> Path:
        path = self.path / SUMMARY
        # An error's text may quote a URL or an override: its secrets are masked too.
        counts: dict[str, Any] = {"messages": self.message_counts}
        if self.ungradeable:  # beside the loop's own "ungradeable" figures, never over them
            counts["ungradeable_reasons"] = dict(self.ungradeable)
        path.write_text(json.dumps(redact({**summary, **counts}), indent=2, default=str))
        return path

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        self.events.close()
        self._metrics.close()


def read_metrics(path: Path | str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


class RunSummary(BaseModel):
    """``summary.json``, typed for its readers (the sweep table, reports, the terminal):
    how the run ended, the scores and tokens every loop reports, and what the runner
    adds. The loop's own details sit beside them at the top level (extra keys, kept as
    they are). Files written before this model load too: every field has a default but
    the status."""

    model_config = ConfigDict(extra="allow")
    status: str = Field(description="completed, failed or interrupted.")
    episode_id: str | None = Field(None, description="The episode's id.")
    error: str | None = Field(None, description="Why a failed run stopped, one line.")
    scores: dict[str, float | None] = Field(default_factory=dict, description="What sweeps table (EpisodeResult.scores).")
    tokens: dict[str, int] = Field(default_factory=dict, description="Tokens by agent (EpisodeResult.tokens).")
    wall_time_s: float | None = Field(None, description="Seconds the loop's run took.")
    total_time_s: float | None = Field(None, description="Seconds from start to summary, start-up included.")
    run_dir: str | None = Field(None, description="The run directory.")
    counts: Counts | None = Field(None, description="Failures and fallbacks by kind (absent: none).")
    messages: dict[str, int] = Field(default_factory=dict, description="Messages logged, by kind.")
    engines: dict[str, dict[str, float | int | None]] = Field(default_factory=dict, description="Each engine's utilisation.")
    serving_faults: dict[str, dict[str, int]] = Field(default_factory=dict, description="Retried or repaired replies, by model and kind.")
    skipped_rows: dict[str, JsonValue] | None = Field(None, description="Malformed dataset rows skipped, counted.")
    _result: EpisodeResult[Any] | None = PrivateAttr(None)

    @property
    def result(self) -> EpisodeResult[Any] | None:
        """The loop's result, typed, when this summary came from the run in this process."""
        return self._result

    @classmethod
    def of(cls, summary: dict[str, Any], result: EpisodeResult[Any] | None = None) -> RunSummary:
        typed = cls.model_validate(summary)
        typed._result = result
        return typed

    @classmethod
    def read(cls, run_dir: Path | str) -> RunSummary:
        """The run directory's summary.json (a ValueError if it is not one)."""
        return cls.model_validate_json((Path(run_dir) / SUMMARY).read_text(encoding="utf-8"))
