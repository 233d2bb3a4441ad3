"""What an environment reports while it runs: messages, metrics and progress.

Environments know nothing of run directories or terminals; launch/ implements a
:class:`Recorder` that writes the event log and shows progress.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from classroom.agents.messages import AnyMessage


class Recorder(Protocol):
    """Receives every message and metric an environment produces, as it happens."""

    def record(self, messages: Sequence[AnyMessage]) -> None: ...

    def metric(self, name: str, value: float, **tags: Any) -> None: ...

    def stage(self, name: str, total: int | None = None) -> None: ...

    def advance(self, count: int = 1) -> None: ...

    def logged(self) -> int:
        """How many messages are logged so far (a checkpoint keeps the number)."""
        ...

    def rewind(self, count: int) -> None:
        """Back to the first ``count`` messages: a resumed episode redoes what came after
        its checkpoint and logs it again, so those are set aside, not kept twice."""
        ...


class MemoryRecorder:
    """Keeps everything in lists: for tests and notebooks."""

    def __init__(self) -> None:
        self.messages: list[AnyMessage] = []
        # The messages of each record call: what a loop logged together.
        self.batches: list[list[AnyMessage]] = []
        self.metrics: list[dict[str, Any]] = []
        self.stages: list[str] = []

    def record(self, messages: Sequence[AnyMessage]) -> None:
        self.messages.extend(messages)
        self.batches.append(list(messages))

    def metric(self, name: str, value: float, **tags: Any) -> None:
        self.metrics.append({"name": name, "value": value, **tags})

    def stage(self, name: str, total: int | None = None) -> None:
        self.stages.append(name)

    def advance(self, count: int = 1) -> None:
        pass

    def logged(self) -> int:
        return len(self.messages)

    def rewind(self, count: int) -> None:
        del self.messages[count:]
