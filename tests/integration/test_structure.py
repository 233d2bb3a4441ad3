"""docs/extending.md's toy loop, registered from a folder outside the package, run end to end
through `classroom run` in a process of its own."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CLASSROOM = [sys.executable, "-m", "classroom.launch.cli"]


def docs_block(heading: str, language: str) -> str:
    """The first ```language block after a heading of docs/extending.md."""
    text = (REPO / "docs" / "extending.md").read_text()
    section = text[text.index(heading) :]
    match = re.search(rf"```{language}\n(.*?)```", section, re.S)
    assert match, f"no {language} block after {heading!r} in docs/extending.md"
    return match.group(1)


def test_a_loop_from_outside_the_repo_runs_through_classroom_run(engine_url, tmp_path):
    """docs/extending.md's toy loop, registered at run time from a folder outside the package,
    runs end to end on the real engine: a loop needs nothing in launch/."""
    (tmp_path / "my_loops.py").write_text(docs_block("## Add a teaching loop", "python"))
    (tmp_path / "my_conf" / "env").mkdir(parents=True)
    (tmp_path / "my_conf" / "env" / "before_after.yaml").write_text(docs_block("## Add a teaching loop", "yaml"))
    env = {
        **os.environ,
        "PYTHONPATH": str(tmp_path),
        "CLASSROOM_RUNS": str(tmp_path / "runs"),
        "CLASSROOM_OPENAI_BASE_URL": engine_url,
        "CLASSROOM_OPENAI_MODEL": "embedded",
    }
    out = subprocess.run(
        [
            *CLASSROOM,
            "run",
            "--config-dir",
            str(tmp_path / "my_conf"),
            "env=before_after",
            "env.num_problems=3",
            "model=openai",
            "model.models.remote.endpoint.keyless=true",
            "progress=false",
            "cluster.num_cpus=1",
            "student.sampling.max_tokens=40",
            "teacher.sampling.max_tokens=40",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "before_after: 3 problems" in out.stdout and "run directory" in out.stdout
    [run_dir] = list((tmp_path / "runs").iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["problems"] == 3
    assert summary["scores"]["gain"] == pytest.approx(summary["scores"]["after"] - summary["scores"]["before"])
    assert summary["messages"] == {"problem": 3, "attempt": 6, "explanation": 3}
    assert summary["tokens"]["teacher"] > 0 and summary["tokens"]["student"] > 0
