"""`classroom bench soak`: a long episode against a stub endpoint, each process's memory sampled."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from classroom.launch.bench.common import episodes_bench_main


def _rss_kib(pid: int) -> int | None:
    """Resident memory of a process (KiB) from /proc; None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _process_name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return "?"
    words = [a.decode(errors="replace") for a in argv if a]
    if not words:
        return "?"
    if words[0].startswith("ray::"):
        return words[0].split()[0]
    name = words[0].rsplit("/", 1)[-1]
    if name.startswith("python"):  # a Python process: name its script or module
        for i, word in enumerate(words[1:], start=1):
            if word == "-m" and i + 1 < len(words):
                return words[i + 1]
            if word.endswith(".py"):
                return "/".join(word.rsplit("/", 2)[-2:])
    return name


def _descendants(root: int) -> list[int]:
    """``root`` and every process below it (from /proc; Linux only)."""
    import os

    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(parents.get(pid, ()))
    return found


def soak_overrides(problems: int, url: str) -> list[str]:
    """A ToM episode over ``problems`` GSM8K problems against the stub endpoint."""
    return [
        "model=openai",
        "model.models.remote.endpoint.keyless=true",
        f"model.models.remote.endpoint.base_urls=[{url}]",
        "model.models.remote.endpoint.model=stub",
        "model.models.remote.endpoint.max_concurrency=64",
        "task=gsm8k",
        "task.splits=[train]",
        "env.split=train",
        f"env.num_problems={problems}",
        "env.seed_set_size=20",
        "env.post_test_size=20",
        "env.demo_counts=[0,2]",
        "progress=false",
    ]


def run_soak_benchmark(*, problems: int = 2000, sample_s: float = 0.5, run_dir: str | None = None) -> dict[str, Any]:
    """One long episode against a stub endpoint while every process's RSS is sampled.

    Growth is each process's peak RSS after warm-up over its RSS at the end of warm-up.
    Warm-up is the first quarter of the episode, counted from its first logged message:
    before it, Ray, the endpoint and the actors are still starting (importing), which
    is start-up, not growth, and takes longer or shorter by the machine's load.
    """
    import os
    import tempfile
    import threading
    from pathlib import Path

    from classroom.launch.compose import compose_one
    from classroom.launch.runner import run_episode
    from classroom.launch.stub_endpoint import start_stub_endpoint

    url, stub = start_stub_endpoint()
    cfg = compose_one(soak_overrides(problems, url)).config
    folder = Path(run_dir or tempfile.mkdtemp(prefix="classroom-soak-"))
    samples: list[tuple[float, dict[int, tuple[str, int]]]] = []
    # (time, size of events.jsonl): when the episode logs its first message.
    logged: list[tuple[float, int]] = []
    done = threading.Event()

    def sample() -> None:
        me = os.getpid()
        while not done.is_set():
            reading = {}
            for pid in _descendants(me):
                if pid == stub.pid:
                    continue
                rss = _rss_kib(pid)
                if rss is not None:
                    reading[pid] = (_process_name(pid) if pid != me else "driver", rss)
            now = time.time()
            samples.append((now, reading))
            with contextlib.suppress(OSError):
                logged.append((now, (folder / "events.jsonl").stat().st_size))
            done.wait(sample_s)

    sampler = threading.Thread(target=sample, daemon=True)
    started = time.time()
    sampler.start()
    try:
        summary = run_episode(cfg, folder, show_progress=False)  # type: ignore[arg-type]
    finally:
        done.set()
        sampler.join()
        stub.kill()
    ended = time.time()
    events = folder / "events.jsonl"
    header = len(events.open("rb").readline()) if events.is_file() else 0
    episode_started = next((when for when, size in logged if size > header), started)
    warm = episode_started + (ended - episode_started) / 4
    processes: dict[int, dict[str, Any]] = {}
    for when, reading in samples:
        for pid, (name, rss) in reading.items():
            entry = processes.setdefault(pid, {"name": name, "after_warmup": None, "peak_after": 0})
            entry["name"] = name  # the last seen: a Ray worker becomes its actor
            if when <= warm:
                entry["warmup_last"] = rss
            else:
                entry["after_warmup"] = entry["after_warmup"] or entry.get("warmup_last") or rss
                entry["peak_after"] = max(entry["peak_after"], rss)
    rows = [
        {"pid": pid, "process": e["name"], "rss_after_warmup_mib": e["after_warmup"] / 1024, "peak_after_mib": e["peak_after"] / 1024}
        for pid, e in processes.items()
        if e["after_warmup"] and e["after_warmup"] > 50 * 1024  # the processes that matter (>50 MiB)
    ]
    for row in rows:
        row["growth"] = row["peak_after_mib"] / row["rss_after_warmup_mib"] - 1
    rows.sort(key=lambda r: -r["rss_after_warmup_mib"])
    return {
        "problems": problems,
        "status": summary.status,
        "wall_s": round(ended - started, 1),
        # From the benchmark's start: when the episode logged its first message, when warm-up ended.
        "episode_started_s": round(episode_started - started, 1),
        "warmup_ended_s": round(warm - started, 1),
        "messages": sum(summary.messages.values()) if summary.messages else None,
        "events_mib": events.stat().st_size / 2**20 if events.is_file() else 0.0,
        "events_lines": sum(1 for _ in events.open()) if events.is_file() else 0,
        "samples": len(samples),
        "processes": rows,
        "max_growth": max((r["growth"] for r in rows), default=0.0),
        "run_dir": str(folder),
    }


def print_soak_report(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"soak: a ToM episode of {result['problems']} problems against a stub endpoint ({result['wall_s']} s)")
    for column in ("process", "RSS after warm-up (MiB)", "peak after (MiB)", "growth"):
        table.add_column(column, justify="left" if column == "process" else "right")
    for row in result["processes"]:
        table.add_row(row["process"], f"{row['rss_after_warmup_mib']:.0f}", f"{row['peak_after_mib']:.0f}", f"{100 * row['growth']:+.1f}%")
    Console().print(table)
    print(
        f"episode under way at {result['episode_started_s']} s, warm-up until {result['warmup_ended_s']} s; "
        f"status {result['status']}; events.jsonl {result['events_lines']} lines, {result['events_mib']:.1f} MiB, written as they came; "
        f"largest growth after warm-up {100 * result['max_growth']:+.1f}% (goal < 10%); run directory {result['run_dir']}"
    )


def bench_soak_main(args: Any) -> int:
    result = episodes_bench_main("soak", args, lambda: run_soak_benchmark(problems=args.problems, run_dir=args.run_dir), print_soak_report)
    if result is None:
        return 2
    return 0 if result["status"] == "completed" else 1
