"""Theory-of-mind teaching: budgeted teacher interventions (Saha, Hase, Bansal 2023).

One episode:

1. Problems are sampled into a *seed set* (held out: how this student behaves), a
   *test set* (where the teacher may intervene) and a *post-test set* (never explained,
   for the multi-turn question). The student answers all of them on its own.
2. The teacher explains the seed set; the student answers it again with the
   explanations. These observations are the teacher's mental model of the student and,
   where an explanation flipped the student from wrong to right, the demonstrations of
   personalized explanations.
3. The teacher explains the test set in its configured style (unpersonalized,
   personalized, gold, deceptive); the student answers with each explanation.
4. The intervention policy ranks the test problems once; for every budget b the top
   round(b * n) are intervened on (their answer is the one given with the explanation),
   so one episode yields the whole accuracy-vs-budget curve, as in the paper's code.
5. Multi-turn: the top-ranked explained problems become in-context demonstrations and
   the student answers the post-test set with 0, 1, 2 ... of them (the paper's RQ4).
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any, Sequence

from pydantic import BaseModel, ConfigDict, Field, field_validator

from classroom.agents.actors import call
from classroom.agents.messages import Attempt, Problem, new_id
from classroom.agents.policies import SeedObservation, choose_interventions, ranked
from classroom.environments.recording import Recorder
from classroom.environments.tasks import Task


class TomConfig(BaseModel):
    """Settings of one ToM episode."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    num_problems: int = Field(30, ge=1, description="test problems the teacher may intervene on")
    seed_set_size: int = Field(8, ge=0, description="held-out problems that show the teacher this student")
    post_test_size: int = Field(10, ge=0, description="never-explained problems for the multi-turn test")
    split: str = "test"
    # Where the seed set comes from; None: the same split (disjoint problems).
    seed_split: str | None = None
    # Fractions of the test set the teacher may explain; the policy ranks once and
    # each budget takes its top. One budget or the paper's whole curve.
    budgets: tuple[float, ...] = (0.3,)
    # Numbers of explained demonstrations the student sees in the multi-turn test.
    demo_counts: tuple[int, ...] = (0, 2, 4)
    seed: int = 0

    @field_validator("budgets")
    @classmethod
    def _budgets_are_fractions(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value:
            raise ValueError("needs at least one budget")
        bad = [b for b in value if not 0.0 <= b <= 1.0]
        if bad:
            raise ValueError(f"budgets are fractions in [0, 1]; got {bad}")
        return tuple(sorted(set(value)))

    @field_validator("demo_counts")
    @classmethod
    def _counts_are_sizes(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(c < 0 for c in value):
            raise ValueError(f"demo counts must be >= 0; got {list(value)}")
        return tuple(sorted(set(value)))


def accuracy(attempts: Sequence[Attempt]) -> float | None:
    """Share of correct attempts; None for an empty list."""
    if not attempts:
        return None
    return sum(bool(a.correct) for a in attempts) / len(attempts)


def per_skill_accuracy(problems: Sequence[Problem], attempts: Sequence[Attempt]) -> dict[str, float]:
    """Accuracy per skill label (a problem with several skills counts for each)."""
    by_id = {p.id: p for p in problems}
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for attempt in attempts:
        for skill in by_id[attempt.problem_id].skills or ("unlabelled",):
            totals[skill][0] += bool(attempt.correct)
            totals[skill][1] += 1
    return {skill: right / count for skill, (right, count) in sorted(totals.items())}


def budget_key(budget: float) -> str:
    return f"{budget:.2f}".rstrip("0").rstrip(".") if budget else "0"


class TomEnvironment:
    """Runs one ToM teaching episode with teacher, student and grader agents.

    The agents may be Ray actor handles or plain objects with the same async methods.
    """

    name = "tom"
    config_class = TomConfig

    def __init__(
        self,
        config: TomConfig,
        task: Task,
        *,
        teacher: Any,
        student: Any,
        grader: Any,
        recorder: Recorder,
        episode_id: str | None = None,
    ):
        self.config = config
        self.task = task
        self.teacher = teacher
        self.student = student
        self.grader = grader
        self.recorder = recorder
        self.episode_id = episode_id or new_id()

    async def _answer_and_grade(self, problems: Sequence[Problem], **kwargs: Any) -> list[Attempt]:
        if not problems:
            return []
        attempts = await call(self.student, "answer", list(problems), **kwargs)
        graded = await call(self.grader, "grade_attempts", list(problems), attempts)
        self.recorder.record(graded)
        self.recorder.advance(len(graded))
        return graded

    def _sample(self) -> tuple[list[Problem], list[Problem], list[Problem]]:
        cfg = self.config
        separate_seed = cfg.seed_split is not None and cfg.seed_split != cfg.split
        wanted = cfg.num_problems + cfg.post_test_size + (0 if separate_seed else cfg.seed_set_size)
        drawn = self.task.sample(wanted, split=cfg.split, seed=cfg.seed, episode_id=self.episode_id)
        if len(drawn) < wanted:
            raise ValueError(
                f"task {self.task.name!r} split {cfg.split!r} has {len(drawn)} problems; the episode needs "
                f"{wanted} (num_problems + post_test_size{'' if separate_seed else ' + seed_set_size'})"
            )
        test, post = drawn[: cfg.num_problems], drawn[cfg.num_problems : cfg.num_problems + cfg.post_test_size]
        if separate_seed:
            seed = self.task.sample(cfg.seed_set_size, split=cfg.seed_split, seed=cfg.seed, episode_id=self.episode_id)
        else:
            seed = drawn[cfg.num_problems + cfg.post_test_size :]
        return seed, test, post

    async def run(self) -> dict[str, Any]:
        """Play the episode; returns the summary (also reported as metrics)."""
        started = time.time()
        cfg = self.config
        seed_set, test, post_set = self._sample()
        everything = [*seed_set, *test, *post_set]
        self.recorder.record(everything)

        self.recorder.stage("student alone (pre-test)", len(everything))
        pre = await self._answer_and_grade(everything, phase="pre_test")
        pre_by_id = {a.problem_id: a for a in pre}

        self.recorder.stage("teacher observes the student (seed set)", len(seed_set))
        seed_explanations = await call(self.teacher, "explain", seed_set, style="unpersonalized")
        self.recorder.record(seed_explanations)
        seed_helped = await self._answer_and_grade(seed_set, phase="seed_with_explanation", explanations=seed_explanations)
        observations = [
            SeedObservation(problem=p, attempt=pre_by_id[p.id], explanation=e, helped=h)
            for p, e, h in zip(seed_set, seed_explanations, seed_helped)
        ]
        personal = [(o.problem, o.explanation) for o in observations if not o.attempt.correct and o.helped.correct]

        self.recorder.stage("teacher explains, student answers with it", len(test))
        explanations = await call(self.teacher, "explain", test, personal=personal)
        self.recorder.record(explanations)
        helped = await self._answer_and_grade(test, phase="with_explanation", explanations=explanations)

        self.recorder.stage("intervention policy ranks", None)
        pre_test = [pre_by_id[p.id] for p in test]
        top_budget = round(max(cfg.budgets) * len(test))
        decisions = await call(
            self.teacher, "decide", test, pre_test, top_budget,
            explanations=explanations, seed=observations, outcomes=helped,
        )
        self.recorder.record(decisions)
        utilities = [d.utility for d in decisions]

        by_budget: dict[str, float | None] = {}
        interventions: dict[str, int] = {}
        for budget in cfg.budgets:
            chosen = set(choose_interventions(utilities, round(budget * len(test))))
            final = [helped[i] if i in chosen else pre_test[i] for i in range(len(test))]
            by_budget[budget_key(budget)] = accuracy(final)
            interventions[budget_key(budget)] = len(chosen)

        self.recorder.stage("multi-turn: post-test with demonstrations", len(post_set) * len(cfg.demo_counts))
        order = ranked(utilities)
        demos = [(test[i], explanations[i]) for i in order]
        multiturn: dict[str, float | None] = {}
        post_attempts: list[Attempt] = []
        for count in cfg.demo_counts:
            if count == 0:
                attempts = [pre_by_id[p.id] for p in post_set]  # the pre-test asked exactly this
            elif count > len(demos):
                multiturn[str(count)] = None  # the policy explained fewer problems than that
                continue
            else:
                attempts = await self._answer_and_grade(post_set, phase=f"post_test_{count}_demos", demonstrations=demos[:count])
                post_attempts += attempts
            multiturn[str(count)] = accuracy(attempts)

        tokens: dict[str, int] = defaultdict(int)
        for message in [*pre, *seed_helped, *helped, *post_attempts, *seed_explanations, *explanations]:
            tokens[message.sender] += message.usage.total_tokens
        flips_right = sum(not b.correct and a.correct for b, a in zip(pre_test, helped))
        flips_wrong = sum(bool(b.correct) and not a.correct for b, a in zip(pre_test, helped))
        max_key = budget_key(max(cfg.budgets))
        max_chosen = set(choose_interventions(utilities, top_budget))
        summary: dict[str, Any] = {
            "env": self.name,
            "task": self.task.name,
            "episode_id": self.episode_id,
            "intervention_policy": decisions[0].policy if decisions else None,
            "explanation_style": explanations[0].style if explanations else None,
            "problems": len(test),
            "seed_set": len(seed_set),
            "post_test_set": len(post_set),
            "budgets": list(cfg.budgets),
            "interventions": interventions,
            "accuracy_by_budget": by_budget,
            "multiturn_by_demos": multiturn,
            "accuracy": {
                "no_intervention": accuracy(pre_test),
                "with_every_explanation": accuracy(helped),
                f"at_budget_{max_key}": by_budget[max_key],
            },
            "per_skill": {
                "no_intervention": per_skill_accuracy(test, pre_test),
                f"at_budget_{max_key}": per_skill_accuracy(
                    test, [helped[i] if i in max_chosen else pre_test[i] for i in range(len(test))]
                ),
            },
            "explanations_flip": {"wrong_to_right": flips_right, "right_to_wrong": flips_wrong},
            "seed_set_flips_used_for_personalization": len(personal),
            "parse_failures": sum(a.final_answer is None for a in [*pre, *helped, *post_attempts]),
            "tokens": dict(tokens),
            "wall_time_s": round(time.time() - started, 2),
        }
        # The numbers a sweep tabulates and plots.
        summary["scores"] = {
            **{f"acc@{k}": v for k, v in by_budget.items()},
            **{f"multiturn@{k}": v for k, v in multiturn.items()},
        }
        for key, value in summary["scores"].items():
            if value is not None:
                self.recorder.metric(f"score/{key}", value)
        for skill, value in summary["per_skill"]["no_intervention"].items():
            self.recorder.metric("per_skill/no_intervention", value, skill=skill)
        for sender, count in tokens.items():
            self.recorder.metric("tokens", count, agent=sender)
        self.recorder.metric("wall_time_s", summary["wall_time_s"])
        return summary
