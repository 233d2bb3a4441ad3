"""The pool's routing around a replica that is down or busy, the embedded model's
conversion cache, and engines that cannot be placed, do not start or hang."""

from __future__ import annotations

import asyncio
import time

import pytest
from support.ports import closed_port

from classroom.serving.engine_config import (
    TP_PLACEMENT_STRATEGY,
    VLLMEngineConfig,
    actor_options,
    engine_demand,
    engine_kwargs,
    placement_bundles,
    unplaceable,
)
from classroom.serving.errors import EngineUnplaceable
from classroom.serving.openai_backend import EndpointUnavailable, OpenAIBackend
from classroom.serving.pool import ModelPool, RoutedLLM
from classroom.serving.types import SamplingParams, as_conversation
from classroom.serving.vllm_engine import start_engine


async def test_the_pool_routes_around_a_replica_that_is_down(engine):
    """A replica that fails hands its share to the others and rests; the call succeeds."""
    down = OpenAIBackend(f"http://127.0.0.1:{closed_port()}/v1", "embedded", keyless=True, max_retries=0)
    routed = RoutedLLM("embedded", [down, engine])
    convs = [as_conversation(f"What is {i} plus 1?") for i in range(4)]
    first = await routed.chat(convs, SamplingParams(max_tokens=8))
    assert len(first) == 4 and all(c and c[0].text for c in first)
    assert routed.routed[0] == 2 and 0 in routed.failed_at  # its share went, failed, was resent
    again = await routed.chat(convs, SamplingParams(max_tokens=8))
    assert len(again) == 4 and routed.routed[0] == 2  # resting: nothing more sent its way
    assert routed.outstanding == [0, 0]
    with pytest.raises(EndpointUnavailable):  # every replica down: the call fails, naming one
        await RoutedLLM("embedded", [down, down]).chat(convs[:1], SamplingParams(max_tokens=8))


async def test_pool_spreads_a_batch_over_replicas(engine, engine_url):
    http = OpenAIBackend(engine_url, "embedded", keyless=True)
    routed = RoutedLLM("embedded", [engine, http])  # one engine, both its doors
    pool = ModelPool({"embedded": routed}, {"teacher": "embedded", "student": "embedded"})
    assert pool.llm("teacher") is pool.llm("student")
    convs = [as_conversation(f"What is {i} times 2?") for i in range(6)]
    results = await pool.llm("student").chat(convs, SamplingParams(max_tokens=8))
    assert len(results) == 6 and all(r[0].text for r in results)
    assert routed.routed == [3, 3]
    assert routed.outstanding == [0, 0]


async def test_pool_routes_around_a_busy_replica(engine, engine_url):
    http = OpenAIBackend(engine_url, "embedded", keyless=True)
    routed = RoutedLLM("embedded", [engine, http])
    long = asyncio.ensure_future(routed.chat([as_conversation("Write a long story.")], SamplingParams(max_tokens=96)))
    # chat() counts a request as outstanding before its first await: one step of the
    # loop runs the task up to there (no timing involved).
    for _ in range(100):
        if routed.outstanding != [0, 0]:
            break
        await asyncio.sleep(0)
    assert routed.outstanding == [1, 0]
    await routed.chat([as_conversation("Hi")], SamplingParams(max_tokens=4))
    assert routed.routed == [1, 1]  # the short one went to the idle replica
    await long


def test_tensor_parallel_engine_uses_a_placement_group(ray_local):
    import ray
    from ray.util.placement_group import placement_group, remove_placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    config = VLLMEngineConfig(device="cuda", tensor_parallel_size=4)
    assert placement_bundles(config) == [{"GPU": 1.0, "CPU": 1.0}] * 4
    with pytest.raises(ValueError, match="needs a placement group"):
        actor_options(config)
    # A real (CPU-only) placement group object stands in for the GPU one here, placed as
    # a tensor-parallel group is: all bundles on one node.
    pg = placement_group([{"CPU": 0.01}], strategy=TP_PLACEMENT_STRATEGY)
    try:
        options = actor_options(config, pg)
        strategy = options["scheduling_strategy"]
        assert isinstance(strategy, PlacementGroupSchedulingStrategy)
        assert strategy.placement_group_bundle_index == 0
        assert strategy.placement_group_capture_child_tasks is True
        assert options["num_gpus"] == 0
        assert ray.util.placement_group_table(pg)["strategy"] == "STRICT_PACK"
    finally:
        remove_placement_group(pg)
    kwargs = engine_kwargs(config, "m")
    assert kwargs["tensor_parallel_size"] == 4 and kwargs["distributed_executor_backend"] == "ray"


def test_an_engine_no_node_can_hold_fails_at_once_naming_what_it_asked(ray_local):
    # A node label no node of this (2-CPU) Ray has, and more CPUs than it has: refused
    # before any actor is made, not after engine.startup_timeout_s.
    for config, asked in [
        (VLLMEngineConfig(resources={"teacher_node": 1}), "'teacher_node': 1"),
        (VLLMEngineConfig(num_cpus=64), "'CPU': 64"),
    ]:
        started = time.time()
        with pytest.raises(EngineUnplaceable, match="no node of the cluster has it") as caught:
            start_engine(config, actor_name="classroom-test-unplaceable")
        assert asked in str(caught.value) and "the cluster has (free/total): CPU" in str(caught.value)
        assert time.time() - started < config.startup_timeout_s
    # A tensor-parallel group's demand is for one node (STRICT_PACK): its GPUs summed.
    tp = VLLMEngineConfig(device="cuda", tensor_parallel_size=4, resources={"gpu_node": 1})
    assert engine_demand(tp) == {"GPU": 4.0, "CPU": 4.0, "gpu_node": 1.0}
    assert unplaceable(engine_demand(tp), [{"GPU": 2.0, "CPU": 8.0, "gpu_node": 1.0}] * 2)
    assert not unplaceable(engine_demand(tp), [{"GPU": 8.0, "CPU": 8.0, "gpu_node": 1.0}])
    assert actor_options(VLLMEngineConfig(resources={"teacher_node": 1}))["resources"] == {"teacher_node": 1}


async def test_a_hung_engine_is_an_error_naming_it(ray_local):
    import ray

    from classroom.serving.errors import EngineNotAnswering
    from classroom.serving.vllm_engine import VLLMBackend

    class HungEngine:  # defined here so Ray ships it by value to the worker
        """Fault injection (a test double): an engine actor that takes every call and
        never answers, as a wedged vLLM engine does."""

        async def chat(self, *args):
            await asyncio.Event().wait()  # never set: the call never returns

        async def stats(self):
            await asyncio.Event().wait()

    hung = VLLMBackend(ray.remote(HungEngine).options(max_concurrency=10).remote(), "wedged", call_timeout_s=2.0)
    with pytest.raises(
        EngineNotAnswering, match=r"engine 'wedged' did not answer 2 conversation\(s\) within 2 s \(engine.call_timeout_s\)"
    ):
        await hung.chat([as_conversation("a"), as_conversation("b")], SamplingParams(max_tokens=4))
    with pytest.raises(EngineNotAnswering, match="a stats request"):
        await hung.stats()
    # Routed, the error reaches the caller as the pool's own: one line, the engine named.
    with pytest.raises(EngineNotAnswering):
        await RoutedLLM("wedged", [hung]).chat([as_conversation("c")], SamplingParams(max_tokens=4))


def test_gpu_engine_on_a_cluster_without_gpus_times_out_naming_what_it_waited_for(ray_local):
    from classroom.serving.errors import EngineStartupTimeout
    from classroom.serving.vllm_engine import start_engine

    # Told to wait (for an autoscaler that might add GPU nodes): it waits its time, then
    # names what it waited for. By default it would not wait at all (the test above).
    config = VLLMEngineConfig(device="cuda", tensor_parallel_size=2, startup_timeout_s=1, fail_if_unplaceable=False)
    with pytest.raises(EngineStartupTimeout, match=r"placement group \[\{'GPU': 1.0, 'CPU': 1.0\}.*not ready after 1 s") as err:
        start_engine(config)
    # What the cluster has is in the same line: no GPU at all here.
    assert "the cluster has (free/total): CPU " in str(err.value) and "GPU" not in str(err.value).split("the cluster has")[1]


def test_engine_that_does_not_start_in_time_is_named(ray_local):
    from classroom.serving.errors import EngineStartupTimeout
    from classroom.serving.vllm_engine import start_engine

    config = VLLMEngineConfig(served_model_name="slowpoke", startup_timeout_s=0.5, num_cpus=0)
    with pytest.raises(
        EngineStartupTimeout, match=r"vLLM engine 'slowpoke' \(model embedded\) did not start within 0.5 s \(engine.startup_timeout_s\)"
    ):
        start_engine(config)


def test_embedded_conversion_is_cached(tmp_path, monkeypatch):
    from classroom.serving import embedded

    monkeypatch.setenv("CLASSROOM_CACHE", str(tmp_path))
    # A folder left by a conversion that died half way is not trusted.
    (tmp_path / embedded.EMBEDDED_MODEL_ID).mkdir()
    (tmp_path / embedded.EMBEDDED_MODEL_ID / "config.json").write_text("{}")
    first = embedded.embedded_model_path()
    marker = first / "classroom-conversion.json"
    assert marker.is_file() and (first / "model.safetensors").is_file()
    assert (first / "chat_template.jinja").is_file() or "chat_template" in (first / "tokenizer_config.json").read_text()
    stamp = marker.stat().st_mtime_ns
    again = embedded.embedded_model_path()
    assert again == first and marker.stat().st_mtime_ns == stamp  # reused, not redone
    assert embedded.resolve_model("embedded") == str(first)
    assert embedded.resolve_model(str(first)) == str(first.resolve())
    assert embedded.resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"
