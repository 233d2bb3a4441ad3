"""The run directory: resolved config, event log, metrics, summary, live progress.

``events.jsonl`` starts with a header line (schema version, config hash and, once the
engines are up, where each runs), then holds every message, one JSON line each,
appended and flushed as it happens: a run that is killed loses nothing it had produced,
and :func:`read_events` loads the log back into the same typed messages.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from classroom.agents.messages import SCHEMA_VERSION, AnyMessage, Attempt

# The log's reader lives with the loops, which replay it to resume; re-exported here.
from classroom.environments.eventlog import EVENTS
from classroom.environments.eventlog import EventLogError as EventLogError
from classroom.environments.eventlog import read_events as read_events
from classroom.serving.secrets import redact

# Messages a resumed run set aside: logged after the checkpoint it resumed from, redone.
SUPERSEDED = "events.superseded.jsonl"
METRICS = "metrics.jsonl"
SUMMARY = "summary.json"
CONFIG = "config.yaml"


def config_hash(config: dict[str, Any]) -> str:
    """A short stable hash of a resolved config."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _drop_torn_line(path: Path) -> None:
    """Cut a last line that a killed writer left without its newline."""
    with open(path, "rb+") as f:
        data = f.read()
        if data and not data.endswith(b"\n"):
            f.truncate(data.rfind(b"\n") + 1)


class EventLog:
    """Appends messages to a JSONL file, flushing each line."""

    def __init__(self, path: Path, *, config: dict[str, Any] | None = None, loop: str | None = None):
        self.path = path
        new = not path.exists() or path.stat().st_size == 0
        if not new:
            _drop_torn_line(path)  # a resumed run appends after the last whole line
        # Messages in the log (the header line is not one).
        self.count = 0
        if not new:
            with open(path, "rb") as lines:
                self.count = max(sum(1 for _ in lines) - 1, 0)
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - held open for the run, closed by close()
        self.header: dict[str, Any] | None = None  # as written by this process; None for a log it continues
        if new:
            header = {
                "kind": "header",
                "schema_version": SCHEMA_VERSION,
                "config_hash": config_hash(config or {}),
                "created_at": time.time(),
            }
            if loop:  # reading the log back imports the loop, whose messages it holds
                header["loop"] = loop
            self.header = header
            self._write(json.dumps(header))

    def amend_header(self, **fields: Any) -> bool:
        """Add ``fields`` to the header of a log this process started that holds no
        message yet (what is known only once the run's engines are up, such as where they
        run), in one atomic rewrite; a log with messages, or one continued by a resumed
        run, keeps its header as it is (returns False)."""
        if self.header is None or self.count:
            return False
        self.header = {**self.header, **fields}
        self._file.close()
        tmp = self.path.with_suffix(".jsonl.tmp")
        tmp.write_text(json.dumps(self.header, default=str) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - held open for the run
        return True

    def _write(self, line: str) -> None:
        self._file.write(line + "\n")
        self._file.flush()

    def append(self, messages: Sequence[AnyMessage]) -> None:
        for message in messages:
            self._write(message.model_dump_json())
        self.count += len(messages)

    def rewind(self, count: int) -> None:
        """Keep the header and the first ``count`` messages; the lines after them go to
        :data:`SUPERSEDED` (appended: kept for the record), then the log is replaced in
        one atomic rename."""
        if count >= self.count:
            return
        self._file.close()
        lines = self.path.read_text(encoding="utf-8").splitlines(keepends=True)
        kept, cut = lines[: count + 1], lines[count + 1 :]
        with open(self.path.with_name(SUPERSEDED), "a", encoding="utf-8") as aside:
            aside.writelines(cut)
        tmp = self.path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(kept), encoding="utf-8")
        os.replace(tmp, self.path)
        self.count = count
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - held open for the run

    def close(self) -> None:
        self._file.close()


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
