"""`classroom sweep` on a tiny grid and `classroom report` on its folder."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import pytest
import yaml

from classroom.launch.results import mean_ci

CLASSROOM = [sys.executable, "-m", "classroom.launch.cli"]


def test_mean_ci_uses_student_t():
    mean, ci = mean_ci([0.2, 0.4, 0.6])
    assert mean == pytest.approx(0.4) and ci == pytest.approx(0.2 * 4.303 / 3**0.5)
    assert mean_ci([0.5]) == (0.5, None)


@pytest.mark.parametrize(
    ("overrides", "jobs"),
    [
        (["sweep=dataenvgym"], 21),
        (["sweep=dataenvgym", "seed=0,1"], 14),
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


def test_sweep_2x2_grid_table_matches_runs_and_report_has_plots(engine_url, tmp_path):
    # Planted secrets: credentials in the endpoint's URL and a runtime_env variable. No
    # file the sweep, its runs or the report write holds either, nor does the output.
    with_credentials = engine_url.replace("http://", "http://me:pw-planted-2718@")
    env = {
        **os.environ,
        "CLASSROOM_RUNS": str(tmp_path),
        "CLASSROOM_OPENAI_BASE_URL": with_credentials,
        "CLASSROOM_OPENAI_MODEL": "embedded",
    }
    out = subprocess.run(
        [
            *CLASSROOM,
            "sweep",
            "model=openai",
            "model.models.remote.endpoint.keyless=true",
            "env/intervention=none,random",
            "env.num_problems=2,3",
            "env.seed_set_size=1",
            "env.post_test_size=1",
            "env.budgets=[0,0.5,1]",
            "env.demo_counts=[0,1]",
            "student.sampling.max_tokens=32",
            "teacher.sampling.max_tokens=32",
            "cluster.num_cpus=1",
            "+cluster.runtime_env.env_vars.CLASSROOM_PLANTED=tok-planted-3141",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert "[sweep] 4 jobs" in out.stdout and "[sweep] job 4/4" in out.stdout and "ETA" in out.stdout
    [root] = [p for p in tmp_path.iterdir() if p.name.startswith("sweep_")]
    with open(root / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4
    seen = set()
    for row in rows:
        overrides = yaml.safe_load((root / row["run"] / ".hydra" / "overrides.yaml").read_text())
        assert f"env/intervention={row['env/intervention']}" in overrides
        assert f"env.num_problems={row['env.num_problems']}" in overrides
        seen.add((row["env/intervention"], row["env.num_problems"]))
        assert row["status"] == "completed" and row["seed"] == "0"
        assert 0.0 <= float(row["acc@0.5"]) <= 1.0 and int(row["tokens"]) > 0
    assert seen == {("none", "2"), ("none", "3"), ("random", "2"), ("random", "3")}
    md = (root / "results.md").read_text()
    assert "Per configuration" in md and md.count("| none |") == 2 + 2  # per-config and per-run tables

    report = subprocess.run([*CLASSROOM, "report", str(root)], capture_output=True, text=True, timeout=120, env=env)
    assert report.returncode == 0, report.stderr
    page = (root / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 3  # accuracy vs budget, multi-turn, tokens
    assert "<table>" in page and "http://" not in page.replace(engine_url, "")

    single = subprocess.run([*CLASSROOM, "report", str(root / rows[0]["run"])], capture_output=True, text=True, timeout=120, env=env)
    assert single.returncode == 0 and (root / rows[0]["run"] / "report.html").is_file()

    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) > 30 and any(".hydra" in p.parts for p in written)
    for secret in ("pw-planted-2718", "tok-planted-3141"):
        assert secret not in out.stdout + out.stderr + report.stdout + report.stderr
        assert not [p for p in written if secret.encode() in p.read_bytes()], secret
    assert {row["cluster.runtime_env.env_vars.CLASSROOM_PLANTED"] for row in rows} == {"***"}


def test_report_of_a_folder_that_is_no_run(tmp_path):
    out = subprocess.run([*CLASSROOM, "report", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "no finished runs" in out.stderr
