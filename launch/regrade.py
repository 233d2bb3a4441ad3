"""`classroom regrade RUN_DIR [--write]`: a run's graded answers, graded again.

Every answer the run graded (an :class:`Attempt` with a verdict, or one recorded
ungradeable) is graded again from its logged reply with today's grader (the answer
extracted again, then scored under the grader's time limit), and given a second opinion:
math-verify reading the whole reply against the reference. The command prints how many
verdicts change and lists each, and where the second opinion disagrees with the grader.
It writes nothing into the run unless asked: ``--write`` adds ``regrade.jsonl`` (each
answer's logged verdict beside the new one and the second opinion); the event log is
never changed.
"""

from __future__ import annotations

from dataclasses import dataclass

from classroom.agents.grading import Grader, extract_final_answer
from classroom.agents.messages import Attempt, Problem

OUTPUT = "regrade.jsonl"


@dataclass(frozen=True)
class Regraded:
    """One graded answer: as the run logged it, as it grades now, and math-verify's view."""

    attempt_id: str
    problem_id: str
    phase: str
    reference: str
    logged_answer: str | None
    logged: bool | None  # None: logged as ungradeable
    answer: str | None
    current: bool | None  # None: ungradeable now (the scorer failed or ran out of time)
    math_verify: bool | None  # None: math-verify could not read the reply or the reference

    @property
    def changed(self) -> bool:
        return self.logged != self.current


def second_opinion(reply: str, reference: str) -> bool | None:
    """math-verify on the whole reply (its own answer extraction) against the reference;
    None when either does not parse or the check fails."""
    from math_verify import parse, verify

    try:
        gold, pred = parse(reference), parse(reply)
        return bool(verify(gold, pred)) if gold and pred else None
    except Exception:
        return None


def graded_answers(messages: list) -> list[tuple[Problem, Attempt]]:
    """The run's graded answers (a verdict or a grading error logged), with their problems."""
    problems = {m.id: m for m in messages if isinstance(m, Problem)}
    return [
        (problems[m.problem_id], m)
        for m in messages
        if isinstance(m, Attempt) and (m.correct is not None or m.grade_error) and m.problem_id in problems
    ]


async def regrade(pairs: list[tuple[Problem, Attempt]], grader: Grader) -> list[Regraded]:
    """Each graded answer extracted again from its reply and graded by ``grader``."""
    answers = [extract_final_answer(a.reasoning) for _, a in pairs]
    verdicts = await grader.verdicts([(p, answer) for (p, _), answer in zip(pairs, answers)])
    return [
        Regraded(
            attempt_id=a.id,
            problem_id=p.id,
            phase=a.phase,
            reference=p.answer,
            logged_answer=a.final_answer,
            logged=a.correct,
            answer=answer,
            current=correct,
            math_verify=second_opinion(a.reasoning, p.answer),
        )
        for (p, a), answer, (correct, _) in zip(pairs, answers, verdicts)
    ]


def _verdict(value: bool | None) -> str:
    return "ungradeable" if value is None else ("right" if value else "wrong")


def line(r: Regraded) -> str:
    return (
        f"  {r.attempt_id} ({r.phase}, problem {r.problem_id}): {_verdict(r.logged)} -> {_verdict(r.current)};"
        f" answer {r.logged_answer!r} -> {r.answer!r}, reference {r.reference!r}, math-verify {_verdict(r.math_verify)}"
    )
