"""M1's answer selection and M2's preference pairs: arithmetic on scored samples.

All four selections read the same N samples of a teaching problem:
- greedy: the answer of the teacher's greedy rationale (a separate, T = 0 sample);
- self-consistency: the most frequent answer among the samples;
- M1-MAX: the answer of the best-scored sample that has one;
- M1-SUM: the answer whose samples' scores sum highest (samples without one count for none).
Ties go to the answer met first among the samples, so every rule is deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from classroom.agents.grading import normalize_answer
from classroom.environments.lbt.types import ScoredRationale

METHODS: tuple[str, ...] = ("greedy", "self_consistency", "m1_max", "m1_sum")


def answer_key(answer: str | None) -> str | None:
    """Answers that are the same number group together ("1,000" and "1000")."""
    return None if answer is None else normalize_answer(answer)


def _best(keys: Sequence[str | None], weight: Callable[[int], float]) -> str | None:
    """The key with the largest total weight over its samples (ties: the first met)."""
    totals: dict[str, float] = {}
    for index, key in enumerate(keys):
        if key is not None:
            totals[key] = totals.get(key, 0.0) + weight(index)
    if not totals:
        return None
    return max(totals, key=lambda k: (totals[k], -keys.index(k)))


def select_answers(greedy: str | None, samples: Sequence[ScoredRationale]) -> dict[str, str | None]:
    """The answer each method picks for one teaching problem (see the module's doc)."""
    keys = [answer_key(s.answer) for s in samples]
    by_key = {answer_key(s.answer): s.answer for s in reversed(samples)}  # the first spelling met
    # Among the samples that give an answer: a best-scored rationale without one answers nothing.
    answered = [i for i, s in enumerate(samples) if s.answer is not None]
    best_sample = max(answered, key=lambda i: (samples[i].score, -i), default=None)
    picked = {
        "greedy": greedy,
        "self_consistency": by_key.get(_best(keys, lambda i: 1.0)),
        "m1_max": samples[best_sample].answer if best_sample is not None else None,
        "m1_sum": by_key.get(_best(keys, lambda i: samples[i].score)),
    }
    return picked


@dataclass(frozen=True)
class RankedPair:
    """Two samples of one problem, the better first, and how far apart they scored."""

    chosen: int
    rejected: int
    gap: float


def preference_pairs(samples: Sequence[ScoredRationale], *, correctness_weight: float, min_gap: float, max_pairs: int) -> list[RankedPair]:
    """M2's pairs: score = w x correctness + (1 - w) x LbT score; every (i, j) whose
    scores differ by more than ``min_gap`` (i the better), the widest gaps first, at
    most ``max_pairs``. Two samples with the same text never pair."""
    scores = [correctness_weight * float(s.correct) + (1.0 - correctness_weight) * s.score for s in samples]
    pairs = [
        RankedPair(i, j, scores[i] - scores[j])
        for i in range(len(samples))
        for j in range(len(samples))
        if scores[i] - scores[j] > min_gap and samples[i].explanation.text != samples[j].explanation.text
    ]
    pairs.sort(key=lambda p: (-p.gap, p.chosen, p.rejected))
    return pairs[:max_pairs]
