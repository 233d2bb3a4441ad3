"""What a learning-by-teaching episode reports (M1, M2 or M3) and shows on the terminal."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from classroom.environments.lbt.types import Exemplar
from classroom.environments.result import Details, EpisodeResult, pct

# An engine's utilisation over a stage (EngineStats.summary): busy fraction, tokens/s, ...
EngineFigures = dict[str, float | int | None]


class ExamSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    size: int = Field(description="Exam problems per rationale (K).")
    repeats: int = Field(description="Answers per exam problem and student (R).")
    temperature: float = Field(description="The students' sampling temperature on exams.")


class PairwiseDifference(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mean: float = Field(description="Mean per-problem difference, row rule minus column rule (right = 1).")
    ci95: float | None = Field(description="Half-width of its 95% CI (None for one problem).")
    wins: int = Field(description="Problems the first rule got right and the second wrong.")
    losses: int = Field(description="Problems the second rule got right and the first wrong.")


class M1Problem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    problem_id: str = Field(description="The teaching problem.")
    answers: dict[str, str | None] = Field(description="Selection rule -> the answer it picked (None: no sample had one).")
    correct: dict[str, bool] = Field(description="Selection rule -> whether that answer is right.")


class LbtDetails(Details):
    """What every LbT method reports."""

    env: Literal["lbt"] = Field("lbt", description="The loop's name.")
    task: str = Field(description="The task's name.")
    episode_id: str = Field(description="The episode's id.")
    students: list[str] = Field(description="The class, by name.")


class M1Details(LbtDetails):
    """M1: answers selected by the students' exam scores of their rationales."""

    method: Literal["m1"] = Field("m1", description="LbT method 1.")
    problems: int = Field(description="Teaching problems.")
    samples_per_problem: int = Field(description="Rationales sampled per problem (N).")
    exam: ExamSettings = Field(description="The exams that score each rationale.")
    accuracy: dict[str, float] = Field(description="Selection rule -> accuracy over the teaching problems.")
    pairwise: dict[str, PairwiseDifference] = Field(description="'a-b' -> per-problem difference of rule a and rule b.")
    rationales_correct: float = Field(description="Fraction of the sampled rationales whose answer is right.")
    lbt_score_of_right: float | None = Field(description="Mean LbT score of right rationales (None: there were none).")
    lbt_score_of_wrong: float | None = Field(description="Mean LbT score of wrong rationales (None: there were none).")
    exam_engines: dict[str, EngineFigures] = Field(description="Each engine's utilisation over the exams.")
    per_problem: list[M1Problem] = Field(description="Each teaching problem's picked answers and verdicts.")


class M2Details(LbtDetails):
    """M2: the teacher's DPO step on pairs of its rationales, before and after."""

    method: Literal["m2"] = Field("m2", description="LbT method 2.")
    preference: str = Field(description="What ranks the pairs: none, correctness or lbt.")
    train_problems: int = Field(description="Problems whose rationales make the pairs.")
    test_problems: int = Field(description="Held-out problems the teacher answers before and after.")
    pairs: int = Field(description="Preference pairs trained on.")
    preferences_file: str | None = Field(description="The pairs' file in the run directory (None: no pairs).")
    training: dict[str, float | int | None] = Field(description="The DPO step's loss, seconds and steps (empty: not trained).")
    teacher_accuracy_before: float | None = Field(description="Held-out accuracy before DPO (ungradeable answers left out).")
    teacher_accuracy_after: float | None = Field(description="Held-out accuracy after DPO.")
    ungradeable: dict[str, int] = Field(description="Held-out answers the grader could not score, before and after.")
    exam_engines: dict[str, EngineFigures] = Field(description="Each engine's utilisation over the exams (LbT preferences).")


class M3Details(LbtDetails):
    """M3: exemplars refined by the students' feedback over iterations."""

    method: Literal["m3"] = Field("m3", description="LbT method 3.")
    proposer: str = Field(description="Who proposed the sets (programmatic or the teacher model).")
    train_items: int = Field(description="Training items the students answer with each set.")
    test_problems: int = Field(description="Held-out problems the teacher answers with the first and the final set.")
    train_accuracy_by_iteration: dict[str, float] = Field(description="Iteration -> the students' accuracy with the kept set.")
    test_accuracy_first: float | None = Field(description="Held-out accuracy with the first set.")
    test_accuracy_final: float | None = Field(description="Held-out accuracy with the final set.")
    parse_failures: int = Field(description="Proposals that did not parse (recorded).")
    final_exemplars: list[Exemplar] = Field(description="The final set.")
    resumed_after_iteration: int | None = Field(description="The iteration a resumed run went on after (None: not resumed).")


# What an LbT episode's details are: its method's.
LbtResultDetails = M1Details | M2Details | M3Details


def lbt_summary_table(result: EpisodeResult[LbtResultDetails]) -> list[Any]:
    from rich.table import Table
    from rich.text import Text

    d = result.details
    students = ", ".join(d.students)
    shown: list[Any] = []
    if isinstance(d, M1Details):
        table = Table(title=f"LbT M1 on {d.task}: {d.problems} teaching problems, "
                            f"{d.samples_per_problem} rationales each, students {students}")  # fmt: skip
        table.add_column("answer selection")
        table.add_column("accuracy", justify="right")
        for name, value in d.accuracy.items():
            table.add_row(name, pct(value))
        shown.append(table)
        pairs = Table(title="per problem, row minus column's rule (mean ± 95% CI, wins/losses)")
        pairs.add_column("pair")
        pairs.add_column("difference", justify="right")
        for pair, figures in d.pairwise.items():
            ci = figures.ci95
            pairs.add_row(
                pair, f"{figures.mean:+.3f}" + (f" ± {ci:.3f}" if ci is not None else "") + f"  ({figures.wins}/{figures.losses})"
            )
        shown.append(pairs)
        shown.append(Text(f"LbT score of right rationales {d.lbt_score_of_right}, of wrong ones {d.lbt_score_of_wrong}"))
    elif isinstance(d, M2Details):
        shown.append(
            Text(
                f"LbT M2 ({d.preference} preferences) on {d.task}: {d.pairs} pairs from "
                f"{d.train_problems} problems; teacher on {d.test_problems} held-out problems: "
                f"{pct(d.teacher_accuracy_before)} before, {pct(d.teacher_accuracy_after)} after"
            )
        )
    else:
        table = Table(title=f"LbT M3 on {d.task}: exemplars refined with students {students}")
        table.add_column("iteration", justify="right")
        table.add_column("students' training accuracy", justify="right")
        for iteration, value in d.train_accuracy_by_iteration.items():
            table.add_row(iteration, pct(value))
        shown.append(table)
        # What the exemplars were selected on beside what they were never shown: a gain on
        # the training items that the held-out problems do not share is overfitting.
        curve = d.train_accuracy_by_iteration
        side = Table(title="first and final exemplars: selected on vs held out")
        side.add_column("exemplars")
        side.add_column(f"students, training items ({d.train_items})", justify="right")
        side.add_column(f"teacher, held-out problems ({d.test_problems})", justify="right")
        last = max(curve, key=int) if curve else None
        side.add_row("first", pct(curve.get("0")), pct(d.test_accuracy_first))
        side.add_row("final", pct(curve.get(last) if last is not None else None), pct(d.test_accuracy_final))
        shown.append(side)
        shown.append(Text(f"proposals that did not parse: {d.parse_failures}"))
    engines = d.exam_engines if isinstance(d, M1Details | M2Details) else {}
    for engine, figures in engines.items():
        shown.append(
            Text(
                f"exam engine {engine}: busy {figures.get('busy_fraction')}, mean in flight {figures.get('mean_in_flight')}, "
                f"{figures.get('tokens_per_s')} tokens/s, prefix-cache hits {figures.get('prefix_cache_hit_rate')}"
            )
        )
    return shown
