"""Templates with one wrong step at a known place: the error-localisation benchmark.

A correct template's arithmetic is recomputed with one step's result changed (a wrong
operation result, or a term dropped) and the error carried forward through the later
steps, as a student who made it would go on. The corrupted step is then the first wrong
one, which a model is asked to find; the score is exact-position accuracy, and the step
checker gives the benchmark's ceiling on checkable arithmetic.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from fractions import Fraction

from classroom.agents.step_checker import evaluate
from classroom.environments.supercorrect.thoughts import step_key
from classroom.environments.supercorrect.traces import TemplateStep, ThoughtTemplate

_EQUATION = re.compile(r"^(?P<before>.*?)(?P<lhs>-?\d+(?:\s*[-+*]\s*-?\d+)+)\s*=\s*(?P<rhs>-?\d+)(?P<after>.*)$", re.S)


@dataclass(frozen=True)
class Corrupted:
    """A template with its first wrong step at ``position`` (1-based), and how it was broken."""

    template: ThoughtTemplate
    position: int
    how: str


def _number(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{float(value):g}"


def corrupt(template: ThoughtTemplate, rng: random.Random) -> Corrupted | None:
    """The template with one arithmetic step made wrong and the error carried forward,
    or None if no step has arithmetic to break."""
    parsed = [_EQUATION.match(step.text) for step in template.steps]
    candidates = [i for i, m in enumerate(parsed) if m]
    if not candidates:
        return None
    position = rng.choice(candidates)
    # Results of changed steps not yet used by a later step: (as written, as it became).
    # Each is carried into the first later step that names it, once: a term that only
    # equals an earlier result ("6 + 1 = 7", then "7 + 7") is a term, not the carry.
    pending: list[tuple[str, str]] = []
    steps = list(template.steps)
    how = ""
    for i, match in enumerate(parsed):
        if match is None or i < position:
            continue
        lhs = match["lhs"]
        for old, new in list(pending):
            carried = re.sub(rf"(?<![\d.-]){re.escape(old)}(?![\d.])", new, lhs, count=1)
            if carried != lhs:
                lhs = carried
                pending.remove((old, new))
        right = evaluate(lhs)
        if i == position:
            terms = re.findall(r"-?\d+", lhs)
            if len(terms) > 2 and rng.random() < 0.5:
                how = f"dropped the term {terms[-1]}"
                shown = _number(right)  # the full expression shown, the last term left out of the result
                result = evaluate(lhs.rsplit(terms[-1], 1)[0].rstrip(" +-*"))
            else:
                delta = rng.choice([-3, -2, -1, 1, 2, 3, 10])
                result = right + delta
                how = f"result off by {delta:+d}"
                shown = _number(right)
            wrong = _number(result)
            if wrong == shown:
                wrong = _number(result + 1)
            pending.append((match["rhs"], wrong))
            text = f"{match['before']}{lhs} = {wrong}{match['after']}"
        else:
            new_value = _number(right)
            pending.append((match["rhs"], new_value))
            text = f"{match['before']}{lhs} = {new_value}{match['after']}"
        # A key read from the step's operands (the programmatic teacher's) is read again
        # from the operands the carried error gave it: a key about the old numbers beside
        # new ones would point at the error. Any other key is kept as written.
        key = steps[i].key
        if key is not None and key == step_key(steps[i].text):
            key = step_key(text)
        steps[i] = TemplateStep(text=text, key=key)
    answer = next((new for old, new in reversed(pending) if old == template.answer), template.answer)
    broken = template.model_copy(update={"steps": tuple(steps), "answer": answer})
    return Corrupted(broken, position + 1, how)
