"""Benchmarks that measure alternatives side by side in one run, as ratios.

`classroom bench serving`: the same batch through three doors of one engine.
(a) vLLM's engine called directly (inside the engine actor, no classroom wrapping),
(b) :class:`VLLMBackend` through Ray actor calls, (c) :class:`OpenAIBackend` over HTTP
to the engine's OpenAI-compatible server. All three hit the same engine, in
interleaved rounds, so the ratios b/a and c/a measure only the cost of each door.

`classroom bench learner`: a freshly trained LoRA adapter to its first answer, (a)
hot-loaded into the running engine vs (b) by restarting the engine with it; then the
throughput of requests with the adapter, without it, and on (c) a merged copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import statistics
import sys
import time
from typing import Any

from classroom.serving.types import SamplingParams, as_conversation


def bench_prompts(count: int, seed: int) -> list[str]:
    """Short arithmetic word problems, fixed by seed."""
    rng = random.Random(seed)
    items = ("apples", "books", "coins", "marbles", "pencils")
    prompts = []
    for _ in range(count):
        a, b = rng.randint(2, 60), rng.randint(2, 60)
        prompts.append(f"Tom has {a} {rng.choice(items)} and gets {b} more. How many does he have? Explain step by step.")
    return prompts


async def _timed(coro: Any) -> tuple[int, float]:
    started = time.perf_counter()
    tokens = await coro
    return tokens, time.perf_counter() - started


async def run_serving_benchmark(
    *, prompts: int = 64, max_tokens: int = 64, rounds: int = 3, seed: int = 0, engine: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Tokens/s of each door, median over ``rounds`` interleaved rounds."""
    import ray

    from classroom.serving.openai_backend import OpenAIBackend
    from classroom.serving.vllm_engine import VLLMEngineConfig, start_engine

    config = VLLMEngineConfig(**{"served_model_name": "embedded", **(engine or {})})
    backend = start_engine(config)
    url = await backend.open_http()
    http = OpenAIBackend(url, config.name, keyless=True, max_concurrency=max(prompts, 1), max_retries=0)
    conversations = [as_conversation(p) for p in bench_prompts(prompts, seed)]
    params = SamplingParams(max_tokens=max_tokens, temperature=0.0, seed=seed)

    async def direct() -> int:
        return await backend.actor.generate_raw.remote(conversations, params)

    async def via_ray() -> int:
        return sum(c[0].usage.completion_tokens for c in await backend.chat(conversations, params))

    async def via_http() -> int:
        return sum(c[0].usage.completion_tokens for c in await http.chat(conversations, params))

    await backend.chat(conversations[:4], params.model_copy(update={"max_tokens": 8}))  # warm up
    doors = {"a_direct": direct, "b_ray": via_ray, "c_http": via_http}
    rates: dict[str, list[float]] = {k: [] for k in doors}
    for _ in range(rounds):
        for key, door in doors.items():
            tokens, seconds = await _timed(door())
            rates[key].append(tokens / seconds)
    ray.kill(backend.actor)
    median = {k: statistics.median(v) for k, v in rates.items()}
    return {
        "prompts": prompts,
        "max_tokens": max_tokens,
        "rounds": rounds,
        "tokens_per_s": median,
        "all_rounds": rates,
        "ratio_b_over_a": median["b_ray"] / median["a_direct"],
        "ratio_c_over_a": median["c_http"] / median["a_direct"],
    }


def _ratio_table(title: str, columns: tuple[str, str], rows: dict[str, tuple[str, float]], base_key: str, formats: tuple[str, str]) -> None:
    """One rich table: a row per alternative with its value and its ratio to ``base_key``'s.

    ``columns`` names the alternatives' column and the value's; ``formats`` are
    ``str.format`` patterns for the value and the ratio.
    """
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column(columns[0])
    table.add_column(columns[1], justify="right")
    table.add_column("vs (a)", justify="right")
    base = rows[base_key][1]
    for label, value in rows.values():
        table.add_row(label, formats[0].format(value), formats[1].format(value / base))
    Console().print(table)


def _bench_main(args: Any, measure: Any, report: Any) -> int:
    """Start a local Ray, run ``measure()`` (a coroutine), stop Ray, print and save the result."""
    import ray

    ray.init(num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False)
    try:
        result = asyncio.run(measure())
    finally:
        ray.shutdown()
    report(result)
    if args.json:
        import json

        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


def print_serving_report(result: dict[str, Any]) -> None:
    rates = result["tokens_per_s"]
    labels = {"a_direct": "(a) vLLM engine directly", "b_ray": "(b) VLLMEngine via Ray", "c_http": "(c) OpenAIBackend via HTTP"}
    _ratio_table(
        f"serving: {result['prompts']} prompts x {result['max_tokens']} tokens, median of {result['rounds']} rounds",
        ("door", "tokens/s"),
        {key: (label, rates[key]) for key, label in labels.items()},
        "a_direct",
        ("{:.1f}", "{:.3f}"),
    )
    print(f"ratio b/a = {result['ratio_b_over_a']:.3f}   ratio c/a = {result['ratio_c_over_a']:.3f}")


def bench_serving_main(args: Any) -> int:
    return _bench_main(
        args,
        lambda: run_serving_benchmark(prompts=args.prompts, max_tokens=args.max_tokens, rounds=args.rounds, seed=args.seed),
        print_serving_report,
    )


def bench_arithmetic_examples(count: int, seed: int) -> list[dict]:
    """Short sums as TRL prompt-completion examples, fixed by seed."""
    rng = random.Random(seed)
    examples = []
    for _ in range(count):
        a, b = rng.randint(2, 60), rng.randint(2, 60)
        examples.append(
            {
                "prompt": [{"role": "user", "content": f"What is {a} + {b}?"}],
                "completion": [{"role": "assistant", "content": f"{a} + {b} = {a + b}."}],
            }
        )
    return examples


async def run_learner_benchmark(
    *, examples: int = 16, rounds: int = 3, seed: int = 0, engine: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Seconds to a first answer with a new adapter: hot swap vs engine restart.

    (a) hot swap: ``load_adapter`` into the running engine, then one greedy request
    with it; (b) restart: shut the engine down, start a fresh one, load the adapter,
    one request. Rounds interleave the two (alternating which goes first); the median
    of each is reported. Training the adapter is timed too, outside the ratio.

    Then one batch of requests, in interleaved rounds: base, with the adapter, and on
    (c) the adapter merged into the base weights, served by a second engine without
    LoRA (its merge and start timed once, with the requests after which it pays).
    """
    import tempfile

    import ray

    from classroom.agents.learners import LoRALearner, trainer_actor_name
    from classroom.serving.merged import merge_adapter
    from classroom.serving.vllm_engine import VLLMEngineConfig, start_engine

    config = VLLMEngineConfig(**{"served_model_name": "embedded", **(engine or {}), "enable_lora": True})
    data = bench_arithmetic_examples(examples, seed)
    conversation = [as_conversation(data[0]["prompt"])]
    params = SamplingParams(max_tokens=16, temperature=0.0, seed=seed)
    learner = LoRALearner(base_model=config.model, epochs=1, batch_size=8, seed=seed)
    backend = start_engine(config)
    merged_backend = None
    try:
        with tempfile.TemporaryDirectory(prefix="classroom-bench-") as tmp:
            trained = await learner.fit(data, f"{tmp}/adapter")
            path = trained["adapter_path"]
            await backend.chat(conversation, params)  # warm up the base path

            async def hot_swap() -> float:
                started = time.perf_counter()
                await backend.load_adapter("student", path)
                await backend.chat(conversation, params, adapter="student")
                return time.perf_counter() - started

            async def restart() -> float:
                nonlocal backend
                started = time.perf_counter()
                await _stop_engine(backend)
                backend = start_engine(config)
                await backend.load_adapter("student", path)
                await backend.chat(conversation, params, adapter="student")
                return time.perf_counter() - started

            seconds: dict[str, list[float]] = {"a_hot_swap": [], "b_restart": []}
            for i in range(rounds):
                order = [("a_hot_swap", hot_swap), ("b_restart", restart)]
                for key, way in order if i % 2 == 0 else order[::-1]:
                    seconds[key].append(await way())
            # (c) the adapter merged into the base weights (`classroom merge`), served by
            # an engine of its own without LoRA: what it costs to set up, once.
            merged = await asyncio.to_thread(merge_adapter, path, f"{tmp}/merged")
            started = time.perf_counter()
            merged_backend = start_engine(
                config.model_copy(update={"model": merged.path, "served_model_name": "merged", "enable_lora": False})
            )
            merged_start_s = time.perf_counter() - started
            # What serving with the adapter costs: one batch of requests with it, without
            # it and on the merged copy, interleaved (the order turns each round).
            batch = [as_conversation(p) for p in bench_prompts(32, seed)]
            batch_params = SamplingParams(max_tokens=48, temperature=0.0)
            ways = {"base": (backend, None), "adapter": (backend, "student"), "merged": (merged_backend, None)}
            batch_seconds: dict[str, list[float]] = {key: [] for key in ways}
            for i in range(rounds):
                order = list(ways)
                for key in order[i % 3 :] + order[: i % 3]:
                    engine_of, adapter = ways[key]
                    started = time.perf_counter()
                    await engine_of.chat(batch, batch_params, adapter=adapter)
                    batch_seconds[key].append(time.perf_counter() - started)
    finally:
        await _stop_engine(backend)
        if merged_backend is not None:
            await _stop_engine(merged_backend)
        with contextlib.suppress(ValueError):  # training never started: no trainer actor
            ray.kill(ray.get_actor(trainer_actor_name(learner.base_model)))
    median = {k: statistics.median(v) for k, v in seconds.items()}
    batch_median = {k: statistics.median(v) for k, v in batch_seconds.items()}
    return {
        "max_lora_rank": config.max_lora_rank,
        "adapter_rank": learner.r,
        "batch_seconds": batch_median,
        # Throughput with the adapter over throughput without (1.0: free).
        "adapter_over_base": batch_median["base"] / batch_median["adapter"],
        "merged_over_base": batch_median["base"] / batch_median["merged"],
        "merge_seconds": merged.seconds,
        "merged_start_seconds": merged_start_s,
        # Requests after which the merged copy has paid for its merge and engine start.
        "merged_break_even_requests": _break_even(
            merged.seconds + merged_start_s, (batch_median["adapter"] - batch_median["merged"]) / len(batch)
        ),
        "examples": examples,
        "rounds": rounds,
        "train_seconds": trained["seconds"],
        "train_steps": trained["steps"],
        "train_loss": trained["train_loss"],
        "seconds": median,
        "all_rounds": seconds,
        "ratio_b_over_a": median["b_restart"] / median["a_hot_swap"],
    }


def _break_even(setup_s: float, saved_per_request_s: float) -> int | None:
    """Requests a one-time ``setup_s`` takes to pay for itself; None if it never does."""
    return math.ceil(setup_s / saved_per_request_s) if saved_per_request_s > 0 else None


async def _stop_engine(backend: Any) -> None:
    import ray

    with contextlib.suppress(Exception):  # a dead or stuck engine is killed below all the same
        await asyncio.wait_for(backend.actor.shutdown.remote(), timeout=30)
    ray.kill(backend.actor)


def print_learner_report(result: dict[str, Any]) -> None:
    print(
        f"trained a LoRA adapter on {result['examples']} examples: {result['train_steps']} steps, "
        f"{result['train_seconds']:.1f} s, loss {result['train_loss']:.3f} (not part of the ratio)"
    )
    seconds = result["seconds"]
    labels = {"a_hot_swap": "(a) hot swap into the running engine", "b_restart": "(b) restart the engine with it"}
    _ratio_table(
        f"new adapter to first answer, median of {result['rounds']} interleaved rounds",
        ("way", "seconds"),
        {key: (label, seconds[key]) for key, label in labels.items()},
        "a_hot_swap",
        ("{:.2f}", "{:.1f}x"),
    )
    print(f"ratio b/a = {result['ratio_b_over_a']:.1f}")
    batch = result["batch_seconds"]
    print(
        f"32 requests x 48 tokens: base {batch['base']:.2f} s, with the adapter {batch['adapter']:.2f} s: "
        f"adapter/base throughput = {result['adapter_over_base']:.2f} (goal >= 0.8; adapter rank {result['adapter_rank']}, "
        f"engine max_lora_rank {result['max_lora_rank']})"
    )
    even = result["merged_break_even_requests"]
    print(
        f"(c) the adapter merged into the base weights, its own engine: {batch['merged']:.2f} s: merged/base throughput = "
        f"{result['merged_over_base']:.2f}, after {result['merge_seconds']:.1f} s to merge and {result['merged_start_seconds']:.1f} s "
        f"to start its engine: "
        + (f"worth it from about {even} requests (an evaluation-only phase: `classroom merge`)" if even else "never worth it here")
    )


def bench_learner_main(args: Any) -> int:
    return _bench_main(
        args, lambda: run_learner_benchmark(examples=args.examples, rounds=args.rounds, seed=args.seed), print_learner_report
    )


# ------------------------------------------------------------------------------- soak


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
    import contextlib
    import os
    import tempfile
    import threading
    from pathlib import Path

    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from classroom.launch.app import CONFIG_MODULE, run_episode
    from classroom.launch.stub_endpoint import start_stub_endpoint

    url, stub = start_stub_endpoint()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_module(config_module=CONFIG_MODULE, version_base=None):
            cfg = OmegaConf.to_container(compose(config_name="config", overrides=soak_overrides(problems, url)), resolve=True)
    finally:
        GlobalHydra.instance().clear()
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
        "status": summary.get("status"),
        "wall_s": round(ended - started, 1),
        # From the benchmark's start: when the episode logged its first message, when warm-up ended.
        "episode_started_s": round(episode_started - started, 1),
        "warmup_ended_s": round(warm - started, 1),
        "messages": sum(summary.get("messages", {}).values()) if "messages" in summary else None,
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


def _episodes_bench_main(name: str, args: Any, measure: Any, report: Any) -> dict[str, Any] | None:
    """Run a benchmark that plays episodes (``measure()``, it starts its own Ray), print
    and save its result; None (told in one line) if its config is refused."""
    from classroom.agents.config_validation import ConfigError
    from classroom.launch.app import check_overrides

    # An override Hydra refuses is told in one line before anything starts.
    error = check_overrides(list(getattr(args, "overrides", None) or []))
    if error is not None:
        print(f"classroom bench {name}: {error}", file=sys.stderr)
        return None
    try:
        result = measure()
    except ConfigError as exc:
        print(f"classroom bench {name}: {exc}", file=sys.stderr)
        return None
    report(result)
    if args.json:
        import json

        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


def bench_soak_main(args: Any) -> int:
    result = _episodes_bench_main("soak", args, lambda: run_soak_benchmark(problems=args.problems, run_dir=args.run_dir), print_soak_report)
    if result is None:
        return 2
    return 0 if result["status"] == "completed" else 1


def sweep_bench_overrides(episodes: int, extra: list[str]) -> list[str]:
    """The benchmark's sweep: the default ToM episode under ``episodes`` seeds."""
    return [f"seed={','.join(str(s) for s in range(episodes))}", "progress=false", *extra]


def run_sweep_benchmark(*, episodes: int = 8, concurrent: int = 4, rounds: int = 1, extra: list[str] | None = None) -> dict[str, Any]:
    """The same sweep run serially and with ``concurrent`` episodes at once, in
    interleaved arms (serial first in odd rounds, concurrent first in even ones), each
    on fresh engines (no reply cache carried over): episodes per hour, the ratio, and
    the engines' busy fraction over each arm."""
    import tempfile
    from pathlib import Path

    from classroom.launch.sweep import SweepJob, compose_jobs, expand_jobs, run_sweep

    overrides = sweep_bench_overrides(episodes, list(extra or []))
    root = Path(tempfile.mkdtemp(prefix="classroom-bench-sweep-"))
    arms: dict[str, list[dict[str, Any]]] = {"serial": [], "concurrent": []}
    scores: dict[str, list[Any]] = {}
    for round_index in range(rounds):
        order = ("serial", "concurrent") if round_index % 2 == 0 else ("concurrent", "serial")
        for arm in order:
            width = 1 if arm == "serial" else concurrent
            jobs_overrides = expand_jobs([*overrides, f"sweep.max_concurrent={width}"])
            jobs = [SweepJob(n, tuple(o), c) for n, (o, c) in enumerate(zip(jobs_overrides, compose_jobs(jobs_overrides)))]
            started = time.perf_counter()
            summaries, engines = run_sweep(root / f"{arm}-{round_index}", jobs, len(jobs))
            wall = time.perf_counter() - started
            completed = sum(s.get("status") == "completed" for s in summaries)
            arms[arm].append(
                {
                    "wall_s": round(wall, 1),
                    "completed": completed,
                    "episodes_per_hour": round(completed / wall * 3600, 1),
                    "engines": engines,
                }
            )
            scores[f"{arm}-{round_index}"] = [s.get("scores") for s in summaries]
    serial = statistics.median(a["episodes_per_hour"] for a in arms["serial"])
    parallel = statistics.median(a["episodes_per_hour"] for a in arms["concurrent"])
    return {
        "episodes": episodes,
        "concurrent": concurrent,
        "rounds": rounds,
        "overrides": overrides,
        "arms": arms,
        "episodes_per_hour": {"serial": serial, "concurrent": parallel},
        "ratio_concurrent_over_serial": round(parallel / serial, 3) if serial else None,
        # Greedy and seeded: every arm should score every episode alike.
        "same_scores": len({json_key(v) for v in scores.values()}) == 1,
        "folder": str(root),
    }


def json_key(value: Any) -> str:
    import json

    return json.dumps(value, sort_keys=True)


def _busy(arm: dict[str, Any]) -> str:
    return ", ".join(f"{name} {figures['busy_fraction']}" for name, figures in arm["engines"].items()) or "n/a"


def print_sweep_report(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"sweep: {result['episodes']} ToM episodes, serial vs {result['concurrent']} at once, {result['rounds']} round(s)")
    for column in ("arm", "wall (s)", "episodes/hour", "engine busy fraction"):
        table.add_column(column, justify="left" if column in ("arm", "engine busy fraction") else "right")
    for arm, runs in result["arms"].items():
        for run in runs:
            table.add_row(arm, f"{run['wall_s']:.1f}", f"{run['episodes_per_hour']:.1f}", _busy(run))
    Console().print(table)
    print(
        f"ratio concurrent/serial = {result['ratio_concurrent_over_serial']} (goal >= 1.5); "
        f"same scores in every arm: {result['same_scores']}; runs in {result['folder']}"
    )


def bench_sweep_main(args: Any) -> int:
    measure = lambda: run_sweep_benchmark(episodes=args.episodes, concurrent=args.concurrent, rounds=args.rounds, extra=args.overrides)  # noqa: E731
    return 2 if _episodes_bench_main("sweep", args, measure, print_sweep_report) is None else 0


def call_waves(calls: list[Any]) -> list[list[Any]]:
    """The recorded calls in waves: calls whose time spans overlap went to the engine
    together (one stage, or stages that ran at once); waves came one after another."""
    waves: list[list[Any]] = []
    end = float("-inf")
    for call in sorted(calls, key=lambda c: c.started):
        if call.started >= end:
            waves.append([])
        waves[-1].append(call)
        end = max(end, call.ended)
    return waves


async def replay_calls(actor: Any, calls: list[Any], how: str) -> float:
    """Replay recorded calls on an engine actor; returns the wall time. ``waves``: as the
    episode issued them, each wave at once, waves in turn; ``one_at_a_time``: every
    conversation alone, in order (one ``generate`` per example); ``all_at_once``: every
    call at once, no stage barriers."""

    def send(call: Any, conversations: list[Any]) -> Any:
        return actor.chat.remote(conversations, call.params, call.schema_, call.adapter)

    started = time.perf_counter()
    if how == "waves":
        for wave in call_waves(calls):
            await asyncio.gather(*(send(call, call.conversations) for call in wave))
    elif how == "one_at_a_time":
        for call in calls:
            for conversation in call.conversations:
                await send(call, [conversation])
    else:
        await asyncio.gather(*(send(call, call.conversations) for call in calls))
    return time.perf_counter() - started


def run_episode_benchmark(*, rounds: int = 1, extra: list[str] | None = None) -> dict[str, Any]:
    """Record the default ToM episode's model calls on its engine, then replay them three
    ways on that engine in interleaved rounds (reply cache off throughout)."""
    import tempfile
    from pathlib import Path

    import ray

    from classroom.launch.app import SharedPools, init_ray, prepare, run_episode
    from classroom.launch.settings import ClusterSettings
    from classroom.launch.sweep import compose_jobs

    overrides = ["progress=false", "model.models.embedded.engine.response_cache_size=0", *(extra or [])]
    [config] = compose_jobs([overrides])
    plan = prepare(config)
    started_ray = init_ray(ClusterSettings(**config["cluster"]))
    shared = SharedPools()
    try:
        pool = shared.get(plan.pool)
        [(_, actor)] = pool.engine_actors()
        ray.get(actor.record_calls.remote(True))
        run_dir = Path(tempfile.mkdtemp(prefix="classroom-bench-episode-"))
        summary = run_episode(config, run_dir, show_progress=False, shared=shared)
        calls = ray.get(actor.record_calls.remote(False))
        ways = ("waves", "one_at_a_time", "all_at_once")
        times: dict[str, list[float]] = {way: [] for way in ways}
        for round_index in range(rounds):
            for way in ways if round_index % 2 == 0 else tuple(reversed(ways)):
                times[way].append(asyncio.run(replay_calls(actor, calls, way)))
    finally:
        shared.shutdown()
        if started_ray:
            ray.shutdown()
    median = {way: statistics.median(values) for way, values in times.items()}
    return {
        "overrides": overrides,
        "episode_wall_s": summary.get("wall_time_s"),
        "calls": len(calls),
        "conversations": sum(len(c.conversations) for c in calls),
        "waves": len(call_waves(calls)),
        "rounds": rounds,
        "replay_s": {way: round(value, 2) for way, value in median.items()},
        # Throughput of (a) over (b): how much the episode's batching buys; of (a) over
        # (c): what its stage barriers cost against the engine's ceiling.
        "ratio_a_over_b": round(median["one_at_a_time"] / median["waves"], 2),
        "ratio_a_over_c": round(median["all_at_once"] / median["waves"], 3),
        "run_dir": str(run_dir),
    }


def print_episode_report(result: dict[str, Any]) -> None:
    replay = result["replay_s"]
    labels = {
        "waves": "(a) as the episode issued them, wave by wave",
        "one_at_a_time": "(b) one conversation at a time",
        "all_at_once": "(c) all at once, no stage barriers",
    }
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"episode: {result['conversations']} conversations in {result['calls']} calls, {result['waves']} waves "
        f"(the default ToM episode took {result['episode_wall_s']} s), median of {result['rounds']} round(s)"
    )
    for column in ("replayed", "wall (s)", "throughput vs (a)"):
        table.add_column(column, justify="left" if column == "replayed" else "right")
    for way, label in labels.items():
        table.add_row(label, f"{replay[way]:.2f}", f"{replay['waves'] / replay[way]:.3f}")
    Console().print(table)
    print(
        f"replay s: (a) {replay['waves']}  (b) {replay['one_at_a_time']}  (c) {replay['all_at_once']}; "
        f"(a)/(b) = {result['ratio_a_over_b']}x (goal >= 5x); (a)/(c) = {result['ratio_a_over_c']}"
    )


def bench_episode_main(args: Any) -> int:
    measure = lambda: run_episode_benchmark(rounds=args.rounds, extra=args.overrides)  # noqa: E731
    return 2 if _episodes_bench_main("episode", args, measure, print_episode_report) is None else 0
