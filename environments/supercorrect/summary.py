"""What a SuperCorrect episode reports (summary.json's top level) and shows on the terminal."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from classroom.environments.result import Details, EpisodeResult, pct


class TemplateCounts(BaseModel):
    model_config = ConfigDict(extra="forbid")
    written: int = Field(description="Thought templates written (train and test problems).")
    dropped: int = Field(description="Templates dropped: they did not parse or a checkable step was wrong.")
    asked: int = Field(description="Problems the teacher was asked for a template.")
    fallbacks: int = Field(description="Templates not by the run's teacher: the LLM teacher's programmatic fallback.")


class LocalisationFigures(BaseModel):
    """How well a locator names the first wrong step of the broken templates."""

    model_config = ConfigDict(extra="forbid")
    accuracy: float | None = Field(description="Exact-position accuracy over every case (None: no cases).")
    cases: int = Field(description="Broken templates asked about.")


class ModelLocalisation(LocalisationFigures):
    """A model's localisation: its accuracy, and how its replies read."""

    ci95: float | None = Field(description="Half-width of the accuracy's 95% CI.")
    named_a_step: int = Field(description="Replies that named a step.")
    unparsed: int = Field(description="Replies that named no step, read strictly.")


def localisation_figures(figures: dict[str, Any]) -> ModelLocalisation | LocalisationFigures:
    """The typed form of :func:`~.localisation.localise`'s figures: a model's replies
    (with their CI and how they read), or accuracy and cases alone (no benchmark cases)."""
    return ModelLocalisation(**figures) if "unparsed" in figures else LocalisationFigures(**figures)


class DatasetCard(BaseModel):
    model_config = ConfigDict(extra="forbid")
    folder: str = Field(description="The exported dataset's folder (datasets-loadable).")
    rows: dict[str, int] = Field(description="Rows per config: sft, dpo, corrections.")
    dropped: dict[str, int] = Field(description="Templates dropped, by reason.")
    stage2: dict[str, int] | None = Field(description="Stage 2's counts, as in the summary.")


class SuperCorrectDetails(Details):
    """A SuperCorrect episode's own figures."""

    env: Literal["supercorrect"] = Field("supercorrect", description="The loop's name.")
    stage: str = Field(description="sft, hsft or hsft_dpo.")
    task: str = Field(description="The task's name.")
    episode_id: str = Field(description="The episode's id.")
    teacher: str = Field(description="The template teacher's name.")
    templates: TemplateCounts = Field(description="The thought templates asked, written, dropped.")
    train_examples: int = Field(description="Stage 1's training examples.")
    pairs: int = Field(description="Stage 2's preference pairs.")
    stage2: dict[str, int] | None = Field(
        description="Stage 2: solutions, wrong ones, unparsed, uncorrected, teacher replies unusable (left uncorrected; replaced by the fallback's), pairs, dropped critiques."
    )
    dpo_reference: str | None = Field(description="What stage 2's DPO compared against (the stage-1 policy).")
    test_problems: int = Field(description="Test problems.")
    test_accuracy: dict[str, float | None] = Field(description="Test accuracy untrained, after stage 1 and after stage 2.")
    ungradeable: dict[str, int] = Field(description="Test answers the grader could not score, by phase (left out of accuracies).")
    localisation: dict[str, ModelLocalisation | LocalisationFigures | None] = Field(
        description="First-wrong-step localisation: the student before and after stage 2, the teacher model, the exact checker, a constant guess."
    )
    dataset: DatasetCard = Field(description="The exported dataset's card.")
    training: dict[str, float | None] = Field(description="Stage 1's training loss and seconds.")


def supercorrect_summary_table(result: EpisodeResult[SuperCorrectDetails]) -> list[Any]:
    from rich.table import Table
    from rich.text import Text

    d = result.details
    acc = d.test_accuracy
    table = Table(title=f"SuperCorrect ({d.stage}) on {d.task}: {d.test_problems} test problems")
    table.add_column("student")
    table.add_column("test accuracy", justify="right")
    table.add_row("untrained", pct(acc["untrained"]))
    table.add_row("after stage 1 (" + ("SFT" if d.stage == "sft" else "HSFT") + ")", pct(acc["stage1"]))
    if acc["stage2"] is not None:
        table.add_row(f"after stage 2 (DPO, {d.pairs} pairs)", pct(acc["stage2"]))
    lines = [
        f"templates: {d.templates.written} written, {d.templates.dropped} dropped"
        + (f" ({d.templates.fallbacks} written by the programmatic fallback)" if d.templates.fallbacks else ""),
        "first wrong step found: "
        + ", ".join(f"{name.replace('_', ' ')} {pct(figures.accuracy)}" for name, figures in d.localisation.items() if figures),
    ]
    counts = d.stage2
    if counts:
        lines.append(
            f"stage 2: {counts['solutions']} solutions, {counts['wrong']} wrong ({counts['unparsed']} not in the template"
            f" format, {counts['uncorrected']} left uncorrected"
            + (f", {n} of them a teacher reply without a usable correction" if (n := counts.get("correction_unparsed")) else "")
            + (f", {n} corrected by the programmatic fallback" if (n := counts.get("correction_fallbacks")) else "")
            + f"), {counts['pairs']} pairs"
            f" ({counts.get('critique_unparsed', 0)} dropped: the student's own critique did not parse)"
        )
    return [table, *(Text(line) for line in lines)]
