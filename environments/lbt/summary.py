"""What a learning-by-teaching episode shows on the terminal."""

from __future__ import annotations

from typing import Any


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def lbt_summary_table(summary: dict[str, Any]) -> list[Any]:
    from rich.table import Table
    from rich.text import Text

    method = summary.get("method")
    students = ", ".join(summary.get("students", []))
    shown: list[Any] = []
    if method == "m1":
        table = Table(title=f"LbT M1 on {summary.get('task')}: {summary.get('problems')} teaching problems, "
                            f"{summary.get('samples_per_problem')} rationales each, students {students}")  # fmt: skip
        table.add_column("answer selection")
        table.add_column("accuracy", justify="right")
        for name, value in summary.get("accuracy", {}).items():
            table.add_row(name, pct(value))
        shown.append(table)
        pairs = Table(title="per problem, row minus column's rule (mean ± 95% CI, wins/losses)")
        pairs.add_column("pair")
        pairs.add_column("difference", justify="right")
        for pair, figures in summary.get("pairwise", {}).items():
            ci = figures.get("ci95")
            pairs.add_row(
                pair, f"{figures['mean']:+.3f}" + (f" ± {ci:.3f}" if ci is not None else "") + f"  ({figures['wins']}/{figures['losses']})"
            )
        shown.append(pairs)
        shown.append(
            Text(f"LbT score of right rationales {summary.get('lbt_score_of_right')}, of wrong ones {summary.get('lbt_score_of_wrong')}")
        )
    elif method == "m2":
        shown.append(
            Text(
                f"LbT M2 ({summary.get('preference')} preferences) on {summary.get('task')}: {summary.get('pairs')} pairs from "
                f"{summary.get('train_problems')} problems; teacher on {summary.get('test_problems')} held-out problems: "
                f"{pct(summary.get('teacher_accuracy_before'))} before, {pct(summary.get('teacher_accuracy_after'))} after"
            )
        )
    else:
        table = Table(title=f"LbT M3 on {summary.get('task')}: exemplars refined with students {students}")
        table.add_column("iteration", justify="right")
        table.add_column("students' training accuracy", justify="right")
        for iteration, value in summary.get("train_accuracy_by_iteration", {}).items():
            table.add_row(iteration, pct(value))
        shown.append(table)
        # What the exemplars were selected on beside what they were never shown: a gain on
        # the training items that the held-out problems do not share is overfitting.
        curve = summary.get("train_accuracy_by_iteration") or {}
        side = Table(title="first and final exemplars: selected on vs held out")
        side.add_column("exemplars")
        side.add_column(f"students, training items ({summary.get('train_items')})", justify="right")
        side.add_column(f"teacher, held-out problems ({summary.get('test_problems')})", justify="right")
        last = max(curve, key=int) if curve else None
        side.add_row("first", pct(curve.get("0")), pct(summary.get("test_accuracy_first")))
        side.add_row("final", pct(curve.get(last) if last is not None else None), pct(summary.get("test_accuracy_final")))
        shown.append(side)
        shown.append(Text(f"proposals that did not parse: {summary.get('parse_failures')}"))
    for engine, figures in (summary.get("exam_engines") or {}).items():
        shown.append(
            Text(
                f"exam engine {engine}: busy {figures.get('busy_fraction')}, mean in flight {figures.get('mean_in_flight')}, "
                f"{figures.get('tokens_per_s')} tokens/s, prefix-cache hits {figures.get('prefix_cache_hit_rate')}"
            )
        )
    return shown
