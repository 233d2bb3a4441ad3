"""The roles: Teacher, Student (and the Grader in grading.py), run as Ray actors.

A role holds an LLM handle from the ModelPool and its policies; its methods take and
return typed messages only. Each method sends its whole batch to the LLM in one call,
so the engine batches it.
"""

from __future__ import annotations

import random
import re
import time
from typing import Any, Mapping, Sequence

from classroom.agents.confidence import answer_probability
from classroom.agents.grading import extract_final_answer
from classroom.agents.messages import Attempt, Explanation, InterventionDecision, Problem, TrainingExample, TrainingRun
from classroom.agents.policies import (
    InContextLearner,
    InterventionContext,
    InterventionPolicy,
    Learner,
    NoIntervention,
    SeedObservation,
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
        explanation: str = "unpersonalized",
        mental_model_demos: int = 4,
        seed: int = 0,
    ):
        if explanation not in EXPLANATION_STYLES:
            raise ValueError(f"explanation must be one of {', '.join(EXPLANATION_STYLES)}, got {explanation!r}")
        self.llm = llm
        self.name = name
        self.episode_id = episode_id
        self.explanation = explanation
        self.mental_model_demos = mental_model_demos
        self.seed = seed
        self.intervention = intervention or NoIntervention()
        self.prompts = PromptSet.load("teacher", prompts)
        # logprobs=0: the chosen tokens' log-probabilities, for the teacher's confidence.
        self.sampling = _sampling(sampling, 192).model_copy(update={"logprobs": 0})
        # The ToM paper's teacher solves the problem itself; revealing the reference
        # answer makes it an answer-key tutor instead.
        self.reveal_answer = reveal_answer

    async def decide(
        self,
        problems: Sequence[Problem],
        attempts: Sequence[Attempt],
        budget: int,
        *,
        explanations: Sequence[Explanation] = (),
        seed: Sequence[SeedObservation] = (),
        outcomes: Sequence[Attempt] = (),
    ) -> list[InterventionDecision]:
        """One decision per problem, with its utility; at most ``budget`` intervene.

        ``seed`` is what the teacher observed of this student (its mental model's
        demonstrations); ``outcomes`` are for oracle policies only.
        """
        context = InterventionContext(
            explanations={e.problem_id: e for e in explanations},
            seed=list(seed),
            outcomes={a.problem_id: a for a in outcomes},
            simulate=lambda ps, es, ts: self.simulate(ps, es, ts, list(seed)),
        )
        utilities = await self.intervention.utilities(problems, attempts, context)
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

    def _conversation(
        self, problem: Problem, style: str, personal: Sequence[tuple[Problem, Explanation]]
    ) -> Conversation:
        turns = [ChatMessage(role="system", content=self.prompts.get("system"))]
        if style == "personalized":
            # Demonstrations: explanations that turned this student from wrong to right.
            for demo_problem, demo in personal:
                turns.append(ChatMessage(role="user", content=self.prompts.render("explain", question=demo_problem.question)))
                turns.append(ChatMessage(role="assistant", content=demo.text))
        if style == "deceptive":
            user = self.prompts.render("explain_deceptive", question=problem.question, wrong_answer=wrong_answer(problem, self.seed))
        elif self.reveal_answer:
            user = self.prompts.render("explain_with_answer", question=problem.question, answer=problem.answer)
        else:
            user = self.prompts.render("explain", question=problem.question)
        turns.append(ChatMessage(role="user", content=user))
        return turns

    async def explain(
        self,
        problems: Sequence[Problem],
        *,
        style: str | None = None,
        personal: Sequence[tuple[Problem, Explanation]] = (),
    ) -> list[Explanation]:
        """An explanation of each problem, written in one batch.

        ``style`` (default: the teacher's): unpersonalized (its own chain of thought),
        personalized (few-shot with ``personal``: explanations that helped this
        student), gold (the task's reference solution, no model call) or deceptive
        (argues for a wrong answer: a misaligned teacher).
        """
        style = style or self.explanation
        if not problems:
            return []
        if style == "gold":
            return [self._gold(p) for p in problems]
        if style == "personalized" and not personal:
            style_used = "unpersonalized"  # nothing helped this student yet: fall back
        else:
            style_used = style
        completions = await self.llm.chat([self._conversation(p, style_used, personal) for p in problems], self.sampling)
        explanations = []
        for problem, c in zip(problems, completions):
            final = extract_final_answer(c[0].text)
            explanations.append(
                Explanation(
                    episode_id=self.episode_id,
                    sender=self.name,
                    parents=(problem.id, *(e.id for _, e in personal)) if style_used == "personalized" else (problem.id,),
                    problem_id=problem.id,
                    text=c[0].text.strip(),
                    final_answer=final,
                    style=style_used,
                    answer_prob=answer_probability(c[0].logprobs, final),
                    usage=c[0].usage,
                )
            )
        return explanations

    def _gold(self, problem: Problem) -> Explanation:
        text = gold_explanation(problem)
        if text is None:
            raise ValueError(f"problem {problem.id} (task {problem.task!r}) has no reference solution for gold explanations")
        return Explanation(
            episode_id=self.episode_id, sender=self.name, parents=(problem.id,), problem_id=problem.id,
            text=text, final_answer=problem.answer, style="gold", answer_prob=1.0,
        )

    async def simulate(
        self,
        problems: Sequence[Problem],
        explanations: Sequence[Explanation | None],
        targets: Sequence[str],
        seed: Sequence[SeedObservation],
    ) -> list[float]:
        """The mental model: P(this student answers ``target``), simulated few-shot.

        Demonstrations are the student's real answers on the seed set: alone when
        simulating no intervention, after the teacher's explanation otherwise.
        """
        if not problems:
            return []
        demos = list(seed)[: self.mental_model_demos]
        conversations = []
        for problem, explanation in zip(problems, explanations):
            turns = [ChatMessage(role="system", content=self.prompts.get("simulate_system"))]
            for obs in demos:  # each demo: the question as asked, the student's real answer
                if explanation is None:
                    asked = self.prompts.render("simulate_query", question=obs.problem.question)
                    answered = obs.attempt.final_answer
                else:
                    asked = self.prompts.render(
                        "simulate_query_with_explanation", question=obs.problem.question, explanation=obs.explanation.text
                    )
                    answered = obs.helped.final_answer
                turns.append(ChatMessage(role="user", content=asked))
                turns.append(ChatMessage(role="assistant", content=answered or "none"))
            if explanation is None:
                query = self.prompts.render("simulate_query", question=problem.question)
            else:
                query = self.prompts.render("simulate_query_with_explanation", question=problem.question, explanation=explanation.text)
            turns.append(ChatMessage(role="user", content=query))
            conversations.append(turns)
        params = SamplingParams(max_tokens=8, temperature=0.0, logprobs=10)
        completions = await self.llm.chat(conversations, params)
        return [
            (answer_probability(c[0].logprobs, target) or 0.0) if target else 0.0
            for c, target in zip(completions, targets)
        ]


EXPLANATION_STYLES = ("unpersonalized", "personalized", "gold", "deceptive")
_CALCULATOR = re.compile(r"<<[^>]*>>")


def gold_explanation(problem: Problem) -> str | None:
    """The task's own worked solution, if it has one (GSM8K solutions, reasoning-gym
    expressions), ending in the usual answer line."""
    solution = problem.metadata.get("solution")
    if isinstance(solution, str) and solution.strip():
        body = _CALCULATOR.sub("", solution).split("####")[0].strip()
        return f"{body}\nThe answer is {problem.answer}."
    entry = (problem.metadata.get("reasoning_gym") or {}).get("entry") or {}
    expression = (entry.get("metadata") or {}).get("expression")
    if expression:
        return f"Compute {expression} = {problem.answer}.\nThe answer is {problem.answer}."
    return None


def wrong_answer(problem: Problem, seed: int = 0) -> str:
    """A plausible wrong answer for a deceptive explanation (near the right one)."""
    rng = random.Random(f"{seed}-{problem.id}")
    try:
        value = float(problem.answer.replace(",", ""))
    except ValueError:
        return "0" if problem.answer.strip() != "0" else "1"
    offset = rng.choice([-3, -2, -1, 1, 2, 3, 10])
    wrong = value + offset if value.is_integer() else value * rng.choice([0.5, 2.0])
    return str(int(wrong)) if float(wrong).is_integer() else f"{wrong:g}"


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
        # logprobs=0: the chosen tokens' log-probabilities, for the student's confidence.
        self.sampling = _sampling(sampling, 160).model_copy(update={"logprobs": 0})
        self.adapter = adapter  # a LoRA adapter the backend has loaded, if any

    def _conversation(
        self,
        problem: Problem,
        explanation: Explanation | None,
        use_memory: bool,
        demonstrations: Sequence[tuple[Problem, Explanation]] | None,
    ) -> tuple[Conversation, tuple[str, ...]]:
        turns = [ChatMessage(role="system", content=self.prompts.get("system"))]
        context: list[str] = []
        demos = list(demonstrations or ())
        if use_memory:
            demos += self.learner.demonstrations(problem)
        if demos:
            for demo_problem, demo in demos:
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
        demonstrations: Sequence[tuple[Problem, Explanation]] | None = None,
        base: bool = False,
    ) -> list[Attempt]:
        """One attempt per problem (ungraded: the Grader fills in ``correct``).

        ``explanations`` pairs with ``problems`` by ``problem_id``; ``use_memory``
        puts the learner's demonstrations before each question; ``demonstrations``
        puts the given ones there. ``base`` answers as the untrained student: no
        adapter, no memory.
        """
        if not problems:
            return []
        by_problem = {e.problem_id: e for e in explanations or ()}
        prepared = [self._conversation(p, by_problem.get(p.id), use_memory and not base, demonstrations) for p in problems]
        adapter = None if base else self.adapter
        completions = await self.llm.chat([c for c, _ in prepared], self.sampling, adapter=adapter)
        attempts = []
        for problem, (_, context), c in zip(problems, prepared, completions):
            attempts.append(
                Attempt(
                    episode_id=self.episode_id,
                    sender=self.name,
                    parents=(problem.id, *context),
                    problem_id=problem.id,
                    reasoning=c[0].text.strip(),
                    final_answer=(final := extract_final_answer(c[0].text)),
                    answer_prob=answer_probability(c[0].logprobs, final),
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

    def sft_rows(self, examples: Sequence[TrainingExample]) -> list[dict[str, Any]]:
        """Examples in TRL's conversational prompt-completion format, as this student asks.

        The prompt is exactly the conversation :meth:`answer` sends for the question,
        so what the student is trained on is what it is asked.
        """
        rows = []
        for example in examples:
            conversation, _ = self._conversation(Problem(question=example.prompt, answer=example.answer or ""), None, False, None)
            rows.append({
                "prompt": [m.model_dump(exclude_none=True) for m in conversation],
                "completion": [{"role": "assistant", "content": example.completion}],
            })
        return rows

    async def train(self, examples: Sequence[TrainingExample], *, iteration: int, out_dir: str, adapter_name: str) -> TrainingRun:
        """Learn from all examples so far (oldest first).

        A fine-tuning learner (one with ``fit``) trains a LoRA adapter into ``out_dir``,
        which is then loaded into the running engine under ``adapter_name`` and used
        for every later answer. Other learners add the examples they have not seen to
        their memory.
        """
        started = time.time()
        fit = getattr(self.learner, "fit", None)
        if fit is None:
            seen = {p.id for p, _ in getattr(self.learner, "memory", ())}
            new = [e for e in examples if e.id not in seen]
            problems = [Problem(id=e.id, question=e.prompt, answer=e.answer or "", skills=e.skills) for e in new]
            explanations = [Explanation(problem_id=e.id, text=e.completion, final_answer=e.answer) for e in new]
            self.learner.learn(problems, explanations)
            return TrainingRun(
                episode_id=self.episode_id, sender=self.name, iteration=iteration,
                learner=type(self.learner).__name__, examples=len(new), seconds=round(time.time() - started, 2),
            )
        result = await fit(self.sft_rows(examples), out_dir)
        await self._load_adapter(adapter_name, result["adapter_path"])
        return TrainingRun(
            episode_id=self.episode_id, sender=self.name, iteration=iteration, learner=type(self.learner).__name__,
            examples=int(result.get("examples", len(examples))), adapter=adapter_name, adapter_path=result["adapter_path"],
            epochs=result.get("epochs"), train_loss=result.get("train_loss"), seconds=round(time.time() - started, 2),
        )

    async def _load_adapter(self, name: str, path: str) -> None:
        load = getattr(self.llm, "load_adapter", None)
        if load is None:
            raise RuntimeError(f"the student's backend {getattr(self.llm, 'name', '?')} cannot load LoRA adapters")
        await load(name, path)
        self.adapter = name

    def state(self) -> dict[str, Any]:
        """What a resumed episode needs to rebuild this student (learner state, adapter)."""
        learner_state = getattr(self.learner, "state", None)
        return {"adapter": self.adapter, "learner": learner_state() if learner_state else None}

    async def restore(self, state: Mapping[str, Any], examples: Sequence[TrainingExample], adapter_path: str | None) -> None:
        """Rebuild from :meth:`state`: reload the adapter, or relearn the examples."""
        if state.get("learner") is not None and hasattr(self.learner, "restore"):
            self.learner.restore(state["learner"])
        if getattr(self.learner, "fit", None) is None:
            await self.train(examples, iteration=0, out_dir="", adapter_name="")
        elif state.get("adapter") and adapter_path:
            await self._load_adapter(state["adapter"], adapter_path)
