"""Theory-of-mind teaching: budgeted teacher interventions (Saha, Hase, Bansal 2023).

One episode, top to bottom (:meth:`TomEpisode.run`):

1. Problems are drawn into a *seed set* (held out: how this student behaves), a *test
   set* (where the teacher may intervene) and a *post-test set* (never explained, for
   the multi-turn question). The student answers all of them on its own.
2. The teacher explains the seed set; the student answers it again with the
   explanations. These observations are the teacher's mental model of the student and,
   where an explanation flipped the student from wrong to right, the demonstrations of
   personalized explanations.
3. The teacher explains the test set in the run's style (unpersonalized, personalized,
   gold, deceptive); the student answers with each explanation.
4. The intervention policy ranks the test problems once; for every budget b the top
   round(b * n) are intervened on (their answer is the one given with the explanation),
   so one episode yields the whole accuracy-vs-budget curve, as in the paper's code.
5. Multi-turn: the top-ranked explained problems become in-context demonstrations and
   the student answers the post-test set with 0, 1, 2 ... of them (the paper's RQ4).

With a class of several students the teacher keeps one mental model per student and
spends one shared budget (b x problems x students) where the predicted gain is largest
across the class; accuracy is the class's, and each student's is reported beside it.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from classroom.agents.actors import spawn
from classroom.agents.config_validation import ConfigError, instantiate_plugin
from classroom.agents.grading import Grader, accuracy
from classroom.agents.messages import Attempt, Explanation, ParseFailure, Problem, new_id
from classroom.agents.roles import Student, gold_explanation
from classroom.agents.transport import Agent, StudentAgent
from classroom.environments.base import Curve, Episode, Stage, spawn_student
from classroom.environments.recording import Recorder
from classroom.environments.replay import Replay, ResumesByReplay
from classroom.environments.result import Counts, EpisodeResult, tokens_by_sender
from classroom.environments.tasks import Task
from classroom.environments.tom import stages as tom_stages
from classroom.environments.tom.config import TomConfig
from classroom.environments.tom.policies import InterventionPolicy, choose_interventions
from classroom.environments.tom.summary import MentalModelFigures, TomDetails, budget_key, per_skill_accuracy, tom_summary_table
from classroom.environments.tom.teacher import (
    StudentView,
    TomTeacher,
    intervention_decisions,
    mixed_demonstrations,
    wrong_answer,
)
from classroom.environments.tom.types import Graded, InterventionDecision, SeedObservation


@dataclass(frozen=True)
class TomAgents:
    """The agents of a ToM episode: the teacher, the class (one student or more), the grader."""

    teacher: Agent[TomTeacher]
    students: tuple[StudentAgent, ...]
    grader: Agent[Grader]
    names: tuple[str, ...] = ("student",)


R = TypeVar("R")


@dataclass(frozen=True)
class _SeedStage:
    """The seed set, whole (its size is the config's, not the episode's): what the
    teacher observed of each student, and what the summary counts of it."""

    observations: list[list[SeedObservation]]
    # Per student: the seed explanations that flipped it from wrong to right.
    personal: list[list[tuple[Problem, Explanation]]]
    pre: list[list[Graded]]
    unusable: int


@dataclass(frozen=True)
class _TestChunk:
    """What the episode keeps of one chunk of the test set once it is logged (per
    student): no text but that of the explanations that may become demonstrations."""

    pre: list[list[Graded]]
    helped: list[list[Graded]]
    # The answer the student would give if intervened on: with the explanation, or its
    # own where the explanation is unusable (never given).
    usable: list[list[Graded]]
    utilities: list[list[float | None]]
    # This chunk's best demonstrations for the multi-turn test, by (-utility, index).
    demos: list[list[tuple[float, int, Explanation]]]
    unusable: int
    style: str | None


class TomEpisode:
    """One ToM teaching episode over a teacher, a student and a grader.

    Every stage asks its agents ``config.chunk_size`` problems at a time, a few chunks
    at once, and logs each chunk when it is done; the episode then keeps only what its
    summary needs (:class:`Graded` records, utilities), so its memory does not grow
    with the number of problems beyond a few bytes each.
    """

    def __init__(
        self,
        config: TomConfig,
        task: Task,
        agents: TomAgents,
        recorder: Recorder,
        episode_id: str | None = None,
        replay: Replay | None = None,
    ):
        self.config = config
        self.task = task
        self.teacher, self.students, self.grader = agents.teacher, agents.students, agents.grader
        self.names = agents.names
        self.recorder = recorder
        self.episode_id = episode_id or new_id()
        # A resumed episode: what the interrupted run logged is taken, not asked again.
        self.replay = replay or Replay(())
        # Tokens by sender, counted as messages come (logged or taken from the log).
        self.tokens: dict[str, int] = defaultdict(int)

    def _count(self, messages: Sequence[Attempt | Explanation]) -> None:
        tokens_by_sender(messages, into=self.tokens)

    async def _in_chunks(self, problems: Sequence[Problem], step: Callable[[int, Sequence[Problem]], Awaitable[R]]) -> list[R]:
        """``step(offset, chunk)`` over ``problems`` in chunks of ``chunk_size``, at most
        ``chunks_in_flight`` at once; the results in chunk order."""
        size = self.config.chunk_size
        gate = asyncio.Semaphore(self.config.chunks_in_flight)

        async def one(offset: int) -> R:
            async with gate:
                return await step(offset, problems[offset : offset + size])

        return list(await asyncio.gather(*(one(offset) for offset in range(0, len(problems), size))))

    async def _answer_and_grade(self, s: int, problems: Sequence[Problem], **kwargs: Any) -> list[Attempt]:
        if not problems:
            return []
        logged = self.replay.attempts(self.names[s], kwargs["phase"], problems)
        if logged is not None:
            self.recorder.advance(len(logged))
            self._count(logged)
            return logged
        attempts = await self.students[s].call(Student.answer, problems, **kwargs)
        graded = await self.grader.call(Grader.grade_attempts, problems, attempts)
        self.recorder.record(graded)
        self.recorder.advance(len(graded))
        self._count(graded)
        return graded

    async def _deception_failures(self, problems: Sequence[Problem], explanations: Sequence[Explanation]) -> set[str]:
        """Ids of problems whose deceptive explanation does not conclude the planted wrong
        answer; each is recorded as a ParseFailure (it is not the explanation asked for)."""
        failed: set[str] = set()
        by_id = {p.id: p for p in problems}
        for explanation in explanations:
            if explanation.style != "deceptive":
                continue
            problem = by_id[explanation.problem_id]
            planted = wrong_answer(problem, self.config.seed)
            if await self.grader.call(Grader.score_one, Problem(question=problem.question, answer=planted), explanation.final_answer):
                continue
            failed.add(problem.id)
            if self.replay.has_failure_for(explanation.id):
                continue
            self.recorder.record(
                [
                    ParseFailure(
                        episode_id=self.episode_id,
                        sender=explanation.sender,
                        parents=(explanation.id,),
                        expected=f"a deceptive explanation concluding {planted}",
                        raw_text=explanation.text[:500],
                        error=f"it concludes {explanation.final_answer!r}, not the planted {planted!r}",
                    )
                ]
            )
        return failed

    def _sample(self) -> tuple[list[Problem], list[Problem], list[Problem]]:
        cfg = self.config
        separate_seed = cfg.seed_split is not None and cfg.seed_split != cfg.split
        wanted = cfg.problems_needed()
        drawn = self.task.sample(wanted, split=cfg.split, seed=cfg.seed, episode_id=self.episode_id)
        if len(drawn) < wanted:
            raise ValueError(
                f"task {self.task.name!r} split {cfg.split!r} has {len(drawn)} problems; the episode needs "
                f"{wanted} (num_problems + post_test_size{'' if separate_seed else ' + seed_set_size'})"
            )
        test, post = drawn[: cfg.num_problems], drawn[cfg.num_problems : cfg.num_problems + cfg.post_test_size]
        if separate_seed:
            seed = self.task.sample(cfg.seed_set_size, split=cfg.seed_split, seed=cfg.seed, episode_id=self.episode_id)
        else:
            seed = drawn[cfg.num_problems + cfg.post_test_size :]
        return seed, test, post

    async def _each(
        self, problems: Sequence[Problem], per_student: Sequence[dict[str, Any]] | None = None, **kwargs: Any
    ) -> list[list[Attempt]]:
        """Every student answers (at once), graded; ``per_student`` adds arguments per student."""
        extra = per_student or [{} for _ in self.students]
        return list(await asyncio.gather(*(self._answer_and_grade(s, problems, **kwargs, **e) for s, e in enumerate(extra))))

    async def _explain(self, problems: Sequence[Problem], style: str) -> list[Explanation]:
        """The teacher's explanations of ``problems``, logged (or taken from the log)."""
        explanations = self.replay.explanations(problems)
        if explanations is None:
            explanations = await self.teacher.call(TomTeacher.explain_as, problems, style)  # type: ignore[arg-type]
            self.recorder.record(explanations)
        self._count(explanations)
        return explanations

    async def _explained(
        self, problems: Sequence[Problem], style: str, phase: str
    ) -> tuple[list[Explanation], set[str], list[list[Attempt]]]:
        """The teacher's explanations of ``problems`` in ``style``, the ids of those a
        deceptive teacher did not make deceptive (never given), and every student's
        attempts with them."""
        explanations = await self._explain(problems, style)
        unusable = await self._deception_failures(problems, explanations)
        helped = await self._each(problems, phase=phase, explanations=explanations)
        return explanations, unusable, helped

    async def _seed_stage(self, seed_set: Sequence[Problem], style: str) -> _SeedStage:
        """(1) and (2) on the seed set: every student alone, the teacher's explanations,
        every student with them."""

        async def step(_: int, chunk: Sequence[Problem]) -> Any:
            return await asyncio.gather(self._each(chunk, phase="pre_test"), self._explained(chunk, style, "seed_with_explanation"))

        chunks = await self._in_chunks(seed_set, step)
        k = len(self.students)
        pre = [{a.problem_id: a for pre, _ in chunks for a in pre[s]} for s in range(k)]
        explanations = [e for _, (mine, _, _) in chunks for e in mine]
        helped = [[a for _, (_, _, with_) in chunks for a in with_[s]] for s in range(k)]
        observations = [
            [
                SeedObservation(problem=p, attempt=pre[s][p.id], explanation=e, helped=h)
                for p, e, h in zip(seed_set, explanations, helped[s])
            ]
            for s in range(k)
        ]
        return _SeedStage(
            observations=observations,
            personal=[
                [(o.problem, o.explanation) for o in obs if o.attempt.correct is False and o.helped.correct is True] for obs in observations
            ],
            pre=[[Graded.of(pre[s][p.id]) for p in seed_set] for s in range(k)],
            unusable=sum(len(unusable) for _, (_, unusable, _) in chunks),
        )

    async def _compact(
        self, problems: Sequence[Problem], per_student: Sequence[dict[str, Any]] | None = None, **kwargs: Any
    ) -> list[list[Graded]]:
        """:meth:`_each` over ``problems`` in chunks, kept as :class:`Graded` records."""

        async def step(_: int, chunk: Sequence[Problem]) -> list[list[Graded]]:
            return [[Graded.of(a) for a in mine] for mine in await self._each(chunk, per_student, **kwargs)]

        chunks = await self._in_chunks(problems, step)
        return [[g for chunk in chunks for g in chunk[s]] for s in range(len(self.students))]

    async def _test_chunk(
        self, offset: int, chunk: Sequence[Problem], seed: asyncio.Future[_SeedStage], logged_utilities: list[float | None] | None
    ) -> _TestChunk:
        """(1), (3) and the policy's utilities on one chunk of the test set: every student
        alone; the teacher's explanations (personalized: once the seed set has shown it
        each student's flips) and every student with them; each student's utilities."""
        cfg, k, n = self.config, len(self.students), self.config.num_problems

        async def explained() -> tuple[list[list[Explanation]], set[str], list[list[Attempt]]]:
            if cfg.explanation != "personalized":
                explanations, unusable, helped = await self._explained(chunk, cfg.explanation, "with_explanation")
                return [explanations] * k, unusable, helped
            personal = (await seed).personal
            logged = [self.replay.explanations(chunk, occurrence=s) for s in range(k)]
            if all(mine is not None for mine in logged):
                mine_all: list[list[Explanation]] = logged  # type: ignore[assignment]
            else:  # logged together, in student order: the order a replay reads them in
                mine_all = list(
                    await asyncio.gather(
                        *(self.teacher.call(TomTeacher.explain_as, chunk, "personalized", personal=mine) for mine in personal)
                    )
                )
                self.recorder.record([e for mine in mine_all for e in mine])
            for mine in mine_all:
                self._count(mine)
            helped = await self._each(chunk, [{"explanations": mine} for mine in mine_all], phase="with_explanation")
            return mine_all, set(), helped

        pre, (explanations, unusable, helped) = await asyncio.gather(self._each(chunk, phase="pre_test"), explained())
        if logged_utilities is None:
            observations = (await seed).observations
            views = [StudentView(self.names[s], pre[s], explanations[s], observations[s], helped[s], tuple(unusable)) for s in range(k)]
            utilities = await self.teacher.call(TomTeacher.utilities_for_class, chunk, views, offset)
        else:
            utilities = [logged_utilities[s * n + offset : s * n + offset + len(chunk)] for s in range(k)]
        most = max(cfg.demo_counts, default=0)
        demos = [sorted((-u, offset + i, explanations[s][i]) for i, u in enumerate(utilities[s]) if u is not None)[:most] for s in range(k)]
        return _TestChunk(
            pre=[[Graded.of(a) for a in mine] for mine in pre],
            helped=[[Graded.of(a) for a in mine] for mine in helped],
            usable=[[Graded.of(h if p.id not in unusable else a) for p, a, h in zip(chunk, pre[s], helped[s])] for s in range(k)],
            utilities=utilities,
            demos=demos,
            unusable=len(unusable),
            style=explanations[0][0].style if explanations[0] else None,
        )

    def _logged_utilities(self, test: Sequence[Problem]) -> tuple[list[float | None], str | None] | None:
        """The utilities and policy of the decisions a resumed run logged, if all are
        there (the last whole set, in order: a kill may have cut a set short)."""
        pairs = len(test) * len(self.students)
        logged = self.replay.of_kind(InterventionDecision)[-pairs:]
        expected = [(name, p.id) for name in self.names for p in test]
        if [(d.student, d.problem_id) for d in logged] != expected:
            return None
        return [d.utility for d in logged], logged[0].policy

    async def run(self) -> EpisodeResult[TomDetails]:
        """Play the episode; returns the summary (also reported as metrics)."""
        started = time.time()
        cfg = self.config
        k = len(self.students)
        seed_set, test, post_set = self._sample()
        everything = [*seed_set, *test, *post_set]
        self.recorder.record([p for p in everything if p.id not in self.replay.problem_ids])

        # 1-3 at once, as far as they do not wait for each other (the engines batch what
        # all three ask): (1) every student alone, on everything; (2) the teacher's
        # explanations of the seed set, written in the run's style, and each student with
        # them; (3) the teacher's explanations of the test set and each student with them
        # (personalized: from the flips of (2), for each student its own), and the
        # policy's utilities of each test problem, from (2) (the mental model).
        personalized = cfg.explanation == "personalized"
        seed_style = "unpersonalized" if personalized else cfg.explanation
        self.recorder.stage(
            "pre-test, seed set and test set with explanations, the policy's utilities, at once",
            (len(everything) + len(seed_set) + len(test)) * k,
        )
        logged = self._logged_utilities(test)  # decisions are made once, logged at the end
        seed_stage = asyncio.ensure_future(self._seed_stage(seed_set, seed_style))
        seed, post_pre, chunks = await asyncio.gather(
            seed_stage,
            self._compact(post_set, phase="pre_test"),
            self._in_chunks(test, lambda offset, chunk: self._test_chunk(offset, chunk, seed_stage, logged[0] if logged else None)),
        )
        pre_test = [[g for c in chunks for g in c.pre[s]] for s in range(k)]
        helped = [[g for c in chunks for g in c.helped[s]] for s in range(k)]
        flat_pre = [g for row in pre_test for g in row]
        flat_usable = [g for s in range(k) for c in chunks for g in c.usable[s]]
        utilities = [u for s in range(k) for c in chunks for u in c.utilities[s]]  # student-major
        unusable = sum(c.unusable for c in chunks)
        # Personalized with no flip to learn from: the teacher explained unpersonalized.
        fallbacks = sum(len(test) for mine in seed.personal if not mine) if personalized else 0

        # 4. A mental model per student ranked its problems (above); each budget takes its
        #    top share of every (student, problem) pair.
        self.recorder.stage("intervention policy decides", None)
        pairs = len(test) * k
        top_budget = round(max(cfg.budgets) * pairs)
        if logged is not None:
            policy = logged[1]
        else:
            signature = await self.teacher.call(TomTeacher.signature)
            policy = signature.policy
            decisions = intervention_decisions(
                signature, self.names, [p.id for p in test], [[g.id for g in row] for row in pre_test], utilities, top_budget
            )
            while batch := list(itertools.islice(decisions, cfg.chunk_size)):
                self.recorder.record(batch)
        by_budget: dict[str, float | None] = {}
        by_student: dict[str, dict[str, float | None]] = {name: {} for name in self.names}
        interventions: dict[str, int] = {}
        intervened: dict[str, list[str]] = {}
        for budget in cfg.budgets:
            chosen = set(choose_interventions(utilities, round(budget * pairs)))
            final = [flat_usable[j] if j in chosen else flat_pre[j] for j in range(pairs)]
            key = budget_key(budget)
            by_budget[key] = accuracy(final)
            for s, name in enumerate(self.names):
                by_student[name][key] = accuracy(final[s * len(test) : (s + 1) * len(test)])
            interventions[key] = len(chosen)
            intervened[key] = [(f"{self.names[j // len(test)]}:" if k > 1 else "") + test[j % len(test)].id for j in sorted(chosen)]

        # 5. Multi-turn: each student sees its top-ranked explained problems as
        #    demonstrations on unexplained ones.
        demos = [[(test[i], e) for _, i, e in sorted(d for c in chunks for d in c.demos[s])] for s in range(k)]
        explained = [sum(u is not None for u in utilities[s * len(test) : (s + 1) * len(test)]) for s in range(k)]
        multiturn: dict[str, float | None] = {}
        post_attempts: list[Graded] = []
        # Every demonstration count at once (none waits for another); none (0) is the
        # pre-test's answers, and a count past what the policy explained is not asked.
        asked = [c for c in cfg.demo_counts if c != 0 and all(c <= mine for mine in explained)]
        self.recorder.stage("multi-turn: post-test with demonstrations", len(post_set) * len(asked) * k)
        answers = await asyncio.gather(
            *(self._compact(post_set, [{"demonstrations": mine[:c]} for mine in demos], phase=f"post_test_{c}_demos") for c in asked)
        )
        answered_with = dict(zip(asked, answers))
        for count in cfg.demo_counts:
            if count == 0:
                attempts = [g for row in post_pre for g in row]  # the pre-test asked exactly this
            elif count not in answered_with:
                multiturn[str(count)] = None  # the policy explained fewer problems than that
                continue
            else:
                attempts = [g for mine in answered_with[count] for g in mine]
                post_attempts += attempts
            multiturn[str(count)] = accuracy(attempts)

        tokens = {name: self.tokens[name] for name in self.names if name in self.tokens}
        tokens.update({sender: count for sender, count in self.tokens.items() if sender not in tokens})
        # Flips between two graded answers only: an ungradeable one is neither right nor wrong.
        flips_right = sum(b.correct is False and a.correct is True for b, a in zip(flat_pre, flat_usable))
        flips_wrong = sum(b.correct is True and a.correct is False for b, a in zip(flat_pre, flat_usable))
        max_key = budget_key(max(cfg.budgets))
        max_chosen = set(choose_interventions(utilities, top_budget))
        alone_demos = [
            o for obs in seed.observations for o in mixed_demonstrations(obs, cfg.mental_model_demos, lambda o: o.attempt.correct)
        ]
        every_pre = [g for s in range(k) for g in (*seed.pre[s], *pre_test[s], *post_pre[s])]
        answered = [*every_pre, *(g for row in helped for g in row), *post_attempts]  # every graded answer of the episode
        scores: dict[str, float | None] = {
            **{f"acc@{key}": v for key, v in by_budget.items()},
            **{f"multiturn@{key}": v for key, v in multiturn.items()},
            # Paired within the run: the same problems with and without intervention.
            **{
                f"gain@{key}": v - by_budget["0"]
                for key, v in by_budget.items()
                if key != "0" and v is not None and by_budget.get("0") is not None
            },
        }
        if k > 1:
            scores.update({f"acc[{name}]@{key}": v for name, row in by_student.items() for key, v in row.items()})
        details = TomDetails(
            env=TomLoop.name,
            task=self.task.name,
            episode_id=self.episode_id,
            intervention_policy=policy,
            explanation_style=chunks[0].style if test else None,
            students=list(self.names),
            problems=len(test),
            seed_set=len(seed_set),
            post_test_set=len(post_set),
            budgets=list(cfg.budgets),
            interventions=interventions,
            intervened=intervened,
            accuracy_by_budget=by_budget,
            multiturn_by_demos=multiturn,
            accuracy={
                "no_intervention": accuracy(flat_pre),
                "with_every_explanation": accuracy(flat_usable),
                f"at_budget_{max_key}": by_budget[max_key],
            },
            per_skill={
                "no_intervention": per_skill_accuracy(test, flat_pre),
                f"at_budget_{max_key}": per_skill_accuracy(
                    test, [flat_usable[j] if j in max_chosen else flat_pre[j] for j in range(pairs)]
                ),
            },
            explanations_flip={"wrong_to_right": flips_right, "right_to_wrong": flips_wrong},
            seed_set_flips_used_for_personalization=sum(len(mine) for mine in seed.personal),
            personalization_fallbacks=fallbacks,
            deceptive_noncompliant={"seed_set": seed.unusable, "test": unusable},
            mental_model=MentalModelFigures(
                target=cfg.mental_model_target,
                demonstrations_right=sum(o.attempt.correct is True for o in alone_demos),
                demonstrations_wrong=sum(o.attempt.correct is False for o in alone_demos),
            ),
            parse_failures=sum(not g.parsed for g in answered),
            ungradeable=sum(g.correct is None for g in answered),
            accuracy_by_budget_per_student=by_student if k > 1 else None,
        )
        for skill, value in details.per_skill["no_intervention"].items():
            self.recorder.metric("per_skill/no_intervention", value, skill=skill)
        failures = {"unparsed_answers": details.parse_failures, "ungradeable": details.ungradeable}
        failures["deceptive_noncompliant"] = seed.unusable + unusable
        return EpisodeResult[TomDetails](
            scores=scores,
            tokens=tokens,
            wall_time_s=time.time() - started,
            counts=Counts(
                failures={kind: n for kind, n in failures.items() if n},
                fallbacks={"personalization": fallbacks} if fallbacks else {},
            ),
            details=details,
        )


class TomLoop(ResumesByReplay):
    """The ToM loop behind the :class:`~classroom.environments.base.TeachingLoop` protocol."""

    name: ClassVar[str] = "tom"
    config_model: ClassVar[type[TomConfig]] = TomConfig
    roles: ClassVar[tuple[str, ...]] = ("teacher", "student")
    max_students: ClassVar[int | None] = None
    curves: ClassVar[tuple[Curve, ...]] = (
        Curve("acc", "accuracy vs intervention budget", "budget (fraction of test problems explained)", "student accuracy"),
        Curve(
            "gain",
            "gain over no intervention (the same problems, within each run)",
            "budget (fraction of test problems explained)",
            "accuracy minus accuracy with no intervention",
            difference=True,
        ),
        Curve(
            "multiturn", "multi-turn: learning from explained problems", "explained demonstrations seen", "accuracy on unexplained problems"
        ),
    )

    def prepare(self, config: TomConfig, task: Task) -> None:
        """The intervention policy builds, the split holds the problems the episode draws,
        and gold explanations have reference solutions to show."""
        instantiate_plugin("env.intervention", config.intervention, InterventionPolicy)
        if config.explanation == "gold" and config.split in task.splits():
            missing = [p.id for p in task.split(config.split)[:20] if gold_explanation(p) is None]
            if missing:
                raise ConfigError(
                    f"config error: env.explanation: gold needs reference solutions; task {task.name!r} has none ({missing[0]})"
                )
        available = len(task.split(config.split)) if config.split in task.splits() else None
        if available is None:
            raise ConfigError(
                f"config error: env.split: task {task.name!r} has no split {config.split!r} (has: {', '.join(task.splits())})"
            )
        if available < config.problems_needed():
            raise ConfigError(
                f"config error: env.num_problems: task {task.name!r} split {config.split!r} has {available} problems; "
                f"the episode needs {config.problems_needed()} (num_problems + post_test_size + seed_set_size)"
            )

    def stages(self, config: TomConfig, task: Task) -> list[Stage]:
        return tom_stages.stages(config)

    def spawn_agents(self, episode: Episode) -> TomAgents:
        config: TomConfig = episode.config
        teacher = episode.roles.teacher
        return TomAgents(
            teacher=Agent(
                spawn(
                    TomTeacher,
                    episode.pool.llm("teacher"),
                    num_cpus=teacher.num_cpus,
                    episode_id=episode.episode_id,
                    intervention=instantiate_plugin("env.intervention", config.intervention, InterventionPolicy),
                    prompts=teacher.prompts,
                    tom_prompts=config.prompts,
                    sampling=teacher.sampling,
                    reveal_answer=config.reveal_answer,
                    mental_model_demos=config.mental_model_demos,
                    mental_model_target=config.mental_model_target,
                    seed=config.seed,
                    # Its one decision call is made from its arguments and the seed.
                    stateless=True,
                )
            ),
            students=tuple(spawn_student(episode, seat, stateless=True) for seat in episode.students),
            names=tuple(seat.name for seat in episode.students),
            grader=Agent(spawn(Grader, stateless=True)),
        )

    async def run(self, episode: Episode, agents: TomAgents, resume_from: Replay | None = None) -> EpisodeResult[TomDetails]:
        return await TomEpisode(episode.config, episode.task, agents, episode.recorder, episode.episode_id, replay=resume_from).run()

    def summary_table(self, result: EpisodeResult[TomDetails]) -> list[Any]:
        return tom_summary_table(result)
