"""Reading a run's event log back: the header, then every message, typed.

The log is written by ``classroom.launch.rundir`` (one JSON line per message, flushed as
it happens); loops read it to resume an episode by replay, so the reader lives here,
below ``launch/``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from classroom.agents.messages import SCHEMA_VERSION, AnyMessage, parse_message
from classroom.serving.errors import DataError

EVENTS = "events.jsonl"


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
