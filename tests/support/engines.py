"""The model config the integration tier's shared engine is started from, and that
episodes run in the tests' own process name to play on that same engine."""

from __future__ import annotations

# `model=embedded` as shipped, but: the greedy reply cache off (a test that repeats a
# request sees it generated again, unless it turns the cache on itself:
# engine.set_response_cache), and a KV cache of 1 GiB (~23,000 tokens of SmolLM2-135M:
# more than any test holds at once), since a kill test's own run has an engine up beside
# it on 24 GiB.
SHARED_MODEL = ["model.models.embedded.engine.response_cache_size=0", "model.models.embedded.engine.kv_cache_gib=1"]


def composed(overrides: list[str]) -> dict:
    """The config `classroom run OVERRIDES` composes, resolved (Hydra's compose API)."""
    from classroom.launch.compose import compose_one

    return compose_one(overrides).config


def shared_pool_config():
    """The PoolConfig of `classroom run` with :data:`SHARED_MODEL`: an episode run with
    those overrides while the engines are kept plays on the shared engine."""
    from classroom.serving.pool import PoolConfig

    return PoolConfig.model_validate(composed(SHARED_MODEL)["model"])
