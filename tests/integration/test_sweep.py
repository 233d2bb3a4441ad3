"""`classroom sweep` on a tiny grid and `classroom report` on its folder; a concurrent
sweep killed and resumed; Ctrl-C of a concurrent sweep."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import time

import pytest
import yaml
from support.cli import CLASSROOM, classroom

from classroom.launch.sweep import finished


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
    grid = [
        "model=openai",
        "model.models.remote.endpoint.keyless=true",
        "env/intervention=none,random",
        "env.num_problems=2,3",
        "env.seed_set_size=1",
        "env.post_test_size=1",
        "env.budgets=[0,0.5,1]",
        "env.demo_counts=[0,1]",
        "student.sampling.max_tokens=16",
        "teacher.sampling.max_tokens=16",
        "cluster.num_cpus=1",
        "+cluster.runtime_env.env_vars.CLASSROOM_PLANTED=tok-planted-3141",
    ]
    out = classroom("sweep", *grid, env=env)  # in this process, on the tier's Ray
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
        # The table says what each run's own summary says: every score, the tokens.
        summary = json.loads((root / row["run"] / "summary.json").read_text())
        assert summary["scores"] and "acc@0.5" in summary["scores"]
        for name, value in summary["scores"].items():  # a score the run had none of is an empty cell
            assert (row[name] == "") if value is None else (float(row[name]) == pytest.approx(value, abs=1e-9)), (row["run"], name)
        assert int(row["tokens"]) == sum(summary["tokens"].values()) > 0
    assert seen == {("none", "2"), ("none", "3"), ("random", "2"), ("random", "3")}
    md = (root / "results.md").read_text()
    assert "Per configuration" in md and md.count("| none |") == 2 + 2  # per-config and per-run tables

    report = classroom("report", str(root), env=env)
    assert report.returncode == 0, report.stderr
    page = (root / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 3  # accuracy vs budget, multi-turn, tokens
    assert "<table>" in page and "http://" not in page.replace(engine_url, "")

    single = classroom("report", str(root / rows[0]["run"]), env=env)
    assert single.returncode == 0 and (root / rows[0]["run"] / "report.html").is_file()

    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) > 20 and any(".hydra" in p.parts for p in written)
    for secret in ("pw-planted-2718", "tok-planted-3141"):
        assert secret not in out.stdout + out.stderr + report.stdout + report.stderr
        assert not [p for p in written if secret.encode() in p.read_bytes()], secret
    assert {row["cluster.runtime_env.env_vars.CLASSROOM_PLANTED"] for row in rows} == {"***"}

    # The same sweep two jobs at once, killed (the whole process group) once a job has
    # completed, then resumed: only the jobs that had not completed run, and the table
    # equals the serial one (greedy, seeded).
    again = tmp_path / "concurrent"
    killed = subprocess.Popen(
        [*CLASSROOM, "sweep", *grid, "sweep.max_concurrent=2", f"hydra.sweep.dir={again}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 300
        while not any(finished(again, n) for n in range(4)) and killed.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        assert killed.poll() is None, "the sweep ended before it could be killed"
    finally:
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait()
    done_before = {n for n in range(4) if finished(again, n)}
    started_before = {n for n in range(4) if (again / str(n)).is_dir()}
    assert 1 <= len(done_before) < 4
    # The masked runtime_env variable comes back from the environment.
    resumed = classroom("sweep", "--resume", str(again), env={**env, "CLASSROOM_PLANTED": "tok-planted-3141"})
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-3000:]
    assert f"[sweep] {4 - len(done_before)} jobs (of 4; the others completed)" in resumed.stdout
    with open(again / "results.csv") as f:
        concurrent = {(r["env/intervention"], r["env.num_problems"]): r for r in csv.DictReader(f)}
    scores = [c for c in rows[0] if c.startswith("acc@")]
    assert scores and len(concurrent) == 4
    for row in rows:
        twin = concurrent[(row["env/intervention"], row["env.num_problems"])]
        assert twin["status"] == "completed"
        assert [row[c] for c in scores] == [twin[c] for c in scores], (row, twin)
    assert "pw-planted-2718" not in resumed.stdout + resumed.stderr
    for secret in ("pw-planted-2718", "tok-planted-3141"):
        assert not [p for p in again.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()], secret
    # A job the kill cut short ran again from its start in a fresh folder (the one it
    # left is set aside): its log holds each message once.
    for n in range(4):
        assert_each_message_once(again / str(n))
    aside = {p.name for p in (again / ".retried").iterdir()} if (again / ".retried").is_dir() else set()
    assert aside == {f"{n}-unfinished" for n in started_before - done_before}


def assert_each_message_once(run_dir) -> None:
    lines = (run_dir / "events.jsonl").read_text().splitlines()[1:]
    ids = [json.loads(line)["id"] for line in lines]
    assert ids and len(ids) == len(set(ids)), f"{run_dir}: {len(ids) - len(set(ids))} message(s) logged twice"


def test_ctrl_c_stops_a_concurrent_sweep_and_resume_finishes_it(engine_url, tmp_path):
    """SIGINT to the sweep's process group (what Ctrl-C in a terminal sends) while two
    episodes play in threads: both stop as interrupted (Python gives the signal to the
    main thread only: it relays it), no traceback, exit 130; `--resume` runs the rest."""
    env = {**os.environ, "CLASSROOM_OPENAI_BASE_URL": engine_url, "CLASSROOM_OPENAI_MODEL": "embedded"}
    root = tmp_path / "sweep"
    grid = [
        "model=openai",
        "model.models.remote.endpoint.keyless=true",
        "seed=0,1,2",
        "sweep.max_concurrent=2",
        "env.num_problems=6",
        "env.seed_set_size=2",
        "env.post_test_size=2",
        "student.sampling.max_tokens=16",
        "teacher.sampling.max_tokens=16",
        "cluster.num_cpus=1",
        f"hydra.sweep.dir={root}",
    ]
    sweep = subprocess.Popen(
        [*CLASSROOM, "sweep", *grid], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    )
    try:
        # Both episodes under way: each has logged its problems and some answers.
        deadline = time.time() + 300
        while sweep.poll() is None and time.time() < deadline:
            logs = [root / str(n) / "events.jsonl" for n in range(2)]
            if all(log.is_file() and len(log.read_text().splitlines()) > 12 for log in logs):
                break
            time.sleep(0.1)
        assert sweep.poll() is None, "the sweep ended before it could be interrupted"
        os.killpg(sweep.pid, signal.SIGINT)
        out, err = sweep.communicate(timeout=120)
    finally:
        if sweep.poll() is None:
            os.killpg(sweep.pid, signal.SIGKILL)
    assert sweep.returncode == 130, out[-2000:] + err[-3000:]
    assert "Traceback" not in err and f"classroom sweep --resume {root} runs the rest" in err, err[-3000:]
    statuses = {n: json.loads((root / str(n) / "summary.json").read_text())["status"] for n in range(2)}
    assert "interrupted" in statuses.values() and set(statuses.values()) <= {"interrupted", "completed"}, statuses
    assert not (root / "2" / "summary.json").exists()  # never started

    resumed = classroom("sweep", "--resume", str(root), env=env)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-3000:]
    left = 3 - list(statuses.values()).count("completed")
    assert f"[sweep] {left} jobs " in resumed.stdout  # "(of 3; the others completed)" when any did
    for n in range(3):
        assert json.loads((root / str(n) / "summary.json").read_text())["status"] == "completed"
        assert_each_message_once(root / str(n))
