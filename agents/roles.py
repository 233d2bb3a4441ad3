"""The roles every loop shares: Teacher and Student (the Grader is in grading.py).

A role holds an LLM handle from the ModelPool and its policies; its methods take and
return typed messages only. Each method sends its whole batch to the LLM in one call,
so the engine batches it. Roles run as Ray actors (see :mod:`classroom.agents.transport`
for the typed calls); a loop that needs more of a role subclasses it in its package.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel

from classroom.agents.confidence import answer_probability
from classroom.agents.grading import extract_final_answer
from classroom.agents.learners import InContextLearner, Learner
from classroom.agents.messages import Attempt, Explanation, Problem, TrainingExample, TrainingRun
from classroom.serving.adapters import AdapterFiles
from classroom.serving.errors import BackendError
from classroom.serving.llm import LLM, AdapterLLM
from classroom.serving.prompts import PromptSet
from classroom.serving.structured import Parsed, chat_structured
from classroom.serving.types import ChatMessage, Completion, Conversation, SamplingParams, conversation_dicts

T = TypeVar("T", bound=BaseModel)

# (problem, explanation) pairs shown before a question: few-shot demonstrations.
Demonstrations = Sequence[tuple[Problem, Explanation]]


def sampling_params(value: SamplingParams | Mapping[str, Any] | None, default_max_tokens: int) -> SamplingParams:
    """A role's sampling from config (a dict) or as given, with the role's token default."""
    if isinstance(value, SamplingParams):
        return value
    return SamplingParams(**{"max_tokens": default_max_tokens, **dict(value or {})})


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


class Teacher:
    """Writes explanations: its own chain of thought, or the task's reference solution."""

    def __init__(
        self,
        llm: LLM,
        *,
        name: str = "teacher",
        episode_id: str = "",
        prompts: Mapping[str, str] | None = None,
        sampling: SamplingParams | Mapping[str, Any] | None = None,
    ):
        self.llm = llm
        self.name = name
        self.episode_id = episode_id
        self.prompts = PromptSet.load("classroom.agents", "prompts/teacher.yaml", prompts)
        # logprobs=0: the chosen tokens' log-probabilities, for the teacher's confidence.
        self.sampling = sampling_params(sampling, 192).model_copy(update={"logprobs": 0})

    def conversation(self, problem: Problem, user: str | None = None, demonstrations: Demonstrations = ()) -> Conversation:
        """System turn, demonstrations as earlier question/explanation turns, then ``user``
        (by default the plain question)."""
        turns = [ChatMessage(role="system", content=self.prompts.get("system"))]
        for demo_problem, demo in demonstrations:
            turns.append(ChatMessage(role="user", content=self.prompts.render("explain", question=demo_problem.question)))
            turns.append(ChatMessage(role="assistant", content=demo.text))
        turns.append(ChatMessage(role="user", content=user or self.prompts.render("explain", question=problem.question)))
        return turns

    def explanation(self, problem: Problem, completion: Completion, *, style: str, parents: tuple[str, ...] = ()) -> Explanation:
        """One completion as this teacher's Explanation of ``problem``."""
        final = extract_final_answer(completion.text)
        return Explanation(
            episode_id=self.episode_id,
            sender=self.name,
            parents=(problem.id, *parents),
            problem_id=problem.id,
            text=completion.text.strip(),
            final_answer=final,
            style=style,
            answer_prob=answer_probability(completion.logprobs, final),
            usage=completion.usage,
        )

    async def explain(
        self,
        problems: Sequence[Problem],
        *,
        demonstrations: Demonstrations = (),
        with_answer: bool = False,
        adapter: str | None = None,
    ) -> list[Explanation]:
        """The teacher's own explanation of each problem, in one batch.

        ``demonstrations`` come first as worked examples; ``with_answer`` shows the
        teacher the reference answer (an answer-key tutor instead of a solver);
        ``adapter`` answers with a LoRA adapter its engine serves (a trained teacher).
        """
        if not problems:
            return []
        conversations = [
            self.conversation(
                p,
                self.prompts.render("explain_with_answer", question=p.question, answer=p.answer) if with_answer else None,
                demonstrations,
            )
            for p in problems
        ]
        completions = await self.llm.chat(conversations, self.sampling, adapter=adapter)
        parents = tuple(e.id for _, e in demonstrations)
        return [self.explanation(p, c[0], style="unpersonalized", parents=parents) for p, c in zip(problems, completions)]

    def prompts_of(self, problems: Sequence[Problem]) -> list[list[dict[str, str]]]:
        """The conversation this teacher is asked for each problem, as role/content
        dicts (a preference pair's prompt must be what the teacher is asked)."""
        return [conversation_dicts(self.conversation(p)) for p in problems]

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
        """``samples`` explanations of each problem, sampled at ``temperature`` in one
        request per problem (they share its prompt); a seed makes them repeatable."""
        if not problems:
            return []
        update: dict[str, Any] = {"n": samples, "temperature": temperature, "seed": seed}
        if max_tokens is not None:
            update["max_tokens"] = max_tokens
        params = self.sampling.model_copy(update=update)
        completions = await self.llm.chat([self.conversation(p) for p in problems], params, adapter=adapter)
        return [[self.explanation(p, c, style="sampled") for c in replies] for p, replies in zip(problems, completions)]

    def gold(self, problems: Sequence[Problem]) -> list[Explanation]:
        """The task's reference solution of each problem (no model call)."""
        explanations = []
        for problem in problems:
            text = gold_explanation(problem)
            if text is None:
                raise ValueError(f"problem {problem.id} (task {problem.task!r}) has no reference solution for gold explanations")
            explanations.append(
                Explanation(
                    episode_id=self.episode_id,
                    sender=self.name,
                    parents=(problem.id,),
                    problem_id=problem.id,
                    text=text,
                    final_answer=problem.answer,
                    style="gold",
                    answer_prob=1.0,
                )
            )
        return explanations


class Student:
    """Answers problems, alone, with an explanation, or with demonstrations; learns."""

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
        self.learner: Learner = learner or InContextLearner()
        self.prompts = PromptSet.load("classroom.agents", "prompts/student.yaml", prompts)
        # logprobs=0: the chosen tokens' log-probabilities, for the student's confidence.
        self.sampling = sampling_params(sampling, 160).model_copy(update={"logprobs": 0})
        self.adapter = adapter  # a LoRA adapter the backend has loaded, if any
        # Where the caller keeps the adapter it answers with, and the last one it trained
        # (folders of the caller's node, named by it: this student may run on another).
        self.adapter_path: str | None = None
        self.trained_path: str | None = None
        # The last trained adapter's files, until the caller has written them.
        self.trained_files: AdapterFiles | None = None

    def _conversation(
        self,
        problem: Problem,
        explanation: Explanation | None,
        use_memory: bool,
        demonstrations: Demonstrations | None,
    ) -> tuple[Conversation, tuple[str, ...]]:
        turns = [ChatMessage(role="system", content=self.prompts.get("system"))]
        context: list[str] = []
        demos = list(demonstrations or ())
        if use_memory:
            demos += self.learner.demonstrations(problem)
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
        demonstrations: Demonstrations | None = None,
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
            final = extract_final_answer(c[0].text)
            attempts.append(
                Attempt(
                    episode_id=self.episode_id,
                    sender=self.name,
                    parents=(problem.id, *context),
                    problem_id=problem.id,
                    reasoning=c[0].text.strip(),
                    final_answer=final,
                    answer_prob=answer_probability(c[0].logprobs, final),
                    phase=phase,
                    context_ids=context,
                    usage=c[0].usage,
                )
            )
        return attempts

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
        """``samples`` attempts at each problem, each after its own demonstrations (an
        exam after a worked example, as learning by teaching gives them), in one batch.
        ``temperature``, ``seed`` and ``max_tokens`` override the student's sampling (a
        seed makes the samples repeatable)."""
        if not items:
            return []
        prepared = [self._conversation(problem, None, False, demos) for problem, demos in items]
        update: dict[str, Any] = {"n": samples}
        if max_tokens is not None:
            update["max_tokens"] = max_tokens
        if temperature is not None:
            update["temperature"] = temperature
        if seed is not None:
            update["seed"] = seed
        completions = await self.llm.chat([c for c, _ in prepared], self.sampling.model_copy(update=update), adapter=self.adapter)
        result = []
        for (problem, _), (_, context), replies in zip(items, prepared, completions):
            attempts = []
            for reply in replies:
                final = extract_final_answer(reply.text)
                attempts.append(
                    Attempt(
                        episode_id=self.episode_id,
                        sender=self.name,
                        parents=(problem.id, *context),
                        problem_id=problem.id,
                        reasoning=reply.text.strip(),
                        final_answer=final,
                        answer_prob=answer_probability(reply.logprobs, final),
                        phase=phase,
                        context_ids=context,
                        usage=reply.usage,
                    )
                )
            result.append(attempts)
        return result

    async def answer_structured(
        self, problems: Sequence[Problem], schema: type[T], *, base: bool = False, max_tokens: int | None = None
    ) -> list[Parsed[T]]:
        """One reply per problem in the form ``schema`` gives (the backend's structured
        output, one repair turn; see :func:`chat_structured`): a reply that still does not
        validate comes back with ``value=None`` and the reason, for the caller to count.
        ``max_tokens`` overrides the student's own for these replies."""
        if not problems:
            return []
        conversations = [self._conversation(p, None, False, None)[0] for p in problems]
        params = self.sampling if max_tokens is None else self.sampling.model_copy(update={"max_tokens": max_tokens})
        return await chat_structured(self.llm, conversations, schema, params, adapter=None if base else self.adapter)

    def sft_rows(self, examples: Sequence[TrainingExample]) -> list[dict[str, Any]]:
        """Examples in TRL's conversational prompt-completion format, as this student asks.

        The prompt is exactly the conversation :meth:`answer` sends for the question,
        so what the student is trained on is what it is asked.
        """
        rows = []
        for example in examples:
            conversation, _ = self._conversation(Problem(question=example.prompt, answer=example.answer or ""), None, False, None)
            rows.append(
                {
                    "prompt": [m.model_dump(exclude_none=True) for m in conversation],
                    "completion": [{"role": "assistant", "content": example.completion}],
                }
            )
        return rows

    async def train(self, examples: Sequence[TrainingExample], *, iteration: int, out_dir: str, adapter_name: str) -> TrainingRun:
        """Learn from all examples so far (oldest first), through the learner.

        A learner that trains an adapter hands back its files; they are loaded into the
        running engine under ``adapter_name`` and answer every later question. The
        caller keeps them in ``out_dir`` (:meth:`take_adapter`: this student may run on a
        node that does not have the caller's folders).
        """
        started = time.time()
        outcome = await self.learner.learn(examples, self.sft_rows(examples))
        if outcome.adapter is not None:
            await self._load_adapter(adapter_name, outcome.adapter, out_dir)
            self.trained_path, self.trained_files = out_dir, outcome.adapter
        return TrainingRun(
            episode_id=self.episode_id,
            sender=self.name,
            iteration=iteration,
            learner=type(self.learner).__name__,
            examples=outcome.examples,
            adapter=self.adapter if outcome.adapter else None,
            adapter_path=out_dir if outcome.adapter else None,
            epochs=outcome.epochs,
            train_loss=outcome.train_loss,
            seconds=round(time.time() - started, 2),
        )

    def take_adapter(self) -> AdapterFiles | None:
        """The files of the adapter :meth:`train` made (once: the caller keeps them)."""
        files, self.trained_files = self.trained_files, None
        return files

    async def use_adapter(self, name: str, adapter: AdapterFiles, path: str) -> None:
        """Load an adapter trained elsewhere (a DPO step; its files, and the caller's
        folder that keeps them) into the engine and answer with it."""
        await self._load_adapter(name, adapter, path)

    async def _load_adapter(self, name: str, adapter: AdapterFiles, path: str) -> None:
        if not isinstance(self.llm, AdapterLLM):
            raise BackendError(f"the student's backend {self.llm.name} cannot load LoRA adapters")
        await self.llm.load_adapter(name, adapter)
        self.adapter, self.adapter_path = name, path

    def save_state(self) -> dict[str, Any]:
        """What a resumed episode needs to rebuild this student: its learner, and the
        caller's folders of the adapter it answers with and of the last one it trained."""
        return {
            "adapter": self.adapter,
            "adapter_path": self.adapter_path,
            "trained_path": self.trained_path,
            "learner": self.learner.state(),
        }

    async def load_state(self, state: Mapping[str, Any], served: AdapterFiles | None = None, trained: AdapterFiles | None = None) -> None:
        """Rebuild from :meth:`save_state` and the files the caller kept: ``served`` (of
        ``adapter_path``) is loaded again, ``trained`` (of ``trained_path``) is what the
        learner continues from."""
        learner_state = dict(state.get("learner") or {})
        if trained is not None:
            learner_state["adapter"] = trained
        self.learner.restore(learner_state)
        self.trained_path = state.get("trained_path")
        if state.get("adapter") and served is not None:
            await self._load_adapter(state["adapter"], served, state["adapter_path"])
