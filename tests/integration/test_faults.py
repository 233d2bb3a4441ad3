"""Faults of an OpenAI-compatible endpoint: garbage replies are retried or repaired,
counted by kind, and an episode rides through them (a real server on 127.0.0.1)."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import resource
import subprocess
import threading
import time

import pytest
from support.cli import CLASSROOM, classroom
from support.fault_server import KINDS, FaultServer

from classroom.serving.openai_backend import MAX_CHARS_PER_TOKEN, OpenAIBackend
from classroom.serving.types import SamplingParams, as_conversation

TOM_OVER_HTTP = [
    "run",
    "model=openai",
    "model.models.remote.endpoint.keyless=true",
    "env.num_problems=6",
    "env.seed_set_size=2",
    "env.post_test_size=2",
    "env.demo_counts=[0,1]",
    "progress=false",
    "cluster.num_cpus=1",
]


def test_an_episode_rides_through_a_garbage_endpoint(ray_local, tmp_path):
    runs = tmp_path / "runs"
    with FaultServer(stall_s=10) as server:
        out = classroom(  # in this process, on the tier's Ray
            *TOM_OVER_HTTP,
            "model.models.remote.endpoint.timeout_s=1",
            "model.models.remote.endpoint.max_retries=5",
            "model.models.remote.endpoint.backoff_s=0.01",
            env={"CLASSROOM_RUNS": str(runs), "CLASSROOM_OPENAI_BASE_URL": server.url, "CLASSROOM_OPENAI_MODEL": "faulty"},
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


def test_routing_load_is_shared_by_every_actor_of_the_pool(ray_local):
    """One actor's request holds replica 0; another actor's request goes to replica 1.
    With a board per actor, the second would see two idle replicas, pick 0, and wait."""
    import ray

    from classroom.serving.pool import ModelPool

    class Caller:  # defined here so Ray ships it by value to the worker
        """An agent-like actor holding its own copy of a model (as students do)."""

        def __init__(self, llm):
            self.llm = llm

        async def ask(self, text: str) -> str:
            return (await self.llm.chat([as_conversation(text)], SamplingParams(max_tokens=8)))[0][0].text

    with FaultServer(kinds=("held",)) as busy, FaultServer(kinds=("valid",)) as idle:
        endpoint = {"base_urls": [busy.url, idle.url], "model": "m", "keyless": True, "max_retries": 0}
        pool = ModelPool.start({"models": {"m": {"backend": "openai", "endpoint": endpoint}}, "roles": {"student": "m"}})
        try:
            first, second = (ray.remote(Caller).remote(pool.llm("student")) for _ in range(2))
            held = first.ask.remote("a long question")
            deadline = time.time() + 60
            while busy.requests == 0 and time.time() < deadline:  # until it is in flight there
                done, _ = ray.wait([held], timeout=0.05)
                if done:
                    ray.get(held)  # raises what went wrong
            assert busy.requests == 1
            assert ray.get(second.ask.remote("a short one"), timeout=60) == "The answer is 5."
            assert idle.requests == 1 and busy.requests == 1
            busy.release_held()
            assert ray.get(held, timeout=60) == "The answer is 5."
            assert ray.get(pool.ledger.routing.remote("m")) == {"outstanding": [0, 0], "routed": [1, 1]}
        finally:
            pool.shutdown()


def start_run(args: list[str], url: str, runs) -> tuple[subprocess.Popen, queue.Queue]:
    """`classroom ARGS` against ``url``; its stderr lines arrive on the queue as written."""
    env = {**os.environ, "CLASSROOM_RUNS": str(runs), "CLASSROOM_OPENAI_BASE_URL": url, "CLASSROOM_OPENAI_MODEL": "faulty"}
    run = subprocess.Popen([*CLASSROOM, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in run.stderr], daemon=True).start()  # type: ignore[union-attr]
    return run, lines


def wait_until_held(run: subprocess.Popen, server: FaultServer, timeout_s: float = 120) -> None:
    """Until the server holds requests past its ``hold_after`` (the run is waiting on them)."""
    assert server.hold_after is not None
    deadline = time.time() + timeout_s
    while server.requests <= server.hold_after and time.time() < deadline:
        with contextlib.suppress(subprocess.TimeoutExpired):
            run.wait(timeout=0.1)
            pytest.fail("the run ended before the endpoint went down")
    assert server.requests > server.hold_after, "the run never reached the held requests"


def test_an_endpoint_killed_mid_episode_and_started_again_is_ridden_through(tmp_path):
    with FaultServer(kinds=("valid",), hold_after=20) as first:
        port = first.port
        run, lines = start_run(
            [*TOM_OVER_HTTP, "model.models.remote.endpoint.max_retries=8", "model.models.remote.endpoint.backoff_s=0.2"],
            first.url,
            tmp_path,
        )
        wait_until_held(run, first)  # the run now waits on held requests
    # The endpoint went down, its held requests dropped unanswered; it comes back on the
    # same port within the retry window (8 retries, backoff from 0.2 s).
    with FaultServer(kinds=("valid",), port=port):
        run.wait(timeout=300)
    rest = []
    while not lines.empty():
        rest.append(lines.get())
    assert run.returncode == 0, "".join(rest)[-3000:]
    [summary_path] = list(tmp_path.glob("*/summary.json"))
    summary = json.loads(summary_path.read_text())
    assert summary["status"] == "completed" and summary["serving_faults"]["remote"]["connection"] >= 1


def test_an_endpoint_that_stays_down_stops_the_run_in_one_line_naming_it(tmp_path):
    with FaultServer(kinds=("valid",), hold_after=20) as server:
        url = server.url
        run, lines = start_run(
            [*TOM_OVER_HTTP, "model.models.remote.endpoint.max_retries=1", "model.models.remote.endpoint.backoff_s=0.05"], url, tmp_path
        )
        wait_until_held(run, server)
    run.wait(timeout=300)
    err = []
    while not lines.empty():
        err.append(lines.get())
    assert run.returncode == 1, "".join(err)[-3000:]
    text = "".join(err)
    assert "Traceback" not in text
    stopped = [line for line in err if line.startswith("episode stopped:")]
    assert len(stopped) == 1 and f"{url} did not answer after 2 attempts" in stopped[0], text[-2000:]
    assert "classroom resume" in stopped[0]  # and how to go on once it is back


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
