"""The programmatic teacher's thoughts: a step's ``<Key>`` and a problem's ``<Generalized>``.

SuperCorrect's hierarchical templates pair each solution with a detailed thought on its
key step (what is hard there and why) and a generalized thought on how to solve problems
of its kind. For arithmetic expressions both are derived from the problem itself, not
written once for all problems:

- :func:`step_key` reads one worked step ("a op b = c") and says what is hard in it from
  its operands: the columns that carry or borrow, a result that changes sign, a product
  worked before the sums around it. :func:`difficulty` ranks steps by the same reading:
  the template's key goes on its hardest step.
- :func:`generalized` describes the expression's structure: how many terms, which
  operations, whether products come first, whether a running total goes below zero.

Keys name digits and operands but hold no equation ("7 and 8 make 15", never "7 + 8 =
15"): the step checker reads only a step's own text, and a key never competes with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_STEP = re.compile(r"(?P<a>-?\d+)\s*(?P<op>[-+*])\s*(?P<b>-?\d+)\s*=\s*-?\d+")
_PLACES = ("ones", "tens", "hundreds", "thousands", "ten-thousands")
_OPS = {"+": ("addition", "additions"), "-": ("subtraction", "subtractions"), "*": ("product", "products")}


@dataclass(frozen=True)
class Reading:
    """What one step does: its operands and operator, and the columns that carry
    (addition) or borrow (subtraction) when it is worked digit by digit."""

    a: int
    op: str
    b: int
    columns: tuple[int, ...]  # places (0 = ones) that carry or borrow


def read_step(text: str) -> Reading | None:
    """The step's operation, or None when ``text`` holds no "a op b = c" of whole numbers."""
    match = _STEP.search(text)
    if match is None:
        return None
    a, op, b = int(match["a"]), match["op"], int(match["b"])
    return Reading(a, op, b, _columns(a, op, b))


def _digits(n: int) -> list[int]:
    return [int(d) for d in reversed(str(abs(n)))]


def _columns(a: int, op: str, b: int) -> tuple[int, ...]:
    """Places that carry (a + b) or borrow (a - b), for the magnitudes as a pupil works
    them: a sum of non-negatives, or the larger minus the smaller."""
    if op == "*" or a < 0 or b < 0:
        return ()
    if op == "-" or len(str(b)) > len(str(a)):
        a, b = max(a, b), min(a, b)  # the longer (larger) number on top
    top, bottom = _digits(a), _digits(b)
    places, carry = [], 0
    for place in range(len(top)):
        x, y = top[place], (bottom[place] if place < len(bottom) else 0)
        if op == "+":
            if x + y + carry > 9:
                places.append(place)
            carry = int(x + y + carry > 9)
        else:
            if x - carry < y:
                places.append(place)
            carry = int(x - carry < y)
    return tuple(places)


def difficulty(reading: Reading) -> int:
    """How much a step asks beyond copying digits: a product's digits, each carry or
    borrow, and a sign to keep or change."""
    score = len(reading.columns)
    if reading.op == "*":
        score += len(str(abs(reading.a))) + len(str(abs(reading.b)))  # a digit of one times each of the other
    if reading.a < 0 or reading.b < 0:
        score += 2
    if reading.op == "-" and reading.a >= 0 and reading.b > reading.a:
        score += 2  # the result goes below zero
    return score


def step_key(text: str) -> str | None:
    """What is hard in the step ``text`` and why, from its operands; None when it holds no
    whole-number operation."""
    r = read_step(text)
    if r is None:
        return None
    a, b = r.a, r.b
    if r.op == "*":
        if abs(b) >= 10 and abs(a) >= 10:
            tens, ones = abs(b) // 10 * 10, abs(b) % 10
            split = f"{a} times {tens} and {a} times {ones}, then add the two"
        else:
            split = f"{max(a, b, key=abs)} taken {min(abs(a), abs(b))} times"
        return f"A product: it is worked before the sums around it; {split}."
    if a < 0 or b < 0:
        if r.op == "-" and a < 0 and b >= 0:
            return f"{a} is below zero and {b} is taken away: the result goes further below zero, {abs(a)} and {b} added with a minus sign."
        if r.op == "+" and a < 0 <= b:
            bigger = "the result is negative" if abs(a) > b else "the result is zero or above"
            return f"{a} plus {b}: the difference of {abs(a)} and {b}, and {bigger}."
        return f"A negative number in the step ({a}, {b}): keep each sign in view before combining."
    if r.op == "-" and b > a:
        return f"{b} is larger than {a}: the result is negative, {b} minus {a} with a minus sign."
    if r.columns:
        place = r.columns[0]
        top, bottom = _digits(max(a, b)), _digits(min(a, b))
        x, y = top[place], (bottom[place] if place < len(bottom) else 0)
        where = _PLACES[min(place, len(_PLACES) - 1)]
        into = _PLACES[min(place + 1, len(_PLACES) - 1)]
        more = f" ({len(r.columns)} columns in all)" if len(r.columns) > 1 else ""
        if r.op == "+":
            return f"The {where} digits {x} and {y} make {x + y}: write {(x + y) % 10} and carry 1 into the {into}{more}."
        return f"In the {where}, {x} is less than {y}: borrow 1 from the {into}{more}."
    return f"No column {'carries' if r.op == '+' else 'borrows'}: {'add' if r.op == '+' else 'subtract'} digit by digit."


def generalized(expression: str) -> str | None:
    """How to work expressions of this one's kind, from its structure (terms, operators,
    products, signs); None when it is not a sum of whole-number products."""
    tokens = expression.split()
    if len(tokens) < 3 or len(tokens) % 2 == 0 or any(t not in _OPS for t in tokens[1::2]):
        return None
    try:
        values = [int(t) for t in tokens[::2]]
    except ValueError:
        return None
    operators = tokens[1::2]
    counts = {op: operators.count(op) for op in _OPS if op in operators}
    parts = [f"{n} {_OPS[op][n > 1]}" for op, n in counts.items()]
    named = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    products = counts.get("*", 0)
    digits = sorted({len(str(abs(v))) for v in values})
    sizes = " and ".join(f"{d}-digit" for d in digits)
    order = (
        "work each product first, then add and subtract the results from left to right"
        if products and len(counts) > 1
        else "multiply from left to right"
        if products
        else "work from left to right"
    )
    terms = [values[0]]
    for op, v in zip(operators, values[1:]):  # signed terms, products worked first
        if op == "*":
            terms[-1] *= v
        else:
            terms.append(v if op == "+" else -v)
    running, negative = terms[0], terms[0] < 0
    for term in terms[1:]:  # the running totals of the left-to-right steps
        running += term
        negative = negative or running < 0
    sign = "; a running total goes below zero, so keep its sign" if negative else ""
    return f"{len(values)} {sizes} numbers with {named}: {order}, one operation a step{sign}."
