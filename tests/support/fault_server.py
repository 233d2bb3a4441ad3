"""A fault-injecting OpenAI-compatible server: a test helper, named as one.

It speaks just enough HTTP/1.1 (asyncio streams, one request per connection) to answer
``POST /v1/chat/completions`` the way a broken endpoint does, in rotation: a valid reply,
nonsense text, empty content, no choices, truncated JSON, HTTP 500, a stall past the
client's timeout, a 200 KB reply, invalid unicode. A request seen for the first time
gets the next kind of the rotation; the same request sent again (a retry) gets the kind
after the one it got last, so every request meets a usable reply within five tries
(however concurrent requests interleave) and over many requests every kind is met
equally. Usable replies say "The answer is 5." in a JSON body shaped as vLLM's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections import Counter

from classroom.launch.stub_endpoint import read_request

KINDS = (
    "valid",
    "nonsense",
    "empty",
    "no_choices",
    "truncated_json",
    "http_500",
    "stall",
    "huge",
    "invalid_unicode",
)


def _completion(content: str | None, *, choices: bool = True) -> dict:
    body: dict = {
        "id": "chatcmpl-fault",
        "object": "chat.completion",
        "created": 0,
        "model": "faulty",
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }
    if choices:
        body["choices"] = [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]
    return body


def _reply(kind: str) -> tuple[int, bytes]:
    """Status and body for one kind of reply."""
    if kind == "valid":
        return 200, json.dumps(_completion("The answer is 5.")).encode()
    if kind == "nonsense":
        return 200, json.dumps(_completion("purple elephant %%% ]]] {{{ lorem")).encode()
    if kind == "empty":
        return 200, json.dumps(_completion("")).encode()
    if kind == "no_choices":
        return 200, json.dumps(_completion(None, choices=False)).encode()
    if kind == "truncated_json":
        whole = json.dumps(_completion("The answer is 5.")).encode()
        return 200, whole[: len(whole) // 2]
    if kind == "http_500":
        return 500, json.dumps({"error": {"message": "injected fault", "type": "server_error"}}).encode()
    if kind == "huge":
        return 200, json.dumps(_completion("na " * 70_000 + "The answer is 5.")).encode()
    if kind == "invalid_unicode":
        return (
            200,
            b'{"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": "\xff\xfe bad"}, "finish_reason": "stop"}]}',
        )
    raise ValueError(kind)


class FaultServer:
    """Runs on 127.0.0.1 in a thread of its own; ``url`` is its OpenAI base URL.

    ``stall_s`` is how long a stalled request is held (longer than the client's timeout).
    ``served`` counts the kinds answered so far.
    """

    def __init__(
        self,
        *,
        stall_s: float = 5.0,
        kinds: tuple[str, ...] = KINDS,
        port: int = 0,
        hold_after: int | None = None,
        scripted: str = "",
    ):
        self.stall_s = stall_s
        # The content of every reply of kind "scripted": model output written by the test.
        self.scripted = scripted
        self.kinds = kinds
        # Requests after the first ``hold_after`` wait for release_held(); closing the
        # server drops them unanswered (what a killed endpoint does mid-request).
        self.hold_after = hold_after
        self.served: Counter[str] = Counter()
        self.requests = 0
        self._next_of: dict[bytes, int] = {}  # a request's body -> the rotation index it gets next
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.AbstractServer | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.port = port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> FaultServer:
        self._thread.start()

        async def start() -> asyncio.AbstractServer:
            self._closing = asyncio.Event()
            self._released = asyncio.Event()
            return await asyncio.start_server(self._handle, "127.0.0.1", self.port)

        self._server = asyncio.run_coroutine_threadsafe(start(), self._loop).result(timeout=10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def release_held(self) -> None:
        """Answer every request of kind "held" (now and from now on)."""
        self._loop.call_soon_threadsafe(self._released.set)

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            assert self._server is not None
            self._server.close()
            self._closing.set()  # stalled and held requests are dropped
            pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            await asyncio.gather(*pending, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            body = await read_request(reader)
            index = self._next_of.get(body, self.requests)
            self._next_of[body] = index + 1
            kind = self.kinds[index % len(self.kinds)]
            self.requests += 1
            self.served[kind] += 1
            if self.hold_after is not None and self.requests > self.hold_after:
                kind = "held"
            if kind == "held":  # answered when the test lets it go; dropped if the server closes
                waits = [asyncio.ensure_future(e.wait()) for e in (self._released, self._closing)]
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                for w in waits:
                    w.cancel()
                if self._closing.is_set():
                    return
                kind = "valid"
            if kind == "stall":
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), self.stall_s)
                return  # the client gave up long ago; close without a word
            status, body = (200, json.dumps(_completion(self.scripted)).encode()) if kind == "scripted" else _reply(kind)
            reason = "OK" if status == 200 else "Internal Server Error"
            writer.write(
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
