"""``airlock run --shard I/N`` as real processes: N leaders on one cluster, each on its own namespaces.

Which replica wrote what comes from the sandbox API server's audit records
(each replica is its own user), not from the operators' logs.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from airlock.domain.sharding import shard_of
from airlock.sandbox import world as sandbox_world
from airlock.sandbox.replicas import OPERATOR_NAMESPACE, Replica, start_replica
from airlock.sandbox.world import World
from tests.integration import views
from tests.integration.systems import chatbot
from tests.integration.world import deployment, service, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.sandbox_only("replicas with their own API users and the sandbox's per-user request records (audit)"),
]


@dataclass
class Sharded:
    world: World
    replicas: dict[str, Replica]


@pytest.fixture(scope="module")
def sharded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sharded]:
    directory: Path = tmp_path_factory.mktemp("shards")
    with sandbox_world.running_world(directory, start_operator=False) as world:
        world.api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OPERATOR_NAMESPACE}})
        replicas = {f"shard-{i}-of-2": start_replica(world, f"shard-{i}-of-2", ["--shard", f"{i}/2"]) for i in (0, 1)}
        try:
            yield Sharded(world, replicas)
        finally:
            for replica in replicas.values():
                replica.process.stop()
            for replica in replicas.values():
                print(f"---- {replica.name} log (tail) ----")
                print(replica.process.log_tail(30))


def _namespaces(count: int, per_shard: int, prefix: str) -> dict[int, list[str]]:
    """``per_shard`` fresh namespace names for each of ``count`` shards."""
    found: dict[int, list[str]] = {i: [] for i in range(count)}
    for n in itertools.count():
        name = f"{prefix}-{n}"
        shard = shard_of(name, count)
        if len(found[shard]) < per_shard:
            found[shard].append(name)
        if all(len(v) == per_shard for v in found.values()):
            return found
    raise AssertionError("unreachable")


def _tenant(world: World, namespace: str) -> str:
    app = f"{namespace}-bot"
    world.api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    world.model.add_app(namespace, app)
    world.api.create(deployment(namespace, "chatbot-v7", app, replicas=3))
    world.api.create(service(namespace, "chatbot", {"app": app}))
    world.api.create(chatbot(namespace, app))
    return app


def _writers(world: World, namespace: str, users: list[str], since: float) -> set[str]:
    """Which of ``users`` wrote anything in ``namespace``."""
    marker = f"/namespaces/{namespace}/"
    return {r.user for u in users for r in world.cluster.audit(user=u, since=since) if r.write and marker in r.path}


def test_two_shards_never_act_on_the_same_system_and_together_cover_every_namespace(sharded: Sharded) -> None:
    world = sharded.world
    for replica in sharded.replicas.values():
        wait_for(f"{replica.name} leads its shard", lambda r=replica: r.role() == "leader", timeout=20)
    started = time.monotonic()
    namespaces = _namespaces(2, 2, "fleet")
    apps = {ns: _tenant(world, ns) for nss in namespaces.values() for ns in nss}
    for ns in apps:
        wait_for(f"{ns} Healthy", lambda ns=ns: views.phase(world.api, ns) == "Healthy", timeout=30)
    for ns, app in apps.items():
        world.model.inject((ns, app), "privacy", rate=2.0)
    for ns in apps:
        wait_for(f"{ns} contained", lambda ns=ns: views.replicas(world.api, ns) == 0, timeout=30)
        assert len(views.incidents(world.api, ns)) == 1

    users = [r.user for r in sharded.replicas.values()]
    for shard, nss in namespaces.items():
        for ns in nss:
            assert _writers(world, ns, users, started) == {f"shard-{shard}-of-2"}, ns
    leases = {r.readiness()["lease"] for r in sharded.replicas.values()}
    assert leases == {"airlock-system/airlock-shard-0-of-2", "airlock-system/airlock-shard-1-of-2"}


def test_a_changed_shard_count_waits_for_the_old_layout_to_stop(sharded: Sharded) -> None:
    world = sharded.world
    for name in ("shard-0-of-2", "shard-1-of-2"):  # the 2-shard layout is established first
        wait_for(f"{name} leads", lambda n=name: sharded.replicas[n].role() == "leader", timeout=20)
    newcomer = start_replica(world, "shard-0-of-3", ["--shard", "0/3"])
    sharded.replicas[newcomer.name] = newcomer
    started = time.monotonic()
    report = wait_for(
        "the 0/3 replica reports the conflict", lambda: (r := newcomer.readiness()) and r["shardConflicts"] and r
    )
    assert report["role"] == "standby"
    assert report["shardConflicts"] == ["airlock-shard-0-of-2", "airlock-shard-1-of-2"]
    mine = _namespaces(3, 1, "relayout")[0][0]
    app = _tenant(world, mine)
    time.sleep(3.0)  # the 2-shard layout serves it meanwhile; the newcomer must not
    assert all("/leases" in r.path for r in world.cluster.audit(user=newcomer.user, since=started) if r.write)

    # The old layout is rolled out (SIGTERM: each releases its Lease on the way out).
    for name in ("shard-0-of-2", "shard-1-of-2"):
        sharded.replicas[name].process.stop()
    wait_for("the 0/3 replica leads", lambda: newcomer.role() == "leader", timeout=10)
    world.model.inject((mine, app), "privacy", rate=2.0)
    wait_for(f"{mine} contained", lambda: views.replicas(world.api, mine) == 0, timeout=30)
    assert newcomer.user in _writers(world, mine, [newcomer.user], started)
