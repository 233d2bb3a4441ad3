"""What a DataEnvGym episode reports (summary.json's top level; one row per iteration)
and shows on the terminal."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from classroom.environments.result import Details, EpisodeResult, pct


class IterationRow(BaseModel):
    """One iteration of the episode (0: the untrained student), as the history keeps it."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    iteration: int = Field(description="0 for the reset, then 1, 2, ...")
    val_accuracy: float = Field(description="The student's validation accuracy after this iteration.")
    val_ungradeable: int = Field(0, description="Validation answers the grader could not score (left out).")
    per_skill: dict[str, float] = Field(default_factory=dict, description="Validation accuracy per skill and sub-skill.")
    generated: int = Field(description="Training examples the generator made this iteration.")
    kept: int = Field(description="Of those, kept by the quality checks.")
    examples_so_far: int = Field(description="Training examples kept over the episode so far.")
    reward: float | None = Field(description="Validation accuracy gained this iteration (None at the reset).")
    training_seconds: float = Field(description="Seconds the student trained this iteration.")
    train_loss: float | None = Field(description="The training's final loss (None: not trained).")
    adapter: str | None = Field(description="The adapter the student was served with after it.")
    parse_failures: int = Field(0, description="Replies and requests that did not parse or could not be served (recorded).")
    fallbacks: int = Field(0, description="Of those, the model's plans that the built-in policy replaced.")
    tokens: dict[str, int] = Field(default_factory=dict, description="Tokens by sender so far.")


class DataEnvGymDetails(Details):
    """A DataEnvGym episode's own figures."""

    env: Literal["dataenvgym"] = Field("dataenvgym", description="The loop's name.")
    variant: str = Field(description="open_ended, skill_list or skill_tree.")
    task: str = Field(description="The task's name.")
    episode_id: str = Field(description="The episode's id.")
    iterations: int = Field(description="Iterations played.")
    resumed_from: int | None = Field(description="The iteration a resumed run went on after (None: not resumed).")
    validation_problems: int = Field(description="Validation problems (the agent's observation).")
    test_problems: int = Field(description="Held-out test problems.")
    val_accuracy_by_iteration: dict[str, float] = Field(description="Iteration -> validation accuracy.")
    per_skill_by_iteration: dict[str, dict[str, float]] = Field(description="Iteration -> validation accuracy per skill.")
    test_accuracy: float = Field(description="Test accuracy of the trained student.")
    test_accuracy_untrained: float = Field(description="Test accuracy of the untrained student (the base model).")
    test_per_skill: dict[str, float] = Field(description="Test accuracy per skill, trained.")
    test_per_skill_untrained: dict[str, float] = Field(description="Test accuracy per skill, untrained.")
    examples_kept: int = Field(description="Training examples kept over the episode.")
    examples_generated: int = Field(description="Training examples made over the episode.")
    parse_failures: int = Field(description="Replies and requests that did not parse or could not be served.")
    fallbacks: int = Field(description="Model plans the built-in policy replaced.")
    ungradeable: dict[str, int] = Field(description="Answers left out of the accuracies: validation, test, test untrained.")
    training_seconds: float = Field(description="Seconds of training over the episode.")
    history: list[IterationRow] = Field(description="Every iteration's row.")


def dataenvgym_summary_table(result: EpisodeResult[DataEnvGymDetails]) -> list[Any]:
    """Validation accuracy per iteration (overall and per skill), then the test score."""
    from rich.table import Table
    from rich.text import Text

    d = result.details
    skills = sorted({s for row in d.history for s in row.per_skill if "/" not in s})
    table = Table(
        title=(
            f"dataenvgym ({d.variant}) on {d.task}: {d.validation_problems} validation problems"
            + (f", resumed after iteration {d.resumed_from}" if d.resumed_from is not None else "")
        )
    )
    for column in ("iteration", "val accuracy", *skills, "kept / made", "parse failures", "fallbacks", "train s"):
        table.add_column(column, justify="right")
    for row in d.history:
        table.add_row(
            str(row.iteration),
            pct(row.val_accuracy),
            *(pct(row.per_skill.get(s)) for s in skills),
            f"{row.kept} / {row.generated}",
            str(row.parse_failures),
            str(row.fallbacks),
            f"{row.training_seconds:.0f}",
        )
    test = Text(f"test ({d.test_problems} problems): trained {pct(d.test_accuracy)}, untrained {pct(d.test_accuracy_untrained)}")
    return [table, test]
