"""What a DataEnvGym episode shows on the terminal."""

from __future__ import annotations

from typing import Any


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def dataenvgym_summary_table(summary: dict[str, Any]) -> list[Any]:
    """Validation accuracy per iteration (overall and per skill), then the test score."""
    from rich.table import Table
    from rich.text import Text

    history = summary.get("history", [])
    skills = sorted({s for row in history for s in row.get("per_skill", {}) if "/" not in s})
    resumed = summary.get("resumed_from")
    table = Table(
        title=(
            f"dataenvgym ({summary.get('variant')}) on {summary.get('task')}: {summary.get('validation_problems')} "
            f"validation problems" + (f", resumed after iteration {resumed}" if resumed is not None else "")
        )
    )
    for column in ("iteration", "val accuracy", *skills, "kept / made", "parse failures", "fallbacks", "train s"):
        table.add_column(column, justify="right")
    for row in history:
        table.add_row(
            str(row["iteration"]),
            pct(row["val_accuracy"]),
            *(pct(row["per_skill"].get(s)) for s in skills),
            f"{row['kept']} / {row['generated']}",
            str(row.get("parse_failures", 0)),
            str(row.get("fallbacks", 0)),
            f"{row['training_seconds']:.0f}",
        )
    test = Text(
        f"test ({summary.get('test_problems')} problems): trained {pct(summary.get('test_accuracy'))}, "
        f"untrained {pct(summary.get('test_accuracy_untrained'))}"
    )
    return [table, test]
