"""A scriptable OpenAI-compatible upstream for the guard's tests (aiohttp, loopback)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Script = Callable[[web.Request, dict[str, Any]], Awaitable[web.StreamResponse]]


def completion(
    text: str, *, usage: tuple[int, int] | None = (12, 7), finish: str = "stop", chat: bool = True
) -> dict[str, Any]:
    choice: dict[str, Any] = (
        {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish, "logprobs": None}
        if chat
        else {"index": 0, "text": text, "finish_reason": finish, "logprobs": None}
    )
    body: dict[str, Any] = {
        "id": "cmpl-1",
        "object": "chat.completion" if chat else "text_completion",
        "created": 1,
        "model": "chatbot-v7",
        "choices": [choice],
    }
    if usage is not None:
        body["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}
    return body


def chunk(delta: str | None = None, *, finish: str | None = None, role: bool = False, chat: bool = True) -> bytes:
    if chat:
        d: dict[str, Any] = {}
        if role:
            d["role"] = "assistant"
        if delta is not None:
            d["content"] = delta
        choice: dict[str, Any] = {"index": 0, "delta": d, "finish_reason": finish}
    else:
        choice = {"index": 0, "text": delta or "", "finish_reason": finish}
    body = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "chatbot-v7", "choices": [choice]}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def usage_chunk(prompt: int, completion: int) -> bytes:
    body = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "chatbot-v7",
        "choices": [],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
    }
    return b"data: " + json.dumps(body).encode() + b"\n\n"


DONE = b"data: [DONE]\n\n"


def answer(text: str, **kwargs: Any) -> Script:
    async def script(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        return web.json_response(completion(text, chat=request.path.endswith("chat/completions"), **kwargs))

    return script


def stream(
    deltas: list[str],
    *,
    finish: str = "stop",
    usage: tuple[int, int] | None = (12, 7),
    cut: bool = False,
    pause: float = 0.0,
    raw: list[bytes] | None = None,
    gate: asyncio.Event | None = None,
) -> Script:
    """Answer as SSE: one event per delta (``raw``: exact bytes per write instead); ``cut`` drops the connection."""

    async def script(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        chat = request.path.endswith("chat/completions")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        writes = raw if raw is not None else [chunk(role=True, chat=chat)] + [chunk(d, chat=chat) for d in deltas]
        for i, data in enumerate(writes):
            if gate is not None and i == 2:
                await gate.wait()
            await response.write(data)
            if pause:
                await asyncio.sleep(pause)
        if cut:
            assert request.transport is not None
            request.transport.close()
            return response
        if raw is None:
            await response.write(chunk(finish=finish, chat=chat))
            wants_usage = (body.get("stream_options") or {}).get("include_usage")
            if usage is not None and wants_usage:
                await response.write(usage_chunk(*usage))
            await response.write(DONE)
        await response.write_eof()
        return response

    return script


def status(code: int, payload: Any) -> Script:
    async def script(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        return web.json_response(payload, status=code)

    return script


def slow(seconds: float) -> Script:
    async def script(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        await asyncio.sleep(seconds)
        return web.json_response(completion("late"))

    return script


def text(body_text: str, content_type: str = "text/plain") -> Script:
    async def script(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        return web.Response(text=body_text, content_type=content_type)

    return script


@dataclass
class Upstream:
    """The fake model server: ``script`` answers the next completion requests; ``received`` keeps their bodies."""

    name: str = "model"
    script: Script = field(default_factory=lambda: answer("Hello, how can I help?"))
    received: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    runner: web.AppRunner | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> Upstream:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completion)
        app.router.add_post("/v1/completions", self._completion)
        app.router.add_route("*", "/echo/{tail:.*}", self._echo)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/cut", self._cut)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self.runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def _completion(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.received.append(body)
        self.headers.append(dict(request.headers))
        return await self.script(request, body)

    async def _models(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"object": "list", "data": [{"id": self.name}]}, headers={"X-Served-By": self.name})

    async def _cut(self, request: web.Request) -> web.StreamResponse:
        """Promise 1000 bytes, send 10, hang up."""
        response = web.StreamResponse(headers={"Content-Length": "1000"})
        await response.prepare(request)
        await response.write(b"x" * 10)
        assert request.transport is not None
        request.transport.close()
        return response

    async def _echo(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        return web.json_response(
            {
                "method": request.method,
                "path": request.path_qs,
                "headers": {k.lower(): v for k, v in request.headers.items()},
                "body": body.decode(errors="replace"),
                "served_by": self.name,
            },
            status=201,
            headers={"X-Upstream": self.name, "Connection": "keep-alive, X-Secret-Hop", "X-Secret-Hop": "1"},
        )
