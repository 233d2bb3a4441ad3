"""Learning by teaching on hand-made scores: the selection rules and the preference
pairs (the loop on the real engine: tests/integration/test_lbt.py)."""

from __future__ import annotations

import pytest

from classroom.agents.messages import Explanation
from classroom.environments.lbt.selection import preference_pairs, select_answers
from classroom.environments.lbt.types import ScoredRationale


def sample(answer: str | None, score: float, correct: bool = False, text: str | None = None) -> ScoredRationale:
    return ScoredRationale(Explanation(problem_id="p", text=text or f"... {answer} ({score})"), answer, correct, score)


def test_selection_rules_on_hand_made_exam_outcomes():
    # 7 is the majority; 5 has the single best-scored rationale; 9's scores sum highest.
    samples = [sample("7", 0.1), sample("7", 0.1), sample("7", 0.1), sample("5", 0.9), sample("9", 0.6), sample("9", 0.6)]
    assert select_answers("3", samples) == {"greedy": "3", "self_consistency": "7", "m1_max": "5", "m1_sum": "9"}
    # MAX and SUM agree when the best answer is also the best-supported one.
    same = [sample("4", 0.8), sample("4", 0.7), sample("6", 0.75)]
    picked = select_answers(None, same)
    assert picked["m1_max"] == picked["m1_sum"] == "4" and picked["greedy"] is None
    # Equal numbers group ("1,000" and "1000"); ties go to the answer met first.
    assert select_answers("1", [sample("1,000", 0.5), sample("1000", 0.5), sample("2", 1.0)])["self_consistency"] == "1,000"
    assert select_answers("1", [sample("8", 0.5), sample("2", 0.5)])["m1_sum"] == "8"
    assert select_answers("1", [sample(None, 1.0)])["m1_sum"] is None
    # A best-scored rationale that gives no answer is passed over, by MAX as by SUM.
    unanswered = [sample(None, 0.9), sample("5", 0.4), sample("6", 0.3)]
    assert {k: v for k, v in select_answers("1", unanswered).items() if k.startswith("m1")} == {"m1_max": "5", "m1_sum": "5"}
    assert select_answers("1", [sample(None, 1.0)])["m1_max"] is None


def test_preference_pairs_from_hand_made_scores():
    samples = [sample("1", 0.9, True), sample("2", 0.1, False), sample("1", 0.2, True), sample("3", 0.7, False)]
    # score = 0.5 correctness + 0.5 LbT: 0.95, 0.05, 0.6, 0.35 -> gaps over 0.3, widest
    # first: 0.9, 0.6, 0.55, 0.35 (2 over 3 is 0.25, 3 over 1 exactly 0.3: not over).
    pairs = preference_pairs(samples, correctness_weight=0.5, min_gap=0.3, max_pairs=8)
    assert [(p.chosen, p.rejected) for p in pairs] == [(0, 1), (0, 3), (2, 1), (0, 2)]
    assert pairs[0].gap == pytest.approx(0.9)
    assert len(preference_pairs(samples, correctness_weight=0.5, min_gap=0.3, max_pairs=2)) == 2
    # Correctness alone: every right sample over every wrong one, LbT ignored.
    only = preference_pairs(samples, correctness_weight=1.0, min_gap=0.3, max_pairs=8)
    assert {(p.chosen, p.rejected) for p in only} == {(0, 1), (0, 3), (2, 1), (2, 3)}
    # The same text never pairs with itself.
    twins = [sample("1", 1.0, True, text="same"), sample("2", 0.0, False, text="same")]
    assert preference_pairs(twins, correctness_weight=0.5, min_gap=0.3, max_pairs=8) == []


def test_an_exam_score_leaves_ungradeable_answers_out_and_counts_them():
    from classroom.agents.messages import Attempt
    from classroom.environments.lbt.rationale_scores import exam_score

    def attempt(correct: bool | None) -> Attempt:
        return Attempt(problem_id="q", reasoning="The answer is 1.", final_answer="1", correct=correct)

    # Right, wrong, ungradeable, right: 2 of the 3 graded are right (counted as wrong,
    # the ungradeable one made it 2 of 4).
    assert exam_score([attempt(True), attempt(False), attempt(None), attempt(True)]) == (pytest.approx(2 / 3), 3, 1)
    assert exam_score([attempt(None)]) == (0.0, 0, 1)
    assert exam_score([]) == (0.0, 0, 0)


def test_m3_shows_training_and_held_out_accuracy_side_by_side():
    from rich.console import Console

    from classroom.environments.lbt.summary import M3Details, lbt_summary_table
    from classroom.environments.result import EpisodeResult

    details = M3Details(
        task="t",
        episode_id="e",
        students=["a"],
        proposer="programmatic",
        train_items=8,
        test_problems=10,
        train_accuracy_by_iteration={"0": 0.25, "1": 0.5, "2": 0.75},
        test_accuracy_first=0.3,
        test_accuracy_final=0.2,
        parse_failures=0,
        final_exemplars=[],
        resumed_after_iteration=None,
    )
    summary = EpisodeResult[M3Details](scores={}, wall_time_s=1.0, details=details)
    console = Console(record=True, width=200)
    for part in lbt_summary_table(summary):
        console.print(part)
    lines = console.export_text().splitlines()
    # first: 25% on the training items beside 30% held out; final: 75% beside 20%.
    [first] = [line for line in lines if "│ first" in line]
    [final] = [line for line in lines if "│ final" in line]
    assert [c.strip() for c in first.split("│")[2:4]] == ["25.0%", "30.0%"]
    assert [c.strip() for c in final.split("│")[2:4]] == ["75.0%", "20.0%"]
