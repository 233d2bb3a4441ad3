"""Every message type round-trips through one JSON line; the event log reloads."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from classroom.agents.messages import (
    SCHEMA_VERSION,
    Attempt,
    Explanation,
    Feedback,
    MessageBase,
    ParseFailure,
    PreferencePair,
    Problem,
    TrainingExample,
    TrainingRun,
    UnknownMessageKind,
    Usage,
    message_kinds,
    parse_message,
    register_message,
)
from classroom.environments.dataenvgym.types import DataPlan, Exploit, Explore
from classroom.environments.eventlog import SUPERSEDED, EventLog, EventLogError, read_events
from classroom.environments.lbt.types import ExemplarProposal, TeachingScore
from classroom.environments.supercorrect.traces import CorrectionTrace, StudentCritique, TemplateStep, ThoughtTemplate
from classroom.environments.tom.types import InterventionDecision

USAGE = Usage(model="m", prompt_tokens=10, completion_tokens=5, latency_s=0.5)
EXAMPLES = [
    Problem(question="1+1?", answer="2", skills=("addition",), metadata={"k": [1, 2]}),
    Attempt(problem_id="p", reasoning="1+1=2", final_answer="2", correct=True, phase="pre_test", usage=USAGE),
    Explanation(problem_id="p", text="Add them.", final_answer="2", usage=USAGE),
    InterventionDecision(problem_id="p", intervene=True, policy="random", utility=0.3, budget_left=2),
    Feedback(accuracy=0.5, per_skill_accuracy={"addition": 0.5}, error_examples=("a1",), weak_skills=("addition",)),
    DataPlan(allocations={"addition": 10}, rationale="weak"),
    TrainingExample(
        prompt="Q",
        completion="A",
        answer="2",
        skills=("addition",),
        source="teacher",
        kept=False,
        drop_reason="the student already answers it",
        iteration=1,
    ),
    Explore(new_subskills={"chain_sum/two_1digit": 12}, rationale="none yet"),
    Exploit(allocations={"chain_sum/two_1digit": 4, "products/one_digit": 20}),
    TrainingRun(iteration=1, learner="LoRALearner", examples=24, adapter="ep-it1", adapter_path="/x", train_loss=0.3, seconds=12.5),
    ParseFailure(expected="Sum", raw_text="{oops", error="reply: invalid json"),
    PreferencePair(
        prompt=({"role": "user", "content": "Q"},), chosen="good", rejected="bad", chosen_score=0.9, rejected_score=0.1, source="lbt"
    ),
    TeachingScore(
        problem_id="p",
        rationale_id="r",
        answer="2",
        correct=True,
        exam_problem_ids=("e1",),
        by_student={"a": 0.5},
        exam_answers=4,
        score=0.5,
    ),
    ExemplarProposal(iteration=1, exemplars=({"question": "q", "solution": "s", "answer": "1"},), score=0.5, kept=True),
    ThoughtTemplate(steps=(TemplateStep(text="Add: 2 + 3 = 5.", key="5 carries on."),), generalized="Add.", answer="5"),
    CorrectionTrace(
        question="2 + 3 =", steps=("2 + 3 = 6.",), first_wrong_step=1, cause="2 + 3 is 5.", correction="2 + 3 = 5.", answer="5"
    ),
    StudentCritique(problem_id="p", attempt_id="a", step=1, cause="I added wrong.", correction="2 + 3 = 5.", raw_text="{}", usage=USAGE),
    USAGE,
]


def test_examples_cover_every_kind_the_built_in_loops_register():
    # Kinds that tests register start with "test_".
    assert sorted(m.kind for m in EXAMPLES) == sorted(k for k in message_kinds() if not k.startswith("test_"))


def test_a_loop_registers_its_own_message_kind():
    from typing import Literal

    @register_message
    class Hint(MessageBase):
        kind: Literal["test_hint"] = "test_hint"
        text: str

    hint = Hint(text="carry the one")
    assert parse_message(hint.model_dump_json()) == hint and "test_hint" in message_kinds()

    class Impostor(MessageBase):
        kind: Literal["attempt"] = "attempt"

    with pytest.raises(ValueError, match=r"message kind 'attempt' is taken by classroom\.agents\.messages\.Attempt"):
        register_message(Impostor)


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: m.kind)
def test_round_trip_through_one_json_line(message):
    line = message.model_dump_json()
    assert "\n" not in line
    again = parse_message(line)
    assert type(again) is type(message) and again == message
    assert parse_message(json.loads(line)) == message


def test_messages_are_frozen_and_strict():
    problem = EXAMPLES[0]
    with pytest.raises(ValidationError):
        problem.question = "changed"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        Problem(question="q", answer="a", surprise=1)
    with pytest.raises(UnknownMessageKind, match="unknown message kind"):
        parse_message('{"kind": "telegram"}')
    with pytest.raises(UnknownMessageKind, match="unknown message kind 'telegram'"):
        parse_message({"kind": "telegram"})


def test_usage_adds_up():
    total = USAGE + USAGE
    assert total.total_tokens == 30 and total.latency_s == 1.0


def test_event_log_reloads_typed_messages(tmp_path):
    path = tmp_path / "events.jsonl"
    log = EventLog(path, config={"a": 1}, loop="dataenvgym")
    # Where the engines run is known once they are up, before the first message.
    assert log.amend_header(placement={"engine student#0": {"node_id": "n1"}})
    log.append(EXAMPLES)
    assert not log.amend_header(placement={})  # a log with messages keeps its header
    log.close()
    header, messages = read_events(path)
    assert header["schema_version"] == SCHEMA_VERSION and len(header["config_hash"]) == 16
    assert header["placement"] == {"engine student#0": {"node_id": "n1"}}
    assert messages == EXAMPLES
    # A run killed mid-write leaves a torn last line: the rest still loads.
    with open(path, "a") as f:
        f.write('{"kind": "attempt", "problem_')
    assert read_events(path)[1] == EXAMPLES


def test_a_resumed_log_counts_what_it_holds_and_rewinds_to_a_checkpoint(tmp_path):
    path = tmp_path / "events.jsonl"
    log = EventLog(path, config={"a": 1})
    log.append(EXAMPLES[:3])
    log.close()
    with open(path, "a") as f:  # torn by a kill
        f.write('{"kind": "attempt", "problem_')
    again = EventLog(path)  # what a resumed run opens
    assert again.count == 3
    assert not again.amend_header(placement={})  # the header is the first run's
    again.append(EXAMPLES[3:5])
    again.rewind(2)  # back to a checkpoint taken after two messages
    again.append(EXAMPLES[5:6])
    again.close()
    assert read_events(path)[1] == [*EXAMPLES[:2], EXAMPLES[5]]
    # What was cut is kept aside, for the record, not lost.
    aside = [parse_message(line) for line in (tmp_path / SUPERSEDED).read_text().splitlines()]
    assert aside == EXAMPLES[2:5]


def test_event_log_from_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps({"kind": "header", "schema_version": SCHEMA_VERSION + 1}) + "\n")
    with pytest.raises(EventLogError, match="schema"):
        read_events(path)


def test_old_log_without_new_optional_fields_still_loads():
    # A line written before `phase` and `context_ids` existed.
    old = {"kind": "attempt", "id": "x", "problem_id": "p", "reasoning": "r", "final_answer": None}
    attempt = parse_message(old)
    assert attempt.phase == "" and attempt.context_ids == ()
