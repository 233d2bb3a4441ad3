"""Arithmetic steps without a model: checking "14 - 7 = 7" (right) and "6 * 7 = 43"
(wrong), and writing the steps of a worked solution from an expression.

Equations are parsed by a small recursive-descent parser into exact fractions (numbers,
+ - * / × ÷, parentheses, unary minus) and both sides compared: model text is parsed,
never evaluated as code. What the parser cannot read is *undecided*, never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from classroom.serving.errors import ParseError

Verdict = Literal["right", "wrong", "undecided"]

_OPERATORS = {"×": "*", "÷": "/", "−": "-", "–": "-", "x": "*", "X": "*"}
_TOKEN = re.compile(r"\s*(?:(\d+(?:,\d{3})*(?:\.\d+)?|\.\d+)|([-+*/()]))")
# An equation in running text: an arithmetic expression with at least one operator,
# "=", and a number (or a chain "a = b = c"). Operators may be written × ÷ or x.
_NUMBER = r"-?(?:\d+(?:,\d{3})*(?:\.\d+)?|\.\d+)"
_EXPRESSION = rf"\(?\s*{_NUMBER}\s*\)?(?:\s*[-+*/×÷x−–]\s*\(?\s*{_NUMBER}\s*\)?)+"
_EQUATION = re.compile(rf"(?<![\w.])({_EXPRESSION})\s*=\s*({_NUMBER}(?:\s*=\s*{_NUMBER})*)(?![\w])")


class StepParseError(ParseError):
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


def worked_solution(expression: str | None, answer: str) -> str:
    """A short worked solution for "a + b * c - d" (whole numbers, + - *): the products
    first, then left to right, one step a sentence; the answer line always."""
    tokens = (expression or "").split()
    steps: list[str] = []
    if len(tokens) >= 3 and len(tokens) % 2 == 1 and all(t in ("+", "-", "*") for t in tokens[1::2]):
        try:
            values, operators = [int(t) for t in tokens[::2]], tokens[1::2]
        except ValueError:
            return f"The answer is {answer}."
        # Products first, as arithmetic has it: "3 + 4 * 2" is 3 + 8.
        terms, signs = [values[0]], []
        for operator, value in zip(operators, values[1:]):
            if operator == "*":
                product = terms[-1] * value
                steps.append(f"{terms[-1]} * {value} = {product}.")
                terms[-1] = product
            else:
                terms.append(value)
                signs.append(operator)
        total = terms[0]
        for sign, value in zip(signs, terms[1:]):
            new = total + value if sign == "+" else total - value
            steps.append(f"{total} {sign} {value} = {new}.")
            total = new
    return " ".join([*steps, f"The answer is {answer}."])
