"""Sweeps without a model: the CI arithmetic, the job count and the first job as Hydra
reads them, and the one-line refusals of `classroom sweep` and `classroom report`."""

from __future__ import annotations

import pytest
from support.cli import classroom

from classroom.launch.results import mean_ci


def test_mean_ci_uses_student_t():
    mean, ci = mean_ci([0.2, 0.4, 0.6])
    assert mean == pytest.approx(0.4) and ci == pytest.approx(0.2 * 4.303 / 3**0.5)
    assert mean_ci([0.5]) == (0.5, None)


@pytest.mark.parametrize(
    ("overrides", "jobs"),
    [
        (["sweep=dataenvgym"], 12),
        (["sweep=dataenvgym", "seed=0,1"], 8),
        # A plain override replaces the sweep config's values for its key.
        (["sweep=dataenvgym", "experiment=dataenvgym_blind", "seed=2"], 1),
        (["sweep=supercorrect", "experiment=supercorrect", "env.stage=hsft"], 3),
    ],
)
def test_the_job_count_follows_the_command_line_over_the_sweep_config(overrides, jobs):
    from classroom.launch.sweep import count_jobs

    assert count_jobs(overrides) == jobs


def test_the_first_job_is_written_back_as_hydra_reads_it():
    from classroom.launch.sweep import first_job

    job = first_job(["sweep=tom_budget", "students=[{name: a}],[{name: b}]", "env.prompts.x='a, b',c"])
    assert "students=[{name:a}]" in job and "env.prompts.x='a, b'" in job and "sweep=tom_budget" in job


def test_report_of_a_folder_that_is_no_run(tmp_path):
    out = classroom("report", str(tmp_path))
    assert out.returncode == 2 and "no finished runs" in out.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--bogus"], "classroom sweep: unknown option --bogus"),
        (["--resume"], "classroom sweep: argument --resume: expected one argument"),
        (["--resume", "/nonexistent-sweep"], "classroom sweep: /nonexistent-sweep has no readable sweep.json"),
        (["--resume", "/tmp", "seed=1"], "classroom sweep: --resume takes the sweep folder only"),
        (["env.no_such_key=1,2"], "config error:"),
    ],
)
def test_sweep_flags_and_values_that_are_wrong_are_one_line(args, says):
    out = classroom("sweep", *args)
    assert out.returncode == 2 and out.stderr.startswith(says) and len(out.stderr.strip().splitlines()) == 1, out.stderr
