"""`classroom report DIR`: a self-contained report.html for a run or a sweep.

Plots are matplotlib PNGs embedded as data URIs, tables are plain HTML: the file
opens anywhere, with no network.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

from classroom.environments.base import Curve, LoopError, load_loop
from classroom.launch.results import (
    PAIRED_RUNS,
    aggregate,
    baseline_of,
    collect,
    config_columns,
    markdown_table,
    paired_differences,
    run_row,
)
from classroom.serving.errors import DataError


class ReportError(DataError):
    """A folder that is neither a run nor a sweep."""


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


Series = dict[str, list[tuple[float, float, float | None]]]


def _series(entries: list[dict[str, Any]], prefix: str) -> dict[str, Series]:
    """panel -> line label (with its n) -> [(x, mean, ci)] for metrics named ``prefix@x``."""
    panels: dict[str, Series] = {}
    for entry in entries:
        panels.setdefault(entry.get("panel", ""), {}).update(_points([entry], prefix))
    return {k: v for k, v in panels.items() if v}


def _points(entries: list[dict[str, Any]], prefix: str) -> Series:
    result: Series = {}
    for entry in entries:
        points = []
        for key, value in entry["values"].items():
            if key.startswith(prefix + "@") and value is not None:
                mean, ci = value if isinstance(value, tuple) else (value, None)
                points.append((float(key.split("@", 1)[1]), mean, ci))
        if points:
            label = entry["label"] if entry.get("n") is None else f"{entry['label']} (n={entry['n']})"
            result[label] = sorted(points)
    return result


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
STYLES = ("-", "--", "-.", ":")


def _line_plot(panels: dict[str, Series], xlabel: str, ylabel: str, title: str, *, difference: bool = False) -> str | None:
    """One panel per value of the secondary config keys, one line per primary value.

    The title is drawn once. Lines are dodged sideways and marked apart, so equal
    lines stay visible; 95% CI bars are clipped to the axes (with 2 seeds a t-interval
    is wide); ``difference`` plots (a score minus a baseline's) span -1..1 around 0.
    """
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    low, high = (-1.0, 1.0) if difference else (0.0, 1.0)
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.2), squeeze=False, sharey=True)
    for ax, (panel, series) in zip(axes[0], panels.items()):
        xs_all = sorted({p[0] for points in series.values() for p in points})
        spread = (xs_all[-1] - xs_all[0]) if len(xs_all) > 1 else 1.0
        step = 0.012 * spread
        for number, (label, points) in enumerate(series.items()):
            shift = (number - (len(series) - 1) / 2) * step
            xs = [p[0] + shift for p in points]
            ys = [p[1] for p in points]
            # Clipped to the axes, never below zero (a mean at the edge, float noise).
            below = [max(p[1] - max(p[1] - (p[2] or 0.0), low), 0.0) for p in points]
            above = [max(min(p[1] + (p[2] or 0.0), high) - p[1], 0.0) for p in points]
            ax.errorbar(
                xs,
                ys,
                yerr=[below, above] if any(below) or any(above) else None,
                capsize=3,
                label=label,
                marker=MARKERS[number % len(MARKERS)],
                linestyle=STYLES[(number // len(MARKERS)) % len(STYLES)],
            )
        if difference:
            ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_xlabel(xlabel)
        if panel:
            ax.set_title(panel, fontsize=10)
        ax.set_ylim(low - 0.02, high + 0.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    axes[0][0].set_ylabel(ylabel)
    fig.suptitle(title)
    return _png(fig)


def _bar_groups(entries: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Scores named ``base[part]`` (no ``@``): one bar chart per base, a bar per part."""
    groups: dict[str, list[str]] = {}
    for key in (k for e in entries for k in e["values"]):
        if "@" not in key and key.endswith("]") and "[" in key:
            base, part = key[:-1].split("[", 1)
            if part not in groups.setdefault(base, []):
                groups[base].append(part)
    return groups


def _bar_plot(entries: list[dict[str, Any]], base: str, parts: list[str]) -> str | None:
    """Each configuration's ``base[part]`` scores side by side, 95% CIs clipped to 0..1."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(parts) * max(len(entries), 1) ** 0.5 + 2), 4.2))
    width = 0.8 / max(len(entries), 1)
    for number, entry in enumerate(entries):
        values = [entry["values"].get(f"{base}[{p}]") for p in parts]
        means = [v[0] if isinstance(v, tuple) else (v or 0.0) for v in values]
        cis = [(v[1] or 0.0) if isinstance(v, tuple) else 0.0 for v in values]
        below = [max(m - max(m - c, 0.0), 0.0) for m, c in zip(means, cis)]
        above = [max(min(m + c, 1.0) - m, 0.0) for m, c in zip(means, cis)]
        xs = [i + (number - (len(entries) - 1) / 2) * width for i in range(len(parts))]
        label = entry.get("full") or entry["label"]
        if entry.get("n") is not None:
            label = f"{label} (n={entry['n']})"
        ax.bar(xs, means, width=width, yerr=[below, above] if any(cis) else None, capsize=3, label=label)
    ax.set_xticks(range(len(parts)), parts)
    ax.set_ylim(0.0, 1.02)
    ax.set_ylabel(base)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7, loc="best")
    fig.suptitle(f"{base} by {', '.join(parts[:4])}{' ...' if len(parts) > 4 else ''}")
    return _png(fig)


def _token_plot(entries: list[dict[str, Any]]) -> str | None:
    agents = sorted({k[len("tokens_") :] for e in entries for k in e["values"] if k.startswith("tokens_")})
    if not agents:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 0.5 + 0.45 * len(entries)))
    left = [0.0] * len(entries)
    labels = [e.get("full") or e["label"] for e in entries]
    for agent in agents:
        values = []
        for e in entries:
            v = e["values"].get(f"tokens_{agent}")
            values.append(v[0] if isinstance(v, tuple) else (v or 0.0))
        ax.barh(labels, values, left=left, label=agent)
        left = [a + b for a, b in zip(left, values)]
    ax.set_xlabel("tokens per run (mean)")
    ax.set_title("tokens per agent")
    ax.legend(fontsize=8)
    return _png(fig)


def _entries_for_sweep(root: Path) -> tuple[list[dict[str, Any]], str]:
    rows = collect(root)
    if not rows:
        raise ReportError(f"{root} holds no finished runs (no */summary.json)")
    keys = config_columns(rows)
    entries = []
    for group in aggregate(rows):
        entries.append(_entry(group, keys, group["runs"]))
    results_md = root / "results.md"
    table_md = results_md.read_text() if results_md.is_file() else markdown_table(rows, list(rows[0]))
    return entries, table_md


def _entry(group: dict[str, Any], keys: list[str], n: int) -> dict[str, Any]:
    """A configuration as a plot entry: the first varying key draws the lines, the
    others split the panels."""
    return {
        "label": f"{keys[0]}={group[keys[0]]}" if keys else "all runs",
        "panel": ", ".join(f"{k}={group[k]}" for k in keys[1:]),
        "values": {k: v for k, v in group.items() if isinstance(v, tuple)},
        "full": ", ".join(f"{k}={group[k]}" for k in keys),
        "n": n,
    }


def _paired_entries(root: Path) -> tuple[list[dict[str, Any]], str]:
    """Plot entries of the sweep's paired differences, and what they are against."""
    baseline = baseline_of(root)
    if not baseline:
        return [], ""
    rows = collect(root)
    keys = config_columns(rows)
    entries = [_entry(group, keys, group[PAIRED_RUNS]) for group in paired_differences(rows, baseline)]
    return entries, ", ".join(f"{k}={v}" for k, v in baseline.items())


def _entries_for_run(run_dir: Path) -> tuple[list[dict[str, Any]], str]:
    row = run_row(run_dir)
    if row is None:
        raise ReportError(f"{run_dir} has no summary.json: is it a run directory?")
    values = {k: v for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return [{"label": run_dir.name, "values": values}], markdown_table([row], list(row))


def declared_curves(folder: Path) -> dict[str, Curve]:
    """The curves the loop of a run (or of a sweep's first run) declares, by prefix."""
    configs = [folder / "config.yaml"] if (folder / "config.yaml").is_file() else sorted(folder.glob("*/config.yaml"))
    for path in configs:
        import yaml

        loop_name = ((yaml.safe_load(path.read_text()) or {}).get("env") or {}).get("loop")
        if loop_name:
            try:
                return {c.prefix: c for c in load_loop(str(loop_name)).curves}
            except LoopError:
                return {}
    return {}


def curves_to_draw(entries: list[dict[str, Any]], declared: dict[str, Curve]) -> list[Curve]:
    """One curve per score prefix ``p`` of ``p@x`` scores: the loop's declared ones
    first; ``p[part]`` prefixes (per-skill curves) take their base's words."""
    prefixes = sorted({k.split("@", 1)[0] for e in entries for k in e["values"] if "@" in k})
    curves = [declared[p] for p in declared if p in prefixes]
    for prefix in prefixes:
        if prefix in declared:
            continue
        base, _, part = prefix.partition("[")
        if part and base in declared:
            known = declared[base]
            curves.append(
                Curve(prefix, f"{known.title}: {part.rstrip(']')}", known.xlabel, f"{known.ylabel} ({part.rstrip(']')})", known.difference)
            )
        else:
            curves.append(Curve(prefix, prefix, "x", prefix))
    return curves


def _md_to_html(markdown: str) -> str:
    """Just enough Markdown for our own tables and headings."""
    out, table = [], []

    def flush() -> None:
        if table:
            header, *body = [r for r in table if not set(r.replace("|", "").strip()) <= {"-"}]
            cells = lambda r: [c.strip() for c in r.strip().strip("|").split("|")]  # noqa: E731
            out.append("<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in cells(header)) + "</tr>")
            for r in body:
                out.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells(r)) + "</tr>")
            out.append("</table>")
            table.clear()

    for line in markdown.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush()
        if line.startswith("#"):
            level = min(len(line) - len(line.lstrip("#")) + 1, 4)
            out.append(f"<h{level}>{html.escape(line.lstrip('#').strip())}</h{level}>")
        elif line.strip():
            out.append(f"<p>{html.escape(line)}</p>")
    flush()
    return "\n".join(out)


def write_report(folder: Path | str) -> Path:
    """Write ``report.html`` into a run or sweep folder; returns its path."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ReportError(f"{folder} is not a folder")
    is_run = (folder / "summary.json").is_file()
    entries, table_md = _entries_for_run(folder) if is_run else _entries_for_sweep(folder)
    paired, against = ([], "") if is_run else _paired_entries(folder)
    body = [f"<h1>classroom report: {html.escape(folder.name)}</h1>"]
    for curve in curves_to_draw(entries, declared_curves(folder)):
        raw = _line_plot(_series(entries, curve.prefix), curve.xlabel, curve.ylabel, curve.title, difference=curve.difference)
        if raw is None:
            continue
        images = [raw]
        if paired and not curve.difference:
            # Beside the raw curve: each configuration minus its baseline, run by run.
            title = f"{curve.title}: minus {against} (paired per seed)"
            images.append(_line_plot(_series(paired, curve.prefix), curve.xlabel, f"difference in {curve.ylabel}", title, difference=True))
        shown = "".join(f'<img alt="{html.escape(curve.title)}" src="{uri}">' for uri in images if uri)
        body.append(f'<h2>{html.escape(curve.title)}</h2><div class="row">{shown}</div>')
    for base, parts in _bar_groups(entries).items():
        bars = _bar_plot(entries, base, parts)
        if bars:
            body.append(f'<h2>{html.escape(base)} per configuration</h2><img alt="{html.escape(base)}" src="{bars}">')
    tokens = _token_plot(entries)
    if tokens:
        body.append(f'<h2>Tokens per agent</h2><img alt="tokens per agent" src="{tokens}">')
    body.append(_md_to_html(table_md))
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>classroom report</title><style>"
        "body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:1em 0;font-size:13px}"
        "td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}th{background:#f3f3f3}img{max-width:100%}"
        ".row{display:flex;flex-wrap:wrap;gap:1em}.row img{max-width:49%}"
        "</style></head><body>" + "\n".join(body) + "</body></html>"
    )
    path = folder / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
