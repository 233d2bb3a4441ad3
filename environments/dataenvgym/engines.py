"""Data-generation engines: turn a plan's requests into training examples.

:class:`ReasoningGymEngine` is programmatic (reasoning-gym generators, exact answers,
short worked solutions); :class:`LLMDataEngine` has the teacher model write problem,
worked solution and answer. Any importable class implementing
:class:`DataGenerationEngine` can be named by ``env.engine._target_``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from classroom.agents.grading import REASONING_GYM_KEY, reasoning_gym_dataset
from classroom.agents.messages import ParseFailure, TrainingExample
from classroom.agents.skills import top_skill
from classroom.agents.step_checker import worked_solution
from classroom.environments.dataenvgym.types import DataRequest, Generated
from classroom.environments.dataenvgym.words import kind_lines, read_kind
from classroom.environments.tasks import REASONING_GYM_DEFAULTS
from classroom.serving.llm import LLM
from classroom.serving.prompts import PromptSet
from classroom.serving.structured import chat_structured
from classroom.serving.types import ChatMessage, SamplingParams


@runtime_checkable
class DataGenerationEngine(Protocol):
    """Makes training examples for requests (problem, worked solution, answer)."""

    name: str

    async def generate(self, requests: Sequence[DataRequest], llm: LLM | None, *, seed: int) -> Generated: ...


class ReasoningGymEngine:
    """Programmatic engine: reasoning-gym generators with exact answers.

    ``catalogue`` maps a dataset to named sub-skills (``create_dataset`` settings), as
    the ``reasoning_gym_skills`` task does. Open-ended requests are acted on through
    their words: each "- N problems: KIND" line it can read becomes N fresh problems of
    that kind; what it cannot read is recorded, not guessed.
    """

    name = "reasoning_gym"

    def __init__(self, catalogue: dict[str, dict[str, dict[str, Any]]] | None = None):
        self.catalogue = catalogue or {}

    def _settings(self, skill: str) -> list[tuple[str, str, dict[str, Any]]]:
        from reasoning_gym.factory import DATASETS

        dataset, _, sub = skill.partition("/")
        subs = self.catalogue.get(dataset, {})
        if sub:
            return [(dataset, skill, dict(subs[sub]))] if sub in subs else []
        if subs:
            return [(dataset, f"{dataset}/{name}", dict(s)) for name, s in subs.items()]
        return [(dataset, dataset, dict(REASONING_GYM_DEFAULTS.get(dataset, {})))] if dataset in DATASETS else []

    def _make(self, dataset: str, path: str, settings: dict[str, Any], count: int, seed: int, note: str) -> list[TrainingExample]:
        kwargs = {**{k: v for k, v in settings.items() if k not in ("size", "seed")}, "size": count, "seed": seed}
        data = reasoning_gym_dataset(dataset, kwargs)
        examples = []
        for index in range(count):
            entry = data[index]
            answer = str(entry["answer"])
            skills = (dataset,) if path == dataset else (dataset, path)
            examples.append(
                TrainingExample(
                    sender=self.name,
                    prompt=entry["question"],
                    answer=answer,
                    skills=skills,
                    source=note,
                    completion=worked_solution(entry.get("metadata", {}).get("expression"), answer),
                    metadata={REASONING_GYM_KEY: {"dataset": dataset, "config": kwargs, "entry": entry}},
                )
            )
        return examples

    async def generate(self, requests: Sequence[DataRequest], llm: LLM | None, *, seed: int) -> Generated:
        examples: list[TrainingExample] = []
        failures: list[ParseFailure] = []
        for number, request in enumerate(requests):
            # Not a task's seed (those are 32-bit hashes of seed and names, see
            # tasks.subskill_seed; one equals this by chance 1 time in 4e9): fresh problems.
            base = 10_000_000 + seed * 10_000 + number * 100
            if request.skill is None:  # open-ended: act on the plan's words
                made, missed = self._from_words(request.instructions, base)
                examples += made
                failures += missed
                continue
            targets = self._settings(request.skill)
            if not targets:
                failures.append(
                    ParseFailure(
                        sender=self.name,
                        expected="a skill this engine can generate",
                        raw_text=request.skill,
                        error=f"no reasoning-gym generator for skill {request.skill!r}",
                    )
                )
                continue
            per = Counter(i % len(targets) for i in range(request.count))
            for i, n in per.items():
                dataset, path, settings = targets[i]
                examples += self._make(dataset, path, settings, n, base + i, f"skill {path}")
        return Generated(examples, failures)

    def _from_words(self, instructions: str, base: int) -> tuple[list[TrainingExample], list[ParseFailure]]:
        """Examples for each "- N problems: WORDS" line whose words name a kind this
        engine makes (see :mod:`~classroom.environments.dataenvgym.words`)."""
        lines = kind_lines(instructions)
        if not lines:
            return [], [
                ParseFailure(
                    sender=self.name,
                    expected='lines "- N problems: KIND"',
                    raw_text=instructions[:300],
                    error="the open-ended plan names no kind of problem in words this engine reads",
                )
            ]
        examples: list[TrainingExample] = []
        failures: list[ParseFailure] = []
        for offset, (count, words) in enumerate(lines):
            kind = read_kind(words)
            if kind is None:
                failures.append(
                    ParseFailure(
                        sender=self.name,
                        expected="a kind of arithmetic problem",
                        raw_text=words[:200],
                        error=f"no reasoning-gym generator makes {words!r}",
                    )
                )
                continue
            dataset, settings = kind.generator()
            examples += self._make(dataset, dataset, settings, count, base + 50 + offset, f"open-ended: {words}")
        return examples, failures


class _WrittenProblem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=1, max_length=800)
    reasoning: str = Field(max_length=1500)
    answer: str = Field(min_length=1, max_length=60)


class LLMDataEngine:
    """The teacher model writes problems, worked solutions and answers for a request.

    Each example is its own request (sampled with its own seed), so a batch of them
    goes to the engine at once. Replies that do not parse are recorded and skipped.
    """

    name = "llm"

    def __init__(self, max_tokens: int = 384, temperature: float = 0.8, examples_shown: int = 3, prompts: dict[str, str] | None = None):
        self.params = SamplingParams(max_tokens=max_tokens, temperature=temperature)
        self.examples_shown = examples_shown
        self.prompts = PromptSet.load("classroom.environments.dataenvgym", "prompts.yaml", prompts)

    async def generate(self, requests: Sequence[DataRequest], llm: LLM | None, *, seed: int) -> Generated:
        if llm is None:
            raise ValueError("the llm data engine needs the teacher's model")
        jobs: list[tuple[DataRequest, list[ChatMessage]]] = []
        for request in requests:
            shown = "".join(f"\n- {p.question}" for p in request.like[: self.examples_shown])
            prompt = self.prompts.render(
                "write",
                topic=f" the skill '{request.skill}'" if request.skill else "",
                instructions=f"\n{request.instructions}" if request.instructions else "",
                examples=f"\nProblems like these:{shown}" if shown else "",
            )
            jobs += [(request, [ChatMessage(role="user", content=prompt)])] * request.count
        if not jobs:
            return Generated()
        # One batch keeps the engine busy (one call per example would serialize).
        replies = await chat_structured(llm, [c for _, c in jobs], _WrittenProblem, self.params)
        examples: list[TrainingExample] = []
        failures: list[ParseFailure] = []
        for (request, _), parsed in zip(jobs, replies):
            if parsed.value is None:
                failures.append(ParseFailure(sender=self.name, expected="_WrittenProblem", raw_text=parsed.raw, error=parsed.error or ""))
                continue
            value = parsed.value
            skills = () if request.skill is None else tuple(dict.fromkeys((top_skill(request.skill), request.skill)))
            examples.append(
                TrainingExample(
                    sender=self.name,
                    prompt=value.question.strip(),
                    answer=value.answer.strip(),
                    skills=skills,
                    completion=f"{value.reasoning.strip()} The answer is {value.answer.strip()}.".strip(),
                    source=f"skill {request.skill}" if request.skill else "open-ended",
                )
            )
        return Generated(examples, failures, sum(r.usage.total_tokens for r in replies))
