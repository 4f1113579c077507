"""Fixtures of the guard's tests: a scriptable OpenAI-compatible upstream and a guard in front of it.

Everything runs in the test's own event loop over real HTTP on loopback: the guard is
the real aiohttp application, the upstream a small aiohttp server whose answers each test
scripts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from airlock.api import guard as guard_api
from airlock.guard.server import GuardServer, Options
from tests.guard.upstream import Upstream

NS, SYSTEM = "ml-prod", "support-chatbot"


def system(
    phase: str | None = "Healthy", *, active: bool = False, guard: dict[str, Any] | None = None
) -> dict[str, Any]:
    """An AISystem as the API server would send it, reduced to what the guard reads."""
    spec: dict[str, Any] = {"target": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "chatbot-v7"}}
    if guard is not None:
        spec["guard"] = guard
    status: dict[str, Any] = {"containment": {"active": active}}
    if phase is not None:
        status["phase"] = phase
    return {"metadata": {"name": SYSTEM, "namespace": NS, "resourceVersion": "1"}, "spec": spec, "status": status}


class Running:
    """A started guard and the client side of a test."""

    def __init__(self, server: GuardServer, session: aiohttp.ClientSession) -> None:
        self.server = server
        self.session = session

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    async def chat(self, body: dict[str, Any] | None = None, **kwargs: Any) -> aiohttp.ClientResponse:
        payload = body if body is not None else {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        return await self.session.post(self.url + "/v1/chat/completions", json=payload, **kwargs)

    async def metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        async with self.session.get(f"http://127.0.0.1:{self.server.metrics_port}/metrics") as response:
            text = await response.text()
        values: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = {k: v for k, v in sample.labels.items() if k not in ("namespace", "system")}
                assert sample.labels.get("namespace", NS) == NS
                assert sample.labels.get("system", SYSTEM) == SYSTEM
                values[(sample.name, frozenset(labels.items()))] = sample.value
        return values

    async def metric(self, name: str, **labels: str) -> float:
        return (await self.metrics()).get((name, frozenset(labels.items())), 0.0)


GuardFactory = Callable[..., Awaitable[Running]]


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    server = await Upstream("model").start()
    yield server
    await server.stop()


@pytest.fixture
async def fallback() -> AsyncIterator[Upstream]:
    server = await Upstream("fallback").start()
    yield server
    await server.stop()


@pytest.fixture
async def make_guard(upstream: Upstream) -> AsyncIterator[GuardFactory]:
    servers: list[GuardServer] = []
    sessions: list[aiohttp.ClientSession] = []

    async def make(
        *,
        modes: dict[str, str] | None = None,
        fallback: str | None = None,
        phase: str | None = "Healthy",
        **options: Any,
    ) -> Running:
        settings = options.pop("settings", {})
        config = guard_api.parse({"detectors": modes}) if modes else None
        server = GuardServer(
            Options(
                upstream=options.pop("upstream", upstream.url),
                fallback=fallback,
                namespace=NS,
                system=SYSTEM,
                host="127.0.0.1",
                port=0,
                metrics_host="127.0.0.1",
                metrics_port=0,
                config=config,
                settings=settings,
                **options,
            )
        )
        await server.start()
        servers.append(server)
        if phase is not None:
            server.state.seen(system(phase))
        session = aiohttp.ClientSession()
        sessions.append(session)
        return Running(server, session)

    yield make
    for session in sessions:
        await session.close()
    for server in servers:
        await server.stop()
