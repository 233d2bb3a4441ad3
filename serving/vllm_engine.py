"""The client of a vLLM engine actor (:class:`VLLMBackend`, the
:class:`~classroom.serving.llm.LLM` interface) and starting engines on the cluster.

The engine's settings are :mod:`.engine_config`, the actor :mod:`.engine_host`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

from classroom.serving.adapters import AdapterFiles, pack_adapter
from classroom.serving.engine_config import (
    TP_PLACEMENT_STRATEGY,
    VLLMEngineConfig,
    actor_options,
    engine_demand,
    placement_bundles,
    unplaceable,
)
from classroom.serving.engine_host import _engine_actor_class
from classroom.serving.errors import BackendError, EngineDead, EngineNotAnswering, EngineStartupTimeout, EngineUnplaceable
from classroom.serving.llm import Schema, Scored, schema_dict
from classroom.serving.types import (
    Completion,
    Conversation,
    EngineStats,
    SamplingParams,
    TopLogprobs,
)


class VLLMBackend:
    """The :class:`~classroom.serving.llm.LLM` interface over a VLLMEngine actor.

    Holds only the actor handle, so it can be passed to other actors. Every call waits
    at most ``call_timeout_s`` and then raises :class:`EngineNotAnswering` naming the
    engine (the request is cancelled on the engine's side).
    """

    def __init__(
        self,
        actor: Any,
        name: str,
        call_timeout_s: float = VLLMEngineConfig.model_fields["call_timeout_s"].default,
        *,
        actor_name: str | None = None,
    ):
        self._actor = actor
        self.name = name
        self.call_timeout_s = call_timeout_s
        # The engine actor's name in Ray: a copy sent to another actor finds it by name.
        self.actor_name = actor_name

    @property
    def actor(self) -> Any:
        if self._actor is None:
            import ray

            try:
                self._actor = ray.get_actor(self.actor_name)
            except ValueError:  # no actor has the name now: it died, or its pool was stopped
                raise EngineDead(f"engine {self.name!r} is gone (no actor named {self.actor_name!r})") from None
        return self._actor

    def __getstate__(self) -> dict[str, Any]:
        # No actor handle travels: one among the arguments of an actor that Ray may
        # restart (a stateless student) makes Ray log an error line at its start.
        return {**self.__dict__, "_actor": None} if self.actor_name else self.__dict__.copy()

    async def _call(self, what: str, ref: Any) -> Any:
        import ray

        try:
            return await asyncio.wait_for(ref, timeout=self.call_timeout_s)
        except ray.exceptions.ActorUnavailableError:
            raise EngineDead(f"engine {self.name!r} could not be reached during {what} (its process or node went away)") from None
        except ray.exceptions.RayActorError as exc:
            raise EngineDead(f"engine {self.name!r} died during {what} and was not restarted ({type(exc).__name__})") from None
        except asyncio.TimeoutError:
            ray.cancel(ref)
            raise EngineNotAnswering(
                f"engine {self.name!r} did not answer {what} within {self.call_timeout_s:g} s (engine.call_timeout_s)"
            ) from None

    async def chat(
        self,
        conversations: Sequence[Conversation],
        params: SamplingParams,
        *,
        schema: Schema | None = None,
        adapter: str | None = None,
    ) -> list[list[Completion]]:
        # Send the schema as a dict: the caller's model class may live in a module the
        # actor cannot import.
        what = f"{len(conversations)} conversation(s)"
        return await self._call(what, self.actor.chat.remote(list(conversations), params, schema_dict(schema), adapter))

    async def top_logprobs(self, sequences: Sequence[Scored], k: int, *, adapter: str | None = None) -> list[TopLogprobs]:
        """The engine's top-k next tokens at each completion position (see ScoringLLM)."""
        sent = [(list(p), list(c)) for p, c in sequences]
        return await self._call(f"scoring {len(sent)} sequence(s)", self.actor.top_logprobs.remote(sent, k, adapter))

    async def load_adapter(self, name: str, adapter: str | AdapterFiles) -> None:
        """Send the adapter's files (a folder read here, in the process that has it, or
        the files themselves) to the engine, on whatever node it runs."""
        files = adapter
        if isinstance(adapter, str):
            try:
                files = pack_adapter(adapter)
            except (OSError, ValueError) as exc:
                raise BackendError(f"adapter {name!r}: {exc}") from None
        await self._call(f"loading adapter {name!r}", self.actor.load_adapter.remote(name, files))

    async def stats(self) -> EngineStats:
        """The engine's utilisation counters (see :class:`EngineStats`)."""
        return await self._call("a stats request", self.actor.stats.remote())

    async def open_http(self, host: str = "127.0.0.1", port: int = 0, runtime_lora: bool = False) -> str:
        return await self.actor.open_http.remote(host, port, runtime_lora)


def start_engine(config: VLLMEngineConfig, *, actor_name: str | None = None, ledger_name: str | None = None) -> VLLMBackend:
    """Start a VLLMEngine actor (with its placement group on GPUs) and wait until ready.

    Needs ``ray.init`` first. ``ledger_name`` (a ServingLedger actor's) keeps the
    adapters it serves, so that Ray's restart of a dead engine brings them back. Raises
    :class:`EngineStartupTimeout` naming what it waited for, with what the cluster has,
    when the resources or the engine do not come up in time.
    """
    return start_engines([config], actor_names=[actor_name], ledger_name=ledger_name)[0]


def start_engines(
    configs: Sequence[VLLMEngineConfig], *, actor_names: Sequence[str | None] | None = None, ledger_name: str | None = None
) -> list[VLLMBackend]:
    """Start several engines at once (each loads its model while the others do) and
    wait until every one is ready; see :func:`start_engine`."""
    import ray

    names = list(actor_names or [None] * len(configs))
    launched = []
    try:
        for config, name in zip(configs, names):
            launched.append(_launch(config, name, ledger_name))
        for config, _, _, ready in launched:
            try:
                ray.get(ready, timeout=config.startup_timeout_s)
            except ray.exceptions.GetTimeoutError as exc:
                raise EngineStartupTimeout(
                    f"vLLM engine {config.name!r} (model {config.model}) did not start within "
                    f"{config.startup_timeout_s:g} s (engine.startup_timeout_s); {cluster_resources_line()}"
                ) from exc
    except BaseException:
        for _, actor, _, _ in launched:
            ray.kill(actor)
        raise
    return [VLLMBackend(actor, config.name, config.call_timeout_s, actor_name=name) for config, actor, name, _ in launched]


def _launch(config: VLLMEngineConfig, actor_name: str | None, ledger_name: str | None) -> tuple[VLLMEngineConfig, Any, str, Any]:
    """Place an engine actor and ask it to start; returns what waiting on it needs."""
    import ray

    demand = engine_demand(config)
    if config.fail_if_unplaceable and unplaceable(demand, [n["Resources"] for n in ray.nodes() if n.get("Alive")]):
        raise EngineUnplaceable(
            f"engine {config.name!r} needs {demand} on one node and no node of the cluster has it "
            f"(engine.resources, engine.num_cpus, engine.device, engine.tensor_parallel_size); {cluster_resources_line()}"
        )
    placement_group = None
    bundles = placement_bundles(config)
    if bundles is not None:
        from ray.util.placement_group import placement_group as make_pg

        placement_group = make_pg(bundles, strategy=TP_PLACEMENT_STRATEGY)
        try:
            ray.get(placement_group.ready(), timeout=config.startup_timeout_s)
        except ray.exceptions.GetTimeoutError as exc:
            from ray.util.placement_group import remove_placement_group

            remove_placement_group(placement_group)
            raise EngineStartupTimeout(
                f"placement group {bundles} ({TP_PLACEMENT_STRATEGY}) for engine {config.name!r} not ready after "
                f"{config.startup_timeout_s:g} s: the cluster lacks those GPUs on one node; {cluster_resources_line()}"
            ) from exc
    options = actor_options(config, placement_group)
    engine_id = uuid.uuid4().hex
    options["name"] = actor_name = actor_name or f"classroom-engine-{engine_id}"
    actor = _engine_actor_class().options(**options).remote(config, ledger_name, engine_id)
    return config, actor, actor_name, actor.start.remote()


def cluster_resources_line() -> str:
    """What the cluster has, and has free, per resource: for errors about placement."""
    import ray

    try:
        total, free = ray.cluster_resources(), ray.available_resources()
    except Exception:  # an error message must not fail for want of figures
        return "the cluster's resources are unknown"
    keys = [k for k in ("CPU", "GPU", "memory") if k in total] + sorted(
        k for k in total if k not in ("CPU", "GPU", "memory") and not k.startswith("node:")
    )
    shown = ", ".join(
        f"{k} {free.get(k, 0):g}/{total[k]:g}" if k != "memory" else f"memory {free.get(k, 0) / 2**30:.1f}/{total[k] / 2**30:.1f} GiB"
        for k in keys
    )
    return f"the cluster has (free/total): {shown or 'nothing'}"
