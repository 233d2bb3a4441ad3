"""ToM intervention functions: the utility arithmetic on hand-made log-probabilities,
then every function and explanation style on a small real episode."""

from __future__ import annotations

import math

import pytest

from classroom.agents.actors import spawn
from classroom.agents.clients import GraderClient, StudentClient
from classroom.agents.confidence import answer_probability
from classroom.agents.grading import Grader
from classroom.agents.messages import Attempt, Explanation, Problem
from classroom.agents.roles import Student, gold_explanation
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
    choose_interventions,
)
from classroom.environments.tom.teacher import TomTeacher, TomTeacherClient, wrong_answer
from classroom.environments.tom.types import InterventionContext, InterventionDecision
from classroom.serving.types import TokenLogprob


def lp(token: str, p: float, **alternatives: float) -> TokenLogprob:
    top = {token: math.log(p), **{k.replace("_", ""): math.log(v) for k, v in alternatives.items()}}
    return TokenLogprob(token=token, logprob=math.log(p), top=top)


# ------------------------------------------------------------------ hand-made numbers


def test_answer_probability_reads_the_answer_tokens():
    reply = [lp("So", 0.9), lp(" the", 0.9), lp(" answer", 0.9), lp(" is", 0.9), lp(" 1", 0.5), lp("2", 0.8), lp(".", 0.9)]
    assert answer_probability(reply, "12") == pytest.approx(0.4)
    # "2" alone is inside "12": not the answer "2".
    assert answer_probability(reply, "2") == 0.0
    # The model wrote 12 but had " 7" as an alternative where the number starts.
    alt = [lp(" 1", 0.5, _7=0.3), lp("2", 0.8)]
    assert answer_probability(alt, "7") == pytest.approx(0.3)
    assert answer_probability(None, "7") is None and answer_probability(reply, None) is None
    # The last occurrence counts (a model restating a wrong intermediate first).
    twice = [lp("12", 0.1), lp(" then", 0.9), lp(" 12", 0.6)]
    assert answer_probability(twice, "12") == pytest.approx(0.6)


async def test_mental_model_utility_from_hand_made_logprobs():
    problems = [Problem(id=f"p{i}", question=f"q{i}", answer="5") for i in range(3)]
    attempts = [Attempt(problem_id=p.id, reasoning="", final_answer="4", correct=False) for p in problems]
    explanations = {p.id: Explanation(problem_id=p.id, text="...", final_answer="5") for p in problems}
    # What the simulated student would write: alone vs after the explanation.
    alone = {"p0": [lp(" 5", 0.2, _4=0.7)], "p1": [lp(" 5", 0.9)], "p2": [lp(" 4", 0.6, _5=0.3)]}
    helped = {"p0": [lp(" 5", 0.8)], "p1": [lp(" 5", 0.95)], "p2": [lp(" 4", 0.5, _5=0.4)]}
    seen = []

    async def simulate(ps, es, targets):
        seen.append([e is not None for e in es])
        table = alone if es[0] is None else helped
        return [answer_probability(table[p.id], t) for p, t in zip(ps, targets)]

    context = InterventionContext(explanations=explanations, simulate=simulate)
    both = await MentalModelUtility("both").utilities(problems, attempts, context)
    assert both == pytest.approx([0.6, 0.05, 0.1])
    assert choose_interventions(both, 1) == [0]
    assert await MentalModelUtility("no_intervention").utilities(problems, attempts, context) == pytest.approx([0.8, 0.1, 0.7])
    assert await MentalModelUtility("intervention").utilities(problems, attempts, context) == pytest.approx([0.8, 0.95, 0.4])
    assert seen == [[False] * 3, [True] * 3, [False] * 3, [True] * 3]
    reversed_ = await Reversed(MentalModelUtility("both")).utilities(problems, attempts, context)
    assert reversed_ == pytest.approx([-0.6, -0.05, -0.1]) and choose_interventions(reversed_, 1) == [1]
    with pytest.raises(ValueError, match="mode must be"):
        MentalModelUtility("psychic")


async def test_confidence_and_oracle_utilities():
    problems = [Problem(id=f"p{i}", question="q", answer="1") for i in range(3)]
    attempts = [
        Attempt(problem_id="p0", reasoning="", final_answer="1", correct=True, answer_prob=0.9),
        Attempt(problem_id="p1", reasoning="", final_answer="2", correct=False, answer_prob=0.2),
        Attempt(problem_id="p2", reasoning="", final_answer="1", correct=True, answer_prob=None),
    ]
    explanations = {p.id: Explanation(problem_id=p.id, text="", answer_prob=v) for p, v in zip(problems, [0.3, 0.8, None])}
    outcomes = {
        "p0": attempts[0].model_copy(update={"correct": False}),
        "p1": attempts[1].model_copy(update={"correct": True}),
        "p2": attempts[2],
    }
    context = InterventionContext(explanations=explanations, outcomes=outcomes)
    assert await TeacherConfidence().utilities(problems, attempts, context) == [0.3, 0.8, 0.0]
    assert await StudentConfidence().utilities(problems, attempts, context) == pytest.approx([0.1, 0.8, 1.0])
    assert await Oracle().utilities(problems, attempts, context) == [-1.0, 1.0, 0.0]
    assert await NoIntervention().utilities(problems, attempts) == [None] * 3
    assert await AllIntervention().utilities(problems, attempts) == [1.0] * 3
    first = await RandomIntervention(seed=4).utilities(problems, attempts)
    assert first == await RandomIntervention(seed=4).utilities(problems, attempts)
    with pytest.raises(ValueError, match="oracle needs the outcomes"):
        await Oracle().utilities(problems, attempts, InterventionContext())


def test_gold_and_deceptive_answers():
    task = reasoning_gym(size=4, seed=0)
    problem = task.split("test")[0]
    gold = gold_explanation(problem)
    assert gold and gold.endswith(f"The answer is {problem.answer}.")
    wrong = wrong_answer(problem, seed=0)
    assert wrong != problem.answer and wrong == wrong_answer(problem, seed=0)
    gsm = Problem(question="q", answer="18", metadata={"solution": "16 - 3 - 4 = <<16-3-4=9>>9\n#### 18"})
    assert gold_explanation(gsm) == "16 - 3 - 4 = 9\nThe answer is 18."
    assert gold_explanation(Problem(question="q", answer="1")) is None


# ------------------------------------------------------------------ real episodes

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
        teacher=TomTeacherClient(spawn(TomTeacher, engine, intervention=policy, sampling={"max_tokens": 40}, mental_model_demos=2)),
        student=StudentClient(spawn(Student, engine, sampling={"max_tokens": 32})),
        grader=GraderClient(spawn(Grader)),
    )
    recorder = MemoryRecorder()
    config = TomConfig(
        num_problems=4, seed_set_size=3, post_test_size=2, budgets=(0.0, 0.5, 1.0), demo_counts=(0, 1), seed=2, explanation=explanation
    )
    summary = await TomEpisode(config, task, agents, recorder).run()
    return summary, recorder.messages


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
    if name == "oracle":
        pre = {a.problem_id: a for a in messages if isinstance(a, Attempt) and a.phase == "pre_test"}
        after = {a.problem_id: a for a in messages if isinstance(a, Attempt) and a.phase == "with_explanation"}
        for d in decisions:
            assert d.utility == float(bool(after[d.problem_id].correct)) - float(bool(pre[d.problem_id].correct))
        # Intervening on a set changes accuracy by exactly its utilities' sum.
        top_two = sorted(utilities, reverse=True)[:2]
        assert by_budget["0.5"] == pytest.approx((sum(bool(a.correct) for a in pre.values() if a.problem_id in after) + sum(top_two)) / 4)
    if name.startswith("mental_model"):
        assert all(-1.0 <= u <= 1.0 for u in utilities)
    if name == "misaligned_reversed":
        straight, _ = await play(cached_engine, MentalModelUtility("both"))
        assert summary["accuracy_by_budget"]["1"] == straight["accuracy_by_budget"]["1"]


@pytest.mark.parametrize("style", ["personalized", "gold", "deceptive"])
async def test_explanation_styles_on_a_real_episode(cached_engine, style):
    summary, messages = await play(cached_engine, MentalModelUtility("both"), explanation=style)
    test_explanations = [m for m in messages if isinstance(m, Explanation)][3:]  # after the seed set's
    problems = {m.id: m for m in messages if isinstance(m, Problem)}
    assert len(test_explanations) == 4
    if style == "gold":
        assert all(e.style == "gold" and e.final_answer == problems[e.problem_id].answer for e in test_explanations)
        assert all(e.answer_prob == 1.0 and e.usage.total_tokens == 0 for e in test_explanations)
    elif style == "personalized":
        flips = summary["seed_set_flips_used_for_personalization"]
        expected = "personalized" if flips else "unpersonalized"
        assert {e.style for e in test_explanations} == {expected}
        if flips:
            assert all(len(e.parents) == 1 + flips for e in test_explanations)
    else:
        assert {e.style for e in test_explanations} == {"deceptive"}
        assert summary["explanation_style"] == "deceptive"
