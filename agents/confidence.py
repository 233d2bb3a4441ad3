"""Answer probabilities from token log-probabilities.

Used for teacher and student confidence (how probable was the answer a model gave)
and for the mental model's simulated student (how probable is a given answer).
Numbers are found in the token stream as text, never evaluated.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from classroom.serving.types import TokenLogprob

_NUMBER_START = re.compile(r"^\s*[-+]?\d")


def _spans(logprobs: Sequence[TokenLogprob]) -> tuple[str, list[tuple[int, int]]]:
    text, spans, at = "", [], 0
    for item in logprobs:
        spans.append((at, at + len(item.token)))
        text += item.token
        at += len(item.token)
    return text, spans


def _last_standalone(text: str, answer: str) -> int:
    """Index of the last occurrence of ``answer`` not inside a longer number, or -1."""
    start = len(text)
    while True:
        index = text.rfind(answer, 0, start)
        if index < 0:
            return -1
        before = text[index - 1] if index > 0 else " "
        after = text[index + len(answer)] if index + len(answer) < len(text) else " "
        if not (before.isdigit() or before == ".") and not (
            after.isdigit() or (after == "." and index + len(answer) + 1 < len(text) and text[index + len(answer) + 1].isdigit())
        ):
            return index
        start = index + len(answer) - 1
        if start <= 0:
            return -1


def answer_probability(logprobs: Sequence[TokenLogprob] | None, answer: str | None) -> float | None:
    """Probability the model gave to ``answer`` where it wrote it (its last occurrence).

    If the reply never wrote ``answer``, the probability of ``answer`` as a whole
    alternative token at the first number the reply wrote (from the top-k), else 0.0:
    a multi-token answer the reply did not write has no probability to read here (its
    first token's would overstate it: "16" is not as likely as "1").
    None when there are no log-probabilities to read.
    """
    if not logprobs or not answer:
        return None
    answer = answer.strip()
    text, spans = _spans(logprobs)
    index = _last_standalone(text, answer)
    if index >= 0:
        end = index + len(answer)
        total = sum(item.logprob for item, (a, b) in zip(logprobs, spans) if a < end and b > index)
        return math.exp(total)
    for item in logprobs:  # the first number the reply started to write
        if _NUMBER_START.match(item.token):
            best = 0.0
            for alternative, logprob in item.top.items():
                if alternative.strip() == answer:
                    best = max(best, math.exp(logprob))
            return best
    return 0.0
