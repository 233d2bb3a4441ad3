"""Typed requests and results of the serving layer (small and obvious, like vLLM's)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class SamplingParams(BaseModel):
    """How to sample a completion; the same fields mean the same on every backend."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    n: int = Field(1, ge=1, description="completions per conversation")
    temperature: float = Field(0.0, ge=0.0, description="0 means greedy")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling: the smallest set of tokens with this much probability.")
    max_tokens: int = Field(256, ge=1, description="The longest completion, in tokens.")
    stop: tuple[str, ...] = Field((), description="Strings that end a completion (not included in it).")
    seed: int | None = Field(None, description="Seeds a sampled request (the same seed, the same sample); None: the engine's.")
    logprobs: int | None = Field(
        None, ge=0, le=20, description="Number of top alternatives to return per generated token; None returns none."
    )

    @field_validator("stop", mode="before")
    @classmethod
    def _stop_as_tuple(cls, value: object) -> object:
        # A single stop string is common in configs; accept it.
        return (value,) if isinstance(value, str) else value


class ChatMessage(BaseModel):
    """One turn of a chat conversation."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    role: Literal["system", "user", "assistant"]
    content: str


Conversation = list[ChatMessage]


class Usage(BaseModel):
    """Tokens and latency of one model call (or a sum of several)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["usage"] = "usage"
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            model=self.model or other.model,
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            latency_s=self.latency_s + other.latency_s,
        )


class TokenLogprob(BaseModel):
    """A generated token, its log-probability and the top alternatives at that step."""

    model_config = ConfigDict(frozen=True)
    token: str
    logprob: float
    top: dict[str, float] = Field(default_factory=dict)


class TopLogprobs(BaseModel):
    """A model's k most likely next tokens at each position of a token sequence it was
    given (a teacher's distribution over a student's sample, in distillation), most likely
    first. ``token_ids[j]`` and ``logprobs[j]`` are for the sequence's ``j``-th scored
    token, given every token before it."""

    model_config = ConfigDict(frozen=True)
    token_ids: tuple[tuple[int, ...], ...]
    logprobs: tuple[tuple[float, ...], ...]
    model: str = Field(description="The model (or adapter) that scored the sequence.")


class Completion(BaseModel):
    """One sampled completion of one conversation.

    For ``n > 1`` the conversation's prompt tokens are counted on the first completion
    only, so summing ``usage`` over all completions gives the true token count.
    """

    model_config = ConfigDict(frozen=True)
    text: str
    finish_reason: str | None = None
    logprobs: tuple[TokenLogprob, ...] | None = None
    usage: Usage = Usage()


class RecordedCall(BaseModel):
    """One chat call an engine answered while it recorded (``classroom bench episode``
    replays an episode's calls from these)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    started: float
    ended: float
    conversations: list[Conversation]
    params: SamplingParams
    # The JSON schema the replies had to follow, as sent.
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    adapter: str | None = None


class EngineStats(BaseModel):
    """What an engine did over a stretch of time: how busy, how full, how fast.

    Counters since the engine started; :meth:`since` gives the stretch between two
    readings (a stage of an episode, a whole run). Busy means at least one request in
    flight (verl calls the rest idle time).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = ""
    wall_s: float = 0.0
    busy_s: float = 0.0
    # Integral of requests in flight over time: divided by wall_s, the mean in flight.
    in_flight_s: float = 0.0
    requests: int = 0
    prompt_tokens: int = 0
    generated_tokens: int = 0
    # Prompt tokens looked up in vLLM's prefix cache, and found there (None: not reported).
    prefix_cache_queries: int | None = None
    prefix_cache_hits: int | None = None

    def since(self, earlier: EngineStats) -> EngineStats:
        """The stretch between an earlier reading and this one."""

        def minus(a: int | None, b: int | None) -> int | None:
            return None if a is None or b is None else a - b

        return EngineStats(
            name=self.name,
            wall_s=self.wall_s - earlier.wall_s,
            busy_s=self.busy_s - earlier.busy_s,
            in_flight_s=self.in_flight_s - earlier.in_flight_s,
            requests=self.requests - earlier.requests,
            prompt_tokens=self.prompt_tokens - earlier.prompt_tokens,
            generated_tokens=self.generated_tokens - earlier.generated_tokens,
            prefix_cache_queries=minus(self.prefix_cache_queries, earlier.prefix_cache_queries),
            prefix_cache_hits=minus(self.prefix_cache_hits, earlier.prefix_cache_hits),
        )

    @property
    def busy_fraction(self) -> float | None:
        return self.busy_s / self.wall_s if self.wall_s > 0 else None

    @property
    def mean_in_flight(self) -> float | None:
        return self.in_flight_s / self.wall_s if self.wall_s > 0 else None

    @property
    def tokens_per_s(self) -> float | None:
        return self.generated_tokens / self.wall_s if self.wall_s > 0 else None

    @property
    def prefix_hit_rate(self) -> float | None:
        if not self.prefix_cache_queries or self.prefix_cache_hits is None:
            return None
        return self.prefix_cache_hits / self.prefix_cache_queries

    def summary(self) -> dict[str, float | int | None]:
        """The figures a run records (rounded), for metrics and summaries."""

        def rounded(value: float | None, digits: int = 3) -> float | None:
            return None if value is None else round(value, digits)

        return {
            "wall_s": rounded(self.wall_s, 2),
            "busy_fraction": rounded(self.busy_fraction),
            "mean_in_flight": rounded(self.mean_in_flight, 2),
            "tokens_per_s": rounded(self.tokens_per_s, 1),
            "requests": self.requests,
            "prefix_cache_hit_rate": rounded(self.prefix_hit_rate),
        }


def as_conversation(conversation: Conversation | str | list[dict]) -> Conversation:
    """Accept a plain user prompt or role/content dicts where a conversation is due."""
    if isinstance(conversation, str):
        return [ChatMessage(role="user", content=conversation)]
    return [m if isinstance(m, ChatMessage) else ChatMessage(**m) for m in conversation]


def conversation_dicts(conversation: Conversation | list[dict]) -> list[dict[str, str]]:
    """A conversation as the role/content dicts chat templates and HTTP bodies take."""
    return [{"role": m.role, "content": m.content} for m in as_conversation(conversation)]
