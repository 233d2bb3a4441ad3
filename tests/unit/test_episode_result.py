"""The typed result every loop returns (EpisodeResult) and summary.json read back
(RunSummary): hand-worked envelopes, and summary.json files written before either
existed, by the loops' old dict code (tests/unit/data/summaries_before_episode_result/:
runs of commits 4d42111 and eec1162 and earlier, kept as they were written)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from classroom.agents.messages import Attempt, Explanation, Usage
from classroom.environments.dataenvgym.summary import DataEnvGymDetails
from classroom.environments.lbt.summary import M1Details, M2Details, M3Details
from classroom.environments.result import ENVELOPE_KEYS, Counts, Details, EpisodeResult, mean, tokens_by_sender
from classroom.environments.supercorrect.summary import SuperCorrectDetails
from classroom.environments.tom.summary import TomDetails
from classroom.launch.rundir import RunSummary

BEFORE = Path(__file__).parent / "data" / "summaries_before_episode_result"
DETAILS = {
    "tom_class": TomDetails,
    "dataenvgym": DataEnvGymDetails,
    "lbt_m1": M1Details,
    "lbt_m2": M2Details,
    "lbt_m3": M3Details,
    "supercorrect": SuperCorrectDetails,
}
# What the runner adds beside a loop's figures (RunSummary's own fields and extras).
RUNNER_KEYS = {"messages", "duplicate_questions", "skipped_rows", "ungradeable_reasons"}


class Toy(Details):
    problems: int
    note: str | None = None


def test_the_flat_summary_is_the_details_then_the_envelope():
    result = EpisodeResult[Toy](
        scores={"before": 0.25, "after": None},
        tokens={"teacher": 30, "student": 12},
        wall_time_s=1.23456,
        counts=Counts(fallbacks={"plan": 2}),
        details=Toy(problems=4),
    )
    assert result.summary() == {
        "problems": 4,
        "note": None,
        "scores": {"before": 0.25, "after": None},
        "tokens": {"teacher": 30, "student": 12},
        "wall_time_s": 1.23,
        "counts": {"failures": {}, "fallbacks": {"plan": 2}},
    }
    # Nothing failed or fell back: no counts key at all.
    assert "counts" not in EpisodeResult[Toy](scores={}, wall_time_s=0.0, details=Toy(problems=1)).summary()


def test_a_details_model_cannot_take_a_key_the_envelope_owns():
    class Clashing(Details):
        tokens: int

    with pytest.raises(ValueError, match="Clashing uses keys the envelope owns: tokens"):
        EpisodeResult[Clashing](scores={}, wall_time_s=0.0, details=Clashing(tokens=3)).summary()
    with pytest.raises(ValidationError):  # a loop's details are typed: a wrong value stops at the loop
        Toy(problems="four")


def test_tokens_are_summed_by_sender_and_added_to_what_is_given():
    def usage(prompt: int, completion: int) -> Usage:
        return Usage(prompt_tokens=prompt, completion_tokens=completion)

    messages = [
        Attempt(sender="s1", problem_id="p", reasoning="r", final_answer="1", usage=usage(10, 5)),
        Explanation(sender="t", problem_id="p", text="because", usage=usage(20, 7)),
        Attempt(sender="s1", problem_id="q", reasoning="r", final_answer=None, usage=usage(3, 1)),
    ]
    assert tokens_by_sender(messages) == {"s1": 19, "t": 27}
    running = {"t": 100}
    assert tokens_by_sender(messages, into=running) is running and running == {"t": 127, "s1": 19}
    assert mean([True, False, True, True]) == 0.75 and mean([]) is None


@pytest.mark.parametrize("name", sorted(DETAILS))
def test_an_old_summary_loads_and_its_loop_figures_are_exactly_the_details_model(name):
    raw = json.loads((BEFORE / f"{name}.json").read_text())
    summary = RunSummary.model_validate(raw)
    assert summary.status == "completed" and summary.scores == raw["scores"] and summary.tokens == raw["tokens"]
    assert summary.result is None  # read from disk: the typed result lives with the run that made it
    model = DETAILS[name]
    figures = {k: v for k, v in raw.items() if k not in ENVELOPE_KEYS | RUNNER_KEYS}
    # Every figure the old code wrote is a field of the model, and every field was written.
    assert set(figures) == set(model.model_fields), set(figures) ^ set(model.model_fields)
    details = model.model_validate(figures)
    assert json.loads(details.model_dump_json()) == figures  # and reads back unchanged
