"""ModelPool: role names mapped to models and their replicas, with routing.

Each role (teacher, student, generator ...) names a model; a model has one or more
replicas (engine actors or endpoints). Every conversation of a batch goes to the
replica with the fewest requests outstanding from this process, so a batch spreads
over replicas and a busy replica gets less.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from classroom.serving.llm import LLM, AdapterLLM, BackendError, Schema
from classroom.serving.types import Completion, Conversation, EngineStats, SamplingParams
from classroom.serving.vllm_engine import VLLMEngineConfig

logger = logging.getLogger(__name__)


class OpenAIEndpointConfig(BaseModel):
    """An OpenAI-compatible endpoint (one replica per base URL)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    base_urls: tuple[str, ...]
    model: str
    # The variable that holds the API key (its name: the key itself is never in a config).
    api_key_env: str = "OPENAI_API_KEY"
    # A server that takes no key (`classroom serve`, a local `vllm serve`): without this
    # an unset key is an error, never sent silently as a placeholder.
    keyless: bool = False
    max_concurrency: int = Field(32, ge=1)
    timeout_s: float = Field(120.0, gt=0)
    max_retries: int = Field(3, ge=0)
    backoff_s: float = Field(0.5, ge=0)


class ModelSpec(BaseModel):
    """One model of the pool: which backend serves it and how many replicas."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    backend: Literal["vllm", "openai"]
    replicas: int = Field(1, ge=1)
    engine: VLLMEngineConfig | None = None
    endpoint: OpenAIEndpointConfig | None = None

    @model_validator(mode="after")
    def _backend_has_its_config(self) -> ModelSpec:
        if self.backend == "vllm" and self.engine is None:
            raise ValueError("backend 'vllm' needs an `engine` section")
        if self.backend == "openai" and self.endpoint is None:
            raise ValueError("backend 'openai' needs an `endpoint` section")
        return self


class PoolConfig(BaseModel):
    """All models of a run and which role uses which."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    models: dict[str, ModelSpec]
    roles: dict[str, str]

    @model_validator(mode="after")
    def _roles_name_models(self) -> PoolConfig:
        for role, model in self.roles.items():
            if model not in self.models:
                raise ValueError(f"role {role!r} uses model {model!r}, which is not defined (models: {', '.join(sorted(self.models))})")
        return self


class RoutedLLM:
    """The LLM interface over several replicas, least-outstanding-requests first.

    A replica that fails a call (dead, hung past its timeout, an endpoint down) is set
    aside for ``rest_s`` and its conversations go to the others, each replica tried once
    per call; only when every replica has failed does the call fail.
    """

    def __init__(self, name: str, replicas: Sequence[LLM], *, rest_s: float = 60.0):
        if not replicas:
            raise ValueError(f"model {name!r} has no replicas")
        self.name = name
        self.replicas = list(replicas)
        self.outstanding = [0] * len(self.replicas)
        self.routed = [0] * len(self.replicas)  # conversations sent to each, ever
        self.rest_s = rest_s
        self.failed_at: dict[int, float] = {}  # replica -> when it last failed

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        # Counts are this process's view of load; a copy in another process starts at 0.
        state["outstanding"] = [0] * len(self.replicas)
        state["routed"] = [0] * len(self.replicas)
        state["failed_at"] = {}
        return state

    def _pick(self, exclude: frozenset[int] = frozenset()) -> int | None:
        """The replica to send to next, or None when every one is excluded."""
        now = time.monotonic()
        allowed = [i for i in range(len(self.replicas)) if i not in exclude]
        resting = {i for i in allowed if i in self.failed_at and now - self.failed_at[i] < self.rest_s}
        candidates = [i for i in allowed if i not in resting] or allowed  # all resting: try them anyway
        if not candidates:
            return None
        # Ties go to the replica used least overall, so an idle pool still spreads.
        return min(candidates, key=lambda i: (self.outstanding[i], self.routed[i]))

    async def chat(
        self,
        conversations: Sequence[Conversation],
        params: SamplingParams,
        *,
        schema: Schema | None = None,
        adapter: str | None = None,
    ) -> list[list[Completion]]:
        results: list[list[Completion] | None] = [None] * len(conversations)
        await asyncio.gather(
            *(
                self._send(r, idx, conversations, params, schema, adapter, results, frozenset())
                for r, idx in self._spread(range(len(conversations))).items()
            )
        )
        return results  # type: ignore[return-value]

    def _spread(self, indices: Sequence[int], exclude: frozenset[int] = frozenset()) -> dict[int, list[int]]:
        groups: dict[int, list[int]] = {}
        for index in indices:
            replica = self._pick(exclude)
            if replica is None:
                break
            self.outstanding[replica] += 1
            self.routed[replica] += 1
            groups.setdefault(replica, []).append(index)
        return groups

    async def _send(
        self,
        replica: int,
        indices: list[int],
        conversations: Sequence[Conversation],
        params: SamplingParams,
        schema: Schema | None,
        adapter: str | None,
        results: list[list[Completion] | None],
        tried: frozenset[int],
    ) -> None:
        """One replica's share; on its failure, the share goes to replicas not yet tried."""
        try:
            batch = await self.replicas[replica].chat([conversations[i] for i in indices], params, schema=schema, adapter=adapter)
        except BaseException as exc:  # the count is released whatever ended the call
            self.outstanding[replica] -= len(indices)
            if not isinstance(exc, BackendError):
                raise
            self.failed_at[replica] = time.monotonic()
            tried = tried | {replica}
            if len(tried) == len(self.replicas):
                raise
            logger.warning("model %s: replica %d failed (%s); its %d conversation(s) go to another", self.name, replica, exc, len(indices))
            groups = self._spread(indices, tried)
            await asyncio.gather(*(self._send(r, idx, conversations, params, schema, adapter, results, tried) for r, idx in groups.items()))
            return
        self.outstanding[replica] -= len(indices)
        for i, completions in zip(indices, batch):
            results[i] = completions

    async def load_adapter(self, name: str, path: str) -> None:
        """Load a LoRA adapter into every replica, so any of them can serve it."""
        if not all(isinstance(r, AdapterLLM) for r in self.replicas):
            raise BackendError(f"model {self.name!r}: a replica cannot load LoRA adapters (only vLLM engines can)")
        await asyncio.gather(*(r.load_adapter(name, path) for r in self.replicas))  # type: ignore[attr-defined]


def _start_ledger() -> Any:
    """The pool's ServingLedger actor (None without Ray: endpoints then count alone)."""
    import ray

    from classroom.serving.ledger import ServingLedger

    if not ray.is_initialized():
        return None
    # It must outlive any engine restart: it is what a restarted engine reads.
    return ray.remote(ServingLedger).options(num_cpus=0, max_restarts=0).remote()


class ModelPool:
    """Role name -> routed LLM. Build with :meth:`start` from a :class:`PoolConfig`."""

    def __init__(self, models: dict[str, RoutedLLM], roles: dict[str, str], ledger: Any = None):
        self.models = models
        self.roles = dict(roles)
        # The ServingLedger actor every copy of a backend reports its faults to.
        self.ledger = ledger

    @classmethod
    def start(cls, config: PoolConfig | dict[str, Any]) -> ModelPool:
        """Start every model's replicas (engine actors need ``ray.init`` first)."""
        from classroom.serving.openai_backend import OpenAIBackend
        from classroom.serving.vllm_engine import start_engine

        config = config if isinstance(config, PoolConfig) else PoolConfig.model_validate(config)
        ledger = _start_ledger()
        models: dict[str, RoutedLLM] = {}
        for name, spec in config.models.items():
            replicas: list[LLM] = []
            if spec.backend == "vllm":
                assert spec.engine is not None
                engine = spec.engine
                if engine.served_model_name is None:
                    engine = engine.model_copy(update={"served_model_name": name})
                replicas = [start_engine(engine, ledger=ledger) for _ in range(spec.replicas)]
            else:
                assert spec.endpoint is not None
                ep = spec.endpoint
                urls = list(ep.base_urls) * spec.replicas
                replicas = [
                    OpenAIBackend(
                        url,
                        ep.model,
                        api_key_env=ep.api_key_env,
                        keyless=ep.keyless,
                        max_concurrency=ep.max_concurrency,
                        timeout_s=ep.timeout_s,
                        max_retries=ep.max_retries,
                        backoff_s=ep.backoff_s,
                        name=name,
                    )
                    for url in urls
                ]
            for replica in replicas:
                if isinstance(replica, OpenAIBackend):
                    replica.ledger = ledger
            models[name] = RoutedLLM(name, replicas)
        return cls(models, config.roles, ledger=ledger)

    def llm(self, role: str) -> RoutedLLM:
        """The model serving ``role``."""
        if role not in self.roles:
            raise KeyError(f"no model for role {role!r} (roles: {', '.join(sorted(self.roles))})")
        return self.models[self.roles[role]]

    async def engine_stats(self) -> dict[str, EngineStats]:
        """Utilisation counters of every engine replica (endpoints report none), by
        ``model#replica``; two readings' :meth:`EngineStats.since` give a stage's."""
        from classroom.serving.vllm_engine import VLLMBackend

        engines = [
            (f"{name}#{index}", replica)
            for name, routed in self.models.items()
            for index, replica in enumerate(routed.replicas)
            if isinstance(replica, VLLMBackend)
        ]
        readings = await asyncio.gather(*(replica.stats() for _, replica in engines))
        return {key: reading for (key, _), reading in zip(engines, readings)}

    def faults(self) -> dict[str, dict[str, int]]:
        """Faults every process saw so far, by model and kind (retried, repaired)."""
        if self.ledger is None:
            return {}
        import ray

        return ray.get(self.ledger.faults.remote())

    def shutdown(self) -> None:
        import ray

        from classroom.serving.vllm_engine import VLLMBackend

        if self.ledger is not None:
            ray.kill(self.ledger)
            self.ledger = None
        for routed in self.models.values():
            for replica in routed.replicas:
                if isinstance(replica, VLLMBackend):
                    ray.kill(replica.actor)
