"""The grader against a labelled corpus (tests/unit/data/grading_corpus.jsonl): replies
with the verdict a careful reader gives, decided by reading each reply beside its
reference before any grader ran. Most are real replies from the event logs of runs of
every loop (``source`` names the run's loop and phase); the rest are forms models write
on GSM8K and MATH (boxed, ####, units, currency, percentages, fractions, negatives,
several answers, refusals). Every reply must be graded as labelled, or carry a
``miss`` field that says why the grader may differ."""

from __future__ import annotations

import json
from pathlib import Path

from classroom.agents.grading import check, extract_final_answer
from classroom.agents.messages import Problem

CORPUS = Path(__file__).parent / "data" / "grading_corpus.jsonl"


def _graded(row: dict) -> bool | None:
    """The verdict on the reply; for a reasoning-gym problem (its entry kept as
    ``metadata``) the dataset's scorer and the symbolic path must both give it."""
    answer = extract_final_answer(row["reply"])
    verdicts = set()
    for metadata in ({}, row.get("metadata") or {}) if row.get("metadata") else ({},):
        problem = Problem(id="corpus", question=row.get("question", ""), answer=row["reference"], metadata=metadata)
        try:
            verdicts.add(check(problem, answer))
        except Exception:
            verdicts.add(None)
    return verdicts.pop() if len(verdicts) == 1 else None  # None: the two paths disagree


def test_the_grader_agrees_with_the_labelled_corpus():
    rows = [json.loads(line) for line in CORPUS.read_text().splitlines() if line.strip()]
    real = [r for r in rows if not r["source"].startswith("written")]
    assert len(rows) >= len(real) > 0
    misses = [r for r in rows if _graded(r) != r["verdict"]]
    unexplained = [r for r in misses if not r.get("miss")]
    print(f"grading corpus: {len(rows) - len(misses)} of {len(rows)} agree ({len(real)} real replies); misses:")
    for r in misses:
        print(
            f"  [{r['source']}] reference {r['reference']!r}, labelled {r['verdict']}: {r['reply'][:120]!r} ({r.get('miss', 'unexplained')})"
        )
    assert not unexplained, [(r["reference"], r["reply"][:120], r["verdict"]) for r in unexplained]
