"""SuperCorrect's data as a product: templates, correction traces and DPO pairs in TRL's
formats, a ``datasets``-loadable folder with a dataset card.

Layout (``datasets.load_dataset(FOLDER, "sft")``, ``"dpo"``, ``"corrections"``)::

    README.md               the card: source task, teacher, counts, filters and drops
    sft/train.jsonl         prompt / completion (conversational): problem -> template
    dpo/train.jsonl         prompt / chosen / rejected: cross-model correction pairs
    corrections/train.jsonl prompt / completion: problem + a student's steps -> the correction trace
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from classroom.agents.messages import ParseFailure, PreferencePair
from classroom.environments.supercorrect.traces import CorrectionTrace


def _kind(error: str) -> str:
    """A drop reason without its particulars ("step 2 is wrong: 6 * 7 = 43" -> "step N is
    wrong"), so that the card counts kinds."""
    head = error.split(":")[0]
    return re.sub(r"\d+", "N", re.sub(r"'[^']*'", "...", head))


def _write(path: Path, rows: Sequence[dict[str, Any]]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return len(rows)


def write_dataset(
    folder: Path,
    *,
    task: str,
    teacher: str,
    stage: str,
    sft_rows: Sequence[dict[str, Any]],
    pairs: Sequence[PreferencePair],
    traces: Sequence[CorrectionTrace],
    dropped: Sequence[ParseFailure],
    written: int,
    asked: int,
    stage2: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Write the folder; returns the card's figures."""
    counts = {
        "sft": _write(folder / "sft" / "train.jsonl", sft_rows) if sft_rows else 0,
        "dpo": _write(folder / "dpo" / "train.jsonl", [p.row() for p in pairs]) if pairs else 0,
        "corrections": _write(
            folder / "corrections" / "train.jsonl",
            [
                {
                    "prompt": [
                        {
                            "role": "user",
                            "content": "\n".join([f"Q: {t.question}", *(f"<Step{i}>{s}</Step{i}>" for i, s in enumerate(t.steps, 1))]),
                        }
                    ],
                    "completion": [{"role": "assistant", "content": t.render()}],
                }
                for t in traces
            ],
        )
        if traces
        else 0,
    }
    reasons = Counter(_kind(f.error) for f in dropped)
    configs = "".join(f"- config_name: {name}\n  data_files: {name}/train.jsonl\n" for name, n in counts.items() if n)
    card = [
        "---",
        "configs:",
        configs.rstrip("\n"),
        "---",
        "# SuperCorrect data written by classroom",
        "",
        f"- Source task: `{task}`; teacher: `{teacher}`; stage: `{stage}`.",
        f"- Templates: {written} of {asked} problems kept; the filters (structure parses, answer passes the grader,",
        "  every checkable step right) " + ("dropped the rest:" if reasons else "dropped none."),
        *(f"  - {n} x {reason}" for reason, n in reasons.most_common()),
        *(
            [
                f"- Stage 2: the student wrote {stage2['solutions']} solutions of training problems, {stage2['wrong']} wrong"
                + (f" ({stage2['ungradeable']} more the grader could not score, left out)" if stage2.get("ungradeable") else "")
                + ";",
                f"  {stage2['unparsed']} of those were not in the template format (no steps to correct) and",
                f"  {stage2['uncorrected']} had no first wrong step the teacher could place or word;",
                f"  {stage2.get('critique_unparsed', 0)} made no pair: the student's own cause and correction did not parse.",
            ]
            if stage2
            else []
        ),
        f"- sft: {counts['sft']} prompt-completion rows (the student's prompt, the template as completion).",
        f"- dpo: {counts['dpo']} preference pairs (prompt = problem + correct steps; chosen = the teacher's cause and",
        "  correction of the first wrong step; rejected = the student's own, written without the reference).",
        f"- corrections: {counts['corrections']} correction traces (a student's steps to its first wrong one, with <Evaluate>,",
        "  <Cause>, <Correction>, <Answer>).",
        "",
        'Load with `datasets.load_dataset(FOLDER, NAME, split="train")`.',
        "",
    ]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "README.md").write_text("\n".join(line for line in card if line is not None), encoding="utf-8")
    return {"folder": str(folder), "rows": counts, "dropped": dict(reasons), "stage2": stage2}
