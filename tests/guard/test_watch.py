"""The guard's watch on its AISystem, against the sandbox API server (real HTTP, real watch stream)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from airlock.adapters import kube, kubeconfig
from airlock.domain.guard import Route
from airlock.guard import state as state_module
from airlock.guard.metrics import GuardMetrics
from airlock.guard.server import kinds
from airlock.sandbox.cluster import ClusterThread
from airlock.sandbox.world import Api, load_crds
from tests.guard.conftest import NS, SYSTEM, system

GUARD_USER = "chatbot-guard"  # the sandbox token format takes no colons in the name


async def wait(check: Any, within: float = 5.0) -> float:
    """Seconds until ``check()`` holds (fails after ``within`` seconds)."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > within:
            raise AssertionError(f"timed out after {within}s")
        await asyncio.sleep(0.005)
    return time.monotonic() - started


class Watched:
    def __init__(self, sandbox: ClusterThread, state: state_module.SystemState, api: Api) -> None:
        self.sandbox = sandbox
        self.state = state
        self.api = api

    def status(self, **status: Any) -> None:
        self.api.patch("AISystem", NS, SYSTEM, {"status": status}, sub="status")


@pytest.fixture
async def watched(sandbox: ClusterThread, tmp_path: Path) -> AsyncIterator[Watched]:
    api = Api(sandbox.url)
    load_crds(api)
    api.create({"apiVersion": "airlock.dev/v1alpha1", "kind": "AISystem", **system("Healthy")})
    config = kubeconfig.load(str(sandbox.write_kubeconfig(tmp_path / "kubeconfig", user=GUARD_USER)))
    metrics = GuardMetrics(NS, SYSTEM, kinds=kinds())
    state = state_module.SystemState(namespace=NS, name=SYSTEM, has_fallback=True, metrics=metrics)
    client = kube.KubeClient(config)
    task = asyncio.create_task(state_module.watch(state, client))
    try:
        await wait(lambda: state.known and state.watch_up)
        yield Watched(sandbox, state, api)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await client.close()


async def test_containment_written_by_the_operator_reaches_the_guard_within_a_second(watched: Watched) -> None:
    assert watched.state.route() is Route.UPSTREAM
    started = time.monotonic()
    await asyncio.to_thread(watched.status, phase="ShutDown", containment={"active": True})
    await wait(lambda: watched.state.route() is Route.FALLBACK)
    assert time.monotonic() - started < 1.0
    await asyncio.to_thread(watched.status, phase="Healthy", containment={"active": False})
    await wait(lambda: watched.state.route() is Route.UPSTREAM)


async def test_the_guard_only_lists_and_watches_its_own_system(watched: Watched) -> None:
    await asyncio.to_thread(watched.status, phase="Contained")
    await wait(lambda: watched.state.route() is Route.FALLBACK)
    token = f"Bearer user:{GUARD_USER}"
    made = [
        r
        for r in watched.sandbox.call(lambda: list(watched.sandbox.cluster))
        if r.headers.get("Authorization") == token
    ]
    assert made
    for request in made:
        assert request.method == "GET"
        assert request.url.path == f"/apis/airlock.dev/v1alpha1/namespaces/{NS}/aisystems"
        assert request.params["fieldSelector"] == f"metadata.name={SYSTEM}"


async def test_deleting_the_system_makes_its_state_unknown(watched: Watched) -> None:
    await asyncio.to_thread(watched.api.delete, "AISystem", NS, SYSTEM)
    await wait(lambda: not watched.state.known)
    assert watched.state.route() is Route.FALLBACK  # unknown refuses: the fallback answers


async def test_without_the_api_server_the_last_known_state_holds_and_says_so(watched: Watched) -> None:
    await asyncio.to_thread(watched.status, phase="Contained", containment={"active": True})
    await wait(lambda: watched.state.route() is Route.FALLBACK)
    await asyncio.to_thread(watched.sandbox.stop)
    await wait(lambda: not watched.state.watch_up)
    assert watched.state.route() is Route.FALLBACK
    assert watched.state.known
    await asyncio.sleep(0.2)
    assert watched.state.age() >= 0.2
    assert watched.state.metrics.watch_up._value.get() == 0  # type: ignore[attr-defined]
