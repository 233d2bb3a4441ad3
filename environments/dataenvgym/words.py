"""Open-ended plans in words: what kind of problem the student got wrong, and back.

The open-ended variant's plan is free text. Its built-in policy writes one line per
kind of error ("- 6 problems: products of 2 numbers with 2 digits"), read off the wrong
problems' own arithmetic; an engine acts on the words: the teacher model reads them as
any instruction, the programmatic engine reads the lines it knows and records the rest.
No generator settings travel with the plan.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

Operation = Literal["sums and differences", "products", "mixed arithmetic"]
# The kind of a problem with no arithmetic to read: only a model can write more.
WORD_PROBLEMS = "word problems like the examples"

_EXPRESSION = re.compile(r"(?<![\w.])(\d+(?:\s*[-+*×]\s*\d+)+)(?![\d.]\d)(?!\d)")
_KIND_LINE = re.compile(r"^\s*-\s*(\d+)\s+problems?\s*:\s*(.+?)\s*\.?\s*$", re.M)
_WORDS = re.compile(r"^(sums and differences|products|mixed arithmetic) of (\d+) numbers with (?:(\d+) to )?(\d+) digits?$", re.I)


@dataclass(frozen=True)
class ArithmeticKind:
    """A kind of arithmetic problem: its operations, how many numbers, how many digits."""

    operation: Operation
    terms: int
    min_digits: int
    max_digits: int

    def words(self) -> str:
        digits = f"{self.max_digits} digit{'s' if self.max_digits > 1 else ''}"
        if self.min_digits != self.max_digits:
            digits = f"{self.min_digits} to {self.max_digits} digits"
        return f"{self.operation} of {self.terms} numbers with {digits}"

    def generator(self) -> tuple[str, dict[str, Any]]:
        """The reasoning-gym generator and settings that make problems of this kind."""
        sizes = {"min_terms": self.terms, "max_terms": self.terms, "min_digits": self.min_digits, "max_digits": self.max_digits}
        if self.operation == "sums and differences":
            return "chain_sum", sizes
        if self.operation == "products":
            return "products", sizes
        return "basic_arithmetic", {**sizes, "operators": ["+", "-", "*"], "allow_parentheses": False, "allow_negation": False}


def describe(question: str) -> ArithmeticKind | None:
    """The kind of the arithmetic a question asks for, or None (no expression in it)."""
    match = _EXPRESSION.search(question)
    if not match:
        return None
    expression = match.group(1).replace("×", "*")
    numbers = re.findall(r"\d+", expression)
    operators = set(re.findall(r"[-+*]", expression))
    operation: Operation = "products" if operators == {"*"} else "sums and differences" if operators <= {"+", "-"} else "mixed arithmetic"
    digits = [len(n.lstrip("0") or "0") for n in numbers]
    return ArithmeticKind(operation, len(numbers), min(digits), max(digits))


def read_kind(words: str) -> ArithmeticKind | None:
    """The kind a description names, if it is written as :meth:`ArithmeticKind.words` writes."""
    match = _WORDS.match(words.strip().rstrip("."))
    if not match:
        return None
    operation, terms, low, high = match.groups()
    return ArithmeticKind(operation.lower(), int(terms), int(low or high), int(high))  # type: ignore[arg-type]


def kind_lines(instructions: str) -> list[tuple[int, str]]:
    """The "- N problems: WORDS" lines of an instruction text, as (N, WORDS)."""
    return [(int(n), words) for n, words in _KIND_LINE.findall(instructions)]
