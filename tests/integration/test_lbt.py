"""Learning by teaching on the real engine: M1, M2 (a DPO step, the DPO teacher
served), M3 (an unparseable proposal, a resume) and a class of two students (two
adapters served side by side)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from support.doubles import GarbledProposer

from classroom.agents.actors import spawn
from classroom.agents.class_roster import Seat
from classroom.agents.grading import Grader
from classroom.agents.learners import DPOLearner, InContextLearner
from classroom.agents.messages import Attempt, Explanation, ParseFailure, PreferencePair, Problem, TrainingRun
from classroom.agents.roles import Student, Teacher
from classroom.agents.settings import StudentSettings, TeacherSettings
from classroom.agents.transport import Agent, StudentAgent
from classroom.environments.base import Episode, Roles, spawn_student
from classroom.environments.lbt.config import LbtConfig, M1Settings, M2Settings, M3Settings
from classroom.environments.lbt.exemplars import ProgrammaticProposer
from classroom.environments.lbt.m1 import run_m1
from classroom.environments.lbt.m2 import PREFERENCES, run_m2
from classroom.environments.lbt.m3 import m3_checkpoint, run_m3
from classroom.environments.lbt.rationale_scores import LbtAgents, teach_and_score
from classroom.environments.lbt.similar import SimilarProblems
from classroom.environments.lbt.types import ExemplarProposal, ExemplarSet, TeachingScore
from classroom.environments.recording import MemoryRecorder
from classroom.environments.replay import Replay
from classroom.environments.tasks import reasoning_gym_skills
from classroom.serving.pool import ModelPool, RoutedLLM
from classroom.serving.types import SamplingParams

SKILLS = {
    "chain_sum": {"two_1digit": {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1}},
    "products": {"one_digit": {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1}},
}


@pytest.fixture
def seated(class_of_two):
    return class_of_two


def lbt_episode(engine, tmp_path: Path, seats, **config) -> tuple[Episode, LbtAgents, MemoryRecorder]:
    pool = ModelPool({"embedded": RoutedLLM("embedded", [engine])}, {"teacher": "embedded", "student": "embedded"})
    recorder = MemoryRecorder()
    episode = Episode(
        episode_id="ep",
        config=LbtConfig(**config),
        task=reasoning_gym_skills(SKILLS, size=12, seed=0),
        roles=Roles(
            TeacherSettings(sampling=SamplingParams(max_tokens=64)),
            StudentSettings(sampling=SamplingParams(max_tokens=48)),
            InContextLearner(),
        ),
        pool=pool,
        recorder=recorder,
        run_dir=tmp_path,
        students=tuple(seats),
        base_models={"teacher": "embedded", "student": "embedded"},
    )
    agents = LbtAgents(
        teacher=Agent(spawn(Teacher, pool.llm("teacher"), episode_id="ep", sampling={"max_tokens": 64})),
        students=tuple(spawn_student(episode, seat) for seat in seats),
        names=tuple(seat.name for seat in seats),
        grader=Agent(spawn(Grader)),
        teacher_as_student=spawn_student(episode, Seat("teacher", "teacher")),
    )
    return episode, agents, recorder


async def test_a_class_of_two_adapters_on_one_engine_answers_differently(engine, seated):
    """Students are adapters of the same running engine: each its own actor and name;
    the sums student answers otherwise than the base one."""
    import ray

    assert [s.adapter for s in seated] == [None, "student-sums"]
    assert "student-sums" in ray.get(engine.actor.info.remote())["adapters"]
    problems = reasoning_gym_skills(SKILLS, size=12, seed=3).split("test")[:8]
    llm = RoutedLLM("embedded", [engine])
    base, sums = (StudentAgent(spawn(Student, llm, name=s.name, adapter=s.adapter, sampling={"max_tokens": 48})) for s in seated)
    a, b = await base.call(Student.answer, problems, phase="class"), await sums.call(Student.answer, problems, phase="class")
    assert {x.sender for x in a} == {"base"} and {x.sender for x in b} == {"sums"}
    assert sum(x.reasoning != y.reasoning for x, y in zip(a, b)) >= 4, [(x.reasoning, y.reasoning) for x, y in zip(a, b)]
    assert b[0].usage.model == "student-sums" and a[0].usage.model == "embedded"


async def test_m1_episode_with_two_students(engine, seated, tmp_path):
    m1 = M1Settings(samples=3, exam_size=2, repeats=2, rationale_tokens=48, answer_tokens=32)
    episode, agents, recorder = lbt_episode(engine, tmp_path, seated, num_problems=3, m1=m1)
    summary = (await run_m1(episode, agents)).summary()
    scores = [m for m in recorder.messages if isinstance(m, TeachingScore)]
    assert len(scores) == 3 * 3 and summary["students"] == ["base", "sums"]
    exam = [m for m in recorder.messages if isinstance(m, Attempt) and m.phase == "exam"]
    assert len(exam) == 9 * 2 * 2 * 2 and {a.sender for a in exam} == {"base", "sums"}
    for score in scores:  # 2 exam problems x 2 repeats x 2 students, each student's share kept
        # Recounted from the logged exam answers taken with this rationale in view.
        taken = [a for a in exam if a.context_ids == (score.rationale_id,)]
        assert len(taken) == 8 and {a.problem_id for a in taken} == set(score.exam_problem_ids)
        graded = [a for a in taken if a.correct is not None]
        assert (score.exam_answers, score.ungradeable) == (len(graded), len(taken) - len(graded))
        assert score.score == pytest.approx(sum(a.correct for a in graded) / len(graded))
        for name in ("base", "sums"):
            mine = [a.correct for a in graded if a.sender == name]
            assert score.by_student[name] == pytest.approx(sum(mine) / len(mine))
    assert set(summary["accuracy"]) == {"greedy", "self_consistency", "m1_max", "m1_sum"}
    for row in summary["per_problem"]:  # M1-MAX answers as a best-scored sample with an answer
        answered = [s for s in scores if s.problem_id == row["problem_id"] and s.answer is not None]
        top = max((s.score for s in answered), default=None)
        assert row["answers"]["m1_max"] in ({s.answer for s in answered if s.score == top} or {None})
    [engine_figures] = summary["exam_engines"].values()
    assert 0.0 < engine_figures["busy_fraction"] <= 1.0 and engine_figures["mean_in_flight"] > 1.0
    assert engine_figures["prefix_cache_hit_rate"] is not None and engine_figures["prefix_cache_hit_rate"] > 0.0


async def test_a_dpo_step_moves_the_preference_toward_the_chosen(trainer, tmp_path):
    """The margin log p(chosen) - log p(rejected) rises on the pairs DPO trained on."""
    rows = [
        PreferencePair(
            prompt=({"role": "user", "content": f"What is {a} + {b}?"},),
            chosen=f"{a} + {b} = {a + b}. The answer is {a + b}.",
            rejected=f"{a} + {b} = {a + b + 3}. The answer is {a + b + 3}.",
        ).row()
        for a, b in [(2, 3), (4, 4), (5, 1), (6, 2), (3, 3), (7, 1), (2, 6), (1, 4)]
    ]
    learner = DPOLearner(base_model="embedded", epochs=2, learning_rate=2e-3, batch_size=4, nll_weight=1.0)
    before = await learner.margins(rows)
    trained = await learner.fit(rows, str(tmp_path / "dpo"))
    after = await learner.margins(rows, trained["adapter_path"])
    assert trained["steps"] == 4 and (tmp_path / "dpo" / "adapter_config.json").is_file()
    assert sum(after) / len(after) > sum(before) / len(before) + 1.0, (before, after)
    assert sum(a > b for a, b in zip(after, before)) >= 7


async def test_m2_episode_saves_pairs_and_serves_the_dpo_teacher(engine, seated, tmp_path):
    import datasets
    import ray

    m1 = M1Settings(samples=4, exam_size=2, repeats=1, rationale_tokens=64, answer_tokens=48)
    m2 = M2Settings(train_problems=3, max_pairs_per_problem=2, dpo={"_target_": "classroom.agents.learners.DPOLearner", "epochs": 1})
    episode, agents, recorder = lbt_episode(engine, tmp_path, seated[:1], method="m2", num_problems=4, m1=m1, m2=m2)
    summary = (await run_m2(episode, agents)).summary()
    messages = recorder.messages
    pairs = [m for m in messages if isinstance(m, PreferencePair)]
    assert summary["pairs"] == len(pairs) > 0
    # Each pair recounted from the log: its two rationales as logged, each side's score
    # w x correctness + (1 - w) x the LbT score logged for it, apart by more than the gap
    # (the default 0.3).
    explanations = {m.id: m for m in messages if isinstance(m, Explanation)}
    scores = {m.rationale_id: m for m in messages if isinstance(m, TeachingScore)}
    w = m2.correctness_weight
    for pair in pairs:
        _, chosen, rejected = pair.parents
        assert (pair.chosen, pair.rejected) == (explanations[chosen].text, explanations[rejected].text)
        recounted = [w * scores[i].correct + (1 - w) * scores[i].score for i in (chosen, rejected)]
        assert [pair.chosen_score, pair.rejected_score] == pytest.approx(recounted)
        assert recounted[0] - recounted[1] > m2.min_gap == 0.3
    loaded = datasets.load_dataset("json", data_files=str(tmp_path / PREFERENCES), split="train", cache_dir=str(tmp_path / "hf-cache"))
    assert loaded.column_names == ["prompt", "chosen", "rejected"] and len(loaded) == len(pairs)
    assert loaded[0]["prompt"][0]["role"] == "system"  # the teacher's own prompt
    assert "ep-teacher-dpo" in ray.get(engine.actor.info.remote())["adapters"]
    # The held-out explanations, before then after: the after ones came from the DPO
    # adapter and the DPO step changed something; both accuracies recounted from them.
    test = [m for m in messages if isinstance(m, Problem) and m.split == "test"]
    held_out = [[e for e in explanations.values() if e.problem_id == p.id] for p in test]
    assert all(len(pair) == 2 for pair in held_out)
    before, after = zip(*held_out)
    assert {e.usage.model for e in before} == {"embedded"} and {e.usage.model for e in after} == {"ep-teacher-dpo"}
    assert any(b.text != a.text for b, a in zip(before, after))

    def recount(explained) -> float:
        right = [_same_number(e.final_answer, p.answer) for p, e in zip(test, explained)]
        return sum(right) / len(right)

    assert summary["ungradeable"] == {"before": 0, "after": 0}
    assert summary["scores"]["teacher_test_before"] == pytest.approx(recount(before))
    assert summary["scores"]["teacher_test"] == pytest.approx(recount(after))

    # The DPO step is in the log: the teacher's, on every pair, the adapter it served.
    [run] = [m for m in messages if isinstance(m, TrainingRun)]
    assert (run.sender, run.adapter, run.examples) == ("teacher", "ep-teacher-dpo", len(pairs))
    # Played again from its log (a resume), the episode trains nothing and logs nothing:
    # the adapter is the logged run's files, served again.
    logged = list(messages)
    weights = Path(run.adapter_path) / "adapter_model.safetensors"
    written = weights.stat().st_mtime_ns
    ray.get(engine.actor.unload_adapter.remote("ep-teacher-dpo"))
    again = (await run_m2(episode, agents, Replay(logged))).summary()
    assert recorder.messages == logged and again["training"]["train_loss"] == run.train_loss
    assert weights.stat().st_mtime_ns == written  # not trained again
    assert again["scores"] == summary["scores"]
    assert "ep-teacher-dpo" in ray.get(engine.actor.info.remote())["adapters"]


def _same_number(written: str | None, answer: str) -> bool:
    """An answer checked by another route than the grader: as a number."""
    try:
        return written is not None and float(written.replace(",", "")) == float(answer)
    except ValueError:
        return False


async def test_correctness_only_rationales_are_sampled_and_graded_without_exams(engine, seated, tmp_path):
    """M2's `correctness` baseline reads no LbT score: the class takes no exam."""
    m1 = M1Settings(samples=3, exam_size=2, repeats=1, rationale_tokens=48, answer_tokens=48)
    episode, agents, recorder = lbt_episode(engine, tmp_path, seated, method="m2", num_problems=2, m1=m1)
    problems = episode.task.sample(2, split="train", seed=0, episode_id="ep")
    similar = SimilarProblems(episode.task, "train", seed=0)
    kw = {"seed": 0, "recorder": recorder, "pool": episode.pool, "episode_id": "ep"}
    teaching = await teach_and_score(problems, agents, similar, m1, exams=False, **kw)
    assert not [m for m in recorder.messages if isinstance(m, TeachingScore) or getattr(m, "phase", "") == "exam"]
    assert teaching.exam_engines == {} and set(teaching.tokens) == {"teacher"}
    for problem in problems:
        [*samples] = teaching.scored[problem.id]
        assert len(samples) == 3 and all(s.score == 0.0 for s in samples)
        assert [s.correct for s in samples] == [await agents.grader.call(Grader.score_one, problem, s.answer) for s in samples]


async def test_one_m3_iteration_goes_on_past_a_proposal_that_does_not_parse(engine, seated, tmp_path):
    m3 = M3Settings(
        exemplars=2, proposals=3, iterations=1, train_items=4, proposer={"_target_": "support.doubles.GarbledProposer"}, answer_tokens=32
    )
    episode, agents, recorder = lbt_episode(engine, tmp_path, seated, method="m3", num_problems=4, m3=m3)
    GarbledProposer.shown.clear()
    summary = (await run_m3(episode, agents)).summary()
    # No held-out problem (nor its question) reaches the proposer: it saw training
    # problems only (the pool and the students' errors on the training items).
    held_out = [m for m in recorder.messages if isinstance(m, Problem) and m.split == "test"]
    assert len(held_out) == 4 and GarbledProposer.shown
    assert {p.split for p in GarbledProposer.shown} == {"train"}
    assert not {p.question for p in GarbledProposer.shown} & {p.question for p in held_out}
    failures = [m for m in recorder.messages if isinstance(m, ParseFailure)]
    assert summary["parse_failures"] == 1 and len(failures) == 1 and failures[0].expected == "ExemplarSet"
    proposals = [m for m in recorder.messages if isinstance(m, ExemplarProposal)]
    assert [p.iteration for p in proposals] == [0, 1, 1]  # the first set, then the two that parsed
    assert_m3_recounts(recorder.messages, summary, iterations=1, answers_per_set=4 * 2, held_out=4)
    assert summary["students"] == ["base", "sums"]


async def test_an_m3_iteration_with_the_teacher_model_proposing(engine, seated, tmp_path):
    """LLMProposer (the paper's M3) on the tier's model: its sets are sampled from one
    prompt under the ExemplarSet schema; each either parses into a proposal that the
    students are asked with, or is one recorded failure."""
    m3 = M3Settings(
        exemplars=2,
        proposals=2,
        iterations=1,
        train_items=4,
        answer_tokens=32,
        proposer={"_target_": "classroom.environments.lbt.exemplars.LLMProposer", "max_tokens": 192},
    )
    episode, agents, recorder = lbt_episode(engine, tmp_path, seated, method="m3", num_problems=4, m3=m3)
    summary = (await run_m3(episode, agents)).summary()
    failures = [m for m in recorder.messages if isinstance(m, ParseFailure) and m.expected == "ExemplarSet"]
    proposals = [m for m in recorder.messages if isinstance(m, ExemplarProposal)]
    # The first set is the pool's; iteration 1's two sets either parsed or failed.
    assert proposals[0].iteration == 0 and sum(p.iteration == 1 for p in proposals) + len(failures) == 2
    assert summary["parse_failures"] == len(failures) and all(f.raw_text for f in failures)
    assert_m3_recounts(recorder.messages, summary, iterations=1, answers_per_set=4 * 2, held_out=4)


def assert_m3_recounts(messages: list, summary: dict, *, iterations: int, answers_per_set: int, held_out: int) -> None:
    """An M3 summary recounted from its log: each set's score from the class's logged
    answers to the training items with that set in view; the curve from the sets marked
    kept; the held-out accuracies from the teacher model's logged answers."""
    proposals = [m for m in messages if isinstance(m, ExemplarProposal)]
    attempts = [m for m in messages if isinstance(m, Attempt)]
    curve = {}
    for proposal in proposals:
        answered = [a for a in attempts if a.phase == "m3_train" and a.context_ids == (proposal.id,)]
        graded = [a.correct for a in answered if a.correct is not None]
        assert len(answered) == answers_per_set and proposal.score == pytest.approx(sum(graded) / len(graded))
        if proposal.kept:
            curve[str(proposal.iteration)] = proposal.score
    # An iteration that kept no new set (none better, or none parsed) keeps the last one's.
    for i in range(1, iterations + 1):
        curve.setdefault(str(i), curve[str(i - 1)])
    assert summary["train_accuracy_by_iteration"] == dict(sorted(curve.items(), key=lambda item: int(item[0])))
    for phase, key in (("m3_test_first", "m3_test_first"), ("m3_test_final", "m3_test")):
        answered = [a for a in attempts if a.phase == phase]
        graded = [a.correct for a in answered if a.correct is not None]
        assert {a.sender for a in answered} == {"teacher"} and len(answered) == held_out
        assert summary["scores"][key] == pytest.approx(sum(graded) / len(graded))


async def test_an_m3_episode_stopped_in_an_iteration_goes_on_after_the_last_finished_one(engine, seated, tmp_path):
    """Stopped in iteration 2 and resumed from its checkpoint (the log cut back to it,
    as `classroom resume` does): iterations 0 and 1 are not asked again, iteration 2's
    proposals are the seeded proposer's on the checkpoint's set and wrong answers, and the
    summary recounts from the whole log, the part before the cut included.

    Not compared with a separate uninterrupted run: the engine's greedy answers are not
    batch-invariant (prefix cache, batch shapes), so two runs of one config can differ by
    a token or a grade; CI saw both."""
    m3 = {"exemplars": 2, "proposals": 2, "iterations": 2, "train_items": 4, "answer_tokens": 32}
    dying = M3Settings(**m3, proposer={"_target_": "support.doubles.DyingProposer"})
    episode, agents, recorder = lbt_episode(engine, tmp_path, seated, method="m3", num_problems=4, m3=dying)
    with pytest.raises(RuntimeError, match="killed in iteration 2"):
        await run_m3(episode, agents)
    before = list(recorder.messages)
    checkpoint = m3_checkpoint(episode)
    assert checkpoint is not None and checkpoint.iteration == 1 and checkpoint.events_logged == len(before)
    recorder.rewind(checkpoint.events_logged)
    resumed = (
        await run_m3(replace(episode, config=LbtConfig(method="m3", num_problems=4, m3=M3Settings(**m3))), agents, checkpoint)
    ).summary()

    assert resumed["resumed_after_iteration"] == 1
    proposals = [m for m in recorder.messages if isinstance(m, ExemplarProposal)]
    assert [p.iteration for p in proposals] == [0, 1, 1, 2, 2]  # 0 and 1 from before, once
    assert [m.id for m in recorder.messages[: len(before)]] == [m.id for m in before]
    assert m3_checkpoint(episode).iteration == 2
    # The curve and held-out scores recount from the log; iterations 0 and 1 as checkpointed.
    assert_m3_recounts(recorder.messages, resumed, iterations=2, answers_per_set=4 * 2, held_out=4)
    assert {k: resumed["train_accuracy_by_iteration"][k] for k in ("0", "1")} == checkpoint.curve
    # Tokens: every logged answer's, by sender, the ones before the cut included (the
    # programmatic proposer asks no model).
    recounted: dict[str, int] = {"programmatic": 0}
    for attempt in (m for m in recorder.messages if isinstance(m, Attempt)):
        recounted[attempt.sender] = recounted.get(attempt.sender, 0) + attempt.usage.total_tokens
    assert resumed["tokens"] == recounted
    # Iteration 2 goes on from the checkpoint: the proposer's own sets for its state and seed.
    drawn = episode.task.sample(4 * 4, split="train", seed=0, episode_id=episode.episode_id)
    items, pool = {p.id: p for p in drawn[:4]}, drawn[4:]
    errors = [(items[problem_id], attempt) for problem_id, attempt in checkpoint.errors]
    expected = await ProgrammaticProposer().propose(checkpoint.current, errors, pool, 2, None, seed=0 * 100 + 2)
    assert [[e.model_dump() for e in ExemplarSet.model_validate_json(t).exemplars] for t in expected.texts] == [
        list(p.exemplars) for p in proposals[3:]
    ]


async def test_a_resumed_teaching_step_takes_its_rationales_and_exams_from_the_log(engine, seated, tmp_path):
    """Replayed from the first run's log, the same step asks the engine nothing, logs
    nothing again and scores every rationale as before."""
    m1 = M1Settings(samples=2, exam_size=2, repeats=2, rationale_tokens=48, answer_tokens=32)
    episode, agents, recorder = lbt_episode(engine, tmp_path, seated, num_problems=2, m1=m1)
    problems = episode.task.sample(2, split="test", seed=0, episode_id="ep")
    similar = SimilarProblems(episode.task, "train", seed=0)
    kw = {"seed": 0, "pool": episode.pool, "episode_id": "ep"}
    first = await teach_and_score(problems, agents, similar, m1, recorder=recorder, **kw)
    served = (await engine.actor.load.remote())["served"]
    again = MemoryRecorder()
    replayed = await teach_and_score(problems, agents, similar, m1, recorder=again, replay=Replay(recorder.messages), **kw)
    assert (await engine.actor.load.remote())["served"] == served  # not one request
    assert again.messages == []
    assert {p: [(s.explanation.id, s.score) for s in group] for p, group in replayed.scored.items()} == {
        p: [(s.explanation.id, s.score) for s in group] for p, group in first.scored.items()
    }
