"""The sandbox's request records: who asked what and got which status; only the recent ones kept."""

from __future__ import annotations

import time

import kmock

from airlock.sandbox import _k8s_audit as audit
from airlock.sandbox.cluster import ClusterThread, SandboxCluster
from tests.fixtures.cluster import SandboxApi

CM = "/api/v1/namespaces/default/configmaps"


def test_every_request_is_recorded_with_its_caller_and_status(sandbox: ClusterThread, sandbox_api: SandboxApi) -> None:
    started = time.monotonic()
    alice = SandboxApi(sandbox.url, token="user:alice:oncall")
    assert alice.post(CM, {"metadata": {"name": "a"}})[0] == 201
    assert alice.post(CM, {"metadata": {"name": "a"}})[0] == 409
    as_bot = {"Impersonate-User": "system:serviceaccount:ops:bot"}
    assert sandbox_api.patch(f"{CM}/a", {"data": {"k": "v"}}, headers=as_bot)[0] == 200
    assert sandbox_api.get(f"{CM}/a")[0] == 200

    records = sandbox.audit(since=started)
    assert [(r.user, r.method, r.path, r.code, r.write) for r in records] == [
        ("alice", "POST", CM, 201, True),
        ("alice", "POST", CM, 409, True),
        ("system:serviceaccount:ops:bot", "PATCH", f"{CM}/a", 200, True),
        ("system:admin", "GET", f"{CM}/a", 200, False),
    ]
    assert [r.seq for r in records] == sorted(r.seq for r in records)
    assert all(started <= r.received <= time.monotonic() for r in records)
    assert [r.method for r in sandbox.audit(user="alice")] == ["POST", "POST"]


def test_requests_answered_by_a_tests_reaction_are_recorded_too(
    sandbox: ClusterThread, sandbox_api: SandboxApi
) -> None:
    sandbox.cluster["get", kmock.resource("", "v1", "configmaps")] << 503
    assert sandbox_api.get(f"{CM}/x")[0] == 503
    assert sandbox_api.post(CM, {"metadata": {"name": "y"}})[0] == 201
    assert [(r.method, r.code) for r in sandbox.audit()][-2:] == [("GET", 503), ("POST", 201)]
    assert len(list(sandbox.cluster["get"])) == 1  # kmock's views still see the requests


def test_only_the_most_recent_requests_are_kept() -> None:
    with ClusterThread(SandboxCluster(max_requests=50)) as sandbox:
        api = SandboxApi(sandbox.url)
        for n in range(130):
            api.post(CM, {"metadata": {"name": f"cm{n}"}})
        records = sandbox.audit()
        assert len(records) == 50
        assert [r.seq for r in records] == list(range(80, 130))
        kept = sandbox.call(lambda: [r.id for r in sandbox.cluster])
        assert kept == list(range(80, 130))
        assert sandbox.call(lambda: sandbox.cluster["post"][-1].data["metadata"]["name"]) == "cm129"


def test_recent_keeps_the_type_kmock_iterates() -> None:
    recent: audit.Recent[int] = audit.Recent(3)
    for n in range(10):
        recent.append(n)
    assert isinstance(recent, list)
    assert list(recent) == [7, 8, 9]
    assert recent[-1] == 9
    unbounded: audit.Recent[int] = audit.Recent(None)
    for n in range(10):
        unbounded.append(n)
    assert len(unbounded) == 10
