"""Replay: a resumed episode takes from the event log what it had already asked for.

A loop that resumes by replay plays its episode again from the top, in the same order,
with the same seed. Each step first asks the :class:`Replay` of the interrupted run:
when every message the step would produce is in the log, the step takes them from there
(no model call, nothing logged twice, the same ids); the first step that is not (the one
the kill interrupted) asks its agents and logs as usual, and so does every step after.
A step's messages are logged together once the step is done, so a step is in the log
whole or not at all.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from classroom.agents.messages import Attempt, Explanation, ParseFailure, Problem


class Replay:
    """The messages of an interrupted run, indexed the way an episode asks for them."""

    def __init__(self, messages: Sequence[Any]):
        self.messages = list(messages)
        self.problem_ids = {m.id for m in self.messages if isinstance(m, Problem)}
        self.episode_id = next((m.episode_id for m in self.messages if isinstance(m, Problem) and m.episode_id), "")
        self.ids = {m.id for m in self.messages}
        self._attempts: dict[tuple[str, str, str], Attempt] = {}
        self._seen: dict[tuple[str, str, str, tuple[str, ...]], list[Attempt]] = defaultdict(list)
        self._explanations: dict[str, list[Explanation]] = defaultdict(list)
        self._children: set[str] = set()
        for message in self.messages:
            if isinstance(message, Attempt):
                self._attempts[(message.sender, message.phase, message.problem_id)] = message
                self._seen[(message.sender, message.phase, message.problem_id, message.context_ids)].append(message)
            elif isinstance(message, Explanation):
                self._explanations[message.problem_id].append(message)
            if isinstance(message, ParseFailure):
                self._children.update(message.parents)

    def attempts(self, sender: str, phase: str, problems: Sequence[Problem]) -> list[Attempt] | None:
        """``sender``'s graded attempts at ``problems`` in ``phase``, if all are logged."""
        found = [self._attempts.get((sender, phase, p.id)) for p in problems]
        return None if any(a is None for a in found) else found  # type: ignore[return-value]

    def attempts_in_view(
        self, sender: str, phase: str, items: Sequence[tuple[Problem, tuple[str, ...]]], samples: int = 1
    ) -> list[list[Attempt]] | None:
        """``sender``'s ``samples`` graded attempts at each (problem, ids of what was in
        view), if all are logged."""
        found = [self._seen.get((sender, phase, p.id, context), [])[:samples] for p, context in items]
        return None if any(len(f) < samples for f in found) else found

    def explanations_of(self, problem: Problem) -> list[Explanation]:
        """Every explanation logged for ``problem``, in log order."""
        return list(self._explanations.get(problem.id, ()))

    def explanations(self, problems: Sequence[Problem], occurrence: int = 0) -> list[Explanation] | None:
        """The ``occurrence``-th explanation logged for each problem, if all are logged."""
        found = [self._explanations[p.id][occurrence] if len(self._explanations[p.id]) > occurrence else None for p in problems]
        return None if any(e is None for e in found) else found  # type: ignore[return-value]

    def of_kind(self, cls: type) -> list[Any]:
        """Every logged message of one class, in log order."""
        return [m for m in self.messages if isinstance(m, cls)]

    def has_failure_for(self, message_id: str) -> bool:
        """Whether a ParseFailure about ``message_id`` is logged."""
        return message_id in self._children


def replay_from(run_dir: Path) -> Replay:
    """The :class:`Replay` of the run in ``run_dir`` (its event log), or ResumeError."""
    from classroom.environments.base import ResumeError
    from classroom.environments.eventlog import EVENTS, EventLogError, read_events

    if not (Path(run_dir) / EVENTS).is_file():
        raise ResumeError(f"{run_dir} has no {EVENTS}: the episode logged nothing to replay; run it again")
    try:
        _, messages = read_events(Path(run_dir) / EVENTS)
    except (EventLogError, ValueError) as exc:
        raise ResumeError(f"{run_dir}: no readable event log to replay ({type(exc).__name__}: {exc})") from None
    replay = Replay(messages)
    if not replay.episode_id:
        raise ResumeError(f"{run_dir}: the event log holds no problems yet; run the episode again")
    return replay


class ResumesByReplay:
    """The :class:`~classroom.environments.base.Stateful` part of a loop whose state is
    its event log (ToM, LbT M1/M2): flushed line by line, every stage logging its
    messages together, so a resumed episode replays the stages the log holds whole and
    asks its agents from the first one it does not. A loop inherits it."""

    def save_state(self, run_dir: Path, state: Replay) -> None:
        """Nothing to write: the event log, already on disk, is the state."""

    def load_state(self, run_dir: Path) -> Replay:
        return replay_from(run_dir)

    def episode_id_of(self, state: Replay) -> str:
        return state.episode_id
