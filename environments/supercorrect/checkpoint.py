"""What a SuperCorrect episode keeps after stage 1, for a resume to go on with stage 2."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from classroom.agents.messages import ParseFailure, TrainingExample, TrainingRun
from classroom.environments.supercorrect.traces import ThoughtTemplate


class Stage1Checkpoint(BaseModel):
    """A SuperCorrect episode past stage 1 (templates, the trained student, its
    evaluations), written in one piece: a resumed episode goes on with stage 2."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    episode_id: str
    templates: list[ThoughtTemplate]
    dropped: list[ParseFailure]
    template_tokens: int
    examples: list[TrainingExample]
    training: TrainingRun
    test_untrained: float
    test_stage1: float
    localisation_before: dict[str, Any]
    tokens: dict[str, int]
    # Test answers the grader could not score, per evaluation (left out of its accuracy).
    ungradeable: dict[str, int] = Field(default_factory=dict)
    # The student's state (its learner and adapter): reloaded into the engine on resume.
    student: dict[str, Any]
    # Messages logged when it was written: a resume cuts the log back here.
    events_logged: int
