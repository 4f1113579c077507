"""The request-level kill switch: the AISystem's state decides the route of the very next request."""

from __future__ import annotations

import asyncio
import time

import pytest

from airlock.domain.guard import Unknown
from tests.guard.conftest import GuardFactory, system
from tests.guard.test_proxy import ASK, OTHER, OWN, content, events
from tests.guard.upstream import Upstream, answer, stream


async def served_by(guard: object, *, path: str = "/v1/models") -> str:
    async with guard.session.get(guard.url + path) as response:  # type: ignore[attr-defined]
        return (await response.json())["data"][0]["id"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("phase", ["Contained", "ShutDown"])
async def test_contained_answers_from_the_fallback_at_once(
    make_guard: GuardFactory, upstream: Upstream, fallback: Upstream, phase: str
) -> None:
    guard = await make_guard(fallback=fallback.url)
    upstream.script = answer("model")
    fallback.script = answer("fallback")
    assert await served_by(guard) == "model"
    guard.server.state.seen(system(phase, active=True))
    async with await guard.chat(ASK) as response:
        assert (await response.json())["choices"][0]["message"]["content"] == "fallback"
        assert response.headers["X-Airlock-Route"] == "fallback"
    assert await served_by(guard) == "fallback"  # passthrough follows the route too
    assert await guard.metric("airlock_guard_requests_total", outcome="fallback") == 1
    assert await guard.metric("airlock_guard_route", route="fallback") == 1
    assert await guard.metric("airlock_guard_system_phase", phase=phase) == 1
    guard.server.state.seen(system("Healthy"))
    assert await served_by(guard) == "model"


async def test_contained_without_a_fallback_is_503_with_retry_after(
    make_guard: GuardFactory, upstream: Upstream
) -> None:
    guard = await make_guard(settings={"retry_after": 17})
    guard.server.state.seen(system("ShutDown", active=True))
    async with await guard.chat(ASK) as response:
        assert response.status == 503
        assert response.headers["Retry-After"] == "17"
        error = (await response.json())["error"]
    assert error["code"] == "airlock_contained"
    assert "ShutDown" in error["message"]
    assert upstream.received == []
    assert await guard.metric("airlock_guard_requests_total", outcome="unavailable") == 1


async def test_a_dry_run_or_degraded_system_keeps_serving(make_guard: GuardFactory, fallback: Upstream) -> None:
    guard = await make_guard(fallback=fallback.url)
    for phase in ("Degraded", "Unknown", "Invalid", None):
        guard.server.state.seen(system(phase))
        assert await served_by(guard) == "model", phase


async def test_never_seen_refuses_by_default_and_readyz_says_so(make_guard: GuardFactory, fallback: Upstream) -> None:
    guard = await make_guard(phase=None)
    async with await guard.chat(ASK) as response:
        assert response.status == 503
        assert "unknown" in (await response.json())["error"]["message"]
    async with guard.session.get(f"http://127.0.0.1:{guard.server.metrics_port}/readyz") as response:
        assert response.status == 503
    assert await guard.metric("airlock_guard_system_phase", phase="NotSeen") == 1
    assert await guard.metric("airlock_guard_state_age_seconds") == -1
    guard.server.state.seen(system("Healthy"))
    async with guard.session.get(f"http://127.0.0.1:{guard.server.metrics_port}/readyz") as response:
        assert response.status == 200

    with_fallback = await make_guard(phase=None, fallback=fallback.url)
    assert await served_by(with_fallback) == "fallback"
    serving = await make_guard(phase=None, unknown=Unknown.SERVE)
    assert await served_by(serving) == "model"


async def test_a_missing_system_counts_as_unknown(make_guard: GuardFactory) -> None:
    guard = await make_guard()
    guard.server.state.seen(None)
    async with await guard.chat(ASK) as response:
        assert response.status == 503


async def test_the_last_known_state_holds_without_the_api_server_until_stale_after(
    make_guard: GuardFactory, fallback: Upstream
) -> None:
    guard = await make_guard(fallback=fallback.url, stale_after=0.3)
    state = guard.server.state
    state.connected(True)
    state.seen(system("Healthy"))
    state.connected(False)  # the API server went away
    assert await served_by(guard) == "model"
    assert await guard.metric("airlock_guard_watch_up") == 0
    await asyncio.sleep(0.4)
    assert await served_by(guard) == "fallback"  # stale: unknown, refuse -> fallback
    assert await guard.metric("airlock_guard_state_age_seconds") > 0.3


async def test_a_stream_from_the_model_ends_the_moment_the_system_is_contained(
    make_guard: GuardFactory, upstream: Upstream
) -> None:
    guard = await make_guard()
    gate = asyncio.Event()
    upstream.script = stream(["first ", "second ", "leaked ", "more"], gate=gate)
    response = await guard.chat({**ASK, "stream": True})
    await asyncio.sleep(0.1)
    guard.server.state.seen(system("ShutDown", active=True))
    gate.set()
    decoded = events(await response.read())
    response.close()
    assert "leaked" not in content(decoded)
    assert decoded[-1]["error"]["code"] == "airlock_contained"


async def test_spec_guard_modes_apply_live_and_the_stricter_mode_wins(
    make_guard: GuardFactory, upstream: Upstream
) -> None:
    guard = await make_guard(modes={"pii": "redact", "cross-customer": "block"})
    state = guard.server.state
    upstream.script = answer(f"We will write to {OWN}.")  # the asker's own address: pii, not cross-customer
    state.seen(system("Healthy", guard={"detectors": {"pii": "block"}}))
    async with await guard.chat(ASK) as response:
        assert response.status == 400  # pii: block (spec) beats redact (file)
    state.seen(system("Healthy", guard={"detectors": {"pii": "observe", "cross-customer": "observe"}}))
    async with await guard.chat(ASK) as response:
        assert (await response.json())["choices"][0]["message"]["content"] == "We will write to [REDACTED:email]."
    upstream.script = answer(f"Also {OTHER}.")
    async with await guard.chat(ASK) as response:
        assert response.status == 400  # cross-customer: block (file) beats observe (spec)
    before = dict(state.modes)
    state.seen(system("Healthy", guard={"detectors": {"pii": "nonsense"}}))
    assert state.modes == before  # an invalid section keeps what was in force


async def test_switching_takes_no_request_and_no_time(make_guard: GuardFactory, fallback: Upstream) -> None:
    guard = await make_guard(fallback=fallback.url)
    started = time.perf_counter()
    guard.server.state.seen(system("Contained", active=True))
    assert guard.server.state.route().value == "fallback"
    assert time.perf_counter() - started < 0.01
