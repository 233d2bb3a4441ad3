"""ToM on a small real episode: every intervention function and explanation style, the
mental model conditioned on its student, a class sharing one budget, chunked stages."""

from __future__ import annotations

import math

import pytest
from support.observations import seed_observation

from classroom.agents.actors import spawn
from classroom.agents.grading import Grader
from classroom.agents.messages import Attempt, Explanation, ParseFailure, Problem
from classroom.agents.roles import Student
from classroom.agents.transport import Agent, StudentAgent
from classroom.environments.recording import MemoryRecorder
from classroom.environments.tasks import reasoning_gym
from classroom.environments.tom import TomAgents, TomConfig, TomEpisode
from classroom.environments.tom.policies import (
    AllIntervention,
    MentalModelUtility,
    NoIntervention,
    Oracle,
    RandomIntervention,
    Reversed,
    StudentConfidence,
    TeacherConfidence,
)
from classroom.environments.tom.teacher import TomTeacher, wrong_answer
from classroom.environments.tom.types import InterventionDecision

POLICIES = {
    "none": NoIntervention,
    "all": AllIntervention,
    "random": lambda: RandomIntervention(seed=0),
    "teacher_confidence": TeacherConfidence,
    "student_confidence": StudentConfidence,
    "mental_model": lambda: MentalModelUtility("both"),
    "mental_model_no_intervention": lambda: MentalModelUtility("no_intervention"),
    "mental_model_intervention": lambda: MentalModelUtility("intervention"),
    "oracle": Oracle,
    "misaligned_reversed": lambda: Reversed(MentalModelUtility("both")),
}


@pytest.fixture(scope="module")
def cached_engine(engine):
    """The session engine with its greedy reply cache on: the episodes below share
    their pre-tests and explanations, as a sweep's jobs do."""
    import ray

    ray.get(engine.actor.set_response_cache.remote(4096))
    yield engine
    ray.get(engine.actor.set_response_cache.remote(0))


async def play(engine, policy, explanation="unpersonalized"):
    task = reasoning_gym(size=12, seed=2)
    agents = TomAgents(
        teacher=Agent(spawn(TomTeacher, engine, intervention=policy, sampling={"max_tokens": 40}, mental_model_demos=2)),
        students=(StudentAgent(spawn(Student, engine, sampling={"max_tokens": 32})),),
        grader=Agent(spawn(Grader)),
    )
    recorder = MemoryRecorder()
    config = TomConfig(
        num_problems=4, seed_set_size=3, post_test_size=2, budgets=(0.0, 0.5, 1.0), demo_counts=(0, 1), seed=2, explanation=explanation
    )
    summary = (await TomEpisode(config, task, agents, recorder).run()).summary()
    return summary, recorder.messages


def by_phase(messages, phase: str) -> dict[str, Attempt]:
    return {a.problem_id: a for a in messages if isinstance(a, Attempt) and a.phase == phase}


@pytest.mark.parametrize("name", list(POLICIES))
async def test_each_intervention_function_on_a_real_episode(cached_engine, name):
    policy = POLICIES[name]()
    summary, messages = await play(cached_engine, policy)
    decisions = [m for m in messages if isinstance(m, InterventionDecision)]
    assert len(decisions) == 4 and {d.policy for d in decisions} == {policy.name}
    assert summary["intervention_policy"] == policy.name
    by_budget = summary["accuracy_by_budget"]
    assert by_budget["0"] == summary["accuracy"]["no_intervention"]
    if name == "none":
        assert summary["interventions"] == {"0": 0, "0.5": 0, "1": 0}
        assert len(set(by_budget.values())) == 1 and summary["multiturn_by_demos"]["1"] is None
        return
    assert summary["interventions"] == {"0": 0, "0.5": 2, "1": 4}
    assert by_budget["1"] == summary["accuracy"]["with_every_explanation"]
    utilities = [d.utility for d in decisions]
    assert all(u is not None and math.isfinite(u) for u in utilities)
    # The policy's top-utility problems are the ones intervened on: at budget 0.5 the
    # student is helped on exactly the two highest (ties in problem order), found here
    # by sorting, independently of the loop's own choice.
    pre, after = by_phase(messages, "pre_test"), by_phase(messages, "with_explanation")
    top_two = {decisions[i].problem_id for i in sorted(range(4), key=lambda i: (-utilities[i], i))[:2]}
    assert set(summary["intervened"]["0.5"]) == top_two and len(summary["intervened"]["1"]) == 4
    expected = sum(bool((after if d.problem_id in top_two else pre)[d.problem_id].correct) for d in decisions) / 4
    assert by_budget["0.5"] == pytest.approx(expected)
    assert summary["scores"]["gain@0.5"] == pytest.approx(by_budget["0.5"] - by_budget["0"])
    if name == "oracle":
        for d in decisions:
            assert d.utility == float(bool(after[d.problem_id].correct)) - float(bool(pre[d.problem_id].correct))
    if name == "misaligned_reversed":
        # The same mental model, ranked the other way round: every utility negated.
        _, straight = await play(cached_engine, MentalModelUtility("both"))
        straight_utilities = {d.problem_id: d.utility for d in straight if isinstance(d, InterventionDecision)}
        assert {d.problem_id: -d.utility for d in decisions} == pytest.approx(straight_utilities)


async def test_the_mental_model_is_conditioned_on_this_student_and_discriminates(cached_engine):
    """The simulated student sees this student's real answers (alone, or after the
    explanation), and the probability it reads belongs to the answer asked about: the
    answer the simulated student writes scores far above another number. (A 135M
    teacher does not copy the demonstrated answers: what it simulates is its own guess.)"""
    from classroom.agents.grading import extract_final_answer
    from classroom.environments.tom.teacher import SIMULATION_SAMPLING

    problems = reasoning_gym(size=12, seed=2).split("test")[:3]
    teacher = TomTeacher(cached_engine, mental_model_demos=3)
    seed = [seed_observation(problems[0], "917", problems[0].answer), seed_observation(problems[1], problems[1].answer, "640")]
    seed.append(seed_observation(problems[2], "17", problems[2].answer))
    explanation = seed[0].explanation
    alone, helped = teacher.simulation_conversations([problems[0], problems[0]], [None, explanation], seed)
    assert [m.content for m in alone if m.role == "assistant"] == ["917", problems[1].answer, "17"]  # wrong, right, wrong
    assert [m.content for m in helped if m.role == "assistant"] == ["640", problems[0].answer, problems[2].answer]
    assert explanation.text in helped[-1].content and explanation.text not in alone[-1].content
    for conversation, given in ((alone, None), (helped, explanation)):
        [[reply]] = await cached_engine.chat([conversation], SIMULATION_SAMPLING)
        written = extract_final_answer(reply.text)
        other = str(int(written) + 1 if written.lstrip("-").isdigit() else 123)
        [p_written, p_other] = await teacher.simulate([problems[0]] * 2, [given] * 2, [written, other], seed)
        assert p_written > 0.05 and p_written > 2 * p_other, (reply.text, p_written, p_other)


async def test_personalized_explanations_show_the_flips_to_the_teacher(cached_engine):
    """Personalization puts the explanations that flipped this student before the
    question (always exercised here, whatever the episode's seed set flips)."""
    problems = reasoning_gym(size=12, seed=2).split("test")[:3]
    teacher = TomTeacher(cached_engine, sampling={"max_tokens": 24})
    demo = Explanation(id="demo", problem_id=problems[2].id, text=f"Add step by step. The answer is {problems[2].answer}.")
    personal = await teacher.explain_as(problems[:2], "personalized", personal=[(problems[2], demo)])
    plain = await teacher.explain_as(problems[:2], "unpersonalized")
    assert [e.style for e in personal] == ["personalized"] * 2 and [e.style for e in plain] == ["unpersonalized"] * 2
    assert all(e.parents == (p.id, "demo") for e, p in zip(personal, problems))
    assert all(a.usage.prompt_tokens > b.usage.prompt_tokens for a, b in zip(personal, plain))
    assert [e.style for e in await teacher.explain_as(problems[:2], "personalized")] == ["unpersonalized"] * 2  # no flips


@pytest.mark.parametrize("style", ["personalized", "gold", "deceptive"])
async def test_explanation_styles_on_a_real_episode(cached_engine, style):
    summary, messages = await play(cached_engine, MentalModelUtility("both"), explanation=style)
    explanations = [m for m in messages if isinstance(m, Explanation)]
    # By problem, not by log order: the seed and test sets are explained at once.
    test_ids = {m.problem_id for m in messages if isinstance(m, InterventionDecision)}
    seed_explanations = [e for e in explanations if e.problem_id not in test_ids]
    test_explanations = [e for e in explanations if e.problem_id in test_ids]
    problems = {m.id: m for m in messages if isinstance(m, Problem)}
    assert len(seed_explanations) == 3 and len(test_explanations) == 4
    if style == "gold":
        assert all(e.style == "gold" and e.final_answer == problems[e.problem_id].answer for e in explanations)  # seed set too
        assert all(e.answer_prob == 1.0 and e.usage.total_tokens == 0 for e in test_explanations)
    elif style == "personalized":
        flips = summary["seed_set_flips_used_for_personalization"]
        assert {e.style for e in seed_explanations} == {"unpersonalized"}  # they make the personalization
        if flips:
            assert {e.style for e in test_explanations} == {"personalized"} and summary["personalization_fallbacks"] == 0
            assert all(len(e.parents) == 1 + flips for e in test_explanations)
        else:  # the fallback is counted, not silent
            assert {e.style for e in test_explanations} == {"unpersonalized"} and summary["personalization_fallbacks"] == 4
    else:
        assert {e.style for e in explanations} == {"deceptive"} and summary["explanation_style"] == "deceptive"
        planted = {e.problem_id: wrong_answer(problems[e.problem_id], 2) for e in explanations}
        off = [e for e in test_explanations if e.final_answer != planted[e.problem_id]]
        assert summary["deceptive_noncompliant"]["test"] == len(off)
        failures = [m for m in messages if isinstance(m, ParseFailure)]
        assert len(failures) == summary["deceptive_noncompliant"]["seed_set"] + len(off)
        decisions = {d.problem_id: d for d in messages if isinstance(d, InterventionDecision)}
        assert all(decisions[e.problem_id].utility is None and not decisions[e.problem_id].intervene for e in off)


async def test_a_class_shares_one_budget_where_the_mental_models_predict_most(cached_engine, class_of_two):
    """Two students (the base model and a sums adapter): a mental model each, one budget
    over every (student, problem); the class accuracy is the students' mean."""
    names = tuple(seat.name for seat in class_of_two)
    agents = TomAgents(
        teacher=Agent(
            spawn(TomTeacher, cached_engine, intervention=MentalModelUtility("both"), sampling={"max_tokens": 40}, mental_model_demos=2)
        ),
        students=tuple(
            StudentAgent(spawn(Student, cached_engine, name=seat.name, adapter=seat.adapter, sampling={"max_tokens": 32}))
            for seat in class_of_two
        ),
        grader=Agent(spawn(Grader)),
        names=names,
    )
    recorder = MemoryRecorder()
    config = TomConfig(num_problems=4, seed_set_size=3, post_test_size=2, budgets=(0.0, 0.5, 1.0), demo_counts=(0, 1), seed=2)
    summary = (await TomEpisode(config, reasoning_gym(size=12, seed=2), agents, recorder).run()).summary()
    decisions = [m for m in recorder.messages if isinstance(m, InterventionDecision)]
    assert [d.student for d in decisions] == ["base"] * 4 + ["sums"] * 4 and summary["students"] == list(names)
    assert summary["interventions"] == {"0": 0, "0.5": 4, "1": 8}  # b x problems x students
    # The shared budget goes to the highest utilities across the class.
    ordered = sorted(range(8), key=lambda j: (-decisions[j].utility, j))
    assert set(summary["intervened"]["0.5"]) == {f"{decisions[j].student}:{decisions[j].problem_id}" for j in ordered[:4]}
    per_student = summary["accuracy_by_budget_per_student"]
    for budget, value in summary["accuracy_by_budget"].items():
        assert value == pytest.approx((per_student["base"][budget] + per_student["sums"][budget]) / 2)
        assert summary["scores"][f"acc[sums]@{budget}"] == per_student["sums"][budget]
    attempts = [m for m in recorder.messages if isinstance(m, Attempt) and m.phase == "pre_test"]
    assert {a.sender for a in attempts} == set(names) and len(attempts) == 2 * 9
    assert set(summary["tokens"]) == {"teacher", "base", "sums"}


async def test_stages_ask_in_bounded_chunks_and_score_as_one_batch(cached_engine):
    """A long episode is asked ``chunk_size`` problems at a time (each chunk logged as
    it is done, so no agent nor the driver holds a stage's batch), and chunking changes
    nothing: the same answers, decisions and summary as one chunk per stage."""
    task = reasoning_gym(size=12, seed=2)

    async def episode(chunk_size: int):
        agents = TomAgents(
            teacher=Agent(spawn(TomTeacher, cached_engine, intervention=RandomIntervention(seed=2), sampling={"max_tokens": 24})),
            students=(StudentAgent(spawn(Student, cached_engine, sampling={"max_tokens": 24})),),
            grader=Agent(spawn(Grader)),
        )
        recorder = MemoryRecorder()
        config = TomConfig(
            num_problems=5, seed_set_size=3, post_test_size=3, demo_counts=(0, 2), seed=2, chunk_size=chunk_size, chunks_in_flight=2
        )
        summary = (await TomEpisode(config, task, agents, recorder).run()).summary()
        return summary, recorder

    chunked, small = await episode(2)
    whole, large = await episode(64)
    # Every call to the student, the teacher and the grader covered at most 2 problems.
    for batch in small.batches:
        if isinstance(batch[0], (Attempt, Explanation)):
            assert len(batch) <= 2, [type(m).__name__ for m in batch]
    assert max(len(b) for b in large.batches if isinstance(b[0], Attempt)) == 5  # one call per stage: the whole test set
    decisions = [[m for m in r.messages if isinstance(m, InterventionDecision)] for r in (small, large)]
    assert [len(b) for b in small.batches if isinstance(b[0], InterventionDecision)] == [2, 2, 1]
    assert [(d.problem_id, d.utility, d.intervene) for d in decisions[0]] == [(d.problem_id, d.utility, d.intervene) for d in decisions[1]]

    def answers(recorder):
        return sorted((a.phase, a.problem_id, a.final_answer, a.correct) for a in recorder.messages if isinstance(a, Attempt))

    assert answers(small) == answers(large)
    for key in ("wall_time_s", "episode_id"):
        chunked.pop(key), whole.pop(key)
    assert chunked == whole
