"""Benchmarks that measure alternatives side by side in one run, as ratios.

`classroom bench serving`: the same batch through three doors of one engine.
(a) vLLM's engine called directly (inside the engine actor, no classroom wrapping),
(b) :class:`VLLMBackend` through Ray actor calls, (c) :class:`OpenAIBackend` over HTTP
to the engine's OpenAI-compatible server. All three hit the same engine, in
interleaved rounds, so the ratios b/a and c/a measure only the cost of each door.

`classroom bench learner`: a freshly trained LoRA adapter to its first answer, (a)
hot-loaded into the running engine vs (b) by restarting the engine with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import statistics
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
    """
    import tempfile

    import ray

    from classroom.agents.learners import LoRALearner, trainer_actor_name
    from classroom.serving.vllm_engine import VLLMEngineConfig, start_engine

    config = VLLMEngineConfig(**{"served_model_name": "embedded", **(engine or {}), "enable_lora": True})
    data = bench_arithmetic_examples(examples, seed)
    conversation = [as_conversation(data[0]["prompt"])]
    params = SamplingParams(max_tokens=16, temperature=0.0, seed=seed)
    learner = LoRALearner(epochs=1, batch_size=8, seed=seed)
    backend = start_engine(config)
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
    finally:
        await _stop_engine(backend)
        with contextlib.suppress(ValueError):  # training never started: no trainer actor
            ray.kill(ray.get_actor(trainer_actor_name(learner.base_model)))
    median = {k: statistics.median(v) for k, v in seconds.items()}
    return {
        "examples": examples,
        "rounds": rounds,
        "train_seconds": trained["seconds"],
        "train_steps": trained["steps"],
        "train_loss": trained["train_loss"],
        "seconds": median,
        "all_rounds": seconds,
        "ratio_b_over_a": median["b_restart"] / median["a_hot_swap"],
    }


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


def bench_learner_main(args: Any) -> int:
    return _bench_main(
        args, lambda: run_learner_benchmark(examples=args.examples, rounds=args.rounds, seed=args.seed), print_learner_report
    )
