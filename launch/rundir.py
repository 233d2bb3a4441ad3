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

from classroom.agents.messages import AnyMessage, Attempt
from classroom.environments.eventlog import EVENTS, EventLog
from classroom.serving.secrets import redact

METRICS = "metrics.jsonl"
SUMMARY = "summary.json"
CONFIG = "config.yaml"


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
        if self.ungradeable:
            counts["ungradeable"] = {"count": sum(self.ungradeable.values()), "reasons": self.ungradeable}
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
