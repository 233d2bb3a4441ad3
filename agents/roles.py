"""The roles: Teacher, Student (and the Grader in grading.py), run as Ray actors.

A role holds an LLM handle from the ModelPool and its policies; its methods take and
return typed messages only. Each method sends its whole batch to the LLM in one call,
so the engine batches it.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from classroom.agents.grading import extract_final_answer
from classroom.agents.messages import Attempt, Explanation, InterventionDecision, Problem
from classroom.agents.policies import (
    InContextLearner,
    InterventionPolicy,
    Learner,
    NoIntervention,
    choose_interventions,
)
from classroom.agents.prompts import PromptSet
from classroom.serving.llm import LLM
from classroom.serving.types import ChatMessage, Conversation, SamplingParams


def _sampling(value: SamplingParams | Mapping[str, Any] | None, default_max_tokens: int) -> SamplingParams:
    if isinstance(value, SamplingParams):
        return value
    return SamplingParams(**{"max_tokens": default_max_tokens, **dict(value or {})})


class Teacher:
    """Decides where to intervene (its InterventionPolicy) and writes explanations."""

    def __init__(
        self,
        llm: LLM,
        *,
        name: str = "teacher",
        episode_id: str = "",
        intervention: InterventionPolicy | None = None,
        prompts: Mapping[str, str] | None = None,
        sampling: SamplingParams | Mapping[str, Any] | None = None,
        reveal_answer: bool = False,
    ):
        self.llm = llm
        self.name = name
        self.episode_id = episode_id
        self.intervention = intervention or NoIntervention()
        self.prompts = PromptSet.load("teacher", prompts)
        self.sampling = _sampling(sampling, 192)
        # The ToM paper's teacher solves the problem itself; revealing the reference
        # answer makes it an answer-key tutor instead.
        self.reveal_answer = reveal_answer

    async def decide(
        self, problems: Sequence[Problem], attempts: Sequence[Attempt], budget: int
    ) -> list[InterventionDecision]:
        """One decision per problem; at most ``budget`` of them intervene."""
        utilities = await self.intervention.utilities(problems, attempts)
        if len(utilities) != len(problems):
            raise ValueError(
                f"intervention policy {self.intervention.name!r} returned {len(utilities)} "
                f"utilities for {len(problems)} problems"
            )
        chosen = set(choose_interventions(utilities, budget))
        decisions = []
        left = budget
        for i, (problem, attempt) in enumerate(zip(problems, attempts)):
            if i in chosen:
                left -= 1
            decisions.append(
                InterventionDecision(
                    episode_id=self.episode_id,
                    sender=self.name,
                    parents=(problem.id, attempt.id),
                    problem_id=problem.id,
                    intervene=i in chosen,
                    policy=self.intervention.name,
                    utility=utilities[i],
                    budget_left=left,
                )
            )
        return decisions

    def _conversation(self, problem: Problem) -> Conversation:
        if self.reveal_answer:
            user = self.prompts.render("explain_with_answer", question=problem.question, answer=problem.answer)
        else:
            user = self.prompts.render("explain", question=problem.question)
        return [ChatMessage(role="system", content=self.prompts.get("system")), ChatMessage(role="user", content=user)]

    async def explain(self, problems: Sequence[Problem]) -> list[Explanation]:
        """An explanation of each problem, written in one batch."""
        if not problems:
            return []
        completions = await self.llm.chat([self._conversation(p) for p in problems], self.sampling)
        return [
            Explanation(
                episode_id=self.episode_id,
                sender=self.name,
                parents=(problem.id,),
                problem_id=problem.id,
                text=c[0].text.strip(),
                final_answer=extract_final_answer(c[0].text),
                usage=c[0].usage,
            )
            for problem, c in zip(problems, completions)
        ]


class Student:
    """Answers problems, alone, with an explanation, or with demonstrations it learned."""

    def __init__(
        self,
        llm: LLM,
        *,
        name: str = "student",
        episode_id: str = "",
        learner: Learner | None = None,
        prompts: Mapping[str, str] | None = None,
        sampling: SamplingParams | Mapping[str, Any] | None = None,
        adapter: str | None = None,
    ):
        self.llm = llm
        self.name = name
        self.episode_id = episode_id
        self.learner = learner or InContextLearner()
        self.prompts = PromptSet.load("student", prompts)
        self.sampling = _sampling(sampling, 160)
        self.adapter = adapter  # a LoRA adapter the backend has loaded, if any

    def _conversation(
        self, problem: Problem, explanation: Explanation | None, use_memory: bool
    ) -> tuple[Conversation, tuple[str, ...]]:
        turns = [ChatMessage(role="system", content=self.prompts.get("system"))]
        context: list[str] = []
        if use_memory:
            for demo_problem, demo in self.learner.demonstrations(problem):
                turns.append(ChatMessage(role="user", content=self.prompts.render("answer", question=demo_problem.question)))
                turns.append(ChatMessage(role="assistant", content=self.prompts.render("demonstration", explanation=demo.text)))
                context.append(demo.id)
        if explanation is not None:
            user = self.prompts.render("answer_with_explanation", question=problem.question, explanation=explanation.text)
            context.append(explanation.id)
        else:
            user = self.prompts.render("answer", question=problem.question)
        turns.append(ChatMessage(role="user", content=user))
        return turns, tuple(context)

    async def answer(
        self,
        problems: Sequence[Problem],
        *,
        phase: str,
        explanations: Sequence[Explanation] | None = None,
        use_memory: bool = False,
    ) -> list[Attempt]:
        """One attempt per problem (ungraded: the Grader fills in ``correct``).

        ``explanations`` pairs with ``problems`` by ``problem_id``; ``use_memory``
        puts the learner's demonstrations before each question.
        """
        if not problems:
            return []
        by_problem = {e.problem_id: e for e in explanations or ()}
        prepared = [self._conversation(p, by_problem.get(p.id), use_memory) for p in problems]
        completions = await self.llm.chat([c for c, _ in prepared], self.sampling, adapter=self.adapter)
        attempts = []
        for problem, (_, context), c in zip(problems, prepared, completions):
            attempts.append(
                Attempt(
                    episode_id=self.episode_id,
                    sender=self.name,
                    parents=(problem.id, *context),
                    problem_id=problem.id,
                    reasoning=c[0].text.strip(),
                    final_answer=extract_final_answer(c[0].text),
                    phase=phase,
                    context_ids=context,
                    usage=c[0].usage,
                )
            )
        return attempts

    async def learn(self, problems: Sequence[Problem], explanations: Sequence[Explanation]) -> int:
        """Add explained problems to the learner; returns the memory's size."""
        self.learner.learn(problems, explanations)
        return len(getattr(self.learner, "memory", ()))
