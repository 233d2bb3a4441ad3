"""Checking arithmetic steps without a model: "14 - 7 = 7" is right, "6 * 7 = 43" is not.

Equations are parsed by a small recursive-descent parser into exact fractions (numbers,
+ - * / × ÷, parentheses, unary minus) and both sides compared: model text is parsed,
never evaluated as code. What the parser cannot read is *undecided*, never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

Verdict = Literal["right", "wrong", "undecided"]

_OPERATORS = {"×": "*", "÷": "/", "−": "-", "–": "-", "x": "*", "X": "*"}
_TOKEN = re.compile(r"\s*(?:(\d+(?:,\d{3})*(?:\.\d+)?|\.\d+)|([-+*/()]))")
# An equation in running text: an arithmetic expression with at least one operator,
# "=", and a number (or a chain "a = b = c"). Operators may be written × ÷ or x.
_NUMBER = r"-?(?:\d+(?:,\d{3})*(?:\.\d+)?|\.\d+)"
_EXPRESSION = rf"\(?\s*{_NUMBER}\s*\)?(?:\s*[-+*/×÷x−–]\s*\(?\s*{_NUMBER}\s*\)?)+"
_EQUATION = re.compile(rf"(?<![\w.])({_EXPRESSION})\s*=\s*({_NUMBER}(?:\s*=\s*{_NUMBER})*)(?![\w])")


class StepParseError(ValueError):
    """An expression the step parser cannot read (not arithmetic, or malformed)."""


@dataclass(frozen=True)
class StepCheck:
    """The verdict on one equation: right, wrong or undecided, and why."""

    equation: str
    verdict: Verdict
    reason: str = ""
    # The exact value of the left-hand side, when it could be computed.
    value: Fraction | None = None


class _Parser:
    def __init__(self, text: str):
        normal = "".join(_OPERATORS.get(ch, ch) for ch in text)
        self.tokens: list[str] = []
        at = 0
        while at < len(normal):
            if normal[at].isspace():
                at += 1
                continue
            match = _TOKEN.match(normal, at)
            if not match:
                raise StepParseError(f"cannot read {normal[at : at + 12]!r}")
            self.tokens.append(match.group(1) or match.group(2))
            at = match.end()
        self.at = 0

    def parse(self) -> Fraction:
        if not self.tokens:
            raise StepParseError("empty expression")
        value = self._expression()
        if self.at != len(self.tokens):
            raise StepParseError(f"unexpected {self.tokens[self.at]!r}")
        return value

    def _peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def _take(self) -> str:
        token = self._peek()
        if token is None:
            raise StepParseError("expression ends too early")
        self.at += 1
        return token

    def _expression(self) -> Fraction:
        value = self._term()
        while self._peek() in ("+", "-"):
            value = value + self._term() if self._take() == "+" else value - self._term()
        return value

    def _term(self) -> Fraction:
        value = self._factor()
        while self._peek() in ("*", "/"):
            operator, right = self._take(), self._factor()
            if operator == "*":
                value *= right
            elif right == 0:
                raise StepParseError("division by zero")
            else:
                value /= right
        return value

    def _factor(self) -> Fraction:
        token = self._take()
        if token == "-":
            return -self._factor()
        if token == "+":
            return self._factor()
        if token == "(":
            value = self._expression()
            if self._take() != ")":
                raise StepParseError("unbalanced parenthesis")
            return value
        if token in "*/)":
            raise StepParseError(f"unexpected {token!r}")
        return Fraction(token.replace(",", ""))


def evaluate(expression: str) -> Fraction:
    """The exact value of an arithmetic expression; :class:`StepParseError` if unreadable."""
    return _Parser(expression).parse()


def check_equation(equation: str) -> StepCheck:
    """Whether every side of ``a op b = c`` (or a chain ``a = b = c``) has the same value."""
    sides = [s.strip().rstrip(".").strip() for s in equation.split("=")]
    if len(sides) < 2 or not all(sides):
        return StepCheck(equation, "undecided", "not an equation")
    try:
        values = [evaluate(side) for side in sides]
    except StepParseError as exc:
        return StepCheck(equation, "undecided", str(exc))
    if all(v == values[0] for v in values[1:]):
        return StepCheck(equation, "right", value=values[0])
    shown = " = ".join(_show(v) for v in values)
    return StepCheck(equation, "wrong", f"the sides are {shown}", value=values[0])


def find_equations(text: str) -> list[str]:
    """The arithmetic equations written in running text, in order."""
    return [f"{m.group(1).strip()} = {m.group(2).strip()}" for m in _EQUATION.finditer(text)]


def check_steps(text: str) -> list[StepCheck]:
    """A verdict for every equation the text writes."""
    return [check_equation(e) for e in find_equations(text)]


def _show(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{float(value):g}"
