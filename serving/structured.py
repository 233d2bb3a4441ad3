"""Structured output: ask for a pydantic model, validate the reply, repair once.

The schema goes to the backend (vLLM structured outputs; HTTP ``response_format``),
but a reply may still not validate (truncated at ``max_tokens``, a backend that
ignores the schema). One repair turn shows the model its error; a reply that still
fails becomes a :class:`Parsed` with ``value=None`` and the error, never an exception
that ends a run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Generic, TypeVar

from pydantic import BaseModel, ValidationError

from classroom.serving.llm import LLM
from classroom.serving.prompts import PromptSet
from classroom.serving.types import ChatMessage, Completion, Conversation, SamplingParams, Usage

T = TypeVar("T", bound=BaseModel)

PROMPTS = PromptSet.load("classroom.serving", "prompts/structured.yaml")


class Parsed(BaseModel, Generic[T]):
    """One structured reply: the validated value, or the raw text and why it failed."""

    value: T | None
    raw: str
    error: str | None = None
    repaired: bool = False
    usage: Usage = Usage()


def first_json_object(text: str) -> str:
    """The first balanced {...} in text (models like to wrap JSON in prose or fences)."""
    start = text.find("{")
    if start < 0:
        return text
    depth, in_string, escaped = 0, False, False
    for i in range(start, len(text)):
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start : i + 1]
    return text[start:]


def validate_reply(model: type[T], text: str) -> tuple[T | None, str | None]:
    """Validate a reply into ``model``; returns (value, None) or (None, one-line error)."""
    try:
        return model.model_validate_json(first_json_object(text)), None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "reply"
        return None, f"{where}: {first.get('msg', 'invalid')} ({exc.error_count()} error(s))"


async def chat_structured(
    llm: LLM,
    conversations: Sequence[Conversation],
    model: type[T],
    params: SamplingParams,
    *,
    adapter: str | None = None,
    repair: bool = True,
) -> list[Parsed[T]]:
    """One structured reply per conversation, repaired once where it fails."""
    params = params.model_copy(update={"n": 1})
    replies: list[Completion] = [c[0] for c in await llm.chat(conversations, params, schema=model, adapter=adapter)]
    results: list[Parsed[T]] = []
    failed: list[int] = []
    for i, reply in enumerate(replies):
        value, error = validate_reply(model, reply.text)
        results.append(Parsed[model](value=value, raw=reply.text, error=error, usage=reply.usage))  # type: ignore[valid-type]
        if error is not None:
            failed.append(i)
    if not (repair and failed):
        return results
    schema_text = json.dumps(model.model_json_schema())
    repair_conversations = [
        [
            *conversations[i],
            ChatMessage(role="assistant", content=replies[i].text),
            ChatMessage(role="user", content=PROMPTS.render("repair", error=results[i].error, schema=schema_text)),
        ]
        for i in failed
    ]
    second = await llm.chat(repair_conversations, params, schema=model, adapter=adapter)
    for i, completions in zip(failed, second):
        reply = completions[0]
        value, error = validate_reply(model, reply.text)
        results[i] = Parsed[model](  # type: ignore[valid-type]
            value=value,
            raw=reply.text,
            error=None if value is not None else f"after repair: {error}",
            repaired=True,
            usage=results[i].usage + reply.usage,
        )
    return results
