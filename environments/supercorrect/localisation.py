"""SuperCorrect's error-localisation benchmark: which step of a broken solution is the
first wrong one (the paper's "error-step location accuracy").

Each case is a reference template with one step broken (:func:`corrupt`); its answer is
that step's number. Every model is asked the same cases (made once per episode, seeded),
and the exact step checker's own score is reported beside them, with the best constant
guess as the floor a model must clear.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from typing import Any

from classroom.agents.messages import Attempt, Problem
from classroom.agents.roles import Student
from classroom.agents.step_checker import check_steps
from classroom.agents.transport import StudentAgent
from classroom.environments.stats import mean_ci
from classroom.environments.supercorrect.config import SuperCorrectConfig
from classroom.environments.supercorrect.corrupt import Corrupted, corrupt
from classroom.environments.supercorrect.traces import ThoughtTemplate
from classroom.serving.prompts import PromptSet

# A localisation reply names a step as the prompt asks (<Step>N</Step>), in words
# ("step N"), or is the number alone; anything else is unparsed (no step is guessed from
# the first number in it: "Q: 12 + 5 ..." is not step 12). A template's own tags
# (<Step1>...</Step1>: a student answering with a solution) name no step, and a reply
# that names two different steps names none.
_STEP_NUMBER = (
    re.compile(r"<Step>\s*(\d+)\s*</Step>"),
    re.compile(r"(?<![<\w/])step\s+(\d+)\b", re.I),
    re.compile(r"^\s*(\d+)\s*\.?\s*$"),
)


def benchmark_cases(
    problems: Sequence[Problem], references: dict[str, ThoughtTemplate], config: SuperCorrectConfig, prompts: PromptSet
) -> list[tuple[Problem, Corrupted]]:
    """The localisation benchmark: a question per broken template (its answer the broken
    step's number), made once per episode and asked of every model."""
    rng = random.Random(config.seed)
    cases = []
    for problem in problems:
        if problem.id in references and len(cases) < config.localisation:
            broken = corrupt(references[problem.id], rng)
            if broken is not None and len(broken.template.steps) > 1:
                question = Problem(
                    id=f"{problem.id}~locate",
                    question=prompts.render("locate", question=problem.question, solution=broken.template.render()),
                    answer=str(broken.position),
                    skills=("error_localisation",),
                )
                cases.append((question, broken))
    return cases


async def localise(
    asker: StudentAgent, benchmark: Sequence[tuple[Problem, Corrupted]], *, phase: str, max_tokens: int | None
) -> tuple[dict[str, Any], list[Attempt]]:
    """Exact-position accuracy of a model naming the first wrong step of the broken
    templates, and its replies (for the caller to record)."""
    if not benchmark:
        return {"accuracy": None, "cases": 0}, []
    asked = [(question, []) for question, _ in benchmark]
    replies = [r for [r] in await asker.call(Student.answer_each, asked, phase=phase, max_tokens=max_tokens)]
    named = [named_step(r.reasoning) for r in replies]
    hits = [step == c.position for step, (_, c) in zip(named, benchmark)]
    mean, ci = mean_ci([float(h) for h in hits])
    figures = {
        "accuracy": mean,  # over every case: a reply that names no step is a miss
        "ci95": ci,
        "cases": len(benchmark),
        "named_a_step": sum(step is not None for step in named),
        "unparsed": sum(step is None for step in named),
    }
    return figures, replies


def checker_localises(benchmark: Sequence[tuple[Problem, Corrupted]]) -> dict[str, Any]:
    """The exact step checker on the same cases: the first step whose arithmetic is wrong."""
    if not benchmark:
        return {"accuracy": None, "cases": 0}
    found = []
    for _, case in benchmark:
        first = next((i for i, s in enumerate(case.template.steps, 1) if any(c.verdict == "wrong" for c in check_steps(s.text))), None)
        found.append(first == case.position)
    return {"accuracy": sum(found) / len(found), "cases": len(benchmark)}


def named_step(text: str) -> int | None:
    """The step a localisation reply names, or None when it names none as asked."""
    for pattern in _STEP_NUMBER:
        named = {int(number) for number in pattern.findall(text)}
        if named:
            return named.pop() if len(named) == 1 else None
    return None
