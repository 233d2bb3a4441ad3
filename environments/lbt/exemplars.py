"""M3's teachers: who proposes revised in-context exemplar sets after the students' errors.

A proposer returns each proposal as text (JSON of an :class:`ExemplarSet`); the loop
parses them, and one that does not parse is a recorded ParseFailure while the others
go on. :class:`ProgrammaticProposer` is the CPU's teacher (a 135M model cannot write
good exemplars): it swaps exemplars for candidates of the skills the students got
wrong, with exact worked solutions. :class:`LLMProposer` is the paper's: the teacher
model reads the errors and writes new sets.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from classroom.agents.messages import Attempt, Problem
from classroom.agents.roles import gold_explanation
from classroom.agents.step_checker import worked_solution
from classroom.environments.lbt.types import Exemplar, ExemplarSet
from classroom.serving.llm import LLM
from classroom.serving.prompts import PromptSet
from classroom.serving.types import ChatMessage, SamplingParams


@dataclass(frozen=True)
class Proposals:
    """Proposed exemplar sets as text, and the tokens the teacher spent on them."""

    texts: list[str] = field(default_factory=list)
    tokens: int = 0


@runtime_checkable
class ExemplarProposer(Protocol):
    """Proposes exemplar sets: a first one, and revisions after the students' errors."""

    name: str

    async def initial(self, pool: Sequence[Problem], size: int, llm: LLM | None, *, seed: int) -> Proposals: ...

    async def propose(
        self,
        current: ExemplarSet,
        errors: Sequence[tuple[Problem, Attempt]],
        pool: Sequence[Problem],
        count: int,
        llm: LLM | None,
        *,
        seed: int,
    ) -> Proposals: ...


def worked(problem: Problem) -> Exemplar | None:
    """A problem as an exemplar with an exact worked solution, if one can be written."""
    solution = gold_explanation(problem)
    if solution is None:
        return None
    entry = (problem.metadata.get("reasoning_gym") or {}).get("entry") or {}
    expression = (entry.get("metadata") or {}).get("expression")
    body = worked_solution(expression, problem.answer).rsplit("The answer is", 1)[0].strip() if expression else ""
    body = body or solution.rsplit("The answer is", 1)[0].strip() or f"The answer is {problem.answer}."
    return Exemplar(question=problem.question, solution=body, answer=problem.answer)


def as_text(exemplars: Sequence[Exemplar]) -> str:
    return ExemplarSet(exemplars=list(exemplars)).model_dump_json()


class ProgrammaticProposer:
    """Revisions by the skills the students got wrong, exact solutions from the pool.

    Each proposal starts from the current set and, for errors taken in a shuffled order,
    swaps a random exemplar for a pool problem sharing the error's skill (its most
    specific one), so the C proposals differ; a proposal with nothing to swap is a
    reshuffle from the pool.
    """

    name = "programmatic"

    async def initial(self, pool: Sequence[Problem], size: int, llm: LLM | None, *, seed: int) -> Proposals:
        candidates = [e for e in (worked(p) for p in pool) if e is not None]
        if not candidates:
            return Proposals(['{"exemplars": []}'])
        return Proposals([as_text(random.Random(seed).sample(candidates, min(size, len(candidates))))])

    async def propose(
        self,
        current: ExemplarSet,
        errors: Sequence[tuple[Problem, Attempt]],
        pool: Sequence[Problem],
        count: int,
        llm: LLM | None,
        *,
        seed: int,
    ) -> Proposals:
        shown = {e.question for e in current.exemplars}
        by_skill: dict[str, list[Problem]] = {}
        for problem in pool:
            for skill in problem.skills:
                by_skill.setdefault(skill, []).append(problem)
        texts = []
        for number in range(count):
            rng = random.Random(seed * 1000 + number)
            exemplars = list(current.exemplars)
            for wrong, _ in rng.sample(list(errors), len(errors)):
                skill = wrong.skills[-1] if wrong.skills else None
                options = [p for p in by_skill.get(skill, []) if p.question not in shown and p.question != wrong.question]
                if not options:
                    continue
                replacement = worked(rng.choice(options))
                if replacement is not None:
                    exemplars[rng.randrange(len(exemplars))] = replacement
                    shown.add(replacement.question)
                    if rng.random() < 0.5:  # revisions of one or a few exemplars
                        break
            texts.append(as_text(exemplars))
        return Proposals(texts)


class LLMProposer:
    """The teacher model writes revised exemplar sets from the errors (the paper's M3).

    ``count`` sets are sampled from one prompt (n = count, T > 0), constrained to the
    ExemplarSet schema; whatever does not parse is the loop's recorded failure.
    """

    name = "llm"

    def __init__(self, max_tokens: int = 768, temperature: float = 0.8, prompts: dict[str, str] | None = None):
        self.params = SamplingParams(max_tokens=max_tokens, temperature=temperature)
        self.prompts = PromptSet.load("classroom.environments.lbt", "prompts.yaml", prompts)

    async def initial(self, pool: Sequence[Problem], size: int, llm: LLM | None, *, seed: int) -> Proposals:
        # The first set is the pool's, as the paper starts from given exemplars.
        return await ProgrammaticProposer().initial(pool, size, llm, seed=seed)

    async def propose(
        self,
        current: ExemplarSet,
        errors: Sequence[tuple[Problem, Attempt]],
        pool: Sequence[Problem],
        count: int,
        llm: LLM | None,
        *,
        seed: int,
    ) -> Proposals:
        if llm is None:
            raise ValueError("the llm exemplar proposer needs the teacher's model")
        shown_errors = (
            "\n".join(f"- {p.question} (right answer {p.answer}; a student answered {a.final_answer})" for p, a in list(errors)[:8])
            or "- none"
        )
        prompt = self.prompts.render(
            "revise_exemplars",
            size=len(current.exemplars),
            exemplars=json.dumps([e.model_dump() for e in current.exemplars], indent=1),
            errors=shown_errors,
        )
        params = self.params.model_copy(update={"n": count, "seed": seed})
        [replies] = await llm.chat([[ChatMessage(role="user", content=prompt)]], params, schema=ExemplarSet)
        return Proposals([r.text for r in replies], sum(r.usage.total_tokens for r in replies))
