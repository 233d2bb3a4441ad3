"""A grading worker process killed mid-work: replaced, and nothing already graded lost."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal

import psutil

from classroom.agents.grading import Grader
from classroom.agents.messages import Problem

# A power tower: math-verify would work on its integers for hours. The grader must not.
POWER_TOWER = "9^{9^{9^{9}}}"


async def test_a_killed_grading_worker_is_replaced_and_nothing_is_lost() -> None:
    problem = Problem(question="How many?", answer="5")
    grader = Grader(time_limit_s=5)
    try:
        assert await grader.verdicts([(problem, "5")]) == [(True, None)]  # the worker is up
        (worker,) = multiprocessing.active_children()
        busy = psutil.Process(worker.pid)
        idle_cpu = sum(busy.cpu_times()[:2])
        grading = asyncio.ensure_future(grader.verdicts([(problem, POWER_TOWER), (problem, "5"), (problem, "4")]))
        # The tower holds the worker for its 5 s limit: killed once it is at work on it.
        while sum(busy.cpu_times()[:2]) < idle_cpu + 0.2 and not grading.done():
            await asyncio.sleep(0.02)
        os.kill(worker.pid, signal.SIGKILL)
        verdicts = await grading
    finally:
        grader.close()
    assert grader.restarts == 1
    assert [c for c, _ in verdicts] == [None, True, False]
    assert "timed out" in str(verdicts[0][1])
