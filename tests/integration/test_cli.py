"""`classroom run` end to end: over HTTP in this process, and in processes of its own
where the process is the point (its own Ray, Ctrl-C, `classroom serve`)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from pathlib import Path

import pytest
from support.cli import CLASSROOM, classroom, classroom_process
from support.ports import closed_port


def test_a_stale_ray_session_file_does_not_stop_a_local_run(tmp_path):
    """A killed cluster leaves `ray_current_cluster` naming a dead address (and this test
    session's own Ray is running): `cluster.address=local` still starts its own Ray.
    The episode then meets an endpoint that is down, which shows it ran past Ray."""
    import tempfile

    temp = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))  # short: Ray's socket paths live here
    (temp / "ray").mkdir()
    (temp / "ray" / "ray_current_cluster").write_text(f"127.0.0.1:{closed_port()}")
    down = f"http://127.0.0.1:{closed_port()}/v1"
    out = classroom_process(
        "run",
        "model=openai",
        "model.models.remote.endpoint.keyless=true",
        "model.models.remote.endpoint.max_retries=0",
        "progress=false",
        "cluster.num_cpus=1",
        env={"RAY_TMPDIR": str(temp), "CLASSROOM_RUNS": str(tmp_path), "CLASSROOM_OPENAI_BASE_URL": down},
        timeout=180,
    )
    assert "existing cluster" not in out.stderr, out.stderr[-2000:]
    [summary] = [json.loads(p.read_text()) for p in tmp_path.rglob("summary.json")]
    assert summary["status"] == "failed" and f"{down} did not answer" in summary["error"], summary
    # A failed run's summary says where its actors ran, too.
    assert {"Student student", "TomTeacher", "Grader"} <= set(summary["placement"]), summary


def test_run_over_http_end_to_end(engine_url, data_dir, tmp_path):
    """`classroom run` (in this process, on the tier's Ray), its models behind the
    session engine's HTTP door, on a GSM8K file with two malformed rows: skipped, told
    and counted."""
    data = tmp_path / "data"
    data.mkdir()
    with (data_dir / "gsm8k" / "test.jsonl").open() as handle:
        good = [next(handle) for _ in range(10)]
    (data / "test.jsonl").write_text("".join([*good[:3], "{not json\n", *good[3:], '{"question": "no answer"}\n']))
    runs = tmp_path / "runs"
    out = classroom(
        "run",
        "task=gsm8k",
        f"task.data_dir={data}",
        "task.splits=[test]",
        "model=openai",
        "model.models.remote.endpoint.keyless=true",
        "env.num_problems=4",
        "env.seed_set_size=2",
        "env.post_test_size=2",
        "env.demo_counts=[0,1]",
        "progress=false",
        "student.sampling.max_tokens=24",
        "teacher.sampling.max_tokens=24",
        "cluster.num_cpus=1",
        env={"CLASSROOM_RUNS": str(runs), "CLASSROOM_OPENAI_BASE_URL": engine_url, "CLASSROOM_OPENAI_MODEL": "embedded"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "multi-turn" in out.stdout and "run directory" in out.stdout
    assert "data: 2 row(s) of task 'gsm8k' skipped; first: " in out.stderr and "test.jsonl:4: invalid JSON" in out.stderr
    assert "data  2 malformed row(s) skipped" in out.stdout
    [run_dir] = [p for p in runs.iterdir() if p.is_dir()]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["problems"] == 4
    assert summary["skipped_rows"]["count"] == 2 and "missing or empty field(s)" in summary["skipped_rows"]["first"][1]
    # Where each actor ran: one node here, every agent of the episode on it.
    placement = summary["placement"]
    assert {"Student student", "TomTeacher", "Grader"} <= set(placement), placement
    assert len({where["node_id"] for where in placement.values()}) == 1
    # The log's header has where the engines run (here: an endpoint, no engine actor).
    header = json.loads((run_dir / "events.jsonl").read_text().splitlines()[0])
    assert header["kind"] == "header" and header["placement"] == {}
    assert (run_dir / "config.yaml").is_file() and (run_dir / "events.jsonl").stat().st_size > 0


def test_ctrl_c_leaves_a_readable_log(engine_url, tmp_path):
    import signal
    import time

    from classroom.environments.eventlog import read_events

    proc = subprocess.Popen(
        [
            *CLASSROOM,
            "run",
            "model=openai",
            "model.models.remote.endpoint.keyless=true",
            "env.num_problems=30",
            "progress=false",
            "cluster.num_cpus=1",
            "student.sampling.max_tokens=64",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CLASSROOM_RUNS": str(tmp_path), "CLASSROOM_OPENAI_BASE_URL": engine_url, "CLASSROOM_OPENAI_MODEL": "embedded"},
    )
    deadline = time.time() + 120
    events = None
    while time.time() < deadline:  # wait until the run has logged its problems
        found = list(Path(tmp_path).glob("*/events.jsonl"))
        if found and len(found[0].read_text().splitlines()) > 1:
            events = found[0]
            break
        # Wait on the child itself (not a blind sleep): a run that dies early fails here.
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=0.2)
            pytest.fail(f"the run ended before logging its problems: {proc.stderr.read()[-2000:]}")
    assert events is not None, "the run never started logging"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted" in err
    header, messages = read_events(events)
    assert header["kind"] == "header" and len(messages) >= 48  # the problems, at least
    summary = json.loads((events.parent / "summary.json").read_text())
    assert summary["status"] == "interrupted"


def test_classroom_serve_answers_over_http(tmp_path):
    """`classroom serve` in its own process: a real engine behind a real HTTP server."""
    import asyncio
    import signal
    import socket

    from classroom.serving.errors import BackendError
    from classroom.serving.openai_backend import OpenAIBackend
    from classroom.serving.types import SamplingParams, as_conversation

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [*CLASSROOM, "serve", "--port", str(port), "--kv-cache-gib", "0.5", "--served-model-name", "smol"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        lines = []
        for line in proc.stdout:  # blocks until the server is up (or the process dies)
            lines.append(line)
            if line.startswith("serving "):
                break
        assert f"serving smol at http://127.0.0.1:{port}/v1" in lines[-1], "".join(lines)
        backend = OpenAIBackend(f"http://127.0.0.1:{port}/v1", "smol", keyless=True, max_retries=0)
        [[reply]] = asyncio.run(backend.chat([as_conversation("What is 3 + 4?")], SamplingParams(max_tokens=16)))
        assert reply.text and reply.usage.completion_tokens > 0 and reply.usage.model == "smol"
        # Started without --runtime-lora it takes no adapters: the line says how to start it.
        adapter = tmp_path / "adapter"
        adapter.mkdir()
        (adapter / "adapter_config.json").write_text("{}")
        loads = OpenAIBackend(f"http://127.0.0.1:{port}/v1", "smol", keyless=True, max_retries=0, loads_adapters=True)
        with pytest.raises(BackendError, match="has no /load_lora_adapter route: start the server with runtime LoRA loading"):
            asyncio.run(loads.load_adapter("x", str(adapter)))
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
    assert proc.returncode == 0
