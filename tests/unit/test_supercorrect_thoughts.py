"""The programmatic teacher's thoughts come from the problem: a key that says what is hard
in its step (carries, borrows, signs, products, checked against hand-worked cases and an
identity of digit sums), a generalized thought from the expression's structure, and a
corrupted benchmark template whose keys still match the numbers beside them."""

from __future__ import annotations

import random
import re

import pytest

from classroom.environments.supercorrect.corrupt import corrupt
from classroom.environments.supercorrect.teachers import ProgrammaticTeacher
from classroom.environments.supercorrect.thoughts import generalized, read_step, step_key
from classroom.environments.tasks import reasoning_gym_skills

SKILLS = {
    "chain_sum": {"three": {"min_terms": 3, "max_terms": 4, "min_digits": 1, "max_digits": 3}},
    "products": {"two": {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 2}},
}


@pytest.mark.parametrize(
    ("step", "key"),
    [
        # Worked by hand, column by column.
        ("47 + 38 = 85.", "The ones digits 7 and 8 make 15: write 5 and carry 1 into the tens."),
        ("9 + 991 = 1000.", "The ones digits 1 and 9 make 10: write 0 and carry 1 into the tens (3 columns in all)."),
        ("5 + 3 = 8.", "No column carries: add digit by digit."),
        ("62 - 30 = 32.", "No column borrows: subtract digit by digit."),
        ("5007 - 8 = 4999.", "In the ones, 7 is less than 8: borrow 1 from the tens (3 columns in all)."),
        ("23 - 47 = -24.", "47 is larger than 23: the result is negative, 47 minus 23 with a minus sign."),
        ("13 * 24 = 312.", "A product: it is worked before the sums around it; 13 times 20 and 13 times 4, then add the two."),
        ("7 * 12 = 84.", "A product: it is worked before the sums around it; 12 taken 7 times."),
    ],
)
def test_a_key_says_what_is_hard_in_its_step(step: str, key: str) -> None:
    assert step_key(step) == key
    assert "=" not in key  # a key never holds an equation the step checker could read


def _digit_sum(n: int) -> int:
    return sum(int(d) for d in str(n))


def test_carries_and_borrows_agree_with_the_digit_sum_identity() -> None:
    """Adding a and b in base 10 carries (s(a) + s(b) - s(a + b)) / 9 times (s: digit
    sum); a - b borrows as often as (a - b) + b carries."""
    rng = random.Random(0)
    for _ in range(2000):
        a, b = rng.randrange(0, 10 ** rng.randint(1, 5)), rng.randrange(0, 10 ** rng.randint(1, 5))
        carries = (_digit_sum(a) + _digit_sum(b) - _digit_sum(a + b)) // 9
        assert len(read_step(f"{a} + {b} = {a + b}").columns) == carries, (a, b)
        big, small = max(a, b), min(a, b)
        borrows = (_digit_sum(big - small) + _digit_sum(small) - _digit_sum(big)) // 9
        assert len(read_step(f"{big} - {small} = {big - small}").columns) == borrows, (big, small)


@pytest.mark.parametrize(
    ("expression", "thought"),
    [
        ("62 - 30 + 49", "3 2-digit numbers with 1 addition and 1 subtraction: work from left to right, one operation a step."),
        (
            "12 - 50 + 80",
            "3 2-digit numbers with 1 addition and 1 subtraction: work from left to right, one operation a step; "
            "a running total goes below zero, so keep its sign.",
        ),
        (
            "3 + 4 * 7 - 2",
            "4 1-digit numbers with 1 addition, 1 subtraction and 1 product: work each product first, "
            "then add and subtract the results from left to right, one operation a step.",
        ),
    ],
)
def test_the_generalized_thought_describes_the_expression(expression: str, thought: str) -> None:
    assert generalized(expression) == thought


def test_each_problem_gets_its_own_key_and_structure() -> None:
    task = reasoning_gym_skills(SKILLS, size=30, seed=0)
    teacher = ProgrammaticTeacher()
    templates = [t for p in task.split("train") if (t := teacher.template(p)) is not None]
    keys = [s.key for t in templates for s in t.steps if s.key]
    assert len(keys) == len(templates) >= 20  # one key thought per template
    assert len(set(keys)) >= len(keys) // 2 and len({t.generalized for t in templates}) >= 3
    for template in templates:
        [keyed] = [s for s in template.steps if s.key]
        r = read_step(keyed.text)
        # The key names its own step's operands, their tens, or digits (and a digit sum,
        # at most 9 + 9): never the numbers of another step.
        own = {abs(r.a), abs(r.b), abs(r.a) // 10 * 10, abs(r.b) // 10 * 10}
        assert all(int(n) <= 18 or int(n) in own for n in re.findall(r"\d+", keyed.key)), (keyed.text, keyed.key)


def test_a_corrupted_template_keeps_its_keys_true_to_the_numbers_beside_them() -> None:
    """The carried error changes later steps' operands; a key read from those operands is
    read again, so no key about old numbers points at where the error is."""
    task = reasoning_gym_skills(SKILLS, size=40, seed=1)
    teacher = ProgrammaticTeacher()
    rekeyed = 0
    for problem in task.split("train"):
        template = teacher.template(problem)
        for seed in range(5):
            broken = corrupt(template, random.Random(seed))
            if broken is None:
                continue
            for before, after in zip(template.steps, broken.template.steps):
                if after.key is not None:
                    assert after.key == step_key(after.text), (after.text, after.key)
                    rekeyed += after.key != before.key
    assert rekeyed > 0  # some carried errors did reach a keyed step
