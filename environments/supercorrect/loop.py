"""SuperCorrect (Yang et al. 2024) behind the TeachingLoop protocol.

One episode, top to bottom (:meth:`SuperCorrectLoop.run`):

1. The teacher writes a hierarchical thought template for every training and test
   problem; a template whose structure, answer or checkable steps fail is dropped with
   its reason (recorded).
2. Stage 1: the student is LoRA-trained on the templates (HSFT) or, for the baseline,
   on plain worked solutions of the same problems (SFT); it answers the test problems.
3. Stage 2 (``hsft_dpo``): the student solves the training problems in the template
   format; for each wrong solution the teacher, given the reference, finds the first
   wrong step k (the step checker decides where it can) and writes its cause and
   correction; the student, without the reference, writes its own for the same step
   (structured output: a reply without both is logged, counted and makes no pair).
   Preference pair: prompt = problem + steps 1..k-1, chosen = the teacher's, rejected =
   the student's, both written in the same tags. A DPO step continues the stage-1 adapter, hot-loaded into the running
   engine; the student answers the test problems again.
4. Error localisation: correct templates with one step broken at a known place (the
   error carried forward); the student (before and after stage 2), the teacher's model
   and the step checker name the first wrong step; exact-position accuracy.
5. The data as a product: ``dataset/`` in TRL's formats with a dataset card
   (``classroom export RUN_DIR OUT`` copies it).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from classroom.agents.actors import spawn
from classroom.agents.config_validation import ConfigError, instantiate_plugin
from classroom.agents.grading import Grader, accuracy
from classroom.agents.learners import DPOLearner, LoRALearner
from classroom.agents.messages import Attempt, ParseFailure, PreferencePair, Problem, TrainingExample
from classroom.agents.roles import Student
from classroom.agents.transport import Agent, StudentAgent
from classroom.environments.base import UNBOUND_MODEL, Curve, Episode, Stage, read_checkpoint, role_learner, write_checkpoint
from classroom.environments.recording import Recorder
from classroom.environments.result import Counts, EpisodeResult, tokens_by_sender
from classroom.environments.supercorrect import plan
from classroom.environments.supercorrect.checkpoint import Stage1Checkpoint
from classroom.environments.supercorrect.config import SuperCorrectConfig
from classroom.environments.supercorrect.corrupt import Corrupted
from classroom.environments.supercorrect.dataset import write_dataset
from classroom.environments.supercorrect.localisation import benchmark_cases, checker_localises, localise
from classroom.environments.supercorrect.summary import (
    DatasetCard,
    LocalisationFigures,
    SuperCorrectDetails,
    TemplateCounts,
    localisation_figures,
    supercorrect_summary_table,
)
from classroom.environments.supercorrect.teachers import (
    Correction,
    ProgrammaticTeacher,
    TemplateTeacher,
    Uncorrected,
    Written,
    plain_solution,
)
from classroom.environments.supercorrect.traces import (
    CorrectionTrace,
    OwnCorrection,
    StudentCritique,
    ThoughtTemplate,
    TraceParseError,
    parse_template,
)
from classroom.environments.tasks import Task
from classroom.serving.errors import EpisodeStopped
from classroom.serving.prompts import PromptSet


@dataclass(frozen=True)
class SuperCorrectAgents:
    """The student (LoRA-trained), the teacher's model answering as a student (the
    localisation benchmark's teacher), the grader, and the template teacher."""

    student: StudentAgent
    teacher_model: StudentAgent
    grader: Agent[Grader]
    teacher: TemplateTeacher


class SuperCorrectLoop:
    """SuperCorrect: hierarchical thought templates, correction traces, cross-model DPO."""

    name: ClassVar[str] = "supercorrect"
    config_model: ClassVar[type[SuperCorrectConfig]] = SuperCorrectConfig
    roles: ClassVar[tuple[str, ...]] = ("teacher", "student")
    max_students: ClassVar[int | None] = 1
    curves: ClassVar[tuple[Curve, ...]] = ()

    def prepare(self, config: SuperCorrectConfig, task: Task) -> None:
        for key, split in (("split", config.split), ("train_split", config.train_split)):
            if split not in task.splits():
                raise ConfigError(f"config error: env.{key}: task {task.name!r} has no split {split!r} (has: {', '.join(task.splits())})")
        teacher = instantiate_plugin("env.teacher", config.teacher, TemplateTeacher)
        if isinstance(teacher, ProgrammaticTeacher):
            # Knowable before any engine starts: templates are worked from the problems'
            # own expressions, which only reasoning-gym arithmetic carries.
            train = task.sample(config.train_problems, split=config.train_split, seed=config.seed)
            if not any(teacher.template(p) is not None for p in train):
                raise ConfigError(
                    f"config error: env.teacher: the programmatic teacher works templates from reasoning-gym expressions, and "
                    f"task {task.name!r} has none; use the teacher model "
                    "(env.teacher._target_=classroom.environments.supercorrect.teachers.LLMTeacher) or an arithmetic task"
                )
        unbound = {"student": UNBOUND_MODEL}
        role_learner("env.sft", config.sft, LoRALearner, role="student", base_models=unbound)
        role_learner("env.dpo", config.dpo, DPOLearner, role="student", base_models=unbound)

    def trained_roles(self, config: SuperCorrectConfig) -> dict[str, str]:
        """Both stages train the student's adapters (stage 2 continues stage 1's)."""
        return {"env.sft": "student", **({"env.dpo": "student"} if config.stage == "hsft_dpo" else {})}

    def stages(self, config: SuperCorrectConfig, task: Task) -> list[Stage]:
        return plan.stages(config, task)

    def spawn_agents(self, episode: Episode) -> SuperCorrectAgents:
        config: SuperCorrectConfig = episode.config
        settings = episode.roles.student
        prompts = PromptSet.load("classroom.environments.supercorrect", "prompts.yaml", config.prompts)
        system = {} if config.stage == "sft" else {"system": prompts.get("student_system")}
        seat = episode.students[0]
        sampling = settings.sampling.model_copy(update={"max_tokens": config.answer_tokens})

        def student(name: str, role: str, adapter: str | None, learner: Any = None) -> StudentAgent:
            return StudentAgent(
                spawn(
                    Student,
                    episode.pool.llm(role),
                    name=name,
                    episode_id=episode.episode_id,
                    learner=learner,
                    prompts={**settings.prompts, **system},
                    sampling=sampling,
                    adapter=adapter,
                )
            )

        return SuperCorrectAgents(
            student=student(
                seat.name,
                seat.role,
                seat.adapter,
                role_learner("env.sft", config.sft, LoRALearner, role=seat.role, base_models=episode.base_models),
            ),
            teacher_model=StudentAgent(
                spawn(
                    Student,
                    episode.pool.llm("teacher"),
                    name="teacher",
                    episode_id=episode.episode_id,
                    prompts={**settings.prompts, **system},
                    sampling=sampling,
                    stateless=True,  # it only answers the localisation benchmark
                )
            ),
            grader=Agent(spawn(Grader, stateless=True)),
            teacher=instantiate_plugin("env.teacher", config.teacher, TemplateTeacher),
        )

    async def run(self, episode: Episode, agents: SuperCorrectAgents, resume_from: Any | None = None) -> EpisodeResult[SuperCorrectDetails]:
        started = time.time()
        config: SuperCorrectConfig = episode.config
        prompts = PromptSet.load("classroom.environments.supercorrect", "prompts.yaml", config.prompts)
        recorder, run_dir = episode.recorder, Path(episode.run_dir)
        train = episode.task.sample(config.train_problems, split=config.train_split, seed=config.seed, episode_id=episode.episode_id)
        test = episode.task.sample(config.num_problems, split=config.split, seed=config.seed, episode_id=episode.episode_id)
        teacher_llm = episode.pool.llm("teacher")
        if resume_from is None:
            recorder.record([*train, *test])
            stage1 = await self._stage1(episode, agents, train, test, prompts)
            self.save_state(run_dir, stage1)
        else:  # the log is cut back to the checkpoint; stage 2 is redone from there
            stage1 = resume_from
            recorder.rewind(stage1.events_logged)
            await agents.student.restore_from_checkpoint(stage1.student)
        return await self._stage2(episode, agents, train, test, prompts, teacher_llm, stage1, started)

    async def _stage1(
        self, episode: Episode, agents: SuperCorrectAgents, train: list[Problem], test: list[Problem], prompts: PromptSet
    ) -> Stage1Checkpoint:
        """Templates, stage-1 training (SFT or HSFT), and the student's evaluations."""
        config: SuperCorrectConfig = episode.config
        recorder, run_dir = episode.recorder, Path(episode.run_dir)
        teacher_llm = episode.pool.llm("teacher")
        tokens: dict[str, int] = {}

        # 1. Templates from the teacher, checked; what fails is dropped with its reason.
        recorder.stage("teacher writes thought templates", None)
        written = await agents.teacher.write([*train, *test], teacher_llm)
        tokens[agents.teacher.name] = written.tokens
        recorder.record([*written.templates.values(), *written.dropped])
        taught = [p for p in train if p.id in written.templates]
        if not taught:
            # Model output that cannot be used, all of it: logged (above), and the episode
            # stops in one line rather than training on nothing.
            first = written.dropped[0].error if written.dropped else "none written"
            raise EpisodeStopped(
                f"the {agents.teacher.name} teacher wrote no usable template for {len(train)} training problems "
                f"({len(written.dropped)} dropped, logged with their reasons; the first: {first.splitlines()[0][:160]}); "
                "a stronger teacher model or more env.train_problems may write some"
            )

        # 2. Stage 1: SFT on plain worked solutions (baseline) or HSFT on templates.
        examples = [
            TrainingExample(
                episode_id=episode.episode_id,
                sender=agents.teacher.name,
                parents=(p.id,),
                prompt=p.question,
                answer=p.answer,
                completion=written.templates[p.id].render() if config.stage != "sft" else plain_solution(p),
                source=config.stage,
                iteration=1,
            )
            for p in taught
        ]
        recorder.record(examples)
        recorder.stage(f"stage 1: {'HSFT on templates' if config.stage != 'sft' else 'SFT on worked solutions'} ({len(examples)})", None)
        training = await agents.student.train_and_keep(
            examples, iteration=1, out_dir=str(run_dir / "stage1"), adapter_name=f"{episode.episode_id}-stage1"
        )
        recorder.record([training])
        ungradeable: dict[str, int] = {}
        test_untrained = await self._accuracy(
            agents, test, "test_untrained", base=True, tokens=tokens, recorder=recorder, ungradeable=ungradeable
        )
        test_stage1 = await self._accuracy(agents, test, "test_stage1", tokens=tokens, recorder=recorder, ungradeable=ungradeable)
        benchmark = benchmark_cases(test, written.templates, config, prompts)
        recorder.record([question for question, _ in benchmark])
        localisation_before = await self._localise(
            agents.student, benchmark, recorder, tokens, "locate_student_stage1", config.localisation_tokens
        )
        return Stage1Checkpoint(
            episode_id=episode.episode_id,
            templates=list(written.templates.values()),
            dropped=list(written.dropped),
            template_tokens=written.tokens,
            examples=examples,
            training=training,
            test_untrained=test_untrained,
            test_stage1=test_stage1,
            localisation_before=localisation_before,
            tokens=tokens,
            ungradeable=ungradeable,
            student=await agents.student.call(Student.save_state),
            events_logged=recorder.logged(),
        )

    async def _stage2(
        self,
        episode: Episode,
        agents: SuperCorrectAgents,
        train: list[Problem],
        test: list[Problem],
        prompts: PromptSet,
        teacher_llm: Any,
        stage1: Stage1Checkpoint,
        started: float,
    ) -> EpisodeResult[SuperCorrectDetails]:
        """Correction traces and DPO (hsft_dpo), the localisation benchmark, the result."""
        config: SuperCorrectConfig = episode.config
        recorder, run_dir = episode.recorder, Path(episode.run_dir)
        written = Written(
            templates={t.problem_id: t for t in stage1.templates}, dropped=list(stage1.dropped), tokens=stage1.template_tokens
        )
        taught = [p for p in train if p.id in written.templates]
        examples, training, tokens = stage1.examples, stage1.training, dict(stage1.tokens)
        ungradeable = dict(stage1.ungradeable)
        test_untrained, test_stage1, localisation_before = stage1.test_untrained, stage1.test_stage1, stage1.localisation_before
        benchmark = benchmark_cases(test, written.templates, config, prompts)  # the same cases: seeded

        # 3. Stage 2: correction traces and cross-model DPO.
        pairs: list[PreferencePair] = []
        traces: list[CorrectionTrace] = []
        stage2: dict[str, int] | None = None
        dpo_reference: str | None = None  # what stage 2's DPO compared against (stage 1's policy)
        test_stage2 = None
        localisation_after: dict[str, Any] = {}
        if config.stage == "hsft_dpo":
            recorder.stage("stage 2: the student solves, the teacher corrects", None)
            pairs, traces, stage2 = await self._correction_pairs(
                agents, taught, written.templates, prompts, config, episode, tokens, teacher_llm
            )
            recorder.record([*traces, *pairs])
            if pairs:
                recorder.stage(f"stage 2: DPO on {len(pairs)} pairs", None)
                learner = role_learner("env.dpo", config.dpo, DPOLearner, role=episode.students[0].role, base_models=episode.base_models)
                trained = await learner.fit([p.row() for p in pairs], str(run_dir / "stage2"), init_adapter=training.adapter_path)
                dpo_reference = trained.get("reference")
                await agents.student.serve_adapter_from(f"{episode.episode_id}-stage2", trained["adapter_path"])
            test_stage2 = await self._accuracy(agents, test, "test_stage2", tokens=tokens, recorder=recorder, ungradeable=ungradeable)
            localisation_after = await self._localise(
                agents.student, benchmark, recorder, tokens, "locate_student_stage2", config.localisation_tokens
            )
        localisation_teacher = await self._localise(
            agents.teacher_model, benchmark, recorder, tokens, "locate_teacher", config.localisation_tokens
        )
        localisation_checker = checker_localises(benchmark)
        positions = Counter(case.position for _, case in benchmark)
        # A guesser that always names the most common broken step: the floor to beat.
        constant_guess = positions.most_common(1)[0][1] / len(benchmark) if benchmark else None

        card = write_dataset(
            run_dir / "dataset",
            task=episode.task.name,
            teacher=agents.teacher.name,
            stage=config.stage,
            sft_rows=await agents.student.call(Student.sft_rows, examples),
            pairs=pairs,
            traces=traces,
            dropped=written.dropped,
            written=len(written.templates),
            asked=len(train) + len(test),
            stage2=stage2,
        )
        final = test_stage2 if test_stage2 is not None else test_stage1
        fallbacks = sum(t.sender != agents.teacher.name for t in written.templates.values())
        correction_fallbacks = (stage2 or {}).get("correction_fallbacks", 0)
        details = SuperCorrectDetails(
            stage=config.stage,
            task=episode.task.name,
            episode_id=episode.episode_id,
            teacher=agents.teacher.name,
            templates=TemplateCounts(
                written=len(written.templates), dropped=len(written.dropped), asked=len(train) + len(test), fallbacks=fallbacks
            ),
            train_examples=len(examples),
            pairs=len(pairs),
            stage2=stage2,
            dpo_reference=dpo_reference,
            test_problems=len(test),
            test_accuracy={"untrained": test_untrained, "stage1": test_stage1, "stage2": test_stage2},
            ungradeable=ungradeable,
            localisation={
                "student_before_stage2": localisation_figures(localisation_before),
                "student_after_stage2": localisation_figures(localisation_after) if localisation_after else None,
                "teacher_model": localisation_figures(localisation_teacher),
                "step_checker": LocalisationFigures(**localisation_checker),
                "constant_guess": LocalisationFigures(accuracy=constant_guess, cases=len(benchmark)),
            },
            dataset=DatasetCard(**card),
            training={"loss": training.train_loss, "seconds": training.seconds},
        )
        scores: dict[str, float | None] = {
            "test": final,
            # HSFT alone, measured in the same run before stage 2 (an `hsft_dpo` run
            # gives both stages on the same test problems).
            "test_stage1": test_stage1,
            "test_untrained": test_untrained,
            "test_gain": final - test_untrained,
            "locate_student": (localisation_after or localisation_before)["accuracy"],
            "locate_student_before": localisation_before["accuracy"],
            "locate_teacher": localisation_teacher["accuracy"],
            "locate_constant_guess": constant_guess,
        }
        failures = {
            "ungradeable": sum(ungradeable.values()),
            "templates_dropped": len(written.dropped),
            **{f"stage2_{kind}": (stage2 or {}).get(kind, 0) for kind in ("unparsed", "correction_unparsed", "critique_unparsed")},
        }
        return EpisodeResult[SuperCorrectDetails](
            scores=scores,
            tokens=tokens,
            wall_time_s=time.time() - started,
            counts=Counts(
                failures={kind: n for kind, n in failures.items() if n},
                fallbacks={
                    kind: n for kind, n in (("programmatic_templates", fallbacks), ("programmatic_corrections", correction_fallbacks)) if n
                },
            ),
            details=details,
        )

    async def _accuracy(
        self,
        agents: SuperCorrectAgents,
        problems: Sequence[Problem],
        phase: str,
        *,
        tokens: dict[str, int],
        recorder: Recorder,
        ungradeable: dict[str, int],
        base: bool = False,
    ) -> float:
        attempts = await agents.student.call(Student.answer, problems, phase=phase, base=base)
        graded = await agents.grader.call(Grader.grade_attempts, problems, attempts)
        recorder.record(graded)
        tokens_by_sender(graded, into=tokens)
        ungradeable[phase] = sum(a.correct is None for a in graded)
        # Over the graded ones: an ungradeable attempt is neither right nor wrong.
        return accuracy(graded) or 0.0

    async def _correction_pairs(
        self,
        agents: SuperCorrectAgents,
        problems: Sequence[Problem],
        references: dict[str, ThoughtTemplate],
        prompts: PromptSet,
        config: SuperCorrectConfig,
        episode: Episode,
        tokens: dict[str, int],
        teacher_llm: Any,
    ) -> tuple[list[PreferencePair], list[CorrectionTrace], dict[str, int]]:
        """The student's wrong solutions, the teacher's and the student's corrections of
        their first wrong step, the preference pairs they make, and the counts of each
        (solutions, wrong, not in the template format, left uncorrected, pairs)."""
        solved = await agents.student.call(
            Student.answer_each,
            [(p, []) for p in problems],
            phase="stage2_solve",
            samples=config.solutions,
            temperature=config.temperature,
            seed=config.seed,
        )
        wrong: list[tuple[Problem, Attempt, ThoughtTemplate]] = []
        counts = {"solutions": sum(map(len, solved)), "wrong": 0, "ungradeable": 0, "unparsed": 0}
        # One grading call for every solution (the grader matches them by problem id).
        graded = await agents.grader.call(Grader.grade_attempts, list(problems), [a for attempts in solved for a in attempts])
        tokens_by_sender(graded, into=tokens)
        episode.recorder.record(graded)
        by_id = {p.id: p for p in problems}
        for attempt in graded:
            problem = by_id[attempt.problem_id]
            # A solution the grader could not score is neither right nor wrong: not corrected.
            counts["ungradeable"] += attempt.correct is None
            if attempt.correct is False:
                counts["wrong"] += 1
                try:
                    wrong.append((problem, attempt, parse_template(attempt.reasoning)))
                except TraceParseError as exc:
                    counts["unparsed"] += 1
                    episode.recorder.record(
                        [
                            ParseFailure(
                                episode_id=episode.episode_id,
                                sender=attempt.sender,
                                parents=(attempt.id,),
                                expected="ThoughtTemplate",
                                raw_text=attempt.reasoning[:2000],
                                error=str(exc),
                            )
                        ]
                    )
        corrections = await asyncio.gather(*(agents.teacher.correct(p, t, references[p.id], teacher_llm) for p, _, t in wrong))
        located = [(p, a, t, c) for (p, a, t), c in zip(wrong, corrections) if isinstance(c, Correction)]
        asked = sum(c.tokens for c in corrections if c is not None)  # the teacher model's, if it has one
        if asked:
            tokens[agents.teacher.name] = tokens.get(agents.teacher.name, 0) + asked
        # The teacher could not place or word a correction (the checker undecided, a reply
        # without its tags): counted, not guessed; a model's reply is logged with why,
        # also where a fallback's correction stands in for it (counted apart).
        unusable: list[tuple[Attempt, Uncorrected, bool]] = []  # (solution, reply, replaced by a fallback)
        for (_, a, _), c in zip(wrong, corrections):
            if isinstance(c, Uncorrected):
                unusable.append((a, c, False))
            elif isinstance(c, Correction) and c.replaced is not None:
                unusable.append((a, c.replaced, True))
        episode.recorder.record(
            [
                ParseFailure(
                    episode_id=episode.episode_id,
                    sender=agents.teacher.name,
                    parents=(a.id,),
                    expected="Correction",
                    raw_text=reply.raw_text,
                    error=reply.reason + ("; the programmatic correction stands in for it" if replaced else ""),
                )
                for a, reply, replaced in unusable
            ]
        )
        counts["uncorrected"] = len(wrong) - len(located)
        counts["correction_unparsed"] = sum(not replaced for _, _, replaced in unusable)
        counts["correction_fallbacks"] = sum(replaced for _, _, replaced in unusable)
        counts["critique_unparsed"] = 0
        # The student, without the reference, on the same step of its own solution.
        replies = await agents.student.call(
            Student.answer_structured,
            [
                Problem(question=prompts.render("critique", question=p.question, steps=_numbered(t, c.step), step=c.step), answer="")
                for p, a, t, c in located
            ],
            OwnCorrection,
            max_tokens=config.critique_tokens,
        )
        critiques = [
            StudentCritique(
                episode_id=episode.episode_id,
                sender=episode.students[0].name,
                parents=(a.id,),
                problem_id=p.id,
                attempt_id=a.id,
                step=c.step,
                cause=(r.value.cause.strip() or None) if r.value else None,
                correction=(r.value.correction.strip() or None) if r.value else None,
                raw_text=r.raw[:2000],
                error=r.error,
                usage=r.usage,
            )
            for (p, a, t, c), r in zip(located, replies)
        ]
        episode.recorder.record(critiques)
        tokens_by_sender(critiques, into=tokens)
        pairs, traces = [], []
        for (problem, attempt, template, correction), critique in zip(located, critiques):
            steps = tuple(s.text for s in template.steps[: correction.step])
            traces.append(
                CorrectionTrace(
                    episode_id=episode.episode_id,
                    sender=correction.by,
                    parents=(attempt.id,),
                    problem_id=problem.id,
                    attempt_id=attempt.id,
                    question=problem.question,
                    steps=steps,
                    first_wrong_step=correction.step,
                    cause=correction.cause,
                    correction=correction.correction,
                    answer=references[problem.id].answer,
                    source=f"teacher ({correction.decided_by})",
                )
            )
            # The rejected side is the student's own cause and correction, written as the
            # chosen side is; a reply without them makes no pair (counted by its reason).
            rejected = critique.tagged()
            if rejected is None:
                counts["critique_unparsed"] += 1
                episode.recorder.record(
                    [
                        ParseFailure(
                            episode_id=episode.episode_id,
                            sender=critique.sender,
                            parents=(critique.id,),
                            expected="OwnCorrection",
                            raw_text=critique.raw_text,
                            error=critique.error or "no cause and correction",
                        )
                    ]
                )
                continue
            prompt = [
                {"role": "system", "content": prompts.get("student_system")},
                {
                    "role": "user",
                    "content": prompts.render(
                        "pair_prompt", question=problem.question, steps=_numbered(template, correction.step - 1) or "(none)"
                    ),
                },
            ]
            pairs.append(
                PreferencePair(
                    episode_id=episode.episode_id,
                    sender="supercorrect",
                    parents=(attempt.id, critique.id),
                    prompt=tuple(prompt),
                    chosen=f"<Cause>{correction.cause}</Cause><Correction>{correction.correction}</Correction>",
                    rejected=rejected,
                    source="teacher_correction",
                )
            )
        counts["pairs"] = len(pairs)
        return pairs, traces, counts

    async def _localise(
        self,
        asker: StudentAgent,
        benchmark: Sequence[tuple[Problem, Corrupted]],
        recorder: Recorder,
        tokens: dict[str, int],
        phase: str,
        max_tokens: int | None,
    ) -> dict[str, Any]:
        figures, replies = await localise(asker, benchmark, phase=phase, max_tokens=max_tokens)
        recorder.record(replies)
        tokens_by_sender(replies, into=tokens)
        return figures

    # ------------------------------------------------------------------- Stateful

    def save_state(self, run_dir: Path, state: Stage1Checkpoint) -> None:
        write_checkpoint(run_dir, state)

    def load_state(self, run_dir: Path) -> Stage1Checkpoint:
        return read_checkpoint(run_dir, Stage1Checkpoint, missing="the episode did not finish stage 1; run it again")

    def episode_id_of(self, state: Stage1Checkpoint) -> str:
        return state.episode_id

    def summary_table(self, result: EpisodeResult[SuperCorrectDetails]) -> list[Any]:
        return supercorrect_summary_table(result)


def _numbered(template: ThoughtTemplate, upto: int) -> str:
    return "\n".join(f"<Step{i}>{s.text}</Step{i}>" for i, s in enumerate(template.steps[:upto], 1))
