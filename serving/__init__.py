"""How models answer: one async LLM interface, its backends, routing and structured output."""

from classroom.serving.errors import BackendError
from classroom.serving.llm import LLM, Schema
from classroom.serving.types import ChatMessage, Completion, Conversation, SamplingParams, TokenLogprob, Usage, as_conversation

__all__ = [
    "LLM",
    "BackendError",
    "ChatMessage",
    "Completion",
    "Conversation",
    "SamplingParams",
    "Schema",
    "TokenLogprob",
    "Usage",
    "as_conversation",
]
