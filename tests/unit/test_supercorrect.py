"""SuperCorrect without a model: template and trace parsing (round trips, bad text with
reasons), the step checker, the corruption generator, the first wrong step, export
refusals and the dataset card."""

from __future__ import annotations

import random

import pytest
from support.cli import classroom

from classroom.agents.step_checker import check_equation, check_steps
from classroom.environments.supercorrect.corrupt import corrupt
from classroom.environments.supercorrect.teachers import ProgrammaticTeacher, check_template, first_wrong_step
from classroom.environments.supercorrect.traces import (
    CorrectionTrace,
    TemplateStep,
    ThoughtTemplate,
    TraceParseError,
    parse_template,
    parse_trace,
)
from classroom.environments.tasks import reasoning_gym_skills

SKILLS = {
    "chain_sum": {"three": {"min_terms": 3, "max_terms": 4, "min_digits": 1, "max_digits": 2}},
    "products": {"two": {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 2}},
}
TEMPLATE = ThoughtTemplate(
    steps=(TemplateStep(text="Add: 5 + 9 = 14.", key="14 carries into the next step."), TemplateStep(text="Subtract: 14 - 7 = 7.")),
    generalized="Work from left to right, one operation a step.",
    answer="7",
)
TRACE = CorrectionTrace(
    steps=("5 + 9 = 14.", "14 - 7 = 8."), first_wrong_step=2, cause="14 - 7 is 7, not 8.", correction="14 - 7 = 7.", answer="7"
)


def test_templates_and_traces_round_trip_exactly():
    text = TEMPLATE.render()
    assert text.splitlines()[0] == "<Step1>Add: 5 + 9 = 14.<Key>14 carries into the next step.</Key></Step1>"
    again = parse_template(text)
    assert (again.steps, again.generalized, again.answer) == (TEMPLATE.steps, TEMPLATE.generalized, TEMPLATE.answer)
    assert again.render() == text
    trace_text = TRACE.render()
    assert "<Step2>14 - 7 = 8.</Step2><Evaluate>incorrect</Evaluate>" in trace_text
    back = parse_trace(trace_text)
    assert back.render() == trace_text and back.first_wrong_step == 2 and back.steps == TRACE.steps


GOOD_TAIL = "\n<Generalized>g</Generalized>\n<Answer>1</Answer>"
BAD_TEMPLATES = {
    "unclosed tag": ("<Step1>a" + GOOD_TAIL, "<Step1> is never closed"),
    "missing answer": ("<Step1>a</Step1>\n<Generalized>g</Generalized>", "missing <Answer>"),
    "empty answer": ("<Step1>a</Step1>\n<Generalized>g</Generalized>\n<Answer> </Answer>", "empty <Answer>"),
    "two answers": ("<Step1>a</Step1>" + GOOD_TAIL + "<Answer>2</Answer>", "more than one <Answer>"),
    "steps out of order": ("<Step1>a</Step1><Step3>b</Step3>" + GOOD_TAIL, "expected <Step2>, found <Step3>"),
    "empty step": ("<Step1>a</Step1><Step2> </Step2>" + GOOD_TAIL, "empty step 2"),
    "no steps": (GOOD_TAIL.strip(), "no steps"),
    "no generalized": ("<Step1>a</Step1>\n<Answer>1</Answer>", "missing <Generalized>"),
    "text outside tags": ("Sure! <Step1>a</Step1>" + GOOD_TAIL, "text outside tags"),
    "key outside a step": ("<Key>k</Key><Step1>a</Step1>" + GOOD_TAIL, "<Key> outside a step"),
    "two keys": ("<Step1>a<Key>x</Key><Key>y</Key></Step1>" + GOOD_TAIL, "more than one <Key> in step 1"),
    "step in a step": ("<Step1>a<Step2>b</Step2></Step1>" + GOOD_TAIL, "a step inside step 1"),
    "unknown tag": ("<Step1>a</Step1>\n<Summary>g</Summary>\n<Answer>1</Answer>", "unknown tag <Summary>"),
    "answer before generalized": ("<Step1>a</Step1>\n<Answer>1</Answer>\n<Generalized>g</Generalized>", "then <Answer>"),
}


@pytest.mark.parametrize("kind", list(BAD_TEMPLATES))
def test_bad_templates_are_refused_with_a_reason(kind):
    text, reason = BAD_TEMPLATES[kind]
    with pytest.raises(TraceParseError) as refused:
        parse_template(text)
    assert reason in str(refused.value)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("<Step1>a</Step1>\n<Cause>c</Cause>\n<Correction>x</Correction>\n<Answer>1</Answer>", "step 1 has no <Evaluate>"),
        ("<Step1>a</Step1><Evaluate>maybe</Evaluate>\n<Cause>c</Cause>\n<Correction>x</Correction>\n<Answer>1</Answer>", "'maybe'"),
        (
            "<Step1>a</Step1><Evaluate>correct</Evaluate>\n<Cause>c</Cause>\n<Correction>x</Correction>\n<Answer>1</Answer>",
            "ends at its first incorrect step",
        ),
        ("<Step1>a</Step1><Evaluate>incorrect</Evaluate>\n<Correction>x</Correction>\n<Answer>1</Answer>", "after the steps come <Cause>"),
    ],
)
def test_bad_traces_are_refused_with_a_reason(text, reason):
    with pytest.raises(TraceParseError, match=reason):
        parse_trace(text)


def test_the_step_checker_decides_arithmetic_and_says_when_it_cannot():
    assert check_equation("14 - 7 = 7").verdict == "right" and check_equation("6 * 7 = 43").verdict == "wrong"
    assert check_equation("(3 + 4) * 2 = 14").verdict == "right" and check_equation("10 / 4 = 2.5").verdict == "right"
    assert check_equation("4 / 0 = 1").verdict == "undecided" and check_equation("x + 1 = 2").verdict == "undecided"
    assert [c.verdict for c in check_steps("First 5 + 9 = 14, so 14 - 7 = 8.")] == ["right", "wrong"]
    assert check_steps("Add the apples to the pears.") == []


def test_the_corrupted_step_is_the_first_wrong_one():
    task = reasoning_gym_skills(SKILLS, size=20, seed=0)
    teacher = ProgrammaticTeacher()
    rng = random.Random(0)
    seen = 0
    for problem in task.split("train"):
        template = teacher.template(problem)
        assert template is not None and check_template(problem, template) is None
        broken = corrupt(template, rng)
        if broken is None:
            continue
        seen += 1
        verdicts = [any(c.verdict == "wrong" for c in check_steps(s.text)) for s in broken.template.steps]
        assert verdicts.index(True) + 1 == broken.position, (broken.how, broken.template.render())
        assert not any(verdicts[broken.position :]), "the error is carried forward, not repeated"
        assert first_wrong_step(broken.template, template) == (broken.position, "step checker")
        if len(template.steps) > 1 and broken.position < len(template.steps):
            assert broken.template.answer != template.answer  # carried to the end
    assert seen >= 10


def test_a_term_equal_to_an_earlier_result_is_not_the_carried_error():
    """6 + 1 + 7: step 2 reads "7 + 7"; breaking step 1 changes the carried 7 only."""
    template = ThoughtTemplate(
        steps=(TemplateStep(text="Add: 6 + 1 = 7."), TemplateStep(text="Add: 7 + 7 = 14."), TemplateStep(text="Add: 14 + 7 = 21.")),
        generalized="Work from left to right.",
        answer="21",
    )
    cases = [b for seed in range(40) if (b := corrupt(template, random.Random(seed))) and b.position == 1 and b.how.startswith("result")]
    assert cases, "no seed broke step 1"
    for broken in cases:
        wrong = int(broken.template.steps[0].text.split("= ")[1].rstrip("."))
        assert broken.template.steps[1].text == f"Add: {wrong} + 7 = {wrong + 7}."
        assert broken.template.steps[2].text == f"Add: {wrong + 7} + 7 = {wrong + 14}."
        assert broken.template.answer == str(wrong + 14)


def test_export_refuses_a_folder_without_data(tmp_path):
    out = classroom("export", str(tmp_path), str(tmp_path / "out"))
    assert out.returncode == 2 and "has no dataset/" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def _template(*steps: str, answer: str) -> ThoughtTemplate:
    return ThoughtTemplate(steps=tuple(TemplateStep(text=t) for t in steps), generalized="g", answer=answer)


def test_the_first_wrong_step_is_found_in_step_order():
    """A right sum of the wrong numbers ("5 + 9 = 14" for 5 - 9) is the first wrong step,
    before a later step whose arithmetic is wrong; without the expression only the
    arithmetic can be judged, so the step checker's step 2 is what is found."""
    reference = _template("Subtract: 5 - 9 = -4.", answer="-4")
    attempt = _template("Add: 5 + 9 = 14.", "Subtract: 14 - 9 = 2.", answer="2")
    assert first_wrong_step(attempt, reference, "5 - 9") == (1, "expression values")
    assert first_wrong_step(attempt, reference) == (2, "step checker")
    assert first_wrong_step(reference, reference, "5 - 9") is None
    assert first_wrong_step(reference, reference) is None


def test_a_right_step_in_another_order_is_never_the_wrong_one():
    """3 + 4 + 5 worked as 4 + 5 = 9 (right) then 9 + 3 = 13 (wrong): step 2. The old
    rule named step 1, whose result 9 the reference (3 + 4 = 7, 7 + 5 = 12) never writes."""
    reference = _template("3 + 4 = 7.", "7 + 5 = 12.", answer="12")
    attempt = _template("4 + 5 = 9.", "9 + 3 = 13.", answer="13")
    assert first_wrong_step(attempt, reference, "3 + 4 + 5") == (2, "step checker")
    assert first_wrong_step(attempt, reference) == (2, "step checker")
    # The wrong value in words, no equation to check: the reference's values decide,
    # but never against step 1, whose arithmetic is right.
    worded = _template("4 + 5 = 9.", "Adding the 3 gives 13.", answer="13")
    assert first_wrong_step(worded, reference) == (2, "reference values")
    assert first_wrong_step(worded, reference, "3 + 4 + 5") == (2, "expression values")
    # 10 - 3 - 4 as 3 + 4 = 7, then 10 - 7 = 3: right all through, in its own order.
    assert (
        first_wrong_step(
            _template("3 + 4 = 7.", "10 - 7 = 3.", answer="3"), _template("10 - 3 = 7.", "7 - 4 = 3.", answer="3"), "10 - 3 - 4"
        )
        is None
    )
    # 2 * 3 + 4 as 3 * 4 = 12: right arithmetic, but no right working multiplies 3 by 4.
    reference = _template("2 * 3 = 6.", "6 + 4 = 10.", answer="10")
    assert first_wrong_step(_template("3 * 4 = 12.", "12 + 2 = 14.", answer="14"), reference, "2 * 3 + 4") == (1, "expression values")


def test_reachable_values_of_a_sum_of_products_by_hand():
    from fractions import Fraction

    from classroom.environments.supercorrect.teachers import reachable_values

    # 2 * 3 - 4: terms +6 (factors 2, 3) and -4. Partial products 2, 3, 6; -4; sums 6, -4, 2.
    assert reachable_values("2 * 3 - 4") == {Fraction(v) for v in (2, 3, 6, -4, -2, -3, -6, 4)}
    assert reachable_values("(1 + 2) * 3") is None and reachable_values("6 / 3") is None


def test_the_dataset_card_counts_what_each_filter_dropped(tmp_path):
    import datasets

    from classroom.agents.messages import ParseFailure, PreferencePair
    from classroom.environments.supercorrect.dataset import write_dataset

    dropped = [
        ParseFailure(expected="ThoughtTemplate", raw_text="x", error="step 2 is wrong: 6 * 7 = 43 (it is 42)"),
        ParseFailure(expected="ThoughtTemplate", raw_text="y", error="step 1 is wrong: 1 + 1 = 3 (it is 2)"),
        ParseFailure(expected="ThoughtTemplate", raw_text="z", error="does not parse: <Answer> is never closed"),
    ]
    pair = PreferencePair(prompt=({"role": "user", "content": "Q"},), chosen="<Cause>c</Cause>", rejected="r", source="teacher_correction")
    sft = [{"prompt": [{"role": "user", "content": "Q"}], "completion": [{"role": "assistant", "content": TEMPLATE.render()}]}]
    stage2 = {"solutions": 8, "wrong": 6, "ungradeable": 1, "unparsed": 2, "uncorrected": 1, "critique_unparsed": 2, "pairs": 1}
    card = write_dataset(
        tmp_path,
        task="t",
        teacher="llm",
        stage="hsft_dpo",
        sft_rows=sft,
        pairs=[pair],
        traces=[TRACE],
        dropped=dropped,
        written=7,
        asked=10,
        stage2=stage2,
    )
    assert card["rows"] == {"sft": 1, "dpo": 1, "corrections": 1}
    assert card["dropped"] == {"step N is wrong": 2, "does not parse": 1}
    text = (tmp_path / "README.md").read_text()
    assert (
        "7 of 10 problems kept" in text
        and "2 x step N is wrong" in text
        and "6 wrong (1 more the grader could not score, left out);" in text
        and "2 of those" in text
        and "1 had no first wrong step" in text
        and "2 made no pair: the student's own cause and correction did not parse" in text
    )
    assert (
        datasets.load_dataset(str(tmp_path), "corrections", split="train", cache_dir=str(tmp_path / "hf-cache"))[0]["completion"][0][
            "content"
        ]
        == TRACE.render()
    )


@pytest.mark.parametrize(
    ("reply", "step"),
    [
        ("<Step>3</Step>", 3),
        ("The first wrong one is <Step> 2 </Step>.", 2),
        ("Step 4 is wrong.", 4),
        ("2", 2),
        ("2.", 2),
        # No step named as asked: unparsed, never the first number in the reply.
        ("Q: 12 + 5 = 17, so the error is there", None),
        ("I think 3 and 4", None),
        ("", None),
        # A solution written out instead of an answer: its tags and its step list name
        # no step (the HSFT student did this; every such reply was read as step 1).
        ("<Step1>Add: 6 + 0 = 6.<Key>Add a 1-digit number.</Key></Step1>\n<Step2>Add: 6 + 3 = 9.</Step2>", None),
        ("Step 1: 6 + 0 = 6. Step 2: 6 + 3 = 9.", None),
        ("Step 2 is wrong; step 2 should add.", 2),
    ],
)
def test_a_localisation_reply_is_read_strictly(reply: str, step: int | None) -> None:
    from classroom.environments.supercorrect.localisation import named_step

    assert named_step(reply) == step


@pytest.mark.parametrize(
    ("fallback", "reply", "expected"),
    [
        # The model worded it: its own cause and fix, no fallback.
        ("programmatic", "<Cause>3 + 4 is 7.</Cause><Correction>3 + 4 = 7.</Correction>", ("llm", "3 + 4 is 7.", "3 + 4 = 7.", None)),
        # No tags: the programmatic correction stands in, worked by hand for step 1
        # ("3 + 4 = 8"), and the model's reply is kept with why it was unusable.
        (
            "programmatic",
            "Step one is wrong.",
            ("programmatic", "Step 1 computes 3 + 4 as 8, but 3 + 4 = 7.", "3 + 4 = 7.", "no <Cause> and no <Correction>"),
        ),
        # No fallback: the solution stays uncorrected, with the reply and why.
        ("none", "Step one is wrong.", None),
    ],
)
async def test_the_teacher_models_unusable_correction_is_replaced_only_with_a_fallback(fallback, reply, expected):
    """LLMTeacher.correct on 3 + 4 + 5 worked as 3 + 4 = 8, 8 + 5 = 13 (the step checker
    places step 1), against a scripted endpoint: the model output is written by the test."""
    from support.fault_server import FaultServer

    from classroom.agents.grading import REASONING_GYM_KEY
    from classroom.agents.messages import Problem
    from classroom.environments.supercorrect.teachers import Correction, LLMTeacher, Uncorrected
    from classroom.serving.openai_backend import OpenAIBackend

    problem = Problem(
        id="p",
        question="What is 3 + 4 + 5?",
        answer="12",
        metadata={REASONING_GYM_KEY: {"entry": {"metadata": {"expression": "3 + 4 + 5"}}}},
    )
    reference = _template("Add: 3 + 4 = 7.", "Add: 7 + 5 = 12.", answer="12")
    attempt = _template("Add: 3 + 4 = 8.", "Add: 8 + 5 = 13.", answer="13")
    with FaultServer(kinds=("scripted",), scripted=reply) as server:
        llm = OpenAIBackend(server.url, "scripted", keyless=True, max_retries=0)
        corrected = await LLMTeacher(max_tokens=32, fallback=fallback).correct(problem, attempt, reference, llm)
        assert server.requests == 1  # the teacher model is asked whether or not a fallback stands by
    if expected is None:
        assert corrected == Uncorrected("no <Cause> and no <Correction>", reply, tokens=5)  # the server's usage
        return
    by, cause, correction, replaced = expected
    assert isinstance(corrected, Correction)
    assert (corrected.step, corrected.decided_by, corrected.by, corrected.cause, corrected.correction) == (
        1,
        "step checker",
        by,
        cause,
        correction,
    )
    assert corrected.replaced == (None if replaced is None else Uncorrected(replaced, reply, tokens=5))
    assert corrected.tokens == 5  # the teacher model was asked, whoever's correction it is
