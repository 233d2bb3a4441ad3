"""DataEnvGym: a data-generation agent in an environment that trains its student.

Khan et al. 2024 (arXiv 2410.06215). Gym-style:

- :meth:`DataEnvGym.reset` evaluates the student on the validation problems and returns
  the :class:`Observation`: graded attempts and a report per skill (a tree of slices).
- :meth:`DataEnvGym.step` takes the agent's action (its plan and the data it made),
  runs the quality checks, adds the kept examples to all data so far, trains the
  student on it (LoRA adapter hot-loaded into the running engine, or in-context
  memory), evaluates again and returns the observation, the reward (change in
  validation accuracy, also per skill) and whether the episode is done.
- :meth:`DataEnvGym.finish` scores the test problems once, at the end, for the trained
  and the untrained student, and returns the episode's summary.

Every iteration writes its data, dropped data, report and adapter under
``iterations/NNN/``; :meth:`snapshot` is the environment's part of a checkpoint.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from classroom.agents.grading import Grader, extract_final_answer
from classroom.agents.messages import Attempt, Feedback, Problem, TrainingExample, TrainingRun, new_id
from classroom.agents.roles import Student
from classroom.agents.skills import flat_accuracy, skill_report
from classroom.agents.step_checker import check_steps
from classroom.agents.transport import Agent, StudentAgent
from classroom.environments.dataenvgym.agent import DataGenerator
from classroom.environments.dataenvgym.config import DataEnvConfig
from classroom.environments.dataenvgym.plans import apply_to_tree
from classroom.environments.dataenvgym.summary import DataEnvGymDetails, IterationRow
from classroom.environments.dataenvgym.types import AgentAction, Observation, SkillTree, StepResult
from classroom.environments.recording import Recorder
from classroom.environments.result import Counts, EpisodeResult, tokens_by_sender
from classroom.environments.tasks import Task


class EnvState(BaseModel):
    """The environment's part of a checkpoint: everything after the last finished step."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    episode_id: str
    iteration: int
    observation: Observation
    test: list[Problem]
    data: list[TrainingExample]
    tree: SkillTree = Field(default_factory=dict)
    history: list[IterationRow] = Field(default_factory=list)
    tokens: dict[str, int] = Field(default_factory=dict)
    adapter_path: str | None = None


def _write_jsonl(path: Path, rows: Sequence[dict[str, Any] | BaseModel]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write((row.model_dump_json() if isinstance(row, BaseModel) else json.dumps(row)) + "\n")


def feedback(problems: Sequence[Problem], attempts: Sequence[Attempt], *, split: str, iteration: int, episode_id: str) -> Feedback:
    """What the environment tells the teacher of graded answers: accuracy overall and per
    skill over the answers the grader could score, the ungradeable ones counted apart,
    the wrong ones' ids (errors to teach from) and the weakest skills."""
    report = skill_report(problems, attempts)
    per_skill = {s.name: s.accuracy for s in report.children if s.accuracy is not None}
    return Feedback(
        episode_id=episode_id,
        sender="environment",
        split=split,
        iteration=iteration,
        accuracy=report.correct / max(report.count, 1),
        count=report.count,
        ungradeable=sum(a.correct is None for a in attempts),
        report=report,
        per_skill_accuracy=per_skill,  # type: ignore[arg-type]
        # Wrong answers only: an ungradeable one is no error to teach from.
        error_examples=tuple(a.id for a in attempts if a.correct is False),
        weak_skills=tuple(sorted(per_skill, key=lambda s: per_skill[s])[:3]),
    )


class DataEnvGym:
    """One DataEnvGym episode over a student, a data-generation agent and a grader."""

    def __init__(
        self,
        config: DataEnvConfig,
        task: Task,
        *,
        generator: Agent[DataGenerator],
        student: StudentAgent,
        grader: Agent[Grader],
        recorder: Recorder,
        run_dir: Path | str,
        episode_id: str | None = None,
    ):
        self.config = config
        self.task = task
        self.generator = generator
        self.student = student
        self.grader = grader
        self.recorder = recorder
        self.run_dir = Path(run_dir)
        self.episode_id = episode_id or new_id()
        self.iteration = 0
        self.val: list[Problem] = []
        self.test: list[Problem] = []
        self.data: list[TrainingExample] = []  # every kept example so far, oldest first
        self.tree: SkillTree = {}
        self.observation: Observation | None = None
        self.history: list[IterationRow] = []
        self.tokens: dict[str, int] = defaultdict(int)
        self.adapter_path: str | None = None

    # ------------------------------------------------------------------------ helpers

    def _sample(self) -> None:
        cfg = self.config
        self.val = self.task.sample(cfg.val_size, split=cfg.val_split, seed=cfg.seed, episode_id=self.episode_id)
        self.test = self.task.sample(
            cfg.test_size, split=cfg.test_split, seed=cfg.seed, exclude={p.id for p in self.val}, episode_id=self.episode_id
        )
        if len(self.val) < cfg.val_size or not self.test:
            raise ValueError(
                f"task {self.task.name!r} gives {len(self.val)} validation problems (split {cfg.val_split!r}, "
                f"wanted {cfg.val_size}) and {len(self.test)} test problems (split {cfg.test_split!r})"
            )

    async def _evaluate(self, problems: Sequence[Problem], *, phase: str, base: bool = False, record: bool = True) -> list[Attempt]:
        """The student's graded answers; ``record=False`` for the data check, whose attempts are not evaluation."""
        attempts = await self.student.call(Student.answer, problems, phase=phase, use_memory=True, base=base)
        graded = await self.grader.call(Grader.grade_attempts, problems, attempts)
        if record:
            self.recorder.record(graded)
            self.recorder.advance(len(graded))
        tokens_by_sender(graded, into=self.tokens)
        return graded

    def _feedback(self, problems: Sequence[Problem], attempts: Sequence[Attempt], split: str, iteration: int) -> Feedback:
        return feedback(problems, attempts, split=split, iteration=iteration, episode_id=self.episode_id)

    def _observe(self, attempts: Sequence[Attempt], iteration: int) -> Observation:
        feedback = self._feedback(self.val, attempts, "validation", iteration)
        self.recorder.record([feedback])
        self.recorder.metric("val_accuracy", feedback.accuracy, iteration=iteration)
        for skill, value in flat_accuracy(feedback.report).items() if feedback.report else ():
            self.recorder.metric("val_accuracy_per_skill", value, iteration=iteration, skill=skill)
        return Observation(
            variant=self.config.variant,
            iteration=iteration,
            problems=tuple(self.val),
            attempts=tuple(attempts),
            report=feedback,
            budget=self._budget(),
            examples_so_far=len(self.data),
            tree=self.tree,
        )

    def _budget(self) -> int:
        return max(min(self.config.examples_per_iteration, self.config.max_examples - len(self.data)), 0)

    @property
    def done(self) -> bool:
        """Iterations or the data budget used up."""
        return self.iteration >= self.config.iterations or len(self.data) >= self.config.max_examples

    async def _quality_check(self, examples: Sequence[TrainingExample]) -> list[TrainingExample]:
        """Each example kept or dropped with the reason, in order of the checks."""
        evaluation = {p.question.strip() for p in [*self.val, *self.test]}
        seen = {e.prompt.strip() for e in self.data}
        checked: list[TrainingExample] = []
        candidates: list[int] = []
        for example in examples:
            question = example.prompt.strip()
            reason = None
            if not question or not (example.answer or "").strip():
                reason = "no question or no annotated answer"
            elif question in evaluation:
                reason = "same question as an evaluation problem"
            elif question in seen:
                reason = "duplicate of another example"
            else:
                reason = await self._check_worked_solution(example)
            seen.add(question)
            checked.append(example.model_copy(update={"kept": reason is None, "drop_reason": reason}))
            if reason is None:
                candidates.append(len(checked) - 1)
        if self.config.drop_known and candidates:
            problems = [
                Problem(id=checked[i].id, question=checked[i].prompt, answer=checked[i].answer or "", metadata=checked[i].metadata)
                for i in candidates
            ]
            attempts = await self._evaluate(problems, phase=f"data_check_{self.iteration + 1}", record=False)
            for i, attempt in zip(candidates, attempts):
                if attempt.correct:
                    checked[i] = checked[i].model_copy(update={"kept": False, "drop_reason": "the student already answers it"})
        return checked

    async def _check_worked_solution(self, example: TrainingExample) -> str | None:
        """Why the worked solution does not reach its annotated answer by its own steps, or None.

        The answer line an engine appends ("The answer is X.") proves nothing, so the
        check reads the solution before it: every arithmetic step it writes must be
        right (checked exactly, see :mod:`classroom.agents.step_checker`), and the answer the
        steps reach must pass the grader against the annotated one.
        """
        appended = f"The answer is {example.answer}."
        body = example.completion.strip()
        body = body[: -len(appended)].strip() if body.endswith(appended) else body
        wrong = [step for step in check_steps(body) if step.verdict == "wrong"]
        if wrong:
            return f"worked solution step {wrong[0].equation!r} is wrong ({wrong[0].reason})"
        reached = extract_final_answer(body) if body else None
        if reached is None:
            return "the worked solution reaches no answer of its own (only the appended answer line)"
        problem = Problem(question=example.prompt, answer=example.answer or "", metadata=example.metadata)
        if not await self.grader.call(Grader.score_one, problem, reached):
            return f"the worked solution reaches {reached!r}, not the annotated {example.answer!r}"
        return None

    def _iteration_dir(self, iteration: int) -> Path:
        path = self.run_dir / "iterations" / f"{iteration:03d}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    # -------------------------------------------------------------------------- gym API

    async def reset(self, seed: int | None = None) -> Observation:
        """Sample validation/test problems, evaluate the untrained student, observe."""
        if seed is not None and seed != self.config.seed:
            self.config = self.config.model_copy(update={"seed": seed})
        self.iteration, self.data, self.tree, self.history = 0, [], {}, []
        self._sample()
        discovered = await self.generator.call(DataGenerator.discover_skills, self.val)
        self.val = discovered.problems
        if discovered.tokens:  # a teacher that labels skills spends tokens before the first step
            self.tokens["data_generator"] += discovered.tokens
        self.recorder.record([*self.val, *self.test, *discovered.failures])
        self.recorder.stage("reset: student on the validation set", len(self.val))
        attempts = await self._evaluate(self.val, phase="val_0")
        self.observation = self._observe(attempts, 0)
        self._write_iteration(0, self.observation, [], None)
        self.history.append(self._row(self.observation, None, 0, 0, None))
        return self.observation

    async def step(self, action: AgentAction) -> StepResult:
        """Quality-check the data, train on all data so far, evaluate, reward."""
        if self.observation is None:
            raise RuntimeError("call reset() before step()")
        if self.done:
            raise RuntimeError(f"the episode is done (iteration {self.iteration} of {self.config.iterations})")
        iteration = self.iteration + 1
        previous = self.observation
        self.recorder.record([action.plan, *action.notes])
        if action.tokens:
            self.tokens["data_generator"] += action.tokens
        self.recorder.stage(f"iteration {iteration}: quality checks", None)
        checked = await self._quality_check(action.examples)
        room = self.config.max_examples - len(self.data)
        kept = [e for e in checked if e.kept][: max(room, 0)]
        kept_ids = {e.id for e in kept}
        checked = [
            e if e.id in kept_ids or not e.kept else e.model_copy(update={"kept": False, "drop_reason": "data budget reached"})
            for e in checked
        ]
        self.recorder.record(checked)
        self.data += kept
        self.tree = apply_to_tree(action.plan, self.tree, previous.budget)

        training = None
        folder = self._iteration_dir(iteration)
        if kept:
            self.recorder.stage(f"iteration {iteration}: student learns from {len(self.data)} examples", None)
            training = await self.student.train_and_keep(
                self.data, iteration=iteration, out_dir=str(folder / "adapter"), adapter_name=f"{self.episode_id}-it{iteration}"
            )
            self.recorder.record([training])
            self.adapter_path = training.adapter_path or self.adapter_path
            self.recorder.stage(f"iteration {iteration}: student on the validation set", len(self.val))
            attempts = await self._evaluate(self.val, phase=f"val_{iteration}")
        else:
            attempts = list(previous.attempts)  # nothing new to learn: the student is unchanged
        self.iteration = iteration
        observation = self._observe(attempts, iteration)
        reward = observation.report.accuracy - previous.report.accuracy
        skill_rewards = {
            s: observation.report.per_skill_accuracy[s] - previous.report.per_skill_accuracy[s]
            for s in observation.report.per_skill_accuracy
            if s in previous.report.per_skill_accuracy
        }
        self.observation = observation
        self._write_iteration(iteration, observation, checked, action)
        self.history.append(
            self._row(observation, training, len(checked), len(kept), reward, parse_failures=len(action.notes), fallbacks=action.fallbacks)
        )
        self.recorder.metric("reward", reward, iteration=iteration)
        self.recorder.metric("examples_generated", len(checked), iteration=iteration)
        self.recorder.metric("examples_kept", len(kept), iteration=iteration)
        if training is not None:
            self.recorder.metric("training_seconds", training.seconds, iteration=iteration)
        return StepResult(
            observation=observation,
            reward=reward,
            skill_rewards=skill_rewards,
            done=self.done,
            kept=len(kept),
            dropped=len(checked) - len(kept),
            training=training,
        )

    async def finish(self, started: float, resumed_from: int | None = None) -> EpisodeResult[DataEnvGymDetails]:
        """Write the SFT data, score the test set (trained and untrained), summarize."""
        _write_jsonl(self.run_dir / "sft.jsonl", await self.student.call(Student.sft_rows, self.data))  # TRL prompt-completion
        self.recorder.stage("test set: trained and untrained student", 2 * len(self.test))
        # At once: the engine batches both (the untrained student is the base model).
        final, initial = await asyncio.gather(
            self._evaluate(self.test, phase="test"), self._evaluate(self.test, phase="test_untrained", base=True)
        )
        test_report = self._feedback(self.test, final, "test", self.iteration)
        base_report = self._feedback(self.test, initial, "test_untrained", 0)
        self.recorder.record([test_report, base_report])
        return self._summary(test_report, base_report, started, resumed_from)

    # ----------------------------------------------------------------- records, state

    def _row(
        self,
        observation: Observation,
        training: TrainingRun | None,
        generated: int,
        kept: int,
        reward: float | None,
        *,
        parse_failures: int = 0,
        fallbacks: int = 0,
    ) -> IterationRow:
        return IterationRow(
            iteration=observation.iteration,
            val_accuracy=observation.report.accuracy,
            val_ungradeable=observation.report.ungradeable,
            per_skill=flat_accuracy(observation.report.report) if observation.report.report else {},
            generated=generated,
            kept=kept,
            examples_so_far=len(self.data),
            reward=reward,
            training_seconds=training.seconds if training else 0.0,
            train_loss=training.train_loss if training else None,
            adapter=training.adapter if training else None,
            parse_failures=parse_failures,
            fallbacks=fallbacks,
            tokens=dict(self.tokens),
        )

    def _write_iteration(
        self, iteration: int, observation: Observation, checked: Sequence[TrainingExample], action: AgentAction | None
    ) -> None:
        folder = self._iteration_dir(iteration)
        (folder / "report.json").write_text(observation.report.model_dump_json(indent=1))
        if action is not None:
            (folder / "plan.json").write_text(action.plan.model_dump_json(indent=1))
            _write_jsonl(folder / "examples.jsonl", [e for e in checked if e.kept])
            _write_jsonl(folder / "dropped.jsonl", [e for e in checked if not e.kept])

    def snapshot(self) -> EnvState:
        """The environment after the last finished step (its part of a checkpoint)."""
        if self.observation is None:
            raise RuntimeError("call reset() before snapshot()")
        return EnvState(
            episode_id=self.episode_id,
            iteration=self.iteration,
            observation=self.observation,
            test=self.test,
            data=self.data,
            tree=self.tree,
            history=self.history,
            tokens=dict(self.tokens),
            adapter_path=self.adapter_path,
        )

    def restore(self, state: EnvState) -> Observation:
        """Continue after the step a :meth:`snapshot` was taken at."""
        self.episode_id = state.episode_id
        self.iteration = state.iteration
        self.observation = state.observation
        self.val = list(state.observation.problems)
        self.test = list(state.test)
        self.data = list(state.data)
        self.tree = dict(state.tree)
        self.history = list(state.history)
        self.tokens = defaultdict(int, state.tokens)
        self.adapter_path = state.adapter_path
        self.recorder.stage(f"resuming after iteration {self.iteration}", None)
        return state.observation

    def _summary(self, test: Feedback, base: Feedback, started: float, resumed_from: int | None) -> EpisodeResult[DataEnvGymDetails]:
        curve = {str(row.iteration): row.val_accuracy for row in self.history}
        first, last = self.history[0], self.history[-1]
        skills = sorted(set(first.per_skill) | set(last.per_skill))
        details = DataEnvGymDetails(
            variant=self.config.variant,
            task=self.task.name,
            episode_id=self.episode_id,
            iterations=self.iteration,
            resumed_from=resumed_from,
            validation_problems=len(self.val),
            test_problems=len(self.test),
            val_accuracy_by_iteration=curve,
            per_skill_by_iteration={str(r.iteration): r.per_skill for r in self.history},
            test_accuracy=test.accuracy,
            test_accuracy_untrained=base.accuracy,
            test_per_skill=test.per_skill_accuracy,
            test_per_skill_untrained=base.per_skill_accuracy,
            examples_kept=len(self.data),
            examples_generated=sum(r.generated for r in self.history),
            parse_failures=sum(r.parse_failures for r in self.history),
            fallbacks=sum(r.fallbacks for r in self.history),
            # Answers left out of the accuracies above because the grader could not score them.
            ungradeable={
                "validation": sum(r.val_ungradeable for r in self.history),
                "test": test.ungradeable,
                "test_untrained": base.ungradeable,
            },
            training_seconds=round(sum(r.training_seconds for r in self.history), 2),
            history=list(self.history),
        )
        scores: dict[str, float | None] = {
            **{f"val@{k}": v for k, v in curve.items()},
            "test": test.accuracy,
            "test_untrained": base.accuracy,
            "test_gain": test.accuracy - base.accuracy,
            # Per-skill learning curves: which skills the environment made improve.
            **{f"val[{s}]@{r.iteration}": r.per_skill.get(s) for s in skills if "/" not in s for r in self.history},
        }
        ungradeable = sum(details.ungradeable.values())
        failures = {"unparsed_or_unserved": details.parse_failures, "ungradeable": ungradeable}
        return EpisodeResult[DataEnvGymDetails](
            scores=scores,
            tokens=dict(self.tokens),
            wall_time_s=time.time() - started,
            counts=Counts(
                failures={kind: n for kind, n in failures.items() if n},
                fallbacks={"plan": details.fallbacks} if details.fallbacks else {},
            ),
            details=details,
        )
