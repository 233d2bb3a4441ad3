"""M3: the teacher refines its in-context exemplars with feedback from its students.

Top to bottom: the teacher starts from K exemplars; each iteration the students answer
the training items with the current set; their errors go to the teacher, which
proposes C revised sets (a proposal that does not parse is a recorded ParseFailure; the
others go on); every set is scored by the students' accuracy on the training items (their
answers logged under the set's proposal) and the best (the current one on a tie) is kept. After T iterations the teacher's own model
answers the held-out problems with the first and with the final exemplars. One student
or the whole class gives the feedback: the paper finds several diverse students better.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from classroom.agents.config_validation import instantiate_plugin
from classroom.agents.grading import Grader, accuracy
from classroom.agents.messages import Attempt, ParseFailure, Problem
from classroom.agents.roles import Student
from classroom.environments.base import CHECKPOINT, Episode, read_checkpoint, write_checkpoint
from classroom.environments.lbt.config import LbtConfig
from classroom.environments.lbt.exemplars import ExemplarProposer
from classroom.environments.lbt.rationale_scores import LbtAgents
from classroom.environments.lbt.summary import M3Details
from classroom.environments.lbt.types import ExemplarProposal, ExemplarSet, M3Checkpoint
from classroom.environments.result import Counts, EpisodeResult, tokens_by_sender
from classroom.serving.structured import validate_reply


def m3_checkpoint(episode: Episode) -> M3Checkpoint | None:
    """The checkpoint an interrupted M3 episode left after its last finished iteration
    (None if it finished none: it starts again)."""
    if not (episode.run_dir / CHECKPOINT).is_file():
        return None
    return read_checkpoint(episode.run_dir, M3Checkpoint, missing="")


async def run_m3(episode: Episode, agents: LbtAgents, resume_from: M3Checkpoint | None = None) -> EpisodeResult[M3Details]:
    """One M3 episode; ``resume_from`` (its log cut back to it) goes on after the
    iteration it names."""
    started = time.time()
    config: LbtConfig = episode.config
    settings = config.m3
    proposer: ExemplarProposer = instantiate_plugin("env.m3.proposer", settings.proposer, ExemplarProposer)
    llm = episode.pool.llm("teacher")
    rng_seed = config.seed
    # Training items, a disjoint pool of candidate exemplars, and held-out problems.
    drawn = episode.task.sample(settings.train_items * 4, split=config.train_split, seed=rng_seed, episode_id=episode.episode_id)
    items, pool = drawn[: settings.train_items], drawn[settings.train_items :]
    test = episode.task.sample(config.num_problems, split=config.split, seed=rng_seed, episode_id=episode.episode_id)
    tokens: dict[str, int] = {}
    failures = 0
    if resume_from is None:
        episode.recorder.record([*items, *test])

    def parse(texts: Sequence[str], iteration: int) -> list[ExemplarSet]:
        nonlocal failures
        sets = []
        for text in texts:
            value, error = validate_reply(ExemplarSet, text)
            if value is None:
                failures += 1
                episode.recorder.record(
                    [
                        ParseFailure(
                            episode_id=episode.episode_id,
                            sender=proposer.name,
                            expected="ExemplarSet",
                            raw_text=text[:2000],
                            error=error or "",
                        )
                    ]
                )
            else:
                sets.append(value)
        return sets

    def checkpoint(iteration: int) -> None:
        write_checkpoint(
            episode.run_dir,
            M3Checkpoint(
                iteration=iteration,
                first=first,
                current=current,
                score=score,
                errors=[(problem.id, attempt) for problem, attempt in errors],
                curve=curve,
                tokens=tokens,
                parse_failures=failures,
                events_logged=episode.recorder.logged(),
            ),
        )

    if resume_from is None:
        parsed = parse((await proposer.initial(pool, settings.exemplars, llm, seed=rng_seed)).texts, 0)
        if not parsed:
            raise ValueError(f"M3: the proposer {proposer.name!r} gave no first exemplar set that parses")
        first = current = parsed[0]
        score, errors, answered = await _score(current, items, agents, settings.answer_tokens, tokens)
        curve = {"0": score}
        proposal = _proposal(episode, 0, current, score, True)
        episode.recorder.record([proposal, *_in_view_of(answered, proposal)])
        checkpoint(0)
        done = 0
    else:  # what the interrupted run had after its last finished iteration
        by_id = {p.id: p for p in items}
        first, current, score = resume_from.first, resume_from.current, resume_from.score
        errors = [(by_id[problem_id], attempt) for problem_id, attempt in resume_from.errors]
        curve, tokens, failures = dict(resume_from.curve), dict(resume_from.tokens), resume_from.parse_failures
        done = resume_from.iteration
    for iteration in range(done + 1, settings.iterations + 1):
        episode.recorder.stage(f"M3 iteration {iteration}: {settings.proposals} proposals", None)
        proposed = await proposer.propose(current, errors, pool, settings.proposals, llm, seed=rng_seed * 100 + iteration)
        tokens[proposer.name] = tokens.get(proposer.name, 0) + proposed.tokens
        candidates = parse(proposed.texts, iteration)
        results = await asyncio.gather(*(_score(s, items, agents, settings.answer_tokens, tokens) for s in candidates))
        best = max(range(len(candidates)), key=lambda i: (results[i][0], -i), default=None)
        kept = best is not None and results[best][0] > score
        for i, (candidate, (candidate_score, _, answered)) in enumerate(zip(candidates, results)):
            proposal = _proposal(episode, iteration, candidate, candidate_score, kept and i == best)
            episode.recorder.record([proposal, *_in_view_of(answered, proposal)])
        if kept:
            current, (score, errors, _) = candidates[best], results[best]
        curve[str(iteration)] = score
        episode.recorder.metric("m3/train_accuracy", score, iteration=iteration)
        checkpoint(iteration)

    # The teacher's own model on held-out problems, with the first and the final set.
    episode.recorder.stage("held-out problems: first vs final exemplars", 2 * len(test))
    test_first, test_final = await asyncio.gather(
        _accuracy(agents, first, test, settings.answer_tokens, tokens, episode, "m3_test_first"),
        _accuracy(agents, current, test, settings.answer_tokens, tokens, episode, "m3_test_final"),
    )
    details = M3Details(
        task=episode.task.name,
        episode_id=episode.episode_id,
        students=list(agents.names),
        proposer=proposer.name,
        train_items=len(items),
        test_problems=len(test),
        train_accuracy_by_iteration=curve,
        test_accuracy_first=test_first,
        test_accuracy_final=test_final,
        parse_failures=failures,
        final_exemplars=list(current.exemplars),
        resumed_after_iteration=resume_from.iteration if resume_from is not None else None,
    )
    scores: dict[str, float | None] = {
        **{f"m3_train@{k}": v for k, v in curve.items()},
        "m3_test": test_final,
        "m3_test_first": test_first,
        "m3_test_gain": test_final - test_first,
    }
    return EpisodeResult[M3Details](
        scores=scores,
        tokens=tokens,
        wall_time_s=time.time() - started,
        counts=Counts(failures={"unparsed_proposals": failures} if failures else {}),
        details=details,
    )


async def _score(
    exemplars: ExemplarSet, items: Sequence[Problem], agents: LbtAgents, max_tokens: int, tokens: dict[str, int]
) -> tuple[float, list[tuple[Problem, Attempt]], list[Attempt]]:
    """The class's accuracy on the items with these exemplars, its wrong answers, and
    every graded answer (for the log)."""
    demos = exemplars.demonstrations()
    answers = await asyncio.gather(
        *(s.call(Student.answer_each, [(p, demos) for p in items], phase="m3_train", max_tokens=max_tokens) for s in agents.students)
    )
    graded = await asyncio.gather(*(agents.grader.call(Grader.grade_attempts, items, [a[0] for a in student]) for student in answers))
    by_id = {p.id: p for p in items}
    right, counted, errors = 0, 0, []
    every = [attempt for attempts in graded for attempt in attempts]
    tokens_by_sender(every, into=tokens)
    for attempts in graded:
        for attempt in attempts:
            if attempt.correct is None:  # ungradeable: neither right nor an error to learn from
                continue
            counted += 1
            right += attempt.correct
            if not attempt.correct:
                errors.append((by_id[attempt.problem_id], attempt))
    return right / max(counted, 1), errors, every


async def _accuracy(
    agents: LbtAgents,
    exemplars: ExemplarSet,
    problems: Sequence[Problem],
    max_tokens: int,
    tokens: dict[str, int],
    episode: Episode,
    phase: str,
) -> float:
    """The teacher's own model on held-out problems with these exemplars (its answers
    logged under ``phase``), over the graded answers."""
    demos = exemplars.demonstrations()
    answers = await agents.teacher_as_student.call(Student.answer_each, [(p, demos) for p in problems], phase=phase, max_tokens=max_tokens)
    graded = await agents.grader.call(Grader.grade_attempts, problems, [a[0] for a in answers])
    episode.recorder.record(graded)
    tokens_by_sender(graded, into=tokens)
    return accuracy(graded) or 0.0  # over the graded ones


def _in_view_of(attempts: Sequence[Attempt], proposal: ExemplarProposal) -> list[Attempt]:
    """Training-item answers as logged: made with this proposal's exemplars in view (the
    set's demonstrations carry placeholder ids; the proposal's id says which set)."""
    return [a.model_copy(update={"parents": (a.problem_id, proposal.id), "context_ids": (proposal.id,)}) for a in attempts]


def _proposal(episode: Episode, iteration: int, exemplars: ExemplarSet, score: float, kept: bool) -> ExemplarProposal:
    return ExemplarProposal(
        episode_id=episode.episode_id,
        sender="lbt",
        iteration=iteration,
        exemplars=tuple(e.model_dump() for e in exemplars.exemplars),
        score=score,
        kept=kept,
    )
