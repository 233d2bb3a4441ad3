"""A run's event log, written and read here (its one owner).

``events.jsonl`` starts with a header line (schema version, config hash and, once the
engines are up, where each runs), then holds every message, one JSON line each,
appended and flushed as it happens (:class:`EventLog`): a run that is killed loses
nothing it had produced, and :func:`read_events` loads the log back into the same typed
messages. The run directory (``classroom.launch.rundir``) holds the log; loops read it
to resume an episode by replay, so the module lives here, below ``launch/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from classroom.agents.messages import SCHEMA_VERSION, AnyMessage, parse_message
from classroom.serving.errors import DataError

EVENTS = "events.jsonl"
# Messages a resumed run set aside: logged after the checkpoint it resumed from, redone.
SUPERSEDED = "events.superseded.jsonl"


class EventLogError(DataError):
    """An event log that cannot be read (no header, a newer schema)."""


def read_events(path: Path | str) -> tuple[dict[str, Any], list[AnyMessage]]:
    """The header and every message of an event log, as typed messages.

    A last line cut short by a killed run is skipped; any other bad line raises. The
    loop named in the header is imported first, so its own message kinds parse.
    """
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    if not lines:
        raise EventLogError(f"{path} is empty: no header line")
    try:
        header = json.loads(lines[0])
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("kind") != "header":
        raise EventLogError(f"{path}: first line is not a header")
    if header.get("schema_version", 0) > SCHEMA_VERSION:
        raise EventLogError(f"{path} was written with schema {header['schema_version']}; this classroom reads up to {SCHEMA_VERSION}")
    if header.get("loop"):
        from classroom.environments.base import LoopError, load_loop

        try:
            load_loop(header["loop"])
        except LoopError as exc:
            raise EventLogError(f"{path}: {exc}") from None
    messages = []
    for number, line in enumerate(lines[1:], start=2):
        try:
            messages.append(parse_message(line))
        except ValueError as exc:
            if number == len(lines):  # torn final write
                break
            errors = exc.errors() if isinstance(exc, ValidationError) else []
            why = errors[0]["msg"] if errors else (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise EventLogError(f"{path}:{number}: not a message ({why})") from None
    return header, messages


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
