"""A `classroom run` in its own process (its own Ray; its own engine unless it plays on the
tier's over HTTP) to kill parts of: start
it, wait on its event log for a moment, kill one of its actors or the whole run, and
`classroom resume` it in the test's process (on the tier's kept engines: a resume reads
only the run directory, whichever process and engine it runs on)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import psutil
import pytest

from classroom.agents.messages import Attempt
from classroom.environments.eventlog import read_events
from support.cli import CLASSROOM, classroom
from support.engines import SHARED_MODEL


def actor_process(run: subprocess.Popen, actor_class: str) -> psutil.Process | None:
    """The process of the run's actor of ``actor_class`` (Ray names it ``ray::Class``)."""
    for child in psutil.Process(run.pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if child.cmdline() and child.cmdline()[0].startswith(f"ray::{actor_class}"):
                return child
    return None


def logged(run_dir: Path) -> list:
    """The messages logged so far (a torn last line is skipped)."""
    with contextlib.suppress(FileNotFoundError, ValueError):
        return read_events(run_dir / "events.jsonl")[1]
    return []


def run_until(
    args: list[str],
    runs: Path,
    ready: Callable[[list], bool],
    *,
    timeout_s: float = 300,
    model: Sequence[str] = tuple(SHARED_MODEL),
    env: dict[str, str] | None = None,
) -> tuple[subprocess.Popen, Path]:
    """Start `classroom run ARGS` (its own process group; ``model``: the tier's model
    config, so an engine of its own; ``env`` added to its environment); return once its
    event log satisfies ``ready``."""
    env = {**os.environ, **(env or {}), "CLASSROOM_RUNS": str(runs)}
    run = subprocess.Popen(
        [*CLASSROOM, "run", *model, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    return run, wait_for(run, runs, ready, timeout_s=timeout_s)


def wait_for(run: subprocess.Popen, runs: Path, ready: Callable[[list], bool], *, timeout_s: float = 300) -> Path:
    """The run's folder, once its event log satisfies ``ready``."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        found = [p for p in runs.glob("*") if p.is_dir()]
        if found and ready(logged(found[0])):
            return found[0]
        # Wait on the child itself (not a blind sleep): a run that ends early fails here.
        with contextlib.suppress(subprocess.TimeoutExpired):
            run.wait(timeout=0.2)
            pytest.fail(f"the run ended before the moment to kill: {run.stderr.read()[-3000:]}")
    run.kill()
    pytest.fail(f"the run did not get there within {timeout_s:g} s")


def kill_actor(run: subprocess.Popen, actor_class: str) -> None:
    process = actor_process(run, actor_class)
    assert process is not None, f"no ray::{actor_class} process under the run"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


def kill_run(run: subprocess.Popen) -> None:
    """The whole run at once: its driver, its Ray, its engine (SIGKILL to the group)."""
    os.killpg(run.pid, signal.SIGKILL)
    run.wait(timeout=60)


def each_answered_once(messages: list, samples: dict[str, int] | None = None) -> None:
    """Message ids are unique, and no student answered a problem twice in one stage
    (with the same explanations or exemplars in view); a stage that samples answers
    (``samples``: phase -> answers asked per problem) has exactly that many."""
    assert len({m.id for m in messages}) == len(messages)
    answers = Counter((a.sender, a.phase, a.problem_id, a.context_ids) for a in messages if isinstance(a, Attempt))
    assert answers
    wrong = {key: n for key, n in answers.items() if n != (samples or {}).get(key[1], 1)}
    assert not wrong, list(wrong.items())[:3]


def resume(run_dir: Path, env: dict[str, str | None] | None = None) -> dict:
    """`classroom resume RUN_DIR` in this process (on the kept engines), which must
    succeed; the summary it writes. ``env`` is set for the call."""
    out = classroom("resume", str(run_dir), env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads((run_dir / "summary.json").read_text())


def in_phase(phase: str) -> Callable[[list], bool]:
    return lambda messages: any(isinstance(m, Attempt) and m.phase == phase for m in messages)
