"""ToM intervention functions on hand-made numbers: answer probabilities, the utility
arithmetic, confidence and oracle utilities, gold and deceptive answers, demonstrations."""

from __future__ import annotations

import math

import pytest
from support.observations import seed_observation

from classroom.agents.confidence import answer_probability
from classroom.agents.messages import Attempt, Explanation, Problem
from classroom.agents.roles import gold_explanation
from classroom.environments.tasks import reasoning_gym
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
    ranked,
)
from classroom.environments.tom.teacher import TomTeacher, mixed_demonstrations, wrong_answer
from classroom.environments.tom.types import InterventionContext, SeedObservation
from classroom.serving.pool import RoutedLLM
from classroom.serving.types import TokenLogprob


def lp(token: str, p: float, **alternatives: float) -> TokenLogprob:
    top = {token: math.log(p), **{k.replace("_", ""): math.log(v) for k, v in alternatives.items()}}
    return TokenLogprob(token=token, logprob=math.log(p), top=top)


def test_answer_probability_reads_the_answer_tokens():
    reply = [lp("So", 0.9), lp(" the", 0.9), lp(" answer", 0.9), lp(" is", 0.9), lp(" 1", 0.5), lp("2", 0.8), lp(".", 0.9)]
    assert answer_probability(reply, "12") == pytest.approx(0.4)
    # "2" alone is inside "12": not the answer "2".
    assert answer_probability(reply, "2") == 0.0
    # The model wrote 12 but had " 7" as an alternative where the number starts.
    alt = [lp(" 1", 0.5, _7=0.3), lp("2", 0.8)]
    assert answer_probability(alt, "7") == pytest.approx(0.3)
    # "16" was not written and is not one token: its first token's 0.5 is not its probability.
    assert answer_probability(alt, "16") == 0.0
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

    context = InterventionContext(explanations=explanations, simulate=simulate, targets={p.id: p.answer for p in problems})
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
    with pytest.raises(ValueError, match="needs the answers it scores"):
        await MentalModelUtility("both").utilities(problems, attempts, InterventionContext(explanations=explanations, simulate=simulate))

    # A deceptive teacher argued for 4. Scored against its own answer, the mental model
    # ranks first where the student most adopts the wrong answer (p2); against the gold
    # answer (the paper's target) it ranks where the explanation hurts least first, and
    # the reversed ranking picks where it hurts most: misaligned on purpose.
    own = InterventionContext(explanations=explanations, simulate=simulate, targets={p.id: "4" for p in problems})
    assert await MentalModelUtility("both").utilities(problems, attempts, own) == pytest.approx([-0.7, 0.0, -0.1])
    gold_reversed = await Reversed(MentalModelUtility("both")).utilities(problems, attempts, context)
    assert ranked(gold_reversed) == [1, 2, 0]


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


class RecordsWhatItSees:
    """A user's intervention policy (no double): ranks by question length and keeps the
    context it was given."""

    name = "records"

    def __init__(self) -> None:
        self.contexts: list[InterventionContext] = []

    async def utilities(self, problems, attempts, context=None):
        self.contexts.append(context)
        return [float(len(p.question)) for p in problems]


@pytest.mark.parametrize("target", ["gold", "teacher"])
async def test_the_mental_model_scores_the_gold_answer_unless_told_otherwise(target):
    """The paper's target is the gold answer; a teacher without an answer key scores
    its own. A deceptive explanation (it concludes 4) shows the difference."""
    problems = [Problem(id=f"p{i}", question="q" * (i + 1), answer="5") for i in range(2)]
    attempts = [Attempt(problem_id=p.id, reasoning="", final_answer="3") for p in problems]
    explanations = [Explanation(problem_id=p.id, text="...", final_answer="4", style="deceptive") for p in problems]
    policy = RecordsWhatItSees()
    kwargs = {} if target == "gold" else {"mental_model_target": target}
    teacher = TomTeacher(RoutedLLM("unused", [object()]), intervention=policy, **kwargs)  # type: ignore[list-item]
    decisions = await teacher.decide(problems, attempts, 1, explanations=explanations, excluded=["p0"])
    assert policy.contexts[0].targets == {p.id: "5" if target == "gold" else "4" for p in problems}
    # An excluded problem gets no utility and no intervention, whatever the policy says.
    assert [(d.utility, d.intervene) for d in decisions] == [(None, False), (2.0, True)]


def test_mental_model_demonstrations_mix_right_and_wrong_answers():
    problems = [Problem(id=f"p{i}", question=f"q{i}", answer="1") for i in range(6)]
    seed = [seed_observation(p, "1" if i < 4 else "2", "1") for i, p in enumerate(problems)]
    chosen = mixed_demonstrations(seed, 4, lambda o: o.attempt.correct)
    assert [o.problem.id for o in chosen] == ["p4", "p0", "p5", "p1"]  # wrong, right, wrong, right
    assert [o.problem.id for o in mixed_demonstrations(seed, 3, lambda o: o.helped.correct)] == ["p0", "p1", "p2"]  # all right
    assert mixed_demonstrations(seed, 0, lambda o: o.attempt.correct) == []


def test_an_ungradeable_answer_is_shown_to_the_mental_model_as_neither_right_nor_wrong():
    problems = [Problem(id=f"p{i}", question=f"q{i}", answer="1") for i in range(3)]
    seed = [seed_observation(p, "1" if i == 1 else "2", "1") for i, p in enumerate(problems)]
    ungradeable = seed[0].attempt.model_copy(update={"correct": None, "grade_error": "timed out"})
    seed[0] = SeedObservation(problem=seed[0].problem, attempt=ungradeable, explanation=seed[0].explanation, helped=seed[0].helped)
    # p0 could not be graded: not a wrong demonstration (p2 is), not a right one (p1 is).
    assert [o.problem.id for o in mixed_demonstrations(seed, 4, lambda o: o.attempt.correct)] == ["p2", "p1"]
