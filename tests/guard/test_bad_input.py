"""Bad input (issue 12): every one gets a clear answer in the OpenAI error shape, is counted, and the proxy lives on."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from tests.guard.conftest import GuardFactory, Running
from tests.guard.test_proxy import ASK, OTHER, content, events
from tests.guard.upstream import Upstream, answer, slow, status, stream, text


async def still_serves(guard: Running, upstream: Upstream) -> None:
    upstream.script = answer("still here")
    async with await guard.chat(ASK) as response:
        assert response.status == 200
        assert (await response.json())["choices"][0]["message"]["content"] == "still here"


async def error_of(response: aiohttp.ClientResponse) -> dict[str, str]:
    body = await response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b'{"model": "m", "messages": [', "invalid_json"),
        (b"\xff\xfe{}", "invalid_encoding"),
        (b'["not", "an", "object"]', "invalid_request"),
        (b'{"model": "m", "messages": "hi"}', "invalid_request"),
        (b'{"model": "m", "messages": [], "stream": "yes"}', "invalid_request"),
    ],
)
async def test_malformed_requests_get_400(make_guard: GuardFactory, upstream: Upstream, data: bytes, code: str) -> None:
    guard = await make_guard()
    async with guard.session.post(
        guard.url + "/v1/chat/completions", data=data, headers={"Content-Type": "application/json"}
    ) as response:
        assert response.status == 400
        assert (await error_of(response))["code"] == code
    assert upstream.received == []
    assert await guard.metric("airlock_guard_requests_total", outcome="invalid") == 1
    await still_serves(guard, upstream)


async def test_bodies_over_the_limit_get_413_with_or_without_a_content_length(
    make_guard: GuardFactory, upstream: Upstream
) -> None:
    guard = await make_guard(settings={"max_body_bytes": 1000})
    big = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x" * 2000}]}).encode()
    async with guard.session.post(guard.url + "/v1/chat/completions", data=big) as response:
        assert response.status == 413
        assert (await error_of(response))["code"] == "request_too_large"

    async def chunked() -> object:
        for i in range(0, len(big), 100):
            yield big[i : i + 100]

    async with guard.session.post(guard.url + "/v1/chat/completions", data=chunked()) as response:
        assert response.status == 413
    assert upstream.received == []
    assert await guard.metric("airlock_guard_requests_total", outcome="invalid") == 2
    await still_serves(guard, upstream)


async def test_upstream_down_is_502(make_guard: GuardFactory, upstream: Upstream) -> None:
    guard = await make_guard(upstream="http://127.0.0.1:9")  # discard port: nothing listens
    async with await guard.chat(ASK) as response:
        assert response.status == 502
        assert (await error_of(response))["code"] == "upstream_unreachable"
    assert await guard.metric("airlock_guard_requests_total", outcome="upstream_error") == 1


async def test_upstream_too_slow_is_504(make_guard: GuardFactory, upstream: Upstream) -> None:
    guard = await make_guard(settings={"upstream_timeout": 0.2})
    upstream.script = slow(0.6)
    async with await guard.chat(ASK) as response:
        assert response.status == 504
        assert (await error_of(response))["code"] == "upstream_timeout"
    assert await guard.metric("airlock_guard_requests_total", outcome="upstream_timeout") == 1


async def test_upstream_errors_are_relayed_and_redacted_when_redact_is_set(
    make_guard: GuardFactory, upstream: Upstream
) -> None:
    guard = await make_guard(modes={"pii": "redact"})
    upstream.script = status(500, {"error": {"message": f"context: {OTHER} ...", "code": "internal"}})
    async with await guard.chat(ASK) as response:
        assert response.status == 500
        raw = await response.text()
    assert OTHER not in raw
    assert "[REDACTED:email]" in raw
    upstream.script = status(400, {"error": {"message": "bad model", "code": "model_not_found"}})
    async with await guard.chat(ASK) as response:
        assert response.status == 400
    assert await guard.metric("airlock_guard_requests_total", outcome="upstream_error") == 1
    assert await guard.metric("airlock_guard_requests_total", outcome="upstream_rejected") == 1


async def test_an_answer_that_is_not_json_is_not_forwarded_when_redacting(
    make_guard: GuardFactory, upstream: Upstream
) -> None:
    guard = await make_guard(modes={"pii": "redact"})
    upstream.script = text(f"plain text with {OTHER}")
    async with await guard.chat(ASK) as response:
        assert response.status == 502
        assert OTHER not in await response.text()


async def test_a_stream_cut_mid_way_ends_with_the_redacted_tail_and_an_error_event(
    make_guard: GuardFactory, upstream: Upstream
) -> None:
    guard = await make_guard(modes={"pii": "redact"})
    upstream.script = stream(["Also, ", f"{OTHER} is"], cut=True)
    async with await guard.chat({**ASK, "stream": True}) as response:
        raw = await response.read()
    decoded = events(raw)
    assert OTHER.encode() not in raw
    assert content(decoded) == "Also, [REDACTED:email] is"
    assert decoded[-1]["error"]["code"] == "upstream_error"
    assert await guard.metric("airlock_guard_requests_total", outcome="upstream_error") == 1
    assert await guard.metric("airlock_guard_answers_total", finish_reason="none") == 1
    await still_serves(guard, upstream)


async def test_a_stream_silent_too_long_is_cut(make_guard: GuardFactory, upstream: Upstream) -> None:
    guard = await make_guard(settings={"upstream_timeout": 0.2})
    gate = asyncio.Event()  # the upstream stalls after two events until the test ends
    upstream.script = stream(["one ", "two ", "three"], gate=gate)
    try:
        async with await guard.chat({**ASK, "stream": True}) as response:
            decoded = events(await response.read())
    finally:
        gate.set()
    assert decoded[-1]["error"]["code"] == "upstream_timeout"
    assert await guard.metric("airlock_guard_requests_total", outcome="upstream_timeout") == 1


async def test_a_client_leaving_mid_stream_is_counted_and_harms_nothing(
    make_guard: GuardFactory, upstream: Upstream
) -> None:
    guard = await make_guard(modes={"pii": "redact"})
    upstream.script = stream([f"word{i} " * 50 for i in range(200)], pause=0.005)
    response = await guard.chat({**ASK, "stream": True})
    await response.content.readany()
    response.close()  # the client hangs up
    for _ in range(100):
        if await guard.metric("airlock_guard_requests_total", outcome="client_closed") == 1:
            break
        await asyncio.sleep(0.05)
    assert await guard.metric("airlock_guard_requests_total", outcome="client_closed") == 1
    await still_serves(guard, upstream)


async def test_unknown_routes_and_other_methods_pass_through_untouched(
    make_guard: GuardFactory, upstream: Upstream
) -> None:
    guard = await make_guard()
    async with guard.session.get(guard.url + "/v1/no-such-thing") as response:
        assert response.status == 404  # the upstream's answer, as it gave it
    async with guard.session.get(guard.url + "/v1/chat/completions") as response:
        assert response.status == 405  # the upstream allows POST only there
    async with guard.session.put(
        guard.url + "/echo/a/b?x=1&y=%20",
        data=b"\x00\x01binary",
        headers={
            "X-Custom": "kept",
            "Connection": "keep-alive, X-Drop-Me",
            "X-Drop-Me": "1",
            "Authorization": "Bearer t",
        },
    ) as response:
        assert response.status == 201
        echoed = await response.json()
        assert response.headers["X-Upstream"] == "model"
        assert "X-Secret-Hop" not in response.headers  # named in the upstream's Connection header
    assert echoed["method"] == "PUT"
    assert echoed["path"] == "/echo/a/b?x=1&y=%20"
    assert echoed["body"] == "\x00\x01binary"
    assert echoed["headers"]["x-custom"] == "kept"
    assert echoed["headers"]["authorization"] == "Bearer t"
    assert "x-drop-me" not in echoed["headers"]
    assert await guard.metric("airlock_guard_requests_total", outcome="ok") == 0  # passthrough is not a guarded request


async def test_an_upstream_path_prefix_is_kept(make_guard: GuardFactory, upstream: Upstream) -> None:
    guard = await make_guard(upstream=upstream.url + "/echo/prefix")
    async with guard.session.get(guard.url + "/v1/models?a=b") as response:
        assert (await response.json())["path"] == "/echo/prefix/v1/models?a=b"


async def test_a_passthrough_answer_cut_mid_way_ends_the_connection(
    make_guard: GuardFactory, upstream: Upstream
) -> None:
    guard = await make_guard()
    async with guard.session.get(guard.url + "/cut") as response:
        assert response.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()
    await still_serves(guard, upstream)
