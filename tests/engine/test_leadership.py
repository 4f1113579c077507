"""The election loop against the sandbox API server's real Lease, with fake monotonic clocks.

Each replica is an :class:`Elector` with its own clock; ``tick()`` is one
attempt to acquire or renew.  Time moves only when a test moves it, so the
hand-over instants are exact.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import kmock
import pytest

from airlock.adapters import kube
from airlock.adapters.kubeconfig import ClusterConfig
from airlock.adapters.leases import LEASES, LeaseLock
from airlock.domain.leadership import Timing
from airlock.domain.sharding import Shard
from airlock.engine.leadership import Duties, Elector
from airlock.sandbox.cluster import RunningServer, serve
from tests.fixtures.tools import FreezesAfterFirstCheck, Leads

NAMESPACE = "airlock-system"
TIMING = Timing(lease_duration=4.0, renew_deadline=3.0, retry_period=0.5)


@dataclass
class Replica:
    """One operator replica's election: its clock, its elector, what its callbacks saw."""

    name: str
    elector: Elector
    client: kube.KubeClient
    now: float = 0.0
    events: list[str] = field(default_factory=list)

    async def at(self, now: float) -> None:
        self.now = now
        await self.elector.tick()

    @property
    def leading(self) -> bool:
        return self.elector.leading()


@pytest.fixture
async def server() -> AsyncIterator[RunningServer]:
    async with serve() as running:
        yield running


@pytest.fixture
async def replicas(server: RunningServer) -> AsyncIterator[dict[str, Replica]]:
    made: dict[str, Replica] = {}
    yield made
    for replica in made.values():
        await replica.client.close()


def replica(
    server: RunningServer, made: dict[str, Replica], name: str, shard: Shard | None = None, offset: float = 0.0
) -> Replica:
    """A replica whose monotonic clock reads ``offset`` + the test's time (clocks share no origin)."""
    shard = shard or Shard()
    client = kube.KubeClient(ClusterConfig(server=server.url, token=f"user:{name}"))
    lock = LeaseLock(client, NAMESPACE, shard.lease_name(), shard.labels())
    holder: list[Replica] = []

    async def stopped() -> None:
        holder[0].events.append("stopped")

    elector = Elector(
        lock,
        identity=name,
        timing=TIMING,
        on_started=lambda: holder[0].events.append("started"),
        on_stopped=stopped,
        shard_count=shard.count,
        clock=lambda: holder[0].now + offset,
        jitter=lambda: 0.0,
    )
    made[name] = Replica(name, elector, client)
    holder.append(made[name])
    return made[name]


def lease(server: RunningServer, name: str = "airlock") -> dict[str, object]:
    obj = server.cluster.get_object("leases.coordination.k8s.io", NAMESPACE, name)
    assert obj is not None
    spec: dict[str, object] = obj["spec"]
    return spec


async def test_of_two_replicas_started_at_the_same_moment_exactly_one_leads(
    server: RunningServer, replicas: dict[str, Replica]
) -> None:
    a, b = replica(server, replicas, "a"), replica(server, replicas, "b")
    for t in (0.0, 0.5, 1.0):
        await a.at(t)
        await b.at(t)
    assert (a.leading, b.leading) == (True, False)
    assert a.events == ["started"]
    assert b.events == []
    assert lease(server)["holderIdentity"] == "a"
    assert lease(server)["leaseTransitions"] == 0
    assert b.elector.report()["role"] == "standby"
    assert b.elector.report()["holder"] == "a"


async def test_a_standby_takes_over_a_lease_duration_after_it_last_saw_a_renewal_on_its_own_clock(
    server: RunningServer, replicas: dict[str, Replica]
) -> None:
    a = replica(server, replicas, "a")
    b = replica(server, replicas, "b", offset=86_400.0)  # another machine: unrelated monotonic origin
    await a.at(0.0)
    await b.at(0.0)
    await a.at(0.5)  # a's last renewal, sent at its 0.5 …
    await b.at(0.6)  # … first seen by b at 0.6
    # a stops renewing (killed, paused, cut off).  It stops acting at 0.5 + 3.0 by its own clock:
    a.now = 3.49
    assert a.elector.refusal() is None
    a.now = 3.5
    assert "has stopped acting" in (a.elector.refusal() or "")
    for t in (1.0, 2.0, 3.0, 4.0, 4.59):
        await b.at(t)
        assert not b.leading, t
    await b.at(4.6)  # 4 s after b saw the record change
    assert b.leading
    assert b.events == ["started"]
    assert lease(server)["holderIdentity"] == "b"
    assert lease(server)["leaseTransitions"] == 1


async def test_a_paused_leader_that_resumes_finds_itself_a_standby_and_writes_nothing(
    server: RunningServer, replicas: dict[str, Replica]
) -> None:
    a, b = replica(server, replicas, "a"), replica(server, replicas, "b")
    await a.at(0.0)
    await b.at(0.0)
    for t in (1.0, 3.0, 4.0, 5.0):  # a is frozen from 0.0 on
        await b.at(t)
    assert b.leading
    fenced = kube.KubeClient(ClusterConfig(server=server.url, token="user:a"), fence=a.elector)
    try:
        a.now = 10.0  # SIGCONT: before its election loop runs again, every write is refused
        with pytest.raises(kube.Fenced, match="has stopped acting"):
            await fenced.create(kube.CONFIGMAPS, "default", {"metadata": {"name": "late"}})
        await a.at(10.0)
        assert a.events == ["started", "stopped"]
        assert "standby" in (a.elector.refusal() or "")
        with pytest.raises(kube.Fenced, match="held by b"):
            await fenced.patch(kube.CONFIGMAPS, "default", "late", {"data": {"k": "v"}})
        assert await fenced.get_or_none(kube.CONFIGMAPS, "default", "late") is None  # reads still work
    finally:
        await fenced.close()
    assert lease(server)["holderIdentity"] == "b"
    writes = [r for r in server.cluster if r.method != "GET" and "user:a" in r.headers.get("Authorization", "")]
    assert all(r.url.path.endswith("/leases") or "/leases/" in r.url.path for r in writes), writes


async def test_a_leader_that_cannot_reach_the_api_server_steps_down_at_the_renew_deadline(
    server: RunningServer, replicas: dict[str, Replica]
) -> None:
    a = replica(server, replicas, "a")
    await a.at(0.0)
    assert a.leading
    server.cluster["put", kmock.resource("coordination.k8s.io", "v1", "leases")] << 503
    server.cluster["get", kmock.resource("coordination.k8s.io", "v1", "leases")] << 503
    for t in (0.5, 1.0, 2.0, 2.9):
        await a.at(t)
        assert a.leading, t
    await a.at(3.0)
    assert not a.leading
    assert a.events == ["started", "stopped"]


async def test_shutdown_releases_the_lease_and_a_standby_takes_it_at_once(
    server: RunningServer, replicas: dict[str, Replica]
) -> None:
    a, b = replica(server, replicas, "a"), replica(server, replicas, "b")
    await a.at(0.0)
    await b.at(0.0)
    await a.elector._shutdown()
    assert a.events == ["started", "stopped"]
    assert lease(server).get("holderIdentity") is None
    await b.at(0.5)  # no lease duration to wait: nobody holds it
    assert b.leading
    assert lease(server)["leaseTransitions"] == 1


async def test_a_replica_of_another_shard_count_waits_until_the_old_layout_lets_go(
    server: RunningServer, replicas: dict[str, Replica]
) -> None:
    old = replica(server, replicas, "old", Shard(0, 2))
    new = replica(server, replicas, "new", Shard(0, 3))
    sibling = replica(server, replicas, "sibling", Shard(1, 2))
    await old.at(0.0)
    await sibling.at(0.0)
    assert old.leading
    assert sibling.leading
    for t in (0.0, 1.0, 2.0):
        await old.at(t)
        await sibling.at(t)
        await new.at(t)
        assert not new.leading
    assert new.elector.report()["shardConflicts"] == ["airlock-shard-0-of-2", "airlock-shard-1-of-2"]
    assert server.cluster.get_object("leases.coordination.k8s.io", NAMESPACE, "airlock-shard-0-of-3") is None
    await old.elector._shutdown()  # the old layout is rolled out: one released …
    await new.at(3.0)
    assert not new.leading  # … the other still held
    for t in (3.5, 4.0, 5.0, 5.9):  # sibling frozen since its renewal at 2.0, seen by `new` at 2.0
        await new.at(t)
        assert not new.leading, t
    await new.at(6.0)
    assert new.leading
    assert new.elector.report()["shardConflicts"] == []


async def test_duties_resynchronise_before_their_loops_run() -> None:
    order: list[str] = []

    async def loop() -> None:
        order.append("loop")

    duties = Duties(start=lambda: [loop()], resync=lambda: order.append("resync"))
    duties.started()
    assert order == ["resync"]  # the loop has not run yet: started() never awaits
    await duties.stopped()
    assert order in (["resync"], ["resync", "loop"])


def test_leases_are_a_resource_the_sandbox_serves() -> None:
    assert LEASES.path("ns", "airlock") == "/apis/coordination.k8s.io/v1/namespaces/ns/leases/airlock"


@pytest.mark.parametrize("verb", ["create", "patch", "delete"])
async def test_a_write_whose_term_ends_before_its_bytes_are_sent_sends_nothing(
    server: RunningServer, verb: str
) -> None:
    fence = FreezesAfterFirstCheck()
    client = kube.KubeClient(ClusterConfig(server=server.url, token="user:a"), fence=fence)
    writes = {
        "create": lambda: client.create(kube.CONFIGMAPS, "default", {"metadata": {"name": "late"}}),
        "patch": lambda: client.patch(kube.CONFIGMAPS, "default", "late", {"data": {"k": "v"}}),
        "delete": lambda: client.delete(kube.CONFIGMAPS, "default", "late"),
    }
    try:
        with pytest.raises(kube.Fenced, match="frozen past the renew deadline"):
            await writes[verb]()
        assert fence.asked == 2  # once before a connection was taken, once as the body went out
    finally:
        await client.close()
    sent = [r for r in server.cluster if "user:a" in r.headers.get("Authorization", "")]
    assert sent == []


async def test_a_leaders_fenced_writes_reach_the_server_deletes_included(server: RunningServer) -> None:
    client = kube.KubeClient(ClusterConfig(server=server.url, token="user:a"), fence=Leads())
    try:
        await client.create(kube.CONFIGMAPS, "default", {"metadata": {"name": "kept"}, "data": {"k": "v"}})
        await client.patch(kube.CONFIGMAPS, "default", "kept", {"data": {"k": "w"}})
        assert (await client.get(kube.CONFIGMAPS, "default", "kept"))["data"] == {"k": "w"}
        await client.delete(kube.CONFIGMAPS, "default", "kept")
        assert await client.get_or_none(kube.CONFIGMAPS, "default", "kept") is None
    finally:
        await client.close()
