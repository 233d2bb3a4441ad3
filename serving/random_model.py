"""Small models of other architectures with random weights, built locally.

Every shipped CPU config serves one model, SmolLM2-135M (a Llama), to every role, so a
piece that silently assumes that model (a learner's base, a tokenizer, an adapter's
target) would pass every test. A random-weight model of another architecture, served by
the same vLLM CPU build, shows that each path carries the model it is given: its answers
are noise, its shapes are its own.

``random-qwen2`` is a Qwen2 (attention biases, grouped-query attention with one KV head,
an untied output head; SmolLM2 has none of these) of 2 layers and hidden width 128,
seeded, with SmolLM2's tokenizer and chat template (taken from the embedded model, so
nothing is downloaded). It is built on first use into ``$CLASSROOM_CACHE`` beside the
embedded model, like it, and reused afterwards.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class RandomModelSpec(BaseModel):
    """The shape of a random-weight model (a transformers config's fields)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    # transformers model_type (its config class): qwen2, llama, gemma, ...
    model_type: str = Field(description="transformers model_type, e.g. qwen2")
    hidden_size: int = Field(description="width of the residual stream")
    intermediate_size: int = Field(description="width of the MLP")
    num_hidden_layers: int = Field(description="transformer blocks")
    num_attention_heads: int = Field(description="query heads (head width: hidden_size / heads)")
    num_key_value_heads: int = Field(description="key/value heads (grouped-query attention)")
    tie_word_embeddings: bool = Field(description="whether the output head shares the embedding")
    max_position_embeddings: int = Field(8192, description="longest context the rotary embedding is built for")
    seed: int = Field(0, description="torch seed of the random initialisation")


# 64-wide heads: the head size vLLM's CPU attention kernels take (SmolLM2's too).
RANDOM_MODELS: dict[str, RandomModelSpec] = {
    "random-qwen2": RandomModelSpec(
        model_type="qwen2",
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        tie_word_embeddings=False,
    ),
}


def build_random_model(spec: RandomModelSpec, out_dir: Path) -> None:
    """Save a model of ``spec``'s shape with seeded random weights, and the embedded
    model's tokenizer (its vocabulary sizes the embedding), into ``out_dir``."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from classroom.serving.embedded import embedded_model_path

    tokenizer = AutoTokenizer.from_pretrained(embedded_model_path())
    config = AutoConfig.for_model(
        spec.model_type,
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_hidden_layers,
        num_attention_heads=spec.num_attention_heads,
        num_key_value_heads=spec.num_key_value_heads,
        tie_word_embeddings=spec.tie_word_embeddings,
        max_position_embeddings=spec.max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        dtype="float32",
    )
    torch.manual_seed(spec.seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def random_model_path(name: str, cache: Path | None = None) -> Path:
    """The built folder of the random-weight model ``name`` (a key of
    :data:`RANDOM_MODELS`), building it on first use."""
    from classroom.serving.embedded import cached_build

    spec = RANDOM_MODELS[name]
    return cached_build(name, lambda out: build_random_model(spec, out), cache)
