"""Learning by teaching, M1's core: score each rationale by the students' exam results.

For each teaching problem the teacher writes one greedy rationale and samples N more;
every student takes an exam of K problems like the teaching problem, R times, with a
sampled rationale as its only worked example; the rationale's LbT score is the mean
correctness of all those answers. Everything goes to the engines at once (N x K x
students requests of R samples, sharing their prefixes), and the engines' utilisation
during the exam is recorded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from classroom.agents.grading import Grader
from classroom.agents.messages import Attempt, Explanation, Problem
from classroom.agents.roles import Student, Teacher
from classroom.agents.transport import Agent, StudentAgent
from classroom.environments.lbt.config import M1Settings
from classroom.environments.lbt.similar import SimilarProblems
from classroom.environments.lbt.types import ScoredRationale, TeachingScore
from classroom.environments.recording import Recorder
from classroom.environments.replay import Replay
from classroom.environments.result import mean, tokens_by_sender
from classroom.serving.pool import ModelPool
from classroom.serving.types import EngineStats


@dataclass(frozen=True)
class LbtAgents:
    """The agents of an LbT episode: the teacher, the class, the grader, and the
    teacher's own model answering as a student (M3 scores the exemplars with it)."""

    teacher: Agent[Teacher]
    students: tuple[StudentAgent, ...]
    names: tuple[str, ...]
    grader: Agent[Grader]
    teacher_as_student: StudentAgent


@dataclass(frozen=True)
class Teaching:
    """M1's outcome on some problems: greedy and sampled rationales, scored."""

    problems: list[Problem]
    greedy: dict[str, Explanation]
    scored: dict[str, list[ScoredRationale]]
    exam_engines: dict[str, dict[str, Any]]
    # Tokens by agent (sender): the teacher's rationales, every student's exams.
    tokens: dict[str, int]


async def engine_readings(pool: ModelPool) -> dict[str, EngineStats]:
    return await pool.engine_stats()


async def teach_and_score(
    problems: Sequence[Problem],
    agents: LbtAgents,
    similar: SimilarProblems,
    settings: M1Settings,
    *,
    seed: int,
    recorder: Recorder,
    pool: ModelPool,
    episode_id: str,
    exams: bool = True,
    replay: Replay | None = None,
) -> Teaching:
    """Rationales for ``problems``, each scored by the class's exams (see the module).

    With ``exams=False`` the rationales are only sampled and graded: every LbT score is
    0.0 and no :class:`TeachingScore` is recorded (M2's correctness-only pairs read
    correctness alone, so the class's exams, the costly part, would be wasted).
    ``replay`` (a resumed episode) gives the rationales and exam answers already logged.
    """
    problems = list(problems)
    replay = replay or Replay(())
    recorder.stage(f"teacher writes {settings.samples} rationales per problem", len(problems))
    logged = [replay.explanations_of(p) for p in problems]
    if all(len(mine) >= 1 + settings.samples for mine in logged):  # greedy first, then the samples
        greedy, sampled = [mine[0] for mine in logged], [mine[1 : 1 + settings.samples] for mine in logged]
    else:
        greedy, sampled = await asyncio.gather(
            agents.teacher.call(Teacher.explain, problems),
            agents.teacher.call(
                Teacher.sample_explanations,
                problems,
                samples=settings.samples,
                temperature=settings.temperature,
                seed=seed,
                max_tokens=settings.rationale_tokens,
            ),
        )
        recorder.record([*greedy, *(e for group in sampled for e in group)])
    correct = await _grade_rationales(problems, sampled, agents.grader)
    if not exams:
        unscored = {p.id: [ScoredRationale(e, e.final_answer, right, 0.0) for e, right in zip(group, rights)]
                    for p, group, rights in zip(problems, sampled, correct)}  # fmt: skip
        tokens = tokens_by_sender([*greedy, *(e for group in sampled for e in group)])
        return Teaching(problems, {e.problem_id: e for e in greedy}, unscored, {}, tokens)

    exam_sets = {p.id: similar.exam(p, settings.exam_size) for p in problems}
    recorder.record([q for exam in exam_sets.values() for q in exam if q.id not in replay.problem_ids])
    items = [(q, [(p, e)]) for p, group in zip(problems, sampled) for e in group for q in exam_sets[p.id]]
    recorder.stage(f"exams: {len(items)} x {len(agents.students)} students x {settings.repeats} repeats", len(items) * len(agents.students))
    # A student's exams are logged together once graded: all there (replayed) or asked.
    in_view = [(q, (e.id,)) for q, ((_, e),) in items]
    replayed = [replay.attempts_in_view(name, "exam", in_view, settings.repeats) for name in agents.names]
    asking = [s for s, found in enumerate(replayed) if found is None]
    before = await engine_readings(pool)
    answers = await asyncio.gather(
        *(
            agents.students[s].call(
                Student.answer_each,
                items,
                phase="exam",
                samples=settings.repeats,
                temperature=settings.exam_temperature,
                seed=seed,
                max_tokens=settings.answer_tokens,
            )
            for s in asking
        )
    )
    after = await engine_readings(pool)
    exam_engines = {key: after[key].since(before[key]).summary() for key in after if key in before} if asking else {}
    for key, figures in exam_engines.items():
        for name, value in figures.items():
            if value is not None:
                recorder.metric(f"exam_engine/{name}", value, engine=key)

    asked = await asyncio.gather(*(_grade_exam(items, student_answers, agents.grader) for student_answers in answers))
    for student_graded in asked:
        recorder.record([a for attempts in student_graded for a in attempts])
        recorder.advance(len(student_graded))
    fresh = dict(zip(asking, asked))
    graded = [found if found is not None else fresh[s] for s, found in enumerate(replayed)]
    # Item index -> (problem, rationale): items are problem-major, then rationale, then exam problem.
    scored: dict[str, list[ScoredRationale]] = {}
    messages = []
    at = 0
    for problem, group, right in zip(problems, sampled, correct):
        scored[problem.id] = []
        for explanation, is_right in zip(group, right):
            span = range(at, at + len(exam_sets[problem.id]))
            at += len(exam_sets[problem.id])
            # An ungradeable exam answer is neither right nor wrong: left out, counted.
            by_student = {
                name: exam_score([a for i in span for a in student_graded[i]])[0] for name, student_graded in zip(agents.names, graded)
            }
            score, marked, ungradeable = exam_score([a for student_graded in graded for i in span for a in student_graded[i]])
            scored[problem.id].append(ScoredRationale(explanation, explanation.final_answer, is_right, score))
            messages.append(
                TeachingScore(
                    episode_id=episode_id,
                    sender="lbt",
                    parents=(problem.id, explanation.id),
                    problem_id=problem.id,
                    rationale_id=explanation.id,
                    answer=explanation.final_answer,
                    correct=is_right,
                    exam_problem_ids=tuple(q.id for q in exam_sets[problem.id]),
                    by_student=by_student,
                    exam_answers=marked,
                    ungradeable=ungradeable,
                    score=score,
                )
            )
    recorder.record([m for m in messages if (m.problem_id, m.rationale_id) not in _scored_in(replay)])
    every = [*greedy, *(e for group in sampled for e in group), *(a for sg in graded for attempts in sg for a in attempts)]
    return Teaching(problems, {e.problem_id: e for e in greedy}, scored, exam_engines, tokens_by_sender(every))


def _scored_in(replay: Replay) -> set[tuple[str, str]]:
    """(problem, rationale) of every TeachingScore a resumed episode finds logged."""
    return {(m.problem_id, m.rationale_id) for m in replay.of_kind(TeachingScore)}


async def _grade_rationales(
    problems: Sequence[Problem], sampled: Sequence[Sequence[Explanation]], grader: Agent[Grader]
) -> list[list[bool]]:
    """Whether each sampled rationale's own answer is right."""
    flat = [(p, e) for p, group in zip(problems, sampled) for e in group]
    # A rationale whose answer is ungradeable (None) is not taken for right: it is never
    # the chosen side of a correctness pair.
    verdicts = [bool(v) for v in await asyncio.gather(*(grader.call(Grader.score_one, p, e.final_answer) for p, e in flat))]
    result, at = [], 0
    for group in sampled:
        result.append(list(verdicts[at : at + len(group)]))
        at += len(group)
    return result


async def _grade_exam(
    items: Sequence[tuple[Problem, Any]], answers: Sequence[Sequence[Attempt]], grader: Agent[Grader]
) -> list[list[Attempt]]:
    """The exam attempts graded, grouped as they were asked (one list per item)."""
    problems = [q for q, _ in items]
    flat = [a for attempts in answers for a in attempts]
    by_id = {q.id: q for q in problems}
    graded = await grader.call(Grader.grade_attempts, list(by_id.values()), flat)
    result, at = [], 0
    for attempts in answers:
        result.append(graded[at : at + len(attempts)])
        at += len(attempts)
    return result


def exam_score(attempts: Sequence[Attempt]) -> tuple[float, int, int]:
    """An LbT score from exam attempts: the share right among the graded ones (0.0 when
    none is), how many were graded, and how many were left out as ungradeable (``correct``
    None: a scorer that failed or ran out of time is neither right nor wrong)."""
    graded = [a.correct for a in attempts if a.correct is not None]
    return mean(graded) or 0.0, len(graded), len(attempts) - len(graded)
