"""One transport for every agent: a role's method is written once, in the role, and called
through :class:`Agent` wherever the agent runs.

A loop holds ``Agent[Student]``, not an actor handle: ``await student.call(Student.answer,
problems, phase="pre_test")`` is typed from ``Student.answer`` itself (its parameters and
its result, awaited), and goes to the Ray actor (``.remote``) or, in tests and notebooks,
to the object itself. The method is looked up by name on the agent, so a subclass's
override answers (a :class:`~classroom.environments.tom.teacher.TomTeacher` asked with
``Teacher.explain`` explains as a ToM teacher).

:class:`StudentAgent` adds what a call cannot carry by itself: adapters travel as files
between the student's node and the driver, which owns the run directory.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from classroom.agents.messages import TrainingExample, TrainingRun
from classroom.agents.roles import Student
from classroom.serving.adapters import AdapterFiles, pack_adapter, write_adapter

R = TypeVar("R")
P = ParamSpec("P")
T = TypeVar("T")


class Agent(Generic[R]):
    """One agent of role ``R``: a Ray actor handle of it, or the object itself."""

    def __init__(self, agent: Any):
        self.agent = agent

    @overload
    async def call(self, method: Callable[Concatenate[R, P], Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T: ...

    @overload
    async def call(self, method: Callable[Concatenate[R, P], T], /, *args: P.args, **kwargs: P.kwargs) -> T: ...

    async def call(self, method: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """``method`` (a role's function, ``Student.answer``) on this agent, awaited."""
        owner, _, name = getattr(method, "__qualname__", "").rpartition(".")
        if not inspect.isfunction(method) or not owner or owner.endswith("<locals>"):
            raise TypeError(f"Agent.call takes a role's method, such as Student.answer; got {method!r}")
        bound = getattr(self.agent, name)
        from ray.actor import ActorMethod

        if isinstance(bound, ActorMethod):
            return await bound.remote(*args, **kwargs)
        result = bound(*args, **kwargs)
        return await result if inspect.isawaitable(result) else result


class StudentAgent(Agent[Student]):
    """A :class:`~classroom.agents.roles.Student`, with its adapters carried as files."""

    async def train_and_keep(self, examples: Sequence[TrainingExample], *, iteration: int, out_dir: str, adapter_name: str) -> TrainingRun:
        """``Student.train``, and the adapter it made written into ``out_dir`` here, where
        the caller (the run directory's owner) is, whatever node the student is on."""
        run = await self.call(Student.train, list(examples), iteration=iteration, out_dir=out_dir, adapter_name=adapter_name)
        if run.adapter_path is not None:
            files = await self.call(Student.take_adapter)
            if files is not None:
                write_adapter(files, run.adapter_path)
        return run

    async def serve_adapter_from(self, name: str, path: str) -> None:
        """Make the student answer with the adapter in ``path`` (a folder here)."""
        await self.call(Student.use_adapter, name, pack_adapter(path), path)

    async def restore_from_checkpoint(self, state: Mapping[str, Any]) -> None:
        """Rebuild the student from a checkpoint's ``Student.save_state``, with the adapters it
        names read here, from the run directory, and sent along."""
        # A checkpoint written before adapters travelled as files named the last trained
        # adapter in the learner's state only.
        trained_path = state.get("trained_path") or (state.get("learner") or {}).get("adapter_path")
        served = _adapter_at(state.get("adapter_path")) if state.get("adapter") else None
        trained = served if trained_path == state.get("adapter_path") and served else _adapter_at(trained_path)
        await self.call(Student.load_state, dict(state), served, trained)


def _adapter_at(path: str | None) -> AdapterFiles | None:
    """The adapter kept in ``path``, a folder of this node (None for no path)."""
    if path is None:
        return None
    try:
        return pack_adapter(path)
    except (OSError, ValueError) as exc:  # a checkpoint whose adapter folder is gone
        raise ValueError(f"cannot restore the student: {exc}") from None
