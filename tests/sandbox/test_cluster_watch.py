"""Watch semantics of the sandbox API server: list-then-watch-from-RV, selectors, 410, timeouts."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import aiohttp

from airlock.sandbox._k8s_watch import Change, EventLog, follow
from airlock.sandbox.cluster import ClusterThread, SandboxCluster, serve
from tests.fixtures.cluster import SandboxApi

CM = "/api/v1/namespaces/default/configmaps"


def cm(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}}


def summary(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["type"], e["object"].get("metadata", {}).get("name", "")) for e in events]


def test_watch_without_rv_starts_with_synthetic_added_events(sandbox_api: SandboxApi) -> None:
    sandbox_api.ok("POST", CM, cm("a"))
    sandbox_api.ok("POST", CM, cm("b"))
    events = sandbox_api.watch(f"{CM}?watch=true&timeoutSeconds=1")
    assert summary(events) == [("ADDED", "a"), ("ADDED", "b")]
    assert summary(sandbox_api.watch(f"{CM}?watch=true&resourceVersion=0", count=2)) == summary(events)


def test_watch_from_a_resource_version_streams_only_later_changes(sandbox_api: SandboxApi) -> None:
    sandbox_api.ok("POST", CM, cm("old"))
    listed = sandbox_api.ok("GET", CM)
    rv = listed["metadata"]["resourceVersion"]
    sandbox_api.ok("POST", CM, cm("new"))
    sandbox_api.ok("PATCH", f"{CM}/old", {"data": {"k": "v"}}, content_type="application/merge-patch+json")
    sandbox_api.ok("DELETE", f"{CM}/new")
    sandbox_api.ok("POST", "/api/v1/namespaces/default/secrets", {"metadata": {"name": "s"}})  # another resource

    events = sandbox_api.watch(f"{CM}?watch=true&resourceVersion={rv}", count=3)
    assert summary(events) == [("ADDED", "new"), ("MODIFIED", "old"), ("DELETED", "new")]
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(versions)
    assert versions[0] > int(rv)
    assert events[1]["object"]["data"] == {"k": "v"}


def test_watch_streams_live_changes_until_the_timeout(sandbox: ClusterThread, sandbox_api: SandboxApi) -> None:
    rv = sandbox_api.ok("GET", CM)["metadata"]["resourceVersion"]

    def later() -> None:
        time.sleep(0.2)
        sandbox_api.ok("POST", CM, cm("live"))

    writer = threading.Thread(target=later)
    started = time.monotonic()
    with sandbox_api.stream(f"{CM}?watch=1&resourceVersion={rv}&timeoutSeconds=2") as events:
        writer.start()
        first = next(events)
        assert (first["type"], first["object"]["metadata"]["name"]) == ("ADDED", "live")
        assert time.monotonic() - started < 1.5
        assert list(events) == []  # and then the server ends the stream at the timeout
    assert 1.5 < time.monotonic() - started < 4
    writer.join()


def test_watch_honours_selectors_and_turns_transitions_into_added_deleted(sandbox_api: SandboxApi) -> None:
    rv = sandbox_api.ok("GET", CM)["metadata"]["resourceVersion"]
    sandbox_api.ok("POST", CM, cm("x", team="a"))
    sandbox_api.ok("POST", CM, cm("y", team="b"))
    sandbox_api.ok("PATCH", f"{CM}/y", {"metadata": {"labels": {"team": "a"}}})
    sandbox_api.ok("PATCH", f"{CM}/x", {"metadata": {"labels": {"team": "c"}}})
    sandbox_api.ok("PATCH", f"{CM}/y", {"data": {"k": "v"}})

    events = sandbox_api.watch(f"{CM}?watch=true&resourceVersion={rv}&labelSelector=team%3Da", count=4)
    assert summary(events) == [("ADDED", "x"), ("ADDED", "y"), ("DELETED", "x"), ("MODIFIED", "y")]
    named = sandbox_api.watch(f"{CM}?watch=true&resourceVersion={rv}&fieldSelector=metadata.name%3Dy", count=3)
    assert summary(named) == [("ADDED", "y"), ("MODIFIED", "y"), ("MODIFIED", "y")]


def test_namespaced_and_cluster_wide_watches(sandbox_api: SandboxApi) -> None:
    rv = sandbox_api.ok("GET", CM)["metadata"]["resourceVersion"]
    sandbox_api.ok("POST", CM, cm("here"))
    sandbox_api.ok("POST", "/api/v1/namespaces/elsewhere/configmaps", cm("there"))
    sandbox_api.ok("POST", CM, cm("last"))
    namespaced = sandbox_api.watch(f"{CM}?watch=true&resourceVersion={rv}", count=2)
    everywhere = sandbox_api.watch(f"/api/v1/configmaps?watch=true&resourceVersion={rv}", count=2)
    assert summary(namespaced) == [("ADDED", "here"), ("ADDED", "last")]
    assert summary(everywhere) == [("ADDED", "here"), ("ADDED", "there")]


def test_too_old_resource_version_is_410_gone(sandbox: ClusterThread, sandbox_api: SandboxApi) -> None:
    sandbox_api.ok("POST", CM, cm("a"))
    old_rv = sandbox_api.ok("GET", CM)["metadata"]["resourceVersion"]
    sandbox_api.ok("POST", CM, cm("b"))
    sandbox.call(sandbox.cluster.compact)

    events = sandbox_api.watch(f"{CM}?watch=true&resourceVersion={old_rv}&timeoutSeconds=5")
    assert [e["type"] for e in events] == ["ERROR"]
    assert events[0]["object"]["code"] == 410
    assert events[0]["object"]["reason"] == "Expired"
    current = sandbox_api.ok("GET", CM)["metadata"]["resourceVersion"]
    assert sandbox_api.watch(f"{CM}?watch=true&resourceVersion={current}&timeoutSeconds=1") == []


def test_bounded_watch_log_expires_old_versions() -> None:
    cluster = SandboxCluster(max_watch_changes=2)
    with ClusterThread(cluster) as sandbox:
        api = SandboxApi(sandbox.url)
        rv = api.ok("GET", CM)["metadata"]["resourceVersion"]
        for name in ("a", "b", "c"):
            api.ok("POST", CM, cm(name))
        assert api.watch(f"{CM}?watch=true&resourceVersion={rv}", count=1)[0]["object"]["code"] == 410


def test_bookmarks_and_initial_events_end(sandbox: ClusterThread, sandbox_api: SandboxApi) -> None:
    sandbox.cluster.bookmark_interval = 0.2
    sandbox_api.ok("POST", CM, cm("a"))
    events = sandbox_api.watch(
        f"{CM}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
        "&allowWatchBookmarks=true&timeoutSeconds=1"
    )
    assert summary(events)[0] == ("ADDED", "a")
    assert events[1]["type"] == "BOOKMARK"
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert [e["type"] for e in events[2:]]
    assert {e["type"] for e in events[2:]} == {"BOOKMARK"}


async def test_serve_in_the_current_event_loop_with_aiohttp() -> None:
    async with serve() as server, aiohttp.ClientSession(server.url) as session:
        async with session.post(CM, json=cm("a")) as response:
            assert response.status == 201
            rv = (await response.json())["metadata"]["resourceVersion"]
        received: list[dict[str, Any]] = []

        async def watch() -> None:
            async with session.get(CM, params={"watch": "true", "resourceVersion": rv}) as stream:
                async for line in stream.content:
                    received.append(json.loads(line))
                    return

        watcher = asyncio.create_task(watch())
        await asyncio.sleep(0.05)
        await session.post(CM, json=cm("b"))
        await asyncio.wait_for(watcher, 5)
        assert summary(received) == [("ADDED", "b")]
        assert server.cluster.history("cm", "default", "b")[0]["metadata"]["name"] == "b"


async def test_follow_sees_changes_that_arrive_while_the_consumer_is_busy() -> None:
    log = EventLog()

    def add(name: str) -> None:
        obj = {"metadata": {"name": name, "namespace": "default"}}
        log.append(Change(log.next_rv(), "", "configmaps", "default", name, "ADDED", obj))

    add("a")
    seen: list[str] = []
    async for event in follow(log, 0, lambda change: ("ADDED", change.obj), stop_after=2):
        seen.append(event["object"]["metadata"]["name"])
        if len(seen) == 1:
            add("b")  # written while this watcher is still sending "a"
        if len(seen) == 2:
            break
    assert seen == ["a", "b"]
