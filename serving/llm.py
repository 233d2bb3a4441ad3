"""The one async interface every model backend implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel

from classroom.serving.adapters import AdapterFiles
from classroom.serving.types import Completion, Conversation, SamplingParams, TopLogprobs

# A JSON schema (dict) or a pydantic model class whose schema constrains the output.
Schema = dict[str, Any] | type[BaseModel]


def schema_dict(schema: Schema | None) -> dict[str, Any] | None:
    """The JSON schema of a pydantic model class, or the dict itself."""
    if schema is None or isinstance(schema, dict):
        return schema
    return schema.model_json_schema()


@runtime_checkable
class LLM(Protocol):
    """Chat completions for a batch of conversations.

    Returns, per conversation, ``params.n`` completions. Backends fan the batch out
    concurrently: the engine behind them batches, so a caller should send many
    conversations in one call rather than await them one at a time.
    """

    name: str

    async def chat(
        self,
        conversations: Sequence[Conversation],
        params: SamplingParams,
        *,
        schema: Schema | None = None,
        adapter: str | None = None,
    ) -> list[list[Completion]]: ...


@runtime_checkable
class AdapterLLM(LLM, Protocol):
    """An LLM that loads LoRA adapters at run time (vLLM engines, pools of them, and
    endpoints whose server loads them: ``lora_base_model``).

    A request that names ``adapter`` is answered with it; loading a name again
    replaces the adapter.
    """

    async def load_adapter(self, name: str, adapter: str | AdapterFiles) -> None: ...


# A sequence to score: the prompt's token ids, then the completion's, whose positions are scored.
Scored = tuple[Sequence[int], Sequence[int]]


@runtime_checkable
class ScoringLLM(LLM, Protocol):
    """An LLM that returns its own next-token distribution (top-k) over token sequences
    it is given, generating nothing: a teacher's in on-policy distillation, over the
    student's samples. The ids are the model's own vocabulary's; a caller whose tokenizer
    differs must not send them (distillation checks the two tokenizers agree)."""

    async def top_logprobs(self, sequences: Sequence[Scored], k: int, *, adapter: str | None = None) -> list[TopLogprobs]: ...
