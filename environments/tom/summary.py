"""What a ToM episode reports: accuracy helpers and its terminal tables."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from classroom.agents.messages import Attempt, Problem
from classroom.environments.tom.types import Graded


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


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def tom_summary_table(summary: dict[str, Any]) -> list[Any]:
    """The accuracy-vs-budget table, the two reference accuracies, the multi-turn table."""
    from rich.table import Table
    from rich.text import Text

    title = (
        f"{summary.get('env', 'episode')} on {summary.get('task', '?')}: {summary.get('problems')} test problems, "
        f"policy {summary.get('intervention_policy')}, {summary.get('explanation_style')} explanations"
    )
    table = Table(title=title)
    table.add_column("budget", justify="right")
    table.add_column("interventions", justify="right")
    table.add_column("student accuracy", justify="right")
    for budget, value in summary.get("accuracy_by_budget", {}).items():
        table.add_row(budget, str(summary.get("interventions", {}).get(budget, "")), pct(value))
    acc = summary.get("accuracy", {})
    shown: list[Any] = [
        table,
        Text(f"no intervention {pct(acc.get('no_intervention'))}; every problem explained {pct(acc.get('with_every_explanation'))}"),
    ]
    notes = []
    if summary.get("personalization_fallbacks"):
        notes.append(f"{summary['personalization_fallbacks']} explanations unpersonalized (no seed-set explanation flipped this student)")
    noncompliant = summary.get("deceptive_noncompliant") or {}
    if any(noncompliant.values()):
        notes.append(
            f"deceptive explanations that argued for another answer (recorded, not given): "
            f"{noncompliant.get('seed_set', 0)} on the seed set, {noncompliant.get('test', 0)} on the test set"
        )
    shown += [Text(note) for note in notes]
    multiturn = summary.get("multiturn_by_demos", {})
    if multiturn:
        turns = Table(title=f"multi-turn: {summary.get('post_test_set')} unexplained problems")
        turns.add_column("explained demonstrations", justify="right")
        turns.add_column("student accuracy", justify="right")
        for count, value in multiturn.items():
            turns.add_row(count, pct(value))
        shown.append(turns)
    return shown
