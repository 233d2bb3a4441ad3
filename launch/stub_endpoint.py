"""A canned OpenAI-compatible endpoint for soak benchmarks: every chat completion is
answered at once with the same short reply, so what a long run measures is classroom
itself (its memory, its event log), not a model.

It runs in a process of its own (``start_stub_endpoint``), speaking just enough HTTP/1.1
(one request per connection) over asyncio streams.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
from typing import Any

REPLY = "3 + 2 = 5. The answer is 5."


def _body() -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-stub",
            "object": "chat.completion",
            "created": 0,
            "model": "stub",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": REPLY}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 12, "total_tokens": 32},
        }
    ).encode()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """One HTTP/1.1 request off the stream: its headers read, its body returned."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    return await reader.readexactly(length)


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        await read_request(reader)
        body = _body()
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def _serve(ports: Any) -> None:
    async def main() -> None:
        server = await asyncio.start_server(_handle, "127.0.0.1", 0, backlog=1024)
        ports.put(server.sockets[0].getsockname()[1])
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def start_stub_endpoint() -> tuple[str, Any]:
    """Start the stub in its own process; returns its base URL and the process."""
    context = multiprocessing.get_context("spawn")
    ports = context.Queue()
    process = context.Process(target=_serve, args=(ports,), daemon=True)
    process.start()
    port = ports.get(timeout=60)
    return f"http://127.0.0.1:{port}/v1", process
