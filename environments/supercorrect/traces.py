"""SuperCorrect's typed traces: hierarchical thought templates and correction traces.

A thought template, as text (Yang et al. 2024)::

    <Step1>Add the units: 4 + 8 = 12.<Key>Carry the 1 to the tens.</Key></Step1>
    <Step2>Add the tens: 1 + 2 + 3 = 6.</Step2>
    <Generalized>Add column by column, carrying what exceeds 9.</Generalized>
    <Answer>62</Answer>

Numbered steps in order, each with its text and at most one ``<Key>`` detailed thought
(a hard step's), one ``<Generalized>`` high-level thought, one ``<Answer>``, one element
a line. A correction trace walks a student's steps up to the first wrong one, each with
its ``<Evaluate>`` (``correct``, and ``incorrect`` for the last), then the ``<Cause>`` of
the error, its ``<Correction>`` and the answer. :func:`parse_template` and
:func:`parse_trace` read text into the models; ``render`` writes them back, and
``parse(render(x)) == x`` and ``render(parse(text)) == text`` for text written one
element a line. Text that does not parse raises :class:`TraceParseError` saying why (a
loop records it as a ParseFailure; nothing crashes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from classroom.agents.messages import MessageBase, register_message
from classroom.serving.errors import ParseError
from classroom.serving.types import Usage

KNOWN = ("Key", "Generalized", "Answer", "Evaluate", "Cause", "Correction")
_TAG = re.compile(r"<(/?)([A-Z][A-Za-z]*)(\d*)>")


class TraceParseError(ParseError):
    """Text that is not a well-formed template or trace; the message says why."""


class TemplateStep(BaseModel):
    """One numbered step of a template: what it does, and a hard step's detailed thought."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    text: str = Field(min_length=1)
    key: str | None = None


@register_message
class ThoughtTemplate(MessageBase):
    """A hierarchical thought template: detailed steps, a generalized thought, the answer."""

    kind: Literal["thought_template"] = "thought_template"
    problem_id: str = ""
    steps: tuple[TemplateStep, ...] = Field(min_length=1)
    generalized: str
    answer: str

    def render(self) -> str:
        lines = [
            f"<Step{i}>{step.text}" + (f"<Key>{step.key}</Key>" if step.key is not None else "") + f"</Step{i}>"
            for i, step in enumerate(self.steps, 1)
        ]
        return "\n".join([*lines, f"<Generalized>{self.generalized}</Generalized>", f"<Answer>{self.answer}</Answer>"])


@register_message
class CorrectionTrace(MessageBase):
    """A student's solution walked to its first wrong step, with the cause and the fix.

    ``steps`` are the student's steps 1..k; steps before k were judged correct, step k
    (``first_wrong_step``) incorrect. ``source`` says who wrote the cause and correction:
    the teacher (with the reference solution) or the student (without it).
    """

    kind: Literal["correction_trace"] = "correction_trace"
    problem_id: str = ""
    attempt_id: str = ""
    # The problem's text, so that a trace reads (and trains) on its own.
    question: str = ""
    steps: tuple[str, ...] = Field(min_length=1)
    first_wrong_step: int = Field(ge=1)
    cause: str
    correction: str
    answer: str
    source: str = ""

    def render(self) -> str:
        lines = [
            f"<Step{i}>{text}</Step{i}><Evaluate>{'correct' if i < self.first_wrong_step else 'incorrect'}</Evaluate>"
            for i, text in enumerate(self.steps, 1)
        ]
        return "\n".join(
            [*lines, f"<Cause>{self.cause}</Cause>", f"<Correction>{self.correction}</Correction>", f"<Answer>{self.answer}</Answer>"]
        )


class OwnCorrection(BaseModel):
    """What a student is asked for when it critiques its own wrong step (the structured
    reply's schema): its cause of the error and its corrected step, without the
    reference. Both sides of a preference pair are then written the same way, so DPO
    cannot tell them apart by format."""

    model_config = ConfigDict(extra="forbid")
    cause: str = Field(min_length=1, max_length=240, description="why the step is wrong")
    correction: str = Field(min_length=1, max_length=160, description="the step written right")


@register_message
class StudentCritique(MessageBase):
    """A student's own cause and correction of its first wrong step (the rejected side of
    a SuperCorrect pair), or, where its reply did not hold them, the reply and why."""

    kind: Literal["student_critique"] = "student_critique"
    problem_id: str = ""
    attempt_id: str = ""
    step: int = Field(ge=1)
    cause: str | None = None
    correction: str | None = None
    raw_text: str = ""
    error: str | None = None
    usage: Usage = Usage()

    def tagged(self) -> str | None:
        """The critique as a pair's side is written (None where it has none)."""
        if self.cause is None or self.correction is None:
            return None
        return f"<Cause>{self.cause}</Cause><Correction>{self.correction}</Correction>"


@dataclass
class _Element:
    """A top-level tagged element: its tag, number (steps), inner text, children."""

    tag: str
    number: int | None
    inner: str
    children: list[_Element]


def _elements(text: str, where: str = "the text", depth: int = 0) -> list[_Element]:
    """The tagged elements of ``text`` in order; anything else but whitespace between them is an error."""
    elements: list[_Element] = []
    at = 0
    while True:
        match = _TAG.search(text, at)
        stray = text[at : match.start() if match else len(text)]
        if stray.strip() and depth == 0:
            raise TraceParseError(f"text outside tags in {where}: {stray.strip()[:40]!r}")
        if not match:
            return elements
        closing, name, digits = match.groups()
        if closing:
            raise TraceParseError(f"</{name}{digits}> closes nothing in {where}")
        if name != "Step" and name not in KNOWN:
            raise TraceParseError(f"unknown tag <{name}{digits}>")
        if name == "Step" and not digits:
            raise TraceParseError("a <Step> tag without its number")
        end_tag = f"</{name}{digits}>"
        end = text.find(end_tag, match.end())
        if end < 0:
            raise TraceParseError(f"<{name}{digits}> is never closed")
        inner = text[match.end() : end]
        opened_again = re.search(rf"<{name}{digits}>", inner)
        if opened_again:
            raise TraceParseError(f"<{name}{digits}> opened again inside itself")
        children: list[_Element] = []
        if name == "Step":
            if re.search(r"<Step\d+>", inner):
                raise TraceParseError(f"a step inside step {digits}")
            children = _children(inner, f"step {digits}")
        elif _TAG.search(inner):
            raise TraceParseError(f"a tag inside <{name}>: {_TAG.search(inner).group(0)}")  # type: ignore[union-attr]
        elements.append(_Element(name, int(digits) if digits else None, inner, children))
        at = end + len(end_tag)


def _children(inner: str, where: str) -> list[_Element]:
    """The elements inside a step (at most one <Key>), the step's own text left around them."""
    children = []
    for match in _TAG.finditer(inner):
        closing, name, digits = match.groups()
        if closing:
            continue
        if name != "Key":
            raise TraceParseError(f"<{name}{digits}> inside {where} (only <Key> may be)")
        end = inner.find("</Key>", match.end())
        if end < 0:
            raise TraceParseError(f"<Key> in {where} is never closed")
        children.append(_Element("Key", None, inner[match.end() : end], []))
    return children


def _steps(elements: list[_Element]) -> list[_Element]:
    """The leading steps, numbered 1, 2, ... in order, none empty."""
    steps = []
    for element in elements:
        if element.tag != "Step":
            break
        expected = len(steps) + 1
        if element.number != expected:
            raise TraceParseError(f"steps out of order: expected <Step{expected}>, found <Step{element.number}>")
        steps.append(element)
    if not steps:
        raise TraceParseError("no steps: a template starts with <Step1>")
    if any(e.tag == "Step" for e in elements[len(steps) :]):
        raise TraceParseError("a step after the steps' end")
    return steps


def _one(elements: list[_Element], tag: str) -> str:
    found = [e for e in elements if e.tag == tag]
    if not found:
        raise TraceParseError(f"missing <{tag}>")
    if len(found) > 1:
        raise TraceParseError(f"more than one <{tag}>")
    if not found[0].inner.strip():
        raise TraceParseError(f"empty <{tag}>")
    return found[0].inner


def parse_template(text: str) -> ThoughtTemplate:
    """A thought template from its tagged text; :class:`TraceParseError` says why not."""
    elements = _elements(text)
    if any(e.tag == "Key" for e in elements):
        raise TraceParseError("<Key> outside a step")
    steps = _steps(elements)
    rest = [e.tag for e in elements[len(steps) :]]
    parsed: list[TemplateStep] = []
    for step in steps:
        if len(step.children) > 1:
            raise TraceParseError(f"more than one <Key> in step {step.number}")
        own = re.sub(r"<Key>.*?</Key>", "", step.inner, flags=re.S)
        if not own.strip():
            raise TraceParseError(f"empty step {step.number}")
        key = step.children[0].inner if step.children else None
        if key is not None and not step.inner.endswith(f"<Key>{key}</Key>"):
            raise TraceParseError(f"<Key> must close step {step.number} (its detailed thought comes last)")
        parsed.append(TemplateStep(text=own, key=key))
    for tag in rest:
        if tag not in ("Generalized", "Answer"):
            raise TraceParseError(f"<{tag}> does not belong in a template")
    generalized, answer = _one(elements, "Generalized"), _one(elements, "Answer")
    if rest != ["Generalized", "Answer"]:
        raise TraceParseError("after the steps come <Generalized>, then <Answer>")
    return ThoughtTemplate(steps=tuple(parsed), generalized=generalized, answer=answer)


def parse_trace(text: str) -> CorrectionTrace:
    """A correction trace from its tagged text; :class:`TraceParseError` says why not."""
    elements = _elements(text)
    steps: list[str] = []
    verdicts: list[str] = []
    at = 0
    while at < len(elements) and elements[at].tag == "Step":
        step = elements[at]
        if step.number != len(steps) + 1:
            raise TraceParseError(f"steps out of order: expected <Step{len(steps) + 1}>, found <Step{step.number}>")
        if step.children:
            raise TraceParseError(f"<Key> in step {step.number} of a correction trace")
        if not step.inner.strip():
            raise TraceParseError(f"empty step {step.number}")
        if at + 1 >= len(elements) or elements[at + 1].tag != "Evaluate":
            raise TraceParseError(f"step {step.number} has no <Evaluate>")
        verdict = elements[at + 1].inner.strip().lower()
        if verdict not in ("correct", "incorrect"):
            raise TraceParseError(f"<Evaluate> of step {step.number} is {verdict!r}, not correct or incorrect")
        steps.append(step.inner)
        verdicts.append(verdict)
        at += 2
    if not steps:
        raise TraceParseError("no steps: a trace starts with <Step1>")
    if verdicts[-1] != "incorrect" or "incorrect" in verdicts[:-1]:
        raise TraceParseError("a trace ends at its first incorrect step: every step before it correct")
    rest = [e.tag for e in elements[at:]]
    if rest != ["Cause", "Correction", "Answer"]:
        raise TraceParseError(f"after the steps come <Cause>, <Correction>, <Answer>; found {', '.join(rest) or 'nothing'}")
    cause, correction, answer = (_one(elements[at:], t) for t in ("Cause", "Correction", "Answer"))
    return CorrectionTrace(steps=tuple(steps), first_wrong_step=len(steps), cause=cause, correction=correction, answer=answer)
