"""Tables across runs: one row per run, then mean ± 95% CI per configuration.

A run's row: its overrides (one column per key), seed, scores (``summary["scores"]``),
tokens (total and per agent), wall time and status. A configuration is a run's
overrides without ``seed``; its runs are the seeds.
"""

from __future__ import annotations

import csv
import statistics
from pathlib import Path
from typing import Any

import yaml

from classroom.environments.stats import mean_ci, resolved, seeds_to_resolve
from classroom.launch.rundir import RunSummary
from classroom.launch.settings import PaperEffect

# Every key a run's summary listed under "scores": what the tables aggregate.
SCORE_NAMES: set[str] = set()


def _overrides(run_dir: Path) -> dict[str, str]:
    path = run_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return {}
    result = {}
    for item in yaml.safe_load(path.read_text()) or []:
        key, _, value = str(item).partition("=")
        key = key.lstrip("+~")
        if not key.startswith("hydra.") and key not in ("progress",):
            result[key] = value
    return result


def run_row(run_dir: Path) -> dict[str, Any] | None:
    """The results row of one run directory (None if it has no summary)."""
    summary_path = run_dir / "summary.json"
    if not summary_path.is_file():
        return None
    summary = RunSummary.read(run_dir)
    config_path = run_dir / "config.yaml"
    config = yaml.safe_load(config_path.read_text()) if config_path.is_file() else {}
    overrides = _overrides(run_dir)
    row: dict[str, Any] = {"run": run_dir.name, **{k: v for k, v in overrides.items() if k != "seed"}}
    row["seed"] = config.get("seed", overrides.get("seed"))
    row["status"] = summary.status
    for key, value in summary.scores.items():
        row[key] = value
        SCORE_NAMES.add(key)  # a score even without "@x" (a test accuracy)
    tokens = summary.tokens
    row["tokens"] = sum(tokens.values())
    for agent, count in sorted(tokens.items()):
        row[f"tokens_{agent}"] = count
    row["wall_time_s"] = summary.wall_time_s
    row["error"] = summary.error or ""
    return row


def collect(root: Path) -> list[dict[str, Any]]:
    """Rows of every run under ``root`` (a sweep folder), in job order."""
    dirs = [p for p in root.iterdir() if p.is_dir() and (p / "summary.json").is_file()]
    dirs.sort(key=lambda p: (not p.name.isdigit(), int(p.name) if p.name.isdigit() else 0, p.name))
    return [row for row in (run_row(d) for d in dirs) if row is not None]


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    return columns


def config_columns(rows: list[dict[str, Any]]) -> list[str]:
    """The override columns that vary between runs (what defines a configuration)."""
    fixed = {"run", "seed", "status", "tokens", "wall_time_s", "error"}
    candidates = [c for c in _columns(rows) if c not in fixed and not _is_metric(c)]
    return [c for c in candidates if len({str(r.get(c)) for r in rows}) > 1] or candidates[:1]


def _is_metric(column: str) -> bool:
    return "@" in column or column.startswith("tokens_") or column in SCORE_NAMES


def metric_columns(rows: list[dict[str, Any]]) -> list[str]:
    return [c for c in _columns(rows) if _is_metric(c) or c in ("tokens", "wall_time_s")]


def aggregate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per configuration: run count and mean ± CI of every metric across seeds."""
    keys = config_columns(rows)
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        if row.get("status") != "completed":
            continue
        groups.setdefault(tuple(str(row.get(k, "")) for k in keys), []).append(row)
    table = []
    for key, members in groups.items():
        entry: dict[str, Any] = dict(zip(keys, key))
        entry["runs"] = len(members)
        for metric in metric_columns(rows):
            values = [float(m[metric]) for m in members if isinstance(m.get(metric), (int, float))]
            if values:
                entry[metric] = mean_ci(values)
        table.append(entry)
    return table


def _compare(root: Path) -> dict[str, Any]:
    """The sweep's ``compare:`` section (from its first run's config), or {}."""
    for path in sorted(root.glob("*/config.yaml")):
        return (yaml.safe_load(path.read_text()) or {}).get("compare") or {}
    return {}


def baseline_of(root: Path) -> dict[str, str]:
    """The sweep's paired baseline (``compare.baseline`` in its runs' config), or {}."""
    return {str(k): str(v) for k, v in (_compare(root).get("baseline") or {}).items()}


def effects_of(root: Path) -> list[PaperEffect]:
    """The papers' effects for the sweep's comparisons (``compare.effects``), or []."""
    return [PaperEffect.model_validate(e) for e in _compare(root).get("effects") or []]


def _paired(rows: list[dict[str, Any]], baseline: dict[str, str]) -> dict[tuple, tuple[int, dict[str, list[float]]]]:
    """Per configuration: how many runs were paired with a baseline run of the same seed
    and the same other settings (the same problems: a seed draws the same ones for every
    configuration), and each score's differences, one per pair."""
    keys = config_columns(rows)
    others = [k for k in keys if k not in baseline]
    done = [r for r in rows if r.get("status") == "completed"]

    def is_baseline(row: dict[str, Any]) -> bool:
        return all(str(row.get(k)) == v for k, v in baseline.items())

    def pairing(row: dict[str, Any]) -> tuple:
        return (*(str(row.get(k)) for k in others), str(row.get("seed")))

    base = {pairing(r): r for r in done if is_baseline(r)}
    groups: dict[tuple, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for row in done:
        if not is_baseline(row) and pairing(row) in base:
            groups.setdefault(tuple(str(row.get(k)) for k in keys), []).append((row, base[pairing(row)]))
    scores = [c for c in metric_columns(rows) if not c.startswith("tokens") and c != "wall_time_s"]
    return {
        key: (len(pairs), {s: [float(r[s]) - float(b[s]) for r, b in pairs if _number(r.get(s)) and _number(b.get(s))] for s in scores})
        for key, pairs in groups.items()
    }


# The column that counts a configuration's runs paired with the baseline's. A name with a
# space, which no score has: a loop's score named "pairs" (M2's preference pairs) took the
# place of the count before.
PAIRED_RUNS = "paired runs"


def paired_differences(rows: list[dict[str, Any]], baseline: dict[str, str]) -> list[dict[str, Any]]:
    """Per configuration: mean ± CI across seeds of (its score - the baseline's score),
    each run paired with the baseline run of the same seed and the same other settings."""
    keys = config_columns(rows)
    table = []
    for key, (pairs, diffs) in _paired(rows, baseline).items():
        entry: dict[str, Any] = {**dict(zip(keys, key)), PAIRED_RUNS: pairs}
        entry.update({score: mean_ci(values) for score, values in diffs.items() if values})
        table.append(entry)
    return table


def against_effects(rows: list[dict[str, Any]], baseline: dict[str, str], effects: list[PaperEffect]) -> list[dict[str, Any]]:
    """Per paper's effect and configuration it is about: the paired difference (mean ±
    95% CI), the verdict ("resolved", or "not resolved at n = N" when the CI holds 0),
    the paper's effect, and the seeds that would resolve it at the measured per-pair
    standard deviation (80% power; empty where fewer than two pairs or no spread)."""
    keys = config_columns(rows)
    table = []
    for key, (_, diffs) in _paired(rows, baseline).items():
        config = dict(zip(keys, key))
        for paper in effects:
            values = diffs.get(paper.score) or []
            if not values or any(config.get(k) != v for k, v in paper.when.items()):
                continue
            mean, ci = mean_ci(values)
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            table.append(
                {
                    **config,
                    "score": paper.score,
                    PAIRED_RUNS: len(values),
                    "difference": (mean, ci),
                    "verdict": "resolved" if resolved(mean, ci) else f"not resolved at n = {len(values)}",
                    "paper": paper.effect,
                    "seeds for the paper's effect": seeds_to_resolve(sd, paper.effect),
                    "source": paper.source,
                }
            )
    return table


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _fmt(value: Any) -> str:
    if isinstance(value, tuple):
        mean, ci = value
        return f"{mean:.3f}" if ci is None else f"{mean:.3f} ± {ci:.3f}"
    if isinstance(value, float):
        return f"{value:.3f}"
    return "" if value is None else str(value)


def markdown_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_fmt(row.get(c)) for c in columns) + " |")
    return "\n".join(lines)


def write_results(root: Path) -> tuple[Path, Path, list[dict[str, Any]]]:
    """Write ``results.csv`` (a row per run) and ``results.md`` (runs + per-config)."""
    rows = collect(root)
    columns = _columns(rows)
    csv_path = root / "results.csv"
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in columns})
    per_config = aggregate(rows)
    config_cols = config_columns(rows)
    metrics = [m for m in metric_columns(rows) if not m.startswith("tokens_")]
    md = [
        f"# Results: {root.name}",
        "",
        f"{len(rows)} runs, {sum(r.get('status') == 'completed' for r in rows)} completed.",
        "",
        "## Per configuration (mean ± 95% CI across seeds)",
        "",
        markdown_table(per_config, [*config_cols, "runs", *metrics]),
        "",
        "## Per run",
        "",
        markdown_table(rows, [c for c in columns if c != "error" or any(r.get("error") for r in rows)]),
        "",
    ]
    baseline = baseline_of(root)
    paired = paired_differences(rows, baseline) if baseline else []
    if paired:
        scores = [m for m in metrics if m not in ("tokens", "wall_time_s")]
        against = ", ".join(f"{k}={v}" for k, v in baseline.items())
        md[8:8] = [  # after the per-configuration table
            f"## Paired differences vs {against} (per seed, mean ± 95% CI)",
            "",
            markdown_table(paired, [*config_cols, PAIRED_RUNS, *scores]),
            "",
        ]
        effects = effects_of(root)
        judged = against_effects(rows, baseline, effects) if effects else []
        if judged:
            columns = [*config_cols, "score", PAIRED_RUNS, "difference", "verdict", "paper", "seeds for the paper's effect", "source"]
            md[12:12] = [
                "## Against the paper's effects (paired; seeds for 80% power at the measured spread)",
                "",
                markdown_table(judged, columns),
                "",
            ]
    md_path = root / "results.md"
    md_path.write_text("\n".join(md))
    return csv_path, md_path, rows
