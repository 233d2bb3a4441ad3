"""Hand-made seed observations for the ToM mental model's tests."""

from __future__ import annotations

from classroom.agents.messages import Attempt, Explanation, Problem
from classroom.environments.tom.types import SeedObservation


def seed_observation(problem: Problem, alone: str, helped: str) -> SeedObservation:
    """The student answered ``alone`` without help and ``helped`` after an explanation."""
    return SeedObservation(
        problem=problem,
        attempt=Attempt(problem_id=problem.id, reasoning="", final_answer=alone, correct=alone == problem.answer),
        explanation=Explanation(problem_id=problem.id, text=f"Work it out: the answer is {problem.answer}."),
        helped=Attempt(problem_id=problem.id, reasoning="", final_answer=helped, correct=helped == problem.answer),
    )
