"""Faults of an OpenAI-compatible endpoint: garbage replies are retried or repaired,
counted by kind, and an episode rides through them (a real server on 127.0.0.1)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys

from fault_server import KINDS, FaultServer

from classroom.serving.openai_backend import MAX_CHARS_PER_TOKEN, OpenAIBackend
from classroom.serving.types import SamplingParams, as_conversation

CLASSROOM = [sys.executable, "-m", "classroom.launch.cli"]


async def test_a_thousand_garbage_replies_are_retried_or_repaired_and_counted():
    params = SamplingParams(max_tokens=64)
    with FaultServer(stall_s=10) as server:
        backend = OpenAIBackend(server.url, "faulty", keyless=True, max_retries=5, timeout_s=1, backoff_s=0.01, max_concurrency=64)
        replies = []
        rss_after_warmup = None
        batch = 0
        while server.requests < 1000:
            conversations = [as_conversation(f"question {batch}-{i}") for i in range(100)]
            replies += await backend.chat(conversations, params)
            batch += 1
            if batch == 1:
                rss_after_warmup = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Every conversation got an answer; nothing crashed.
    assert len(replies) == 100 * batch and all(len(r) == 1 for r in replies)
    texts = [r[0].text for r in replies]
    # Every kind was met, many times over (retries move a request along the rotation).
    assert set(server.served) == set(KINDS) and min(server.served.values()) >= 50, server.served
    # What a model may legitimately say came through; what it may not was retried.
    assert {"The answer is 5.", "purple elephant %%% ]]] {{{ lorem", ""} <= set(texts)
    assert max(len(t) for t in texts) <= 64 * MAX_CHARS_PER_TOKEN  # the 200 KB reply was cut
    retried = {"invalid_json", "no_choices", "http_500", "timeout", "invalid_unicode"}
    repaired = {"empty_content", "oversized_reply"}
    assert retried | repaired <= set(backend.faults), backend.faults
    assert sum(backend.faults[k] for k in retried) == backend.retries  # each retried fault, one retry
    # ru_maxrss is the peak (KiB): the next 900 requests may not raise it by more than half.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert rss_after_warmup is not None and peak < 1.5 * rss_after_warmup, (rss_after_warmup, peak)


def test_an_episode_rides_through_a_garbage_endpoint(tmp_path):
    runs = tmp_path / "runs"
    with FaultServer(stall_s=10) as server:
        out = subprocess.run(
            [
                *CLASSROOM,
                "run",
                "model=openai",
                "model.models.remote.endpoint.keyless=true",
                "model.models.remote.endpoint.timeout_s=1",
                "model.models.remote.endpoint.max_retries=5",
                "model.models.remote.endpoint.backoff_s=0.01",
                "env.num_problems=6",
                "env.seed_set_size=2",
                "env.post_test_size=2",
                "env.demo_counts=[0,1]",
                "progress=false",
                "cluster.num_cpus=1",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "CLASSROOM_RUNS": str(runs), "CLASSROOM_OPENAI_BASE_URL": server.url, "CLASSROOM_OPENAI_MODEL": "faulty"},
        )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Traceback" not in out.stderr
    [run_dir] = [p for p in runs.iterdir() if p.is_dir()]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed"
    faults = summary["serving_faults"]["remote"]
    assert {"invalid_json", "no_choices", "http_500", "timeout", "invalid_unicode", "empty_content", "oversized_reply"} <= set(faults)
    assert "faults  remote:" in out.stdout
    # Every reply the episode kept is in the log, each line bounded.
    lines = (run_dir / "events.jsonl").read_text().splitlines()
    assert max(len(line) for line in lines) < 64 * 1024
