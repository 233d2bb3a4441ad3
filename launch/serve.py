"""`classroom serve`: one engine, behind vLLM's OpenAI-compatible HTTP server.

Several processes (or machines) then share one model through
:class:`~classroom.serving.openai_backend.OpenAIBackend`.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any


def serve_main(args: Any) -> int:
    import ray

    from classroom.serving.engine_config import VLLMEngineConfig
    from classroom.serving.vllm_engine import start_engine

    config = VLLMEngineConfig(
        model=args.model,
        served_model_name=args.served_model_name or ("embedded" if args.model == "embedded" else None),
        kv_cache_gib=args.kv_cache_gib,
        max_model_len=args.max_model_len,
        device=args.device,
        dtype=args.dtype or ("float32" if args.device == "cpu" else "auto"),
        tensor_parallel_size=args.tensor_parallel_size,
    )
    # Engine logs stay in Ray's log folder (/tmp/ray/session_latest/logs): stdout is
    # for the line that says where the server is.
    ray.init(
        address=None if args.ray_address == "local" else args.ray_address,
        include_dashboard=False,
        log_to_driver=False,
    )
    backend = start_engine(config)
    url = asyncio.run(backend.open_http(args.host, args.port, args.runtime_lora))
    adapters = " (loads LoRA adapters at run time)" if args.runtime_lora else ""
    print(f"serving {config.name} at {url}{adapters}  (Ctrl-C to stop)", flush=True)
    lora = f" model.models.remote.endpoint.lora_base_model={args.model}" if args.runtime_lora else ""
    print(
        f"use it: CLASSROOM_OPENAI_BASE_URL={url} CLASSROOM_OPENAI_MODEL={config.name} classroom run model=openai "
        f"model.models.remote.endpoint.keyless=true{lora}",
        flush=True,
    )
    stop = False

    def _stop(*_: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    import time

    while not stop:
        time.sleep(0.5)
    ray.kill(backend.actor)
    ray.shutdown()
    return 0
