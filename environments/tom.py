"""Theory-of-mind teaching, basic form: budgeted interventions, then a post-test.

After Saha, Hase and Bansal (2023). One episode:

1. The student answers every sampled problem on its own (the pre-test). The problems
   are split into a *teaching set* and a *post-test set*.
2. Under a budget (a fraction of the teaching set) the teacher's intervention policy
   picks problems; the teacher explains them.
3. The student answers the explained problems again, with the explanation.
4. The explained problems become the student's in-context demonstrations; the student
   answers the (never explained) post-test set again with them.

Metrics: accuracy before/after on the teaching set, on the intervened problems, and on
the post-test without/with demonstrations, per skill; tokens per agent; wall time.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any, Sequence

from pydantic import BaseModel, ConfigDict, Field

from classroom.agents.actors import call
from classroom.agents.messages import Attempt, Problem, new_id
from classroom.environments.recording import Recorder
from classroom.environments.tasks import Task


class TomConfig(BaseModel):
    """Settings of one ToM episode."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    num_problems: int = Field(30, ge=2, description="problems sampled for the episode")
    split: str = "test"
    # Fraction of the teaching set the teacher may explain (the paper's budget).
    budget: float = Field(0.3, ge=0.0, le=1.0)
    # Fraction of the sampled problems kept for the post-test (never explained).
    post_test_fraction: float = Field(0.5, gt=0.0, lt=1.0)
    seed: int = 0


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
        attempts = await call(self.student, "answer", list(problems), **kwargs)
        graded = await call(self.grader, "grade_attempts", list(problems), attempts)
        self.recorder.record(graded)
        self.recorder.advance(len(graded))
        return graded

    async def run(self) -> dict[str, Any]:
        """Play the episode; returns the summary (also reported as metrics)."""
        started = time.time()
        cfg = self.config
        problems = [
            p.model_copy(update={"episode_id": self.episode_id, "sender": "task"})
            for p in self.task.sample(cfg.num_problems, split=cfg.split, seed=cfg.seed)
        ]
        if len(problems) < 2:
            raise ValueError(f"task {self.task.name!r} split {cfg.split!r} has {len(problems)} problem(s); need >= 2")
        self.recorder.record(problems)
        n_post = min(max(1, round(len(problems) * cfg.post_test_fraction)), len(problems) - 1)
        teaching, post_test = problems[:-n_post], problems[-n_post:]
        budget = round(cfg.budget * len(teaching))

        self.recorder.stage("pre-test", len(problems))
        pre = await self._answer_and_grade(problems, phase="pre_test")
        pre_teach, pre_post = pre[: len(teaching)], pre[len(teaching):]

        self.recorder.stage("teacher decides and explains", None)
        decisions = await call(self.teacher, "decide", teaching, pre_teach, budget)
        self.recorder.record(decisions)
        chosen = [p for p, d in zip(teaching, decisions) if d.intervene]
        explanations = await call(self.teacher, "explain", chosen)
        self.recorder.record(explanations)

        self.recorder.stage("answers with explanation", len(chosen))
        helped = await self._answer_and_grade(chosen, phase="with_explanation", explanations=explanations)

        await call(self.student, "learn", chosen, explanations)
        self.recorder.stage("post-test with demonstrations", len(post_test))
        post = await self._answer_and_grade(post_test, phase="post_test", use_memory=True)

        helped_by_id = {a.problem_id: a for a in helped}
        after_teach = [helped_by_id.get(a.problem_id, a) for a in pre_teach]
        intervened_before = [a for a in pre_teach if a.problem_id in helped_by_id]
        all_messages = [*pre, *helped, *post, *explanations]
        tokens: dict[str, int] = defaultdict(int)
        for message in all_messages:
            tokens[message.sender] += message.usage.total_tokens
        summary: dict[str, Any] = {
            "env": self.name,
            "task": self.task.name,
            "episode_id": self.episode_id,
            "intervention_policy": decisions[0].policy if decisions else None,
            "problems": len(problems),
            "teaching_set": len(teaching),
            "post_test_set": len(post_test),
            "budget": budget,
            "interventions": len(chosen),
            "accuracy": {
                "teaching_before": accuracy(pre_teach),
                "teaching_after": accuracy(after_teach),
                "intervened_before": accuracy(intervened_before),
                "intervened_after": accuracy(helped),
                "post_test_without_demos": accuracy(pre_post),
                "post_test_with_demos": accuracy(post),
            },
            "per_skill": {
                "teaching_before": per_skill_accuracy(problems, pre_teach),
                "teaching_after": per_skill_accuracy(problems, after_teach),
                "post_test_without_demos": per_skill_accuracy(problems, pre_post),
                "post_test_with_demos": per_skill_accuracy(problems, post),
            },
            "flips": {
                "wrong_to_right": sum(not b.correct and a.correct for b, a in zip(intervened_before, helped)),
                "right_to_wrong": sum(bool(b.correct) and not a.correct for b, a in zip(intervened_before, helped)),
            },
            "parse_failures": sum(a.final_answer is None for a in [*pre, *helped, *post]),
            "tokens": dict(tokens),
            "wall_time_s": round(time.time() - started, 2),
        }
        for key, value in summary["accuracy"].items():
            if value is not None:
                self.recorder.metric(f"accuracy/{key}", value)
        for phase, skills in summary["per_skill"].items():
            for skill, value in skills.items():
                self.recorder.metric(f"per_skill/{phase}", value, skill=skill)
        for sender, count in tokens.items():
            self.recorder.metric("tokens", count, agent=sender)
        self.recorder.metric("wall_time_s", summary["wall_time_s"])
        return summary
