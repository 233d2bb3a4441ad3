"""SuperCorrect's teachers: who writes thought templates and corrects a student's steps.

Behind one interface, :class:`TemplateTeacher`: the teacher model (templates and
corrections written by the LLM, kept only when they check out) and, for reasoning-gym
tasks, :class:`ProgrammaticTeacher`, which builds exact templates from the generator's
own expression and finds the first wrong step with the step checker, as DataEnvGym's
programmatic engine writes exact data. A template is kept only if its structure parses,
its answer passes the grader and every step the checker can decide is right; a dropped
one says why.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from itertools import combinations
from math import prod
from typing import Literal, Protocol, runtime_checkable

from classroom.agents.grading import REASONING_GYM_KEY, answers_match
from classroom.agents.messages import ParseFailure, Problem
from classroom.agents.roles import gold_explanation
from classroom.agents.step_checker import check_steps, worked_solution
from classroom.environments.supercorrect.thoughts import difficulty, generalized, read_step, step_key
from classroom.environments.supercorrect.traces import TemplateStep, ThoughtTemplate, TraceParseError, parse_template
from classroom.serving.llm import LLM
from classroom.serving.prompts import PromptSet
from classroom.serving.types import ChatMessage, SamplingParams

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_OPERATION_WORDS = {"+": "Add", "-": "Subtract", "*": "Multiply"}


@dataclass(frozen=True)
class Written:
    """Templates a teacher wrote, by problem id; what it dropped, with the reason; tokens."""

    templates: dict[str, ThoughtTemplate] = field(default_factory=dict)
    dropped: list[ParseFailure] = field(default_factory=list)
    tokens: int = 0


@dataclass(frozen=True)
class Uncorrected:
    """A teacher model's reply that placed or worded no correction: why, and the reply
    (the stage logs it as a ParseFailure and counts the solution uncorrected)."""

    reason: str
    raw_text: str
    tokens: int = 0  # the reply's prompt and completion tokens


@dataclass(frozen=True)
class Correction:
    """The first wrong step of a solution (1-based), why it is wrong and the fix, what
    decided the position (the step checker, the expression's or the reference's values,
    the teacher), and which teacher wrote the cause and fix (``by``). ``replaced``: the
    teacher model's unusable reply that a fallback's correction stands in for; ``tokens``:
    the teacher model's (0 for a teacher that asks none)."""

    step: int
    cause: str
    correction: str
    decided_by: str
    by: str
    replaced: Uncorrected | None = None
    tokens: int = 0


@runtime_checkable
class TemplateTeacher(Protocol):
    """Writes thought templates for problems and corrects a student's template."""

    name: str

    async def write(self, problems: Sequence[Problem], llm: LLM | None) -> Written: ...

    async def correct(
        self, problem: Problem, attempt: ThoughtTemplate, reference: ThoughtTemplate, llm: LLM | None
    ) -> Correction | Uncorrected | None:
        """The correction at the first wrong step; None where nothing can place it;
        an :class:`Uncorrected` where a model replied without a usable one."""
        ...


def check_template(problem: Problem, template: ThoughtTemplate) -> str | None:
    """Why a template cannot be used for ``problem``, or None: its answer must match the
    problem's and every step the checker can decide must be right."""
    if not answers_match(template.answer, problem.answer):
        return f"its answer {template.answer!r} is not the problem's {problem.answer!r}"
    for number, step in enumerate(template.steps, 1):
        for check in check_steps(step.text):
            if check.verdict == "wrong":
                return f"step {number} is wrong: {check.equation} ({check.reason})"
    return None


def reachable_values(expression: str) -> set[Fraction] | None:
    """Every value that some right way of working ``expression`` writes as a step's
    result: the sum of any of its signed terms, any product of a term's factors, either
    sign ("3 + 4 = 7" and then "10 - 7 = 3" work 10 - 3 - 4 rightly). None where the
    expression is not a plain sum of products (parentheses, division) or too long to
    list: the caller then has no such set."""
    tokens = re.findall(r"\d+(?:\.\d+)?|[-+*/()]", expression)
    if not tokens or any(t in "()/" for t in tokens) or "".join(tokens) != re.sub(r"\s+", "", expression):
        return None
    terms: list[tuple[int, list[Fraction]]] = []
    sign, factors, expect_number = 1, [], True
    for token in tokens:
        if expect_number:
            if token in "+-":  # a sign before a number
                sign = -sign if token == "-" else sign
                continue
            if token == "*":
                return None
            factors.append(Fraction(token))
            expect_number = False
        elif token == "*":
            expect_number = True
        else:  # + or - ends a term
            terms.append((sign, factors))
            sign, factors, expect_number = (-1 if token == "-" else 1), [], True
    if expect_number:
        return None
    terms.append((sign, factors))
    if len(terms) > 10 or any(len(f) > 6 for _, f in terms):
        return None
    values: set[Fraction] = set()
    for sign, factors in terms:
        for size in range(1, len(factors) + 1):
            for chosen in combinations(factors, size):
                values.add(sign * prod(chosen, start=Fraction(1)))
    full = [sign * prod(factors, start=Fraction(1)) for sign, factors in terms]
    for size in range(1, len(full) + 1):
        for chosen in combinations(full, size):
            values.add(sum(chosen, Fraction(0)))
    return values | {-v for v in values}


def first_wrong_step(attempt: ThoughtTemplate, reference: ThoughtTemplate, expression: str | None = None) -> tuple[int, str] | None:
    """Where a wrong solution first goes wrong, or None when nothing here can tell (the
    LLM teacher then decides; the programmatic one leaves it).

    With the problem's ``expression``, in step order: a step whose equation is wrong
    (the exact step checker), or whose result no right way of working the expression
    reaches (:func:`reachable_values`: "5 + 9 = 14" for 5 - 9); a right step in another
    order than the reference's ("4 + 5 = 9" first for 3 + 4 + 5) is right. Without
    one: the step checker over every step first; the reference's values only for a step
    the checker decides nothing about, never against a step whose arithmetic is right.
    """
    reachable = reachable_values(expression) if expression else None
    checks = [check_steps(step.text) for step in attempt.steps]
    if reachable is not None:
        for number, (step, checked) in enumerate(zip(attempt.steps, checks), 1):
            if any(check.verdict == "wrong" for check in checked):
                return number, "step checker"
            result = _result(step.text)
            if result is not None and result not in reachable:
                return number, "expression values"
        return None
    for number, checked in enumerate(checks, 1):
        if any(check.verdict == "wrong" for check in checked):
            return number, "step checker"
    reached = {n for step in reference.steps for n in _NUMBER.findall(step.text)} | {reference.answer}
    for number, (step, checked) in enumerate(zip(attempt.steps, checks), 1):
        if any(check.verdict == "right" for check in checked):
            continue
        result = _result_text(step.text)
        if result is not None and result not in reached:
            return number, "reference values"
    return None


def _result_text(text: str) -> str | None:
    """The value a step arrives at, as written: the last number after its last "=" (or
    in it, without one)."""
    numbers = _NUMBER.findall(text.split("=")[-1]) if "=" in text else _NUMBER.findall(text)
    return numbers[-1] if numbers else None


def _result(text: str) -> Fraction | None:
    """:func:`_result_text` as an exact number."""
    written = _result_text(text)
    return Fraction(written) if written is not None else None


def expression_of(problem: Problem) -> str | None:
    """The arithmetic expression a reasoning-gym problem was generated from, if any."""
    entry = (problem.metadata.get(REASONING_GYM_KEY) or {}).get("entry") or {}
    expression = (entry.get("metadata") or {}).get("expression")
    return expression if isinstance(expression, str) and expression else None


class ProgrammaticTeacher:
    """Exact templates from reasoning-gym expressions; corrections from the step checker.

    A template's steps are the expression worked products-first, then left to right; its
    hardest step carries the ``<Key>`` (what is hard there and why, from its operands) and
    the generalized thought describes the expression's structure (see :mod:`.thoughts`).
    """

    name = "programmatic"

    async def write(self, problems: Sequence[Problem], llm: LLM | None) -> Written:
        written, dropped = {}, []
        for problem in problems:
            template = self.template(problem)
            reason = "the problem carries no expression to work" if template is None else check_template(problem, template)
            if reason is not None:
                dropped.append(
                    ParseFailure(
                        sender=self.name, parents=(problem.id,), expected="ThoughtTemplate", raw_text=problem.question[:300], error=reason
                    )
                )
            else:
                written[problem.id] = template.model_copy(update={"problem_id": problem.id, "sender": self.name, "parents": (problem.id,)})
        return Written(written, dropped)

    def template(self, problem: Problem) -> ThoughtTemplate | None:
        expression = expression_of(problem)
        if expression is None:
            return None
        worked = worked_solution(expression, problem.answer)
        sentences = [s.strip() for s in worked.split(". ") if s.strip() and not s.strip().startswith("The answer is")]
        if not sentences:
            return None
        sentences = [s if s.endswith(".") else s + "." for s in sentences]
        readings = [read_step(s) for s in sentences]
        # The key thought goes on the hardest step (ties: the later one), and says why.
        hardest = max(range(len(sentences)), key=lambda i: (difficulty(readings[i]) if readings[i] else -1, i))
        steps = []
        for i, sentence in enumerate(sentences):
            operator = next((op for op in ("*", "+", "-") if f" {op} " in sentence), "+")
            key = step_key(sentence) if i == hardest else None
            steps.append(TemplateStep(text=f"{_OPERATION_WORDS[operator]}: {sentence}", key=key))
        return ThoughtTemplate(
            steps=tuple(steps),
            generalized=generalized(expression) or "Work the expression one operation a step.",
            answer=problem.answer,
        )

    async def correct(self, problem: Problem, attempt: ThoughtTemplate, reference: ThoughtTemplate, llm: LLM | None) -> Correction | None:
        located = first_wrong_step(attempt, reference, expression_of(problem))
        if located is None:
            return None
        step, decided_by = located
        text = attempt.steps[step - 1].text
        wrong = [c for c in check_steps(text) if c.verdict == "wrong"]
        if wrong:
            lhs = wrong[0].equation.split("=")[0].strip()
            right = _show(wrong[0].value)
            cause = f"Step {step} computes {lhs} as {wrong[0].equation.split('=')[-1].strip()}, but {lhs} = {right}."
            correction = f"{lhs} = {right}."
        else:
            expected = reference.steps[step - 1].text if step <= len(reference.steps) else f"The answer is {reference.answer}."
            cause = f"Step {step} reaches a value the solution never needs: it does not follow from the problem's numbers."
            correction = expected
        return Correction(step, cause, correction, decided_by, by=self.name)


def _show(value: object) -> str:
    from fractions import Fraction

    if isinstance(value, Fraction):
        return str(value.numerator) if value.denominator == 1 else f"{float(value):g}"
    return str(value)


class LLMTeacher:
    """The teacher model writes templates (kept only when they check out) and corrects
    a student's steps given the reference (the paper's teacher; for GPUs and endpoints:
    a 135M model writes few templates that pass).

    ``fallback="programmatic"`` gives a problem whose template from the teacher model
    did not check out the programmatic teacher's, and a wrong step whose correction the
    teacher model did not word usably the programmatic correction (reasoning-gym
    problems only): a run whose small teacher model writes few usable templates and
    corrections still reaches and finishes stage 2, the teacher model asked every time.
    Not the paper's method: the summary counts both (``templates.fallbacks``,
    ``stage2.correction_fallbacks``), and the model's unusable replies stay logged."""

    name = "llm"

    def __init__(self, max_tokens: int = 512, prompts: dict[str, str] | None = None, fallback: Literal["none", "programmatic"] = "none"):
        if fallback not in ("none", "programmatic"):
            raise ValueError(f"fallback must be 'none' or 'programmatic', got {fallback!r}")
        self.params = SamplingParams(max_tokens=max_tokens, temperature=0.0)
        self.prompts = PromptSet.load("classroom.environments.supercorrect", "prompts.yaml", prompts)
        self.fallback = ProgrammaticTeacher() if fallback == "programmatic" else None

    async def write(self, problems: Sequence[Problem], llm: LLM | None) -> Written:
        if llm is None:
            raise ValueError("the llm template teacher needs the teacher's model")
        conversations = [[ChatMessage(role="user", content=self.prompts.render("write_template", question=p.question))] for p in problems]
        replies = await llm.chat(conversations, self.params)
        written, dropped = {}, []
        for problem, [reply] in zip(problems, replies):
            try:
                template = parse_template(reply.text.strip())
                reason = check_template(problem, template)
            except TraceParseError as exc:
                reason = f"does not parse: {exc}"
            if reason is not None:
                dropped.append(
                    ParseFailure(
                        sender=self.name, parents=(problem.id,), expected="ThoughtTemplate", raw_text=reply.text[:2000], error=reason
                    )
                )
            else:
                written[problem.id] = template.model_copy(update={"problem_id": problem.id, "sender": self.name, "parents": (problem.id,)})
        if self.fallback is not None:
            instead = await self.fallback.write([p for p in problems if p.id not in written], None)
            written.update(instead.templates)  # sent by "programmatic": counted as fallbacks
        return Written(written, dropped, sum(r[0].usage.total_tokens for r in replies))

    async def correct(
        self, problem: Problem, attempt: ThoughtTemplate, reference: ThoughtTemplate, llm: LLM | None
    ) -> Correction | Uncorrected | None:
        if llm is None:
            raise ValueError("the llm template teacher needs the teacher's model")
        corrected = await self._correct(problem, attempt, reference, llm)
        if isinstance(corrected, Uncorrected) and self.fallback is not None:
            instead = await self.fallback.correct(problem, attempt, reference, None)
            if isinstance(instead, Correction):  # by "programmatic": counted as a fallback
                return replace(instead, replaced=corrected, tokens=corrected.tokens)
        return corrected

    async def _correct(self, problem: Problem, attempt: ThoughtTemplate, reference: ThoughtTemplate, llm: LLM) -> Correction | Uncorrected:
        located = first_wrong_step(attempt, reference, expression_of(problem))
        if located is not None:
            step, decided_by = located
            prompt = self.prompts.render(
                "correct_step", question=problem.question, reference=reference.render(), steps=_listed(attempt, step), step=step
            )
        else:
            # The checker cannot tell: the teacher, with the reference, names the step too.
            step, decided_by = 0, "teacher"
            prompt = self.prompts.render(
                "locate_and_correct", question=problem.question, reference=reference.render(), steps=_listed(attempt, len(attempt.steps))
            )
        [[reply]] = await llm.chat([[ChatMessage(role="user", content=prompt)]], self.params)
        tokens = reply.usage.total_tokens
        if not step:
            named = _STEP_TAG.search(reply.text)
            step = int(named.group(1)) if named else 0
            if not 1 <= step <= len(attempt.steps):
                return Uncorrected(f"names no step of 1-{len(attempt.steps)} in <Step>", reply.text[:2000], tokens)
        cause, correction = cause_and_correction(reply.text)
        if cause is None or correction is None:
            missing = " and no ".join(t for t, v in (("<Cause>", cause), ("<Correction>", correction)) if v is None)
            return Uncorrected(f"no {missing}", reply.text[:2000], tokens)
        return Correction(step, cause, correction, decided_by, by=self.name, tokens=tokens)


def _listed(attempt: ThoughtTemplate, upto: int) -> str:
    return "\n".join(f"Step {i}: {s.text}" for i, s in enumerate(attempt.steps[:upto], 1))


_STEP_TAG = re.compile(r"<Step>\s*(\d+)\s*</Step>")
_CAUSE = re.compile(r"<Cause>(.*?)</Cause>", re.S)
_CORRECTION = re.compile(r"<Correction>(.*?)</Correction>", re.S)


def cause_and_correction(text: str) -> tuple[str | None, str | None]:
    """The <Cause> and <Correction> a reply wrote (None where it wrote none or an empty one)."""
    cause, correction = _CAUSE.search(text), _CORRECTION.search(text)
    return (
        cause.group(1).strip() or None if cause else None,
        correction.group(1).strip() or None if correction else None,
    )


def plain_solution(problem: Problem) -> str:
    """SFT's target (the baseline to HSFT): the plain worked solution, no template tags."""
    entry = (problem.metadata.get("reasoning_gym") or {}).get("entry") or {}
    expression = (entry.get("metadata") or {}).get("expression")
    if expression:
        return worked_solution(expression, problem.answer)
    return gold_explanation(problem) or f"The answer is {problem.answer}."
