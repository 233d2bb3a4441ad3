"""OpenAI backend faults against a closed port, the pool's config errors, and the
GPU placement options built from config without a GPU."""

from __future__ import annotations

import pytest
from support.ports import closed_port

from classroom.serving.engine_config import ENGINE_LOG_ENV, VLLMEngineConfig, actor_options, engine_kwargs, placement_bundles
from classroom.serving.openai_backend import EndpointUnavailable, OpenAIBackend
from classroom.serving.pool import ModelPool, PoolConfig
from classroom.serving.types import SamplingParams, as_conversation


async def test_dead_endpoint_fails_clearly_after_counted_retries(monkeypatch):
    monkeypatch.setenv("CLASSROOM_TEST_KEY", "sk-secret-value")
    url = f"http://127.0.0.1:{closed_port()}/v1"
    backend = OpenAIBackend(url, "m", api_key_env="CLASSROOM_TEST_KEY", max_retries=2, backoff_s=0.01)
    with pytest.raises(EndpointUnavailable) as err:
        await backend.chat([as_conversation("hi")], SamplingParams(max_tokens=4))
    assert backend.retries == 2
    message = str(err.value)
    assert url in message and "3 attempts" in message and "\n" not in message
    assert "sk-secret-value" not in message and "sk-secret-value" not in repr(backend)


def test_openai_backend_rejects_bad_settings():
    with pytest.raises(ValueError, match="max_concurrency"):
        OpenAIBackend("http://127.0.0.1:1/v1", "m", keyless=True, max_concurrency=0)


def test_pool_config_errors_name_the_key():
    with pytest.raises(ValueError, match="role 'teacher' uses model 'big'"):
        PoolConfig.model_validate({"models": {"small": {"backend": "vllm", "engine": {}}}, "roles": {"teacher": "big"}})
    with pytest.raises(ValueError, match="needs an `endpoint` section"):
        PoolConfig.model_validate({"models": {"x": {"backend": "openai"}}, "roles": {}})
    with pytest.raises(KeyError, match="no model for role 'grader'"):
        ModelPool({}, {"teacher": "x"}).llm("grader")


def test_cpu_engine_options_give_the_engine_its_threads():
    config = VLLMEngineConfig(cpu_threads=2, num_cpus=1)
    options = actor_options(config)
    assert options["num_gpus"] == 0 and options["num_cpus"] == 1
    assert options["runtime_env"]["env_vars"] == {
        "OMP_NUM_THREADS": "2",
        "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
        **ENGINE_LOG_ENV,
    }
    kwargs = engine_kwargs(config, "/models/x")
    assert kwargs["kv_cache_memory_bytes"] == 2 * 1024**3
    assert "gpu_memory_utilization" not in kwargs and "distributed_executor_backend" not in kwargs
    assert placement_bundles(config) is None


def test_single_gpu_engine_claims_one_device():
    config = VLLMEngineConfig(device="cuda", dtype="auto", gpu_memory_utilization=0.8)
    options = actor_options(config)
    assert options["num_gpus"] == 1 and "scheduling_strategy" not in options
    kwargs = engine_kwargs(config, "m")
    assert kwargs["gpu_memory_utilization"] == 0.8 and "kv_cache_memory_bytes" not in kwargs
    assert placement_bundles(config) is None


def test_engine_config_rejects_bad_values():
    with pytest.raises(ValueError, match="tensor_parallel_size"):
        VLLMEngineConfig(tensor_parallel_size=0)
    with pytest.raises(ValueError, match="kv_cache_gibs"):
        VLLMEngineConfig(kv_cache_gibs=1)
