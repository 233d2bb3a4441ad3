"""The LLM interface over any OpenAI-compatible endpoint.

A `vllm serve` fleet, `classroom serve`, llama.cpp's server or a hosted API. Bounded
concurrency (a semaphore per backend), a timeout per request, retries with exponential
backoff on connection errors, timeouts, 429, 5xx and malformed replies (a body that is
not JSON or not UTF-8, a completion without choices). A reply far longer than the
request allows is cut to size. Every fault is counted by kind (``faults``, and the
pool's ledger when it has one). The API key is read from the environment variable the
config names and is never logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import weakref
from collections import Counter
from collections.abc import Sequence
from typing import Any

from classroom.serving.adapters import AdapterFiles, materialize
from classroom.serving.errors import BackendError, ParseError
from classroom.serving.llm import Schema, schema_dict
from classroom.serving.secrets import mask_url
from classroom.serving.types import (
    Completion,
    Conversation,
    SamplingParams,
    TokenLogprob,
    Usage,
    conversation_dicts,
)

logger = logging.getLogger(__name__)


class EndpointUnavailable(BackendError):
    """The endpoint did not answer after every retry."""


class MissingKey(BackendError):
    """The endpoint needs an API key and its variable is not set."""


class MalformedReply(ParseError):
    """A reply that came back but cannot be read as a chat completion."""

    def __init__(self, kind: str, detail: str):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


# A token is rarely longer than this many characters: a reply longer than max_tokens
# times it did not come from a model honouring the request.
MAX_CHARS_PER_TOKEN = 32


def _fault_kind(exc: BaseException) -> str:
    """The kind a retried fault is counted under."""
    import openai

    if isinstance(exc, MalformedReply):
        return exc.kind
    if isinstance(exc, openai.APITimeoutError):  # before APIConnectionError, its base
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return "connection"
    if isinstance(exc, openai.RateLimitError):
        return "rate_limited"
    if isinstance(exc, openai.InternalServerError):
        return f"http_{exc.status_code}"
    return type(exc).__name__


def _checked(response: Any) -> Any:
    """The response, if it is a chat completion with choices that carry a message."""
    choices = getattr(response, "choices", None)
    if not isinstance(choices, list) or not choices:
        raise MalformedReply("no_choices", "the completion has no choices")
    if any(getattr(choice, "message", None) is None for choice in choices):
        raise MalformedReply("no_message", "a choice has no message")
    return response


def key_is_missing(api_key_env: str, *, keyless: bool) -> bool:
    """Whether an endpoint that needs a key finds its variable unset in this process."""
    return not keyless and not os.environ.get(api_key_env)


class OpenAIBackend:
    """Chat completions against an OpenAI-compatible URL."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        keyless: bool = False,
        max_concurrency: int = 32,
        timeout_s: float = 120.0,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        name: str | None = None,
        loads_adapters: bool = False,
    ):
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        if key_is_missing(api_key_env, keyless=keyless):
            raise MissingKey(f"{mask_url(base_url)}: ${api_key_env} is not set (set it, or mark the endpoint keyless)")
        self.base_url = base_url
        # The URL as logs and errors show it: credentials in it are masked.
        self.shown_url = mask_url(base_url)
        self.keyless = keyless
        self.model = model
        self.name = name or model
        self.api_key_env = api_key_env
        self.max_concurrency = max_concurrency
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        # The server loads LoRA adapters at run time (the endpoint's lora_base_model is set).
        self.loads_adapters = loads_adapters
        # Retries made so far (all requests), for monitoring and tests.
        self.retries = 0
        # Faults seen by this copy of the backend, by kind (retried or repaired).
        self.faults: Counter[str] = Counter()
        # Where every copy (in every actor) also counts its faults: the pool's ledger
        # (a named actor, found by name: no actor handle travels with the backend).
        self.ledger_name: str | None = None
        self._ledger: Any = None
        # Per event loop (an HTTP client and a semaphore belong to the loop they were
        # made on): the concurrent episodes of a sweep each run their own loop.
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[Any, asyncio.Semaphore]] = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIBackend(base_url={self.shown_url!r}, model={self.model!r})"

    def __getstate__(self) -> dict[str, Any]:
        # The client and semaphore belong to one event loop; rebuild them on arrival
        # (e.g. when the backend is shipped to a Ray actor).
        state = self.__dict__.copy()
        state["_clients"] = None
        state["_ledger"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _clients=weakref.WeakKeyDictionary())

    def _ensure_client(self) -> tuple[Any, asyncio.Semaphore]:
        """This event loop's client and semaphore, made on first use."""
        loop = asyncio.get_running_loop()
        if loop not in self._clients:
            import openai

            # A keyless server is sent a placeholder (the client needs one); any other
            # endpoint its key, read here, in the process that sends the requests.
            api_key = "keyless" if self.keyless else os.environ.get(self.api_key_env)
            if not api_key:
                raise MissingKey(f"{self.shown_url}: ${self.api_key_env} is not set in this process")
            client = openai.AsyncOpenAI(
                base_url=self.base_url,
                api_key=api_key,
                timeout=self.timeout_s,
                max_retries=0,  # retries are ours, so they are counted and bounded
            )
            self._clients[loop] = (client, asyncio.Semaphore(self.max_concurrency))
        return self._clients[loop]

    def _request(self, conversation: Conversation, params: SamplingParams, schema: Schema | None, adapter: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": adapter or self.model,
            "messages": conversation_dicts(conversation),
            "n": params.n,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_tokens,
        }
        if params.stop:
            body["stop"] = list(params.stop)
        if params.seed is not None:
            body["seed"] = params.seed
        if params.logprobs is not None:
            body["logprobs"] = True
            body["top_logprobs"] = params.logprobs
        if schema is not None:
            json_schema = schema_dict(schema)
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": json_schema.get("title", "output"), "schema": json_schema},
            }
        return body

    def _fault(self, kind: str) -> None:
        self.faults[kind] += 1
        if self.ledger_name is None:
            return
        import ray

        try:
            if self._ledger is None:
                self._ledger = ray.get_actor(self.ledger_name)
            self._ledger.add.remote(self.name, kind)  # fire and forget: never slows a request
        except (ValueError, ray.exceptions.RayError):
            pass  # the pool has shut down: the local count stays

    async def _create(self, body: dict[str, Any]) -> Any:
        import openai

        client, semaphore = self._ensure_client()
        retryable = (
            openai.APIConnectionError,
            openai.APITimeoutError,
            openai.RateLimitError,
            openai.InternalServerError,
            MalformedReply,
        )
        attempt = 0
        while True:
            try:
                async with semaphore:
                    try:
                        return _checked(await client.chat.completions.create(**body))
                    except json.JSONDecodeError as exc:
                        raise MalformedReply("invalid_json", str(exc)) from exc
                    except UnicodeDecodeError as exc:
                        raise MalformedReply("invalid_unicode", str(exc)) from exc
                    except openai.APIResponseValidationError as exc:
                        raise MalformedReply("invalid_completion", exc.message) from exc
            except retryable as exc:
                self._fault(_fault_kind(exc))
                if attempt >= self.max_retries:
                    what = "answered with malformed replies" if isinstance(exc, MalformedReply) else "did not answer"
                    raise EndpointUnavailable(
                        f"{self.shown_url} {what} after {attempt + 1} attempts ({_fault_kind(exc)}: {type(exc).__name__})"
                    ) from exc
                self.retries += 1
                delay = self.backoff_s * (2**attempt)
                attempt += 1
                logger.warning(
                    "%s: %s, retry %d/%d in %.1fs",
                    self.shown_url,
                    type(exc).__name__,
                    attempt,
                    self.max_retries,
                    delay,
                )
                await asyncio.sleep(delay)
            except openai.APIStatusError as exc:
                self._fault(f"http_{exc.status_code}")
                raise BackendError(f"{self.shown_url} refused the request ({exc.status_code}): {exc.message}") from exc

    async def _one(
        self, conversation: Conversation, params: SamplingParams, schema: Schema | None, adapter: str | None
    ) -> list[Completion]:
        started = time.time()
        response = await self._create(self._request(conversation, params, schema, adapter))
        latency = time.time() - started
        usage = response.usage
        completions = []
        for i, choice in enumerate(response.choices):
            logprobs = None
            if params.logprobs is not None and choice.logprobs and choice.logprobs.content:
                logprobs = tuple(
                    TokenLogprob(
                        token=item.token,
                        logprob=item.logprob,
                        top={alt.token: alt.logprob for alt in (item.top_logprobs or [])},
                    )
                    for item in choice.logprobs.content
                )
            n = len(response.choices)
            completion_tokens = (usage.completion_tokens if usage else 0) // max(n, 1)
            text, finish_reason = choice.message.content or "", choice.finish_reason
            if not text:
                self._fault("empty_content")
            if len(text) > params.max_tokens * MAX_CHARS_PER_TOKEN:
                # Memory and event-log lines stay bounded whatever an endpoint sends.
                self._fault("oversized_reply")
                text, finish_reason = text[: params.max_tokens * MAX_CHARS_PER_TOKEN], "length"
            completions.append(
                Completion(
                    text=text,
                    finish_reason=finish_reason,
                    logprobs=logprobs,
                    usage=Usage(
                        model=response.model or self.model,
                        prompt_tokens=(usage.prompt_tokens if usage and i == 0 else 0),
                        completion_tokens=completion_tokens,
                        latency_s=latency,
                    ),
                )
            )
        return completions

    async def chat(
        self,
        conversations: Sequence[Conversation],
        params: SamplingParams,
        *,
        schema: Schema | None = None,
        adapter: str | None = None,
    ) -> list[list[Completion]]:
        """Every conversation in flight at once, up to ``max_concurrency``."""
        self._ensure_client()
        return list(await asyncio.gather(*(self._one(c, params, schema, adapter) for c in conversations)))

    async def load_adapter(self, name: str, adapter: str | AdapterFiles) -> None:
        """Have the server load (or replace) LoRA adapter ``name``; requests then name it
        as their model. vLLM's runtime route (``POST /v1/load_lora_adapter``, in place
        when the name is loaded already) is sent the adapter folder's path: the server
        reads it, so it must see this machine's files. Files packed elsewhere are
        written into this machine's adapter folder first."""
        if not self.loads_adapters:
            raise BackendError(
                f"{self.shown_url} ({self.name}) takes no LoRA adapters: set its endpoint's lora_base_model "
                "for a server that loads them at run time (vllm serve --enable-lora with "
                "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True, or classroom serve --runtime-lora)"
            )
        import httpx

        path = materialize(adapter) if isinstance(adapter, AdapterFiles) else os.path.abspath(adapter)
        if not os.path.isfile(os.path.join(path, "adapter_config.json")):
            raise BackendError(f"LoRA adapter folder {path} has no adapter_config.json")
        headers = {} if self.keyless else {"Authorization": f"Bearer {os.environ.get(self.api_key_env, '')}"}
        url = self.base_url.rstrip("/") + "/load_lora_adapter"
        body = {"lora_name": name, "lora_path": path, "load_inplace": True}
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                response = await client.post(url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            self._fault("connection")
            raise EndpointUnavailable(f"{self.shown_url} did not answer loading adapter {name!r} ({type(exc).__name__})") from exc
        if response.status_code == 404:
            raise BackendError(
                f"{self.shown_url} has no /load_lora_adapter route: start the server with runtime LoRA loading "
                "(vllm serve --enable-lora with VLLM_ALLOW_RUNTIME_LORA_UPDATING=True, or classroom serve --runtime-lora)"
            )
        if response.status_code != 200:
            raise BackendError(f"{self.shown_url} refused adapter {name!r} ({response.status_code}): {_error_message(response)}")


def _error_message(response: Any) -> str:
    """The message of an error reply (vLLM's ``{"error": {"message": ...}}``), or its text, cut short."""
    try:
        error = response.json().get("error")
        message = error.get("message") if isinstance(error, dict) else None
    except (ValueError, AttributeError):
        message = None
    return (message or response.text or "no message")[:300]
