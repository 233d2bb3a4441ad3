"""`classroom serve`: one engine, behind vLLM's OpenAI-compatible HTTP server.

Several processes (or machines) then share one model through
:class:`~classroom.serving.openai_backend.OpenAIBackend`.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from classroom.launch.cli.arguments import CommandParser, command_parser
from classroom.serving.errors import UsageError


def serve_parser() -> CommandParser:
    p = command_parser("serve", "Serve a model over HTTP (OpenAI protocol).")
    p.add_argument("--model", default="embedded", help="'embedded', a local folder or a hub id (default: embedded)")
    p.add_argument("--served-model-name", default=None, help="name clients use (default: the model value)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--dtype", default=None, help="default: float32 on cpu, auto on cuda")
    p.add_argument("--kv-cache-gib", type=float, default=2.0, help="CPU KV cache size")
    p.add_argument("--max-model-len", type=int, default=2048)
    p.add_argument("--tensor-parallel-size", type=int, default=1)
    p.add_argument("--ray-address", default="local", help="'local' (start one), 'auto' or ray://HOST:PORT")
    p.add_argument(
        "--runtime-lora",
        action="store_true",
        help="clients may load LoRA adapters by path (POST /v1/load_lora_adapter, as vLLM's "
        "VLLM_ALLOW_RUNTIME_LORA_UPDATING): a run trains adapters for it with the endpoint's lora_base_model "
        "set to --model. The server reads any folder a client names: for clients you trust only",
    )
    return p


def serve_main(argv: list[str]) -> int:
    """Entry of `classroom serve [--model M] [--port P] ...`."""
    import ray

    args = serve_parser().parse(argv)
    if args.port < 0:
        raise UsageError(f"--port must be >= 0, got {args.port}")

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
