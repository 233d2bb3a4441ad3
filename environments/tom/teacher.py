"""The ToM teacher: the shared Teacher plus a mental model of its student and a budget.

:class:`TomTeacher` explains in the run's style (unpersonalized, personalized, gold,
deceptive), simulates its student few-shot from the seed set (the mental model), and
decides where to intervene with its :class:`InterventionPolicy`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from classroom.agents.confidence import answer_probability
from classroom.agents.messages import Attempt, Explanation, Problem
from classroom.agents.roles import Teacher
from classroom.environments.tom.config import ExplanationStyle
from classroom.environments.tom.policies import InterventionPolicy, NoIntervention, choose_interventions
from classroom.environments.tom.types import InterventionContext, InterventionDecision, SeedObservation
from classroom.serving.llm import LLM
from classroom.serving.prompts import PromptSet
from classroom.serving.types import ChatMessage, Conversation, SamplingParams


def mixed_demonstrations(
    observations: Sequence[SeedObservation], n: int, correct: Callable[[SeedObservation], bool | None]
) -> list[SeedObservation]:
    """Up to ``n`` seed observations alternating wrong and right answers (as ``correct``
    judges the answer shown), each kind in seed-set order: the mental model's prompt
    needs both kinds to tell this student's mistakes from its successes. An answer the
    grader could not score (None) is neither: it is not shown."""
    wrong = [o for o in observations if correct(o) is False]
    right = [o for o in observations if correct(o) is True]
    chosen: list[SeedObservation] = []
    while len(chosen) < n and (wrong or right):
        for pool in (wrong, right):
            if pool and len(chosen) < n:
                chosen.append(pool.pop(0))
    return chosen


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


# The simulated student's short answer, with the top alternatives at each token.
SIMULATION_SAMPLING = SamplingParams(max_tokens=8, temperature=0.0, logprobs=10)


@dataclass(frozen=True)
class StudentView:
    """What the teacher knows of one student when it decides: the material of its
    mental model of that student (``outcomes`` for oracle policies only)."""

    name: str
    attempts: list[Attempt]
    explanations: list[Explanation]
    seed: list[SeedObservation]
    outcomes: list[Attempt] = field(default_factory=list)
    excluded: tuple[str, ...] = ()


@dataclass(frozen=True)
class DecisionSignature:
    """What every decision of one teacher carries: its episode, its sender, its policy."""

    episode_id: str
    sender: str
    policy: str


def intervention_decisions(
    signature: DecisionSignature,
    students: Sequence[str],
    problem_ids: Sequence[str],
    attempt_ids: Sequence[Sequence[str]],
    utilities: Sequence[float | None],
    budget: int,
) -> Iterator[InterventionDecision]:
    """One decision per (student, problem), student-major (``utilities`` in that order,
    ``attempt_ids`` per student: the answers decided on): the ``budget`` highest
    utilities across the class intervene (ties: earlier student, then earlier problem).
    A generator: a loop logs a long test set's decisions a chunk at a time."""
    n = len(problem_ids)
    chosen = set(choose_interventions(utilities, budget))
    left = budget
    for j, utility in enumerate(utilities):
        s, i = divmod(j, n)
        if j in chosen:
            left -= 1
        yield InterventionDecision(
            episode_id=signature.episode_id,
            sender=signature.sender,
            parents=(problem_ids[i], attempt_ids[s][i]),
            problem_id=problem_ids[i],
            student=students[s],
            intervene=j in chosen,
            policy=signature.policy,
            utility=utility,
            budget_left=left,
        )


class TomTeacher(Teacher):
    """A teacher with a budget: styles of explanation, a mental model, decisions."""

    def __init__(
        self,
        llm: LLM,
        *,
        name: str = "teacher",
        episode_id: str = "",
        intervention: InterventionPolicy | None = None,
        prompts: Mapping[str, str] | None = None,
        tom_prompts: Mapping[str, str] | None = None,
        sampling: SamplingParams | Mapping[str, Any] | None = None,
        reveal_answer: bool = False,
        mental_model_demos: int = 4,
        mental_model_target: Literal["gold", "teacher"] = "gold",
        seed: int = 0,
    ):
        super().__init__(llm, name=name, episode_id=episode_id, prompts=prompts, sampling=sampling)
        self.tom_prompts = PromptSet.load("classroom.environments.tom", "prompts.yaml", tom_prompts)
        self.intervention = intervention or NoIntervention()
        # The ToM paper's teacher solves the problem itself; revealing the reference
        # answer makes it an answer-key tutor instead.
        self.reveal_answer = reveal_answer
        self.mental_model_demos = mental_model_demos
        self.mental_model_target = mental_model_target
        self.seed = seed

    async def explain_as(
        self, problems: Sequence[Problem], style: ExplanationStyle, *, personal: Sequence[tuple[Problem, Explanation]] = ()
    ) -> list[Explanation]:
        """An explanation of each problem in ``style``, in one batch.

        ``personal``: explanations that turned this student from wrong to right, the
        demonstrations of a personalized explanation; with none, it falls back to
        unpersonalized.
        """
        if not problems:
            return []
        if style == "gold":
            return self.gold(problems)
        if style == "deceptive":
            conversations = [
                self.conversation(
                    p, self.tom_prompts.render("explain_deceptive", question=p.question, wrong_answer=wrong_answer(p, self.seed))
                )
                for p in problems
            ]
            completions = await self.llm.chat(conversations, self.sampling)
            return [self.explanation(p, c[0], style="deceptive") for p, c in zip(problems, completions)]
        demonstrations = personal if style == "personalized" else ()
        explanations = await self.explain(problems, demonstrations=demonstrations, with_answer=self.reveal_answer)
        if demonstrations:
            return [e.model_copy(update={"style": "personalized"}) for e in explanations]
        return explanations

    async def decide(
        self,
        problems: Sequence[Problem],
        attempts: Sequence[Attempt],
        budget: int,
        *,
        explanations: Sequence[Explanation] = (),
        seed: Sequence[SeedObservation] = (),
        outcomes: Sequence[Attempt] = (),
        excluded: Sequence[str] = (),
    ) -> list[InterventionDecision]:
        """One decision per problem, with its utility; at most ``budget`` intervene.

        ``seed`` is what the teacher observed of this student (its mental model's
        demonstrations); ``outcomes`` are for oracle policies only; ``excluded``
        problems (their explanation is not usable) get no utility and no intervention.
        """
        view = StudentView("", list(attempts), list(explanations), list(seed), list(outcomes), tuple(excluded))
        return await self.decide_for_class(problems, [view], budget)

    async def decide_for_class(self, problems: Sequence[Problem], views: Sequence[StudentView], budget: int) -> list[InterventionDecision]:
        """Decisions for every (student, problem), one shared budget: a mental model per
        student ranks its problems, and the ``budget`` highest utilities across the class
        are intervened on (ties: earlier student, then earlier problem)."""
        utilities = await self.utilities_for_class(problems, views)
        return list(
            intervention_decisions(
                self.signature(),
                [view.name for view in views],
                [p.id for p in problems],
                [[a.id for a in view.attempts] for view in views],
                [u for row in utilities for u in row],
                budget,
            )
        )

    async def utilities_for_class(
        self, problems: Sequence[Problem], views: Sequence[StudentView], offset: int = 0
    ) -> list[list[float | None]]:
        """Each student's utility of each problem (None: never intervened on), from a
        mental model per student; ``offset``: where ``problems`` start in the test set,
        when a loop asks a chunk of it at a time."""
        return list(await asyncio.gather(*(self._utilities(problems, view, offset) for view in views)))

    def signature(self) -> DecisionSignature:
        """What its decisions carry: its episode, its name, its policy's name."""
        return DecisionSignature(self.episode_id, self.name, self.intervention.name)

    async def _utilities(self, problems: Sequence[Problem], view: StudentView, offset: int = 0) -> list[float | None]:
        """The intervention policy's utility of each problem for one student (None for
        an excluded problem), its mental model built from that student's seed set."""
        by_problem = {e.problem_id: e for e in view.explanations}
        context = InterventionContext(
            explanations=by_problem,
            seed=list(view.seed),
            outcomes={a.problem_id: a for a in view.outcomes},
            simulate=lambda ps, es, ts: self.simulate(ps, es, ts, list(view.seed)),
            targets={p.id: self.target(p, by_problem.get(p.id)) for p in problems},
            offset=offset,
        )
        utilities = await self.intervention.utilities(problems, view.attempts, context)
        if len(utilities) != len(problems):
            raise ValueError(
                f"intervention policy {self.intervention.name!r} returned {len(utilities)} utilities for {len(problems)} problems"
            )
        skip = set(view.excluded)
        return [None if p.id in skip else u for p, u in zip(problems, utilities)]

    def target(self, problem: Problem, explanation: Explanation | None) -> str:
        """The answer the mental model scores for ``problem``: gold, or the teacher's own."""
        if self.mental_model_target == "gold":
            return problem.answer
        return (explanation.final_answer or "") if explanation else ""

    async def simulate(
        self,
        problems: Sequence[Problem],
        explanations: Sequence[Explanation | None],
        targets: Sequence[str],
        seed: Sequence[SeedObservation],
    ) -> list[float]:
        """The mental model: P(this student answers ``target``), simulated few-shot
        (the probability the model gives the target where it writes its answer)."""
        if not problems:
            return []
        conversations = self.simulation_conversations(problems, explanations, seed)
        completions = await self.llm.chat(conversations, SIMULATION_SAMPLING)
        return [(answer_probability(c[0].logprobs, target) or 0.0) if target else 0.0 for c, target in zip(completions, targets)]

    def simulation_conversations(
        self, problems: Sequence[Problem], explanations: Sequence[Explanation | None], seed: Sequence[SeedObservation]
    ) -> list[Conversation]:
        """The mental model's prompts. Demonstrations are the student's real answers on
        the seed set, a mix of right and wrong ones: alone when simulating no
        intervention, after the teacher's explanation otherwise."""
        prompts = self.tom_prompts
        alone = mixed_demonstrations(seed, self.mental_model_demos, lambda o: o.attempt.correct)
        helped = mixed_demonstrations(seed, self.mental_model_demos, lambda o: o.helped.correct)
        conversations = []
        for problem, explanation in zip(problems, explanations):
            turns = [ChatMessage(role="system", content=prompts.get("simulate_system"))]
            for obs in alone if explanation is None else helped:  # the question as asked, the student's real answer
                if explanation is None:
                    asked = prompts.render("simulate_query", question=obs.problem.question)
                    answered = obs.attempt.final_answer
                else:
                    asked = prompts.render(
                        "simulate_query_with_explanation", question=obs.problem.question, explanation=obs.explanation.text
                    )
                    answered = obs.helped.final_answer
                turns.append(ChatMessage(role="user", content=asked))
                turns.append(ChatMessage(role="assistant", content=answered or "none"))
            if explanation is None:
                query = prompts.render("simulate_query", question=problem.question)
            else:
                query = prompts.render("simulate_query_with_explanation", question=problem.question, explanation=explanation.text)
            turns.append(ChatMessage(role="user", content=query))
            conversations.append(turns)
        return conversations
