"""ModelPool: role names mapped to models and their replicas, with routing.

Each role (teacher, student, generator ...) names a model; a model has one or more
replicas (engine actors or endpoints). Every conversation of a batch goes to the
replica with the fewest requests outstanding, counted over every agent that uses the
model (the pool's ledger holds the one board), so a batch spreads over replicas and a
busy replica gets less.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from classroom.serving.adapters import AdapterFiles
from classroom.serving.engine_config import VLLMEngineConfig
from classroom.serving.errors import BackendError
from classroom.serving.ledger import RoutingBoard
from classroom.serving.llm import LLM, AdapterLLM, Schema, Scored, ScoringLLM
from classroom.serving.types import Completion, Conversation, EngineStats, SamplingParams, TopLogprobs

logger = logging.getLogger(__name__)
T = TypeVar("T")


class OpenAIEndpointConfig(BaseModel):
    """An OpenAI-compatible endpoint (one replica per base URL)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    base_urls: tuple[str, ...] = Field(
        description="The server's base URLs (`http://HOST:PORT/v1`), one replica each; credentials in a URL are masked wherever it is shown."
    )
    model: str = Field(description="The model name the server serves (sent as `model` in each request).")
    api_key_env: str = Field(
        "OPENAI_API_KEY", description="The variable that holds the API key (its name: the key itself is never in a config)."
    )
    keyless: bool = Field(
        False,
        description="A server that takes no key (`classroom serve`, a local `vllm serve`): without this an unset key is an error, never sent silently as a placeholder.",
    )
    max_concurrency: int = Field(32, ge=1, description="Requests in flight at once, per replica.")
    timeout_s: float = Field(120.0, gt=0, description="Seconds one request may take before it is retried.")
    max_retries: int = Field(
        3, ge=0, description="Retries of a request (connection errors, timeouts, 429, 5xx, malformed replies), with exponential backoff."
    )
    backoff_s: float = Field(0.5, ge=0, description="The first retry's wait in seconds; each later one waits twice as long.")
    lora_base_model: str | None = Field(
        None,
        min_length=1,
        description="The weights the server serves (`embedded`, a local folder, a hub id), for a server that loads LoRA adapters at run time: vLLM's `vllm serve MODEL --enable-lora` with VLLM_ALLOW_RUNTIME_LORA_UPDATING=True, or `classroom serve --runtime-lora`. Set, a loop may train adapters of the roles this endpoint serves: they are trained on these weights and sent to the server by their folder's path (POST /v1/load_lora_adapter), so the server must read this machine's files (the same machine, or a shared filesystem). None: the endpoint takes no adapters.",
    )


class ModelSpec(BaseModel):
    """One model of the pool: which backend serves it and how many replicas."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    backend: Literal["vllm", "openai"] = Field(
        description="`vllm` (engines this run starts: the `engine` section) or `openai` (an OpenAI-compatible endpoint: the `endpoint` section)."
    )
    replicas: int = Field(1, ge=1, description="Copies of the model; requests go to the least loaded, and a failed one's to the others.")
    engine: VLLMEngineConfig | None = Field(None, description="The vLLM engine's settings (backend vllm).")
    endpoint: OpenAIEndpointConfig | None = Field(None, description="The endpoint's settings (backend openai).")

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
    models: dict[str, ModelSpec] = Field(
        description="Each model of the run by name: its backend (a vLLM engine or an endpoint) and replicas."
    )
    roles: dict[str, str] = Field(description="Which model serves each role (teacher, student, ...): role -> a name in models.")

    @model_validator(mode="after")
    def _roles_name_models(self) -> PoolConfig:
        for role, model in self.roles.items():
            if model not in self.models:
                raise ValueError(f"role {role!r} uses model {model!r}, which is not defined (models: {', '.join(sorted(self.models))})")
        return self

    def adapter_bases(self) -> dict[str, str]:
        """Role -> the model an adapter trained for the role is trained on (``embedded``,
        a folder, a hub id), for the roles whose server loads adapters: the model of its
        vLLM engine, or an endpoint's ``lora_base_model``."""
        bases = {}
        for role, name in self.roles.items():
            spec = self.models[name]
            if spec.engine is not None:
                bases[role] = spec.engine.model
            elif spec.endpoint is not None and spec.endpoint.lora_base_model is not None:
                bases[role] = spec.endpoint.lora_base_model
        return bases


class RoutedLLM:
    """The LLM interface over several replicas, least-outstanding-requests first.

    A replica that fails a call (dead, hung past its timeout, an endpoint down) is set
    aside for ``rest_s`` and its conversations go to the others, each replica tried once
    per call; only when every replica has failed does the call fail.

    The load it routes by is shared: with a ``ledger_name`` (a pool started under Ray),
    every copy of this model, in every agent's actor, routes on the ledger's one board,
    so requests of all agents count in the same replica load. Without one (no Ray, a
    single replica) it keeps a board of its own.
    """

    def __init__(self, name: str, replicas: Sequence[LLM], *, rest_s: float = 60.0, ledger_name: str | None = None):
        if not replicas:
            raise ValueError(f"model {name!r} has no replicas")
        self.name = name
        self.replicas = list(replicas)
        self.rest_s = rest_s
        self.ledger_name = ledger_name
        self.board = RoutingBoard()
        self._ledger: Any = None

    def __getstate__(self) -> dict[str, Any]:
        # A local board is this process's view of load; a copy elsewhere starts afresh.
        return {**self.__dict__, "board": RoutingBoard(), "_ledger": None}

    @property
    def outstanding(self) -> list[int]:
        """Conversations in flight per replica, on this process's own board."""
        return self.board.view(self.name)["outstanding"] or [0] * len(self.replicas)

    @property
    def routed(self) -> list[int]:
        """Conversations sent to each replica, ever, on this process's own board."""
        return self.board.view(self.name)["routed"] or [0] * len(self.replicas)

    @property
    def failed_at(self) -> dict[int, float]:
        return self.board.failed_at.get(self.name, {})

    def _shared(self) -> Any:
        """The ledger actor whose board every copy shares, or None to route locally."""
        if self.ledger_name is None or len(self.replicas) == 1:
            return None
        if self._ledger is None:
            import ray

            self._ledger = ray.get_actor(self.ledger_name)
        return self._ledger

    async def _route(self, count: int, exclude: frozenset[int]) -> list[int]:
        ledger = self._shared()
        if ledger is not None:
            try:
                return await ledger.route.remote(self.name, len(self.replicas), count, list(exclude), self.rest_s)
            except Exception as exc:  # the ledger is gone: route on this process's own view
                logger.warning("model %s: the pool's ledger does not answer (%s); routing on local counts", self.name, type(exc).__name__)
                self.ledger_name, self._ledger = None, None
        # Counted before any await: a concurrent call sees it at once.
        return self.board.route(self.name, len(self.replicas), count, tuple(exclude), self.rest_s)

    async def _release(self, replica: int, count: int, failed: bool = False) -> None:
        ledger = self._shared()
        if ledger is None:
            self.board.release(self.name, replica, count, failed)
            return
        with contextlib.suppress(Exception):  # the ledger is gone; _route falls back next call
            await ledger.release.remote(self.name, replica, count, failed)

    async def chat(
        self,
        conversations: Sequence[Conversation],
        params: SamplingParams,
        *,
        schema: Schema | None = None,
        adapter: str | None = None,
    ) -> list[list[Completion]]:
        def ask(llm: LLM, indices: list[int]) -> Awaitable[list[list[Completion]]]:
            return llm.chat([conversations[i] for i in indices], params, schema=schema, adapter=adapter)

        return await self._spread_out(len(conversations), ask, "conversation(s)")

    async def top_logprobs(self, sequences: Sequence[Scored], k: int, *, adapter: str | None = None) -> list[TopLogprobs]:
        """The model's top-k next tokens over each sequence (see ScoringLLM), spread over
        the replicas as chat requests are."""
        if not all(isinstance(r, ScoringLLM) for r in self.replicas):
            raise BackendError(f"model {self.name!r}: a replica cannot return its token distributions (vLLM engines can)")

        def ask(llm: LLM, indices: list[int]) -> Awaitable[list[TopLogprobs]]:
            return llm.top_logprobs([sequences[i] for i in indices], k, adapter=adapter)  # type: ignore[attr-defined]

        return await self._spread_out(len(sequences), ask, "sequence(s)")

    async def _spread_out(self, count: int, ask: Callable[[LLM, list[int]], Awaitable[list[T]]], what: str) -> list[T]:
        """``count`` requests over the replicas; ``ask(replica, indices)`` sends a share."""
        results: list[T | None] = [None] * count
        groups = await self._spread(range(count), frozenset())
        await asyncio.gather(*(self._send(r, idx, ask, what, results, frozenset()) for r, idx in groups.items()))
        return results  # type: ignore[return-value]

    async def _spread(self, indices: Sequence[int], exclude: frozenset[int]) -> dict[int, list[int]]:
        groups: dict[int, list[int]] = {}
        for index, replica in zip(indices, await self._route(len(indices), exclude)):
            groups.setdefault(replica, []).append(index)
        return groups

    async def _send(
        self,
        replica: int,
        indices: list[int],
        ask: Callable[[LLM, list[int]], Awaitable[list[T]]],
        what: str,
        results: list[T | None],
        tried: frozenset[int],
    ) -> None:
        """One replica's share; on its failure, the share goes to replicas not yet tried."""
        try:
            batch = await ask(self.replicas[replica], indices)
        except BaseException as exc:  # the count is released whatever ended the call
            failed = isinstance(exc, BackendError)
            await asyncio.shield(self._release(replica, len(indices), failed=failed))
            if not failed:
                raise
            tried = tried | {replica}
            if len(tried) == len(self.replicas):
                raise
            logger.warning("model %s: replica %d failed (%s); its %d %s go to another", self.name, replica, exc, len(indices), what)
            groups = await self._spread(indices, tried)
            await asyncio.gather(*(self._send(r, idx, ask, what, results, tried) for r, idx in groups.items()))
            return
        await self._release(replica, len(indices))
        for i, result in zip(indices, batch):
            results[i] = result

    async def load_adapter(self, name: str, adapter: str | AdapterFiles) -> None:
        """Load a LoRA adapter (a folder here, or its files) into every replica, so any
        of them can serve it."""
        if not all(isinstance(r, AdapterLLM) for r in self.replicas):
            raise BackendError(
                f"model {self.name!r}: a replica cannot load LoRA adapters (vLLM engines and endpoints with lora_base_model can)"
            )
        await asyncio.gather(*(r.load_adapter(name, adapter) for r in self.replicas))  # type: ignore[attr-defined]


def _engine_config(name: str, spec: ModelSpec) -> Any:
    """The engine config of model ``name``'s replicas: its served name defaults to ``name``."""
    assert spec.engine is not None
    return spec.engine if spec.engine.served_model_name is not None else spec.engine.model_copy(update={"served_model_name": name})


def _answer(actor: Any) -> bool:
    """Run inside an engine actor by :meth:`ModelPool.dead_engines`: it answers."""
    return True


def _start_ledger() -> tuple[Any, str | None]:
    """The pool's ServingLedger actor and its name (None without Ray: endpoints then
    count alone). Named: backends and engines find it by name wherever they run."""
    import uuid

    import ray

    from classroom.serving.ledger import ServingLedger

    if not ray.is_initialized():
        return None, None
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    name = f"classroom-ledger-{uuid.uuid4().hex}"
    # On the driver's node: the pool's bookkeeping outlives a worker node (and with it an
    # engine) that dies; left to Ray, a 0-CPU actor lands on any node, and went with one.
    # Hard affinity: for a request of no resources Ray picks a random node whatever a
    # *soft* affinity says (ray-project/ray#25360 fixed the hard case only); a cluster
    # test in CI saw a soft-pinned ledger die with the student engine's node. The driver's
    # node cannot die without the driver, so nothing is lost by insisting.
    here = NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=False)
    return ray.remote(ServingLedger).options(num_cpus=0, name=name, scheduling_strategy=here).remote(), name


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
        from classroom.serving.vllm_engine import start_engines

        config = config if isinstance(config, PoolConfig) else PoolConfig.model_validate(config)
        ledger, ledger_name = _start_ledger()
        # Every engine of the pool starts at once: each loads its model while the others do.
        engine_configs = []
        for name, spec in config.models.items():
            if spec.backend == "vllm":
                engine_configs += [(name, _engine_config(name, spec))] * spec.replicas
        try:
            engines = start_engines([engine for _, engine in engine_configs], ledger_name=ledger_name)
        except BaseException:
            if ledger is not None:
                import ray

                ray.kill(ledger)
            raise
        models: dict[str, RoutedLLM] = {}
        for name, spec in config.models.items():
            replicas: list[LLM] = []
            if spec.backend == "vllm":
                replicas = [engine for (model, _), engine in zip(engine_configs, engines) if model == name]
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
                        loads_adapters=ep.lora_base_model is not None,
                    )
                    for url in urls
                ]
            for replica in replicas:
                if isinstance(replica, OpenAIBackend):
                    replica.ledger_name = ledger_name
            models[name] = RoutedLLM(name, replicas, ledger_name=ledger_name)
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

    def engine_actors(self) -> list[tuple[str, Any]]:
        """(label, actor handle) of every engine replica, for placement reports."""
        from classroom.serving.vllm_engine import VLLMBackend

        return [
            (f"engine {name}#{index}", replica.actor)
            for name, routed in self.models.items()
            for index, replica in enumerate(routed.replicas)
            if isinstance(replica, VLLMBackend)
        ]

    def dead_engines(self, settle_s: float = 60.0) -> list[str]:
        """Labels of the engine replicas that are dead for good (their restarts spent,
        or none possible where their node went): the pool cannot serve their models
        again. An engine Ray cannot reach yet cannot tell (its node just died, or it is
        restarting) is asked again until Ray knows, for up to ``settle_s``; one still
        unknown then, or busy, is not counted dead."""
        import time

        import ray

        from classroom.serving.errors import EngineDead
        from classroom.serving.vllm_engine import VLLMBackend

        deadline = time.monotonic() + settle_s
        dead: list[str] = []
        for name, routed in self.models.items():
            for index, replica in enumerate(routed.replicas):
                if not isinstance(replica, VLLMBackend):
                    continue
                while True:
                    try:
                        ray.get(replica.actor.__ray_call__.remote(_answer), timeout=max(deadline - time.monotonic(), 1.0))
                    except (ray.exceptions.ActorDiedError, EngineDead):  # EngineDead: its name is gone with it
                        dead.append(f"engine {name}#{index}")
                    except ray.exceptions.ActorUnavailableError:
                        if time.monotonic() < deadline:
                            time.sleep(1.0)
                            continue
                    except Exception:  # busy past the deadline: not dead
                        pass
                    break
        return dead

    def start_again(self, labels: Sequence[str], config: PoolConfig) -> None:
        """Start the engine replicas ``labels`` names (as :meth:`dead_engines` gives them)
        again, on any node with the resources their config asks; the pool's other
        engines, alive, are left as they are. The new engines have names of their own
        (Ray keeps a dead actor's name a while): copies of this pool taken before (an
        agent's) still name the dead one and fail, as they would have; copies taken after
        reach the new one. Raises ValueError when the pool's ledger is gone too (start
        the pool anew then)."""
        import ray

        from classroom.serving.vllm_engine import VLLMBackend, start_engines

        if self.ledger is not None:
            try:
                ray.get(self.ledger.faults.remote(), timeout=30)
            except Exception as exc:  # gone with its node: the pool cannot route or count
                # Ray's own words say why (its node died, it ran out of memory, ...).
                why = " ".join(str(exc).split())
                why = why if len(why) <= 300 else why[:300] + "..."
                raise ValueError(f"the pool's ledger does not answer ({type(exc).__name__}: {why})") from None
        where: list[tuple[RoutedLLM, int]] = []
        for label in labels:
            name, _, index = label.removeprefix("engine ").rpartition("#")
            assert isinstance(self.models[name].replicas[int(index)], VLLMBackend)
            where.append((self.models[name], int(index)))
        configs = [_engine_config(routed.name, config.models[routed.name]) for routed, _ in where]
        backends = start_engines(configs, ledger_name=self.ledger_name())
        for (routed, index), backend in zip(where, backends):
            routed.replicas[index] = backend

    def ledger_name(self) -> str | None:
        """The name of the pool's ledger actor (None without Ray)."""
        return next((routed.ledger_name for routed in self.models.values()), None)

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
            with contextlib.suppress(Exception):  # already gone with its node
                ray.kill(self.ledger)
            self.ledger = None
        for routed in self.models.values():
            for replica in routed.replicas:
                if isinstance(replica, VLLMBackend):
                    with contextlib.suppress(Exception):  # a dead one: the others are still killed
                        ray.kill(replica.actor)
