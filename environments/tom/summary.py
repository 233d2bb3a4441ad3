"""What a ToM episode reports: accuracy helpers and its terminal tables."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from classroom.agents.messages import Attempt, Problem
from classroom.environments.result import Details, EpisodeResult, pct
from classroom.environments.tom.types import Graded


class MentalModelFigures(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target: str = Field(description="What the mental model predicts (env.mental_model_target).")
    demonstrations_right: int = Field(description="Demonstrations of the student answering right that the model was shown.")
    demonstrations_wrong: int = Field(description="Demonstrations of the student answering wrong.")


class TomDetails(Details):
    """A ToM episode's own figures (summary.json's top level)."""

    env: str = Field(description="The loop's name.")
    task: str = Field(description="The task's name.")
    episode_id: str = Field(description="The episode's id.")
    intervention_policy: str = Field(description="The intervention function's name.")
    explanation_style: str | None = Field(description="The style of the test explanations given (None: no test problems).")
    students: list[str] = Field(description="The class, by name.")
    problems: int = Field(description="Test problems (each student answers each).")
    seed_set: int = Field(description="Seed-set problems (the mental model's demonstrations, personalization).")
    post_test_set: int = Field(description="Unexplained problems of the multi-turn post-test.")
    budgets: list[float] = Field(description="The intervention budgets, fractions of the (student, problem) pairs.")
    interventions: dict[str, int] = Field(description="Budget -> (student, problem) pairs explained.")
    intervened: dict[str, list[str]] = Field(description="Budget -> which test problems were explained (student:problem in a class).")
    accuracy_by_budget: dict[str, float | None] = Field(description="Budget -> the class's test accuracy with those explanations.")
    multiturn_by_demos: dict[str, float | None] = Field(description="Explained demonstrations seen -> accuracy on unexplained problems.")
    accuracy: dict[str, float | None] = Field(description="Reference accuracies: no intervention, every problem explained, the top budget.")
    per_skill: dict[str, dict[str, float]] = Field(description="Accuracy per skill, without intervention and at the top budget.")
    explanations_flip: dict[str, int] = Field(description="Graded answers an explanation turned wrong -> right and right -> wrong.")
    seed_set_flips_used_for_personalization: int = Field(description="Seed-set explanations that flipped a student, shown to personalize.")
    personalization_fallbacks: int = Field(description="Test explanations written unpersonalized: no seed explanation flipped the student.")
    deceptive_noncompliant: dict[str, int] = Field(
        description="Deceptive explanations that did not argue for the planted wrong answer (recorded, never given), by set."
    )
    mental_model: MentalModelFigures = Field(description="What the teacher's mental model was shown.")
    parse_failures: int = Field(description="Student answers with no final answer found.")
    ungradeable: int = Field(description="Answers the grader could not score: left out of every accuracy and flip.")
    accuracy_by_budget_per_student: dict[str, dict[str, float | None]] | None = Field(
        None, description="Student -> budget -> accuracy, for a class of more than one."
    )


def per_skill_accuracy(problems: Sequence[Problem], attempts: Sequence[Attempt | Graded]) -> dict[str, float]:
    """Accuracy per skill label (a problem with several skills counts for each)."""
    by_id = {p.id: p for p in problems}
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for attempt in attempts:
        if attempt.correct is None:  # ungradeable
            continue
        for skill in by_id[attempt.problem_id].skills or ("unlabelled",):
            totals[skill][0] += bool(attempt.correct)
            totals[skill][1] += 1
    return {skill: right / count for skill, (right, count) in sorted(totals.items())}


def budget_key(budget: float) -> str:
    """A budget as a score key: 0.3 -> "0.3", 1.0 -> "1", 0 -> "0"."""
    return f"{budget:.2f}".rstrip("0").rstrip(".") if budget else "0"


def tom_summary_table(result: EpisodeResult[TomDetails]) -> list[Any]:
    """The accuracy-vs-budget table, the two reference accuracies, the multi-turn table."""
    from rich.table import Table
    from rich.text import Text

    d = result.details
    title = f"{d.env} on {d.task}: {d.problems} test problems, policy {d.intervention_policy}, {d.explanation_style} explanations"
    table = Table(title=title)
    table.add_column("budget", justify="right")
    table.add_column("interventions", justify="right")
    table.add_column("student accuracy", justify="right")
    for budget, value in d.accuracy_by_budget.items():
        table.add_row(budget, str(d.interventions.get(budget, "")), pct(value))
    acc = d.accuracy
    shown: list[Any] = [
        table,
        Text(f"no intervention {pct(acc.get('no_intervention'))}; every problem explained {pct(acc.get('with_every_explanation'))}"),
    ]
    notes = []
    if d.personalization_fallbacks:
        notes.append(f"{d.personalization_fallbacks} explanations unpersonalized (no seed-set explanation flipped this student)")
    noncompliant = d.deceptive_noncompliant
    if any(noncompliant.values()):
        notes.append(
            f"deceptive explanations that argued for another answer (recorded, not given): "
            f"{noncompliant.get('seed_set', 0)} on the seed set, {noncompliant.get('test', 0)} on the test set"
        )
    shown += [Text(note) for note in notes]
    if d.multiturn_by_demos:
        turns = Table(title=f"multi-turn: {d.post_test_set} unexplained problems")
        turns.add_column("explained demonstrations", justify="right")
        turns.add_column("student accuracy", justify="right")
        for count, value in d.multiturn_by_demos.items():
            turns.add_row(count, pct(value))
        shown.append(turns)
    return shown
