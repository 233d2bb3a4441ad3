"""DataEnvGym parts that need no model: allocations, the skill tree, the programmatic
engine, the bandit policy, skill reports, `classroom resume` errors and the report."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml
from support.cli import classroom
from support.engines import composed

from classroom.agents.grading import Grader, extract_final_answer
from classroom.agents.messages import Attempt, Feedback, Problem
from classroom.agents.skills import flat_accuracy, skill_report
from classroom.agents.step_checker import worked_solution
from classroom.environments.dataenvgym.engines import ReasoningGymEngine
from classroom.environments.dataenvgym.plans import apply_to_tree, requests_for, scale_allocation
from classroom.environments.dataenvgym.policies import BanditTreePolicy, ErrorDrivenPolicy, UniformSkillsPolicy, WeakSkillsPolicy
from classroom.environments.dataenvgym.types import DataPlan, DataRequest, Exploit, Explore, Observation
from classroom.environments.dataenvgym.words import ArithmeticKind, describe, kind_lines, read_kind
from classroom.environments.tasks import reasoning_gym_skills

CATALOGUE = {
    "chain_sum": {
        "two_1digit": {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1},
        "three_1digit": {"min_terms": 3, "max_terms": 3, "min_digits": 1, "max_digits": 1},
    },
    "products": {"one_digit": {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1}},
}


def observation(correct: dict[str, bool], tree=None, iteration=0, budget=12) -> Observation:
    """An observation over the catalogue's validation problems with the given outcomes."""
    task = reasoning_gym_skills(CATALOGUE, size=4, seed=0)
    problems = task.split("train")
    attempts = [Attempt(problem_id=p.id, reasoning="", final_answer=None, correct=correct.get(p.skills[1], False)) for p in problems]
    report = skill_report(problems, attempts)
    feedback = Feedback(
        accuracy=report.correct / report.count, report=report, per_skill_accuracy={s.name: s.accuracy for s in report.children}
    )
    return Observation(
        variant="skill_tree",
        iteration=iteration,
        problems=tuple(problems),
        attempts=tuple(attempts),
        report=feedback,
        budget=budget,
        tree=tree or {},
    )


def test_scale_allocation_spends_the_budget_exactly():
    assert scale_allocation({"a": 1, "b": 1, "c": 1}, 10) in ({"a": 4, "b": 3, "c": 3}, {"a": 3, "b": 4, "c": 3}, {"a": 3, "b": 3, "c": 4})
    assert sum(scale_allocation({"a": 0.2, "b": 5, "c": -3}, 7).values()) == 7
    assert scale_allocation({"a": -1, "b": 0}, 4) == {"a": 2, "b": 2}  # no signal: even split
    assert scale_allocation({"a": 1}, 0) == {"a": 0}


def test_explore_adds_sub_skills_and_exploit_moves_data_among_known_ones():
    tree = apply_to_tree(Explore(new_subskills={"chain_sum/two_1digit": 5, "products/one_digit": 5}), {}, 10)
    assert tree == {"chain_sum": {"chain_sum/two_1digit": 5}, "products": {"products/one_digit": 5}}
    tree = apply_to_tree(Explore(new_subskills={"chain_sum/three_1digit": 10}), tree, 10)
    assert set(tree["chain_sum"]) == {"chain_sum/two_1digit", "chain_sum/three_1digit"}
    assert sum(n for subs in tree.values() for n in subs.values()) == 10
    moved = apply_to_tree(Exploit(allocations={"products/one_digit": 9, "chain_sum/two_1digit": 1, "unknown/x": 50}), tree, 10)
    assert moved["products"]["products/one_digit"] == 9 and "unknown" not in moved
    assert moved["chain_sum"]["chain_sum/three_1digit"] == 0


def test_requests_for_each_kind_of_plan():
    obs = observation({}, budget=6)
    open_plan = DataPlan(count=6, instructions="like these", like_problem_ids=(obs.problems[0].id, "missing"))
    [request] = requests_for(open_plan, obs)
    assert request.skill is None and request.count == 6 and [p.id for p in request.like] == [obs.problems[0].id]
    listed = requests_for(DataPlan(allocations={"chain_sum": 4, "products": 2, "gcd": 0}), obs)
    assert {(r.skill, r.count) for r in listed} == {("chain_sum", 4), ("products", 2)}
    tree = requests_for(Explore(new_subskills={"products/one_digit": 6}), obs)
    assert [(r.skill, r.count) for r in tree] == [("products/one_digit", 6)]


def test_worked_solution_walks_the_chain():
    assert worked_solution("5 + 9 - 7", "7") == "5 + 9 = 14. 14 - 7 = 7. The answer is 7."
    # Products first: left to right would make "3 + 4 = 7. 7 * 2 = 14", each step right, the answer wrong.
    assert worked_solution("3 + 4 * 2 - 1", "10") == "4 * 2 = 8. 3 + 8 = 11. 11 - 1 = 10. The answer is 10."
    assert worked_solution("12 * 3", "36") == "12 * 3 = 36. The answer is 36."
    assert worked_solution(None, "4") == "The answer is 4."
    assert worked_solution("x + 1", "y") == "The answer is y."  # nothing it can check: no steps


async def test_reasoning_gym_engine_makes_exact_fresh_examples():
    engine = ReasoningGymEngine(CATALOGUE)
    made = await engine.generate(
        [
            DataRequest(skill="chain_sum/three_1digit", count=5),
            DataRequest(skill="products", count=2),
            DataRequest(skill="calculus", count=3),
        ],
        None,
        seed=3,
    )
    examples, failures = made.examples, made.failures
    assert len(examples) == 7
    assert [f.error for f in failures] == ["no reasoning-gym generator for skill 'calculus'"]
    grader = Grader()
    for example in examples:
        problem = Problem(question=example.prompt, answer=example.answer, metadata=example.metadata)
        assert grader.score(problem, extract_final_answer(example.completion)), example
    assert all(e.skills == ("chain_sum", "chain_sum/three_1digit") for e in examples[:5])
    assert all(len(e.prompt.split("=")[0].split("+")) + len(e.prompt.split("=")[0].split("-")) - 1 == 3 for e in examples[:5])
    # Fresh problems: not the task's own (other seeds), and another seed gives others.
    again = (await engine.generate([DataRequest(skill="chain_sum/three_1digit", count=5)], None, seed=4)).examples
    assert [e.prompt for e in again] != [e.prompt for e in examples[:5]]


async def test_open_ended_plans_are_words_and_the_engine_acts_on_them():
    """The open-ended policy describes the errors' kinds in words; the engine makes
    problems of the kinds it can read, from the words alone (no problem metadata)."""
    obs = observation({"chain_sum/two_1digit": True})  # products and three-term sums wrong
    planned = await ErrorDrivenPolicy(seed=0).plan(obs, None)
    plan = planned.action
    lines = kind_lines(plan.instructions)
    wrong = Counter(describe(p.question).words() for p in obs.errors())
    assert {words for _, words in lines} == set(wrong) and sum(n for n, _ in lines) == obs.budget
    assert {w: n for n, w in lines}["sums and differences of 3 numbers with 1 digit"] >= 1

    stripped = DataRequest(count=obs.budget, instructions=plan.instructions)  # the words, nothing else
    made = await ReasoningGymEngine().generate([stripped], None, seed=0)
    assert not made.failures and len(made.examples) == obs.budget
    for example in made.examples:
        kind = describe(example.prompt)
        assert kind is not None and kind.words() in wrong, example.prompt

    made = await ReasoningGymEngine().generate(
        [DataRequest(count=3, instructions="- 2 problems: products of 2 numbers with 2 digits\n- 1 problem: riddles about cats")],
        None,
        seed=0,
    )
    assert len(made.examples) == 2 and all(describe(e.prompt).words() == "products of 2 numbers with 2 digits" for e in made.examples)
    assert [f.error for f in made.failures] == ["no reasoning-gym generator makes 'riddles about cats'"]
    made = await ReasoningGymEngine().generate([DataRequest(count=2, instructions="Write harder ones.")], None, seed=0)
    assert not made.examples and "names no kind of problem in words" in made.failures[0].error


def test_kinds_of_arithmetic_in_words_round_trip():
    kind = describe("Calculate 12 + 3 * 45.")
    assert kind == ArithmeticKind("mixed arithmetic", 3, 1, 2) and read_kind(kind.words()) == kind
    assert describe("Tom has five apples.") is None and read_kind("sums of cats") is None
    dataset, settings = ArithmeticKind("products", 2, 2, 2).generator()
    assert dataset == "products" and settings == {"min_terms": 2, "max_terms": 2, "min_digits": 2, "max_digits": 2}


async def test_the_blind_baseline_does_not_see_the_student():
    blind = UniformSkillsPolicy()
    weak = (await blind.plan(observation({}), None)).action
    strong = (await blind.plan(observation(dict.fromkeys(CATALOGUE_PATHS, True)), None)).action
    assert weak.allocations == strong.allocations == {"chain_sum": 6, "products": 6}
    # A policy that sees the student plans otherwise for the two students.
    assert (await WeakSkillsPolicy().plan(observation({"products/one_digit": True}), None)).action.allocations != weak.allocations


async def test_bandit_explores_every_skill_first_then_follows_rewards():
    policy = BanditTreePolicy(c=0.0)
    first = (await policy.plan(observation({}), None)).action
    assert isinstance(first, Explore)
    assert {s.split("/")[0] for s in first.new_subskills} == {"chain_sum", "products"}
    tree = apply_to_tree(first, {}, 12)
    # products/one_digit improved after training on it; chain_sum's sub-skill did not.
    trained = next(s for s in first.new_subskills if s.startswith("chain_sum"))
    obs = observation({"products/one_digit": True}, tree=tree, iteration=1)
    second = (await policy.plan(obs, None)).action
    assert policy.pulls == dict.fromkeys(first.new_subskills, 1)
    assert policy.rewards["products/one_digit"] > 0 and policy.rewards[trained] <= 0
    # chain_sum's known sub-skill stalled (no gain) and another is available: explore it.
    assert isinstance(second, Explore) and list(second.new_subskills) == [
        next(s for s in CATALOGUE_PATHS if s.startswith("chain_sum") and s != trained)
    ]
    restored = BanditTreePolicy()
    restored.restore(json.loads(json.dumps(policy.state())))
    assert restored.state() == policy.state()


CATALOGUE_PATHS = [f"{skill}/{sub}" for skill, subs in CATALOGUE.items() for sub in subs]


async def test_bandit_exploits_when_nothing_is_left_to_explore():
    policy = BanditTreePolicy(c=0.0)
    tree = {"chain_sum": {p: 4 for p in CATALOGUE_PATHS if p.startswith("chain_sum")}, "products": {"products/one_digit": 4}}
    action = (await policy.plan(observation({"chain_sum/two_1digit": True, "products/one_digit": True}, tree=tree), None)).action
    assert isinstance(action, Exploit)
    # Most data where the student is weakest.
    assert action.allocations["chain_sum/three_1digit"] == max(action.allocations.values())
    assert sum(action.allocations.values()) == 12


def test_skill_report_counts_skills_and_sub_skills():
    obs = observation({"chain_sum/two_1digit": True})
    report = obs.report.report
    assert report.count == len(obs.problems) == sum(c.count for c in report.children)
    for top in report.children:
        assert top.count == sum(sub.count for sub in top.children)
    accuracy = flat_accuracy(report)
    assert accuracy["chain_sum/two_1digit"] == 1.0 and accuracy["chain_sum/three_1digit"] == 0.0
    assert accuracy["chain_sum"] == 0.5


def test_reasoning_gym_skills_rejects_bad_trees():
    with pytest.raises(ValueError, match="unknown reasoning-gym dataset 'chain_sums'"):
        reasoning_gym_skills({"chain_sums": {"a": {}}})
    with pytest.raises(ValueError, match=r"skills\.chain_sum: needs at least one named sub-skill"):
        reasoning_gym_skills({"chain_sum": {}})
    with pytest.raises(ValueError, match=r"skills.chain_sum.bad: reasoning-gym rejected"):
        reasoning_gym_skills({"chain_sum": {"bad": {"min_terms": 5, "max_terms": 2}}})


@pytest.mark.parametrize(
    "setup, expected",
    [
        ("nothing", "is not a folder"),
        ("empty", "has no config.yaml"),
        ("config_only", "has no checkpoint.json: the episode finished no iteration"),
        ("not_a_checkpoint", "checkpoint.json is not a checkpoint of this classroom"),
        # ToM resumes by replaying its event log: here there is none.
        ("tom", "has no events.jsonl: the episode logged nothing to replay; run it again"),
        ("completed", "holds a completed episode"),
    ],
)
def test_resume_refuses_with_one_line(setup, expected, tmp_path):
    run_dir = tmp_path / "run"
    if setup != "nothing":
        run_dir.mkdir()
    if setup not in ("nothing", "empty"):
        overrides = [] if setup == "tom" else ["experiment=dataenvgym_skill_list", "task.size=4"]
        (run_dir / "config.yaml").write_text(yaml.safe_dump(composed(overrides)))
    if setup == "not_a_checkpoint":
        (run_dir / "checkpoint.json").write_text('{"iteration": 1}')
    if setup == "completed":
        (run_dir / "checkpoint.json").write_text("{}")
        (run_dir / "summary.json").write_text(json.dumps({"status": "completed"}))
    out = classroom("resume", str(run_dir))
    assert out.returncode == 2
    assert expected in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_report_draws_learning_curves_per_variant_and_skill(tmp_path):
    from classroom.launch.report import write_report
    from classroom.launch.results import write_results

    runs = [("skill_list", [0.2, 0.4], 0), ("skill_list", [0.2, 0.6], 1), ("skill_tree", [0.2, 0.3], 0)]
    for number, (variant, curve, seed) in enumerate(runs):
        run = tmp_path / str(number)
        (run / ".hydra").mkdir(parents=True)
        (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([f"experiment=dataenvgym_{variant}", f"seed={seed}"]))
        (run / "config.yaml").write_text(yaml.safe_dump({"seed": seed, "env": {"loop": "dataenvgym"}}))
        scores = {
            **{f"val@{i}": v for i, v in enumerate(curve)},
            **{f"val[chain_sum]@{i}": v for i, v in enumerate(curve)},
            "test": curve[-1],
        }
        (run / "summary.json").write_text(json.dumps({"status": "completed", "env": "dataenvgym", "variant": variant, "scores": scores}))
    # Scores without "@x" (test) are aggregated over seeds too, not taken for settings.
    _, md, _ = write_results(tmp_path)
    assert (
        "| dataenvgym_skill_list | 2 | 0.200 ± 0.000 | 0.500 ± 1.271 | 0.200 ± 0.000 | 0.500 ± 1.271 | 0.500 ± 1.271 |"
        in Path(md).read_text()
    )
    html = Path(write_report(tmp_path)).read_text()
    assert "<h2>student validation accuracy by iteration</h2>" in html
    assert "<h2>student validation accuracy by iteration: chain_sum</h2>" in html
    assert "dataenvgym_skill_tree" in html


@pytest.mark.parametrize(
    ("variant", "reply", "tree"),
    [
        ("skill_list", '{"allocations": {"geometry": 6, "calculus": 6}, "rationale": "r"}', None),
        ("skill_list", '{"allocations": {"chain_sum": 0}, "rationale": "r"}', None),
        ("skill_tree", '{"action": "exploit", "allocations": {}, "rationale": "r"}', {"products": {"products/one_digit": 4}}),
        ("skill_tree", '{"action": "exploit", "allocations": {"algebra/x": 3}, "rationale": "r"}', {"products": {"products/one_digit": 4}}),
    ],
)
async def test_a_model_plan_naming_no_known_skill_falls_back_and_is_counted(variant, reply, tree):
    """The teacher model's plan over unknown (or no) skills is recorded as a failure and
    the variant's built-in plans; a skill-list plan became the uniform, blind allocation
    unrecorded, an empty Exploit was taken as an action. (A scripted endpoint: the model
    output is written by the test.)"""
    from support.fault_server import FaultServer

    from classroom.environments.dataenvgym.policies import LLMPolicy, builtin_policy
    from classroom.serving.openai_backend import OpenAIBackend

    obs = observation({"chain_sum/two_1digit": True}, tree=tree).model_copy(update={"variant": variant})
    with FaultServer(kinds=("scripted",), scripted=reply) as server:
        planned = await LLMPolicy(max_tokens=64).plan(obs, OpenAIBackend(server.url, "scripted", keyless=True, max_retries=0))
    assert [f.error for f in planned.failures] in (["names no known skill"], ["names no known sub-skill"])
    assert planned.action.sender == builtin_policy(variant).name


def test_feedback_leaves_ungradeable_answers_out_of_accuracy_and_errors():
    """Four answers worked by hand: right, wrong, wrong, ungradeable (its scorer timed
    out). Accuracy is 1 of the 3 graded; the one ungradeable answer is counted apart and
    is no error to teach from."""
    from classroom.environments.dataenvgym.env import feedback

    problems = [Problem(id=f"p{n}", question=f"q{n}", answer="1", skills=("chain_sum",)) for n in range(4)]
    verdicts = [True, False, False, None]
    attempts = [
        Attempt(
            id=f"a{n}",
            sender="s",
            problem_id=f"p{n}",
            reasoning="r",
            final_answer="1",
            correct=c,
            grade_error=None if c is not None else "timed out",
        )
        for n, c in enumerate(verdicts)
    ]
    report = feedback(problems, attempts, split="validation", iteration=0, episode_id="e")
    assert report.accuracy == pytest.approx(1 / 3) and report.count == 3 and report.ungradeable == 1
    assert report.error_examples == ("a1", "a2")
    assert report.per_skill_accuracy == {"chain_sum": pytest.approx(1 / 3)}
