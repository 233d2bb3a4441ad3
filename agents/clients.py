"""Typed clients: how a loop calls an agent, whether a Ray actor or a plain object.

A loop holds a :class:`StudentClient`, not an actor handle: ``await
student.answer(problems, phase="pre_test")`` reads like a method call, is checked like
one, and forwards to the actor (``.remote``) or, in tests and notebooks, to the object
itself. A loop whose role does more subclasses the client in its package.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel

from classroom.agents.messages import Attempt, Explanation, Problem, TrainingExample, TrainingRun
from classroom.agents.roles import Demonstrations
from classroom.serving.adapters import AdapterFiles, pack_adapter, write_adapter
from classroom.serving.structured import Parsed

T = TypeVar("T", bound=BaseModel)


class AgentClient:
    """Forwards calls to one agent: a Ray actor handle or the agent object itself."""

    def __init__(self, agent: Any):
        self.agent = agent

    @staticmethod
    async def invoke(method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ``method`` (an actor method or a bound method) and await its result."""
        from ray.actor import ActorMethod

        if isinstance(method, ActorMethod):
            return await method.remote(*args, **kwargs)
        result = method(*args, **kwargs)
        return await result if inspect.isawaitable(result) else result


class StudentClient(AgentClient):
    """Calls a :class:`~classroom.agents.roles.Student`."""

    async def answer(
        self,
        problems: Sequence[Problem],
        *,
        phase: str,
        explanations: Sequence[Explanation] | None = None,
        use_memory: bool = False,
        demonstrations: Demonstrations | None = None,
        base: bool = False,
    ) -> list[Attempt]:
        return await self.invoke(
            self.agent.answer,
            list(problems),
            phase=phase,
            explanations=explanations,
            use_memory=use_memory,
            demonstrations=demonstrations,
            base=base,
        )

    async def answer_each(
        self,
        items: Sequence[tuple[Problem, Demonstrations]],
        *,
        phase: str,
        samples: int = 1,
        temperature: float | None = None,
        seed: int | None = None,
        max_tokens: int | None = None,
    ) -> list[list[Attempt]]:
        return await self.invoke(
            self.agent.answer_each,
            [(p, list(d)) for p, d in items],
            phase=phase,
            samples=samples,
            temperature=temperature,
            seed=seed,
            max_tokens=max_tokens,
        )

    async def answer_structured(
        self, problems: Sequence[Problem], schema: type[T], *, base: bool = False, max_tokens: int | None = None
    ) -> list[Parsed[T]]:
        return await self.invoke(self.agent.answer_structured, list(problems), schema, base=base, max_tokens=max_tokens)

    async def train(self, examples: Sequence[TrainingExample], *, iteration: int, out_dir: str, adapter_name: str) -> TrainingRun:
        """Train the student; an adapter it made is written into ``out_dir`` here, where
        the caller (the run directory's owner) is, whatever node the student is on."""
        run = await self.invoke(self.agent.train, list(examples), iteration=iteration, out_dir=out_dir, adapter_name=adapter_name)
        if run.adapter_path is not None:
            files = await self.invoke(self.agent.take_adapter)
            if files is not None:
                write_adapter(files, run.adapter_path)
        return run

    async def use_adapter(self, name: str, path: str) -> None:
        """Make the student answer with the adapter in ``path`` (a folder here)."""
        await self.invoke(self.agent.use_adapter, name, pack_adapter(path), path)

    async def sft_rows(self, examples: Sequence[TrainingExample]) -> list[dict[str, Any]]:
        return await self.invoke(self.agent.sft_rows, list(examples))

    async def state(self) -> dict[str, Any]:
        return await self.invoke(self.agent.state)

    async def restore(self, state: Mapping[str, Any]) -> None:
        """Rebuild the student from a checkpoint's :meth:`state`, with the adapters it
        names read here, from the run directory, and sent along."""
        # A checkpoint written before adapters travelled as files named the last trained
        # adapter in the learner's state only.
        trained_path = state.get("trained_path") or (state.get("learner") or {}).get("adapter_path")
        served = _adapter_at(state.get("adapter_path")) if state.get("adapter") else None
        trained = served if trained_path == state.get("adapter_path") and served else _adapter_at(trained_path)
        await self.invoke(self.agent.restore, dict(state), served, trained)


def _adapter_at(path: str | None) -> AdapterFiles | None:
    """The adapter kept in ``path``, a folder of this node (None for no path)."""
    if path is None:
        return None
    try:
        return pack_adapter(path)
    except (OSError, ValueError) as exc:  # a checkpoint whose adapter folder is gone
        raise ValueError(f"cannot restore the student: {exc}") from None


class TeacherClient(AgentClient):
    """Calls a :class:`~classroom.agents.roles.Teacher`."""

    async def explain(
        self, problems: Sequence[Problem], *, demonstrations: Demonstrations = (), with_answer: bool = False, adapter: str | None = None
    ) -> list[Explanation]:
        return await self.invoke(
            self.agent.explain, list(problems), demonstrations=list(demonstrations), with_answer=with_answer, adapter=adapter
        )

    async def sample_explanations(
        self,
        problems: Sequence[Problem],
        *,
        samples: int,
        temperature: float,
        seed: int | None = None,
        max_tokens: int | None = None,
        adapter: str | None = None,
    ) -> list[list[Explanation]]:
        return await self.invoke(
            self.agent.sample_explanations,
            list(problems),
            samples=samples,
            temperature=temperature,
            seed=seed,
            max_tokens=max_tokens,
            adapter=adapter,
        )

    async def prompts_of(self, problems: Sequence[Problem]) -> list[list[dict[str, str]]]:
        return await self.invoke(self.agent.prompts_of, list(problems))

    async def gold(self, problems: Sequence[Problem]) -> list[Explanation]:
        return await self.invoke(self.agent.gold, list(problems))


class GraderClient(AgentClient):
    """Calls a :class:`~classroom.agents.grading.Grader`."""

    async def grade_attempts(self, problems: Sequence[Problem], attempts: Sequence[Attempt]) -> list[Attempt]:
        return await self.invoke(self.agent.grade_attempts, list(problems), list(attempts))

    async def score(self, problem: Problem, final_answer: str | None) -> bool | None:
        """Whether the answer is correct; None when it is ungradeable."""
        return await self.invoke(self.agent.score_one, problem, final_answer)
