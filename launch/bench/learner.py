"""`classroom bench learner`: a freshly trained LoRA adapter to its first answer, (a)
hot-loaded into the running engine vs (b) by restarting the engine with it; then the
throughput of requests with the adapter, without it, and on (c) a merged copy."""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import statistics
import time
from typing import Any

from classroom.launch.bench.common import bench_main, bench_prompts, ratio_table
from classroom.serving.types import SamplingParams, as_conversation


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
    from classroom.serving.engine_config import VLLMEngineConfig
    from classroom.serving.merged import merge_adapter
    from classroom.serving.vllm_engine import start_engine

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
    ratio_table(
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
    return bench_main(args, lambda: run_learner_benchmark(examples=args.examples, rounds=args.rounds, seed=args.seed), print_learner_report)


# ------------------------------------------------------------------------------- soak
