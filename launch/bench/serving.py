"""`classroom bench serving`: the same batch through three doors of one engine.
(a) vLLM's engine called directly (inside the engine actor, no classroom wrapping),
(b) :class:`VLLMBackend` through Ray actor calls, (c) :class:`OpenAIBackend` over HTTP
to the engine's OpenAI-compatible server. All three hit the same engine, in
interleaved rounds, so the ratios b/a and c/a measure only the cost of each door."""

from __future__ import annotations

import statistics
from typing import Any

from classroom.launch.bench.common import bench_main, bench_prompts, ratio_table, timed
from classroom.serving.types import SamplingParams, as_conversation


async def run_serving_benchmark(
    *, prompts: int = 64, max_tokens: int = 64, rounds: int = 3, seed: int = 0, engine: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Tokens/s of each door, median over ``rounds`` interleaved rounds."""
    import ray

    from classroom.serving.engine_config import VLLMEngineConfig
    from classroom.serving.openai_backend import OpenAIBackend
    from classroom.serving.vllm_engine import start_engine

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
            tokens, seconds = await timed(door())
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


def print_serving_report(result: dict[str, Any]) -> None:
    rates = result["tokens_per_s"]
    labels = {"a_direct": "(a) vLLM engine directly", "b_ray": "(b) VLLMEngine via Ray", "c_http": "(c) OpenAIBackend via HTTP"}
    ratio_table(
        f"serving: {result['prompts']} prompts x {result['max_tokens']} tokens, median of {result['rounds']} rounds",
        ("door", "tokens/s"),
        {key: (label, rates[key]) for key, label in labels.items()},
        "a_direct",
        ("{:.1f}", "{:.3f}"),
    )
    print(f"ratio b/a = {result['ratio_b_over_a']:.3f}   ratio c/a = {result['ratio_c_over_a']:.3f}")


def bench_serving_main(args: Any) -> int:
    return bench_main(
        args,
        lambda: run_serving_benchmark(prompts=args.prompts, max_tokens=args.max_tokens, rounds=args.rounds, seed=args.seed),
        print_serving_report,
    )
