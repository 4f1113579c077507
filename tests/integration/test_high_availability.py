"""Two ``airlock run --leader-elect`` replicas against one sandbox API server (SPEC §10).

Each replica is its own service account, so the sandbox's audit records say
who wrote what and when; the fencing assertions are made on those records,
never on the operators' logs.  Timing is the shipped defaults: lease 4 s,
renew deadline 3 s, retry 0.5 s.

The module owns its world: these tests kill, pause and cut off replicas.
Every test leaves two live replicas behind, one of them leading.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from airlock.sandbox import world as sandbox_world
from airlock.sandbox._k8s_audit import AuditRecord
from airlock.sandbox.cluster import AdmissionDenied, ResourceRef, UserInfo
from airlock.sandbox.replicas import OPERATOR_NAMESPACE, Replica, start_replica
from airlock.sandbox.world import World
from tests.integration import views
from tests.integration.conftest import Tenant
from tests.integration.systems import ALICE, chatbot
from tests.integration.world import deployment, service, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.sandbox_only(
        "replicas with their own API users, the sandbox's per-user request records (audit) and a relay to cut one off"
    ),
]

LEASE_DURATION, RENEW_DEADLINE = 4.0, 3.0
MONITOR_INTERVAL = 1.0


@dataclass
class HA:
    world: World
    replicas: dict[str, Replica]

    def leader(self, timeout: float = 20.0) -> Replica:
        """The one replica that says it leads (and the other says standby)."""

        def one() -> Replica | None:
            roles = {name: r.role() for name, r in self.replicas.items()}
            leaders = [self.replicas[n] for n, role in roles.items() if role == "leader"]
            return leaders[0] if len(leaders) == 1 and all(roles.values()) else None

        found: Replica = wait_for("exactly one leader, every replica answering", one, timeout=timeout)
        return found

    def other(self, replica: Replica) -> Replica:
        return next(r for r in self.replicas.values() if r is not replica)

    def restart(self, replica: Replica) -> None:
        if not replica.alive():
            replica.process.start()
        wait_for(f"{replica.name} answering", replica.readiness, timeout=20)

    def lease_holder(self) -> str | None:
        lease = self.world.cluster.get_object("leases.coordination.k8s.io", OPERATOR_NAMESPACE, "airlock")
        holder: str | None = ((lease or {}).get("spec") or {}).get("holderIdentity")
        return holder.rpartition("_")[0] if holder else None  # <--identity>_<random per process>


@pytest.fixture(scope="module")
def ha(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HA]:
    directory: Path = tmp_path_factory.mktemp("ha")
    with sandbox_world.running_world(directory, start_operator=False) as world:
        world.api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OPERATOR_NAMESPACE}})
        # Started at the same moment: the election must still end with one leader.
        replicas = {name: start_replica(world, name, relay=True) for name in ("airlock-a", "airlock-b")}
        try:
            yield HA(world, replicas)
        finally:
            for replica in replicas.values():
                replica.resume()
                replica.process.stop()
                if replica.relay is not None:
                    replica.relay.stop()
            for replica in replicas.values():
                print(f"---- {replica.name} log (tail) ----")
                print(replica.process.log_tail(40))


@pytest.fixture(scope="module")
def world(ha: HA) -> World:
    return ha.world


def _setup(world: World, tenant: Tenant) -> None:
    world.api.create(deployment(tenant.namespace, "chatbot-v7", tenant.app, replicas=3))
    world.api.create(service(tenant.namespace, "chatbot", {"app": tenant.app}))
    world.api.create(chatbot(tenant.namespace, tenant.app))
    wait_for("system Healthy", lambda: views.phase(world.api, tenant.namespace) == "Healthy", timeout=30)


def _writes(world: World, replica: Replica, *, since: float) -> list[AuditRecord]:
    return [r for r in world.cluster.audit(user=replica.user, since=since) if r.write]


def _is_lease(record: AuditRecord) -> bool:
    return "/leases" in record.path


def test_two_replicas_started_together_elect_exactly_one_leader(ha: HA) -> None:
    leader = ha.leader()
    standby = ha.other(leader)
    assert ha.lease_holder() == leader.name
    report = wait_for("the standby has read the Lease", lambda: (r := standby.readiness()) and r["holder"] and r)
    assert (report["role"], report["lease"]) == ("standby", "airlock-system/airlock")
    assert report["holder"].startswith(f"{leader.name}_")
    assert report["identity"].startswith(f"{standby.name}_")
    assert leader.metrics().get('airlock_leader{lease="airlock"}') == 1.0
    assert standby.metrics().get('airlock_leader{lease="airlock"}') == 0.0
    # A standby never writes: everything it sent since it started is reads and watches, and Lease attempts.
    writes = _writes(ha.world, standby, since=0.0)
    assert all(_is_lease(r) for r in writes), writes


def test_after_kill_9_of_the_leader_the_standby_contains_within_the_lease_duration(ha: HA, tenant: Tenant) -> None:
    world = ha.world
    _setup(world, tenant)
    leader = ha.leader()
    standby = ha.other(leader)
    leader.process.kill()
    killed = time.monotonic()
    world.model.inject((tenant.namespace, tenant.app), "privacy", rate=2.0)
    wait_for(
        "contained by the standby",
        lambda: views.replicas(world.api, tenant.namespace) == 0,
        timeout=LEASE_DURATION + MONITOR_INTERVAL + 10,
    )
    contained = time.monotonic()
    assert standby.role() == "leader"
    scale_writes = [r for r in _writes(world, standby, since=killed) if r.path.endswith("/chatbot-v7/scale")]
    assert scale_writes, "the new leader did not scale the target itself"
    first = scale_writes[0].received - killed
    # The lease duration, one monitor interval, Prometheus seeing the leak (3 s rate window, 1 s scrape), margin.
    assert first <= LEASE_DURATION + MONITOR_INTERVAL + 4.0, f"contained {first:.1f}s after the kill"
    assert len(views.incidents(world.api, tenant.namespace)) == 1
    print(f"kill -9 → contained by the standby in {contained - killed:.2f}s")
    ha.restart(leader)
    assert ha.leader() is standby


class PauseAt:
    """Admission hook: SIGSTOP a replica the moment its first write of ``resource`` arrives (the write lands).

    The replica is frozen in the middle of acting on a breach — its incident just
    created, the containment writes that follow it still to be sent — which is the
    moment a fence matters most.
    """

    def __init__(self, replica: Replica, resource: str) -> None:
        self.replica = replica
        self.resource = resource
        self.paused_at: float | None = None

    def __call__(self, operation: str, ref: ResourceRef, old: object, new: object, user: UserInfo) -> None:
        if self.paused_at is None and user.username == self.replica.user and ref.resource == self.resource:
            self.paused_at = time.monotonic()
            self.replica.pause()


def test_a_leader_paused_while_acting_writes_nothing_once_its_lease_expired(ha: HA, tenant: Tenant) -> None:
    world = ha.world
    _setup(world, tenant)
    old = ha.leader()
    new = ha.other(old)
    hook = PauseAt(old, "aiincidents")
    world.cluster.call(world.cluster.cluster.admission.append, hook)
    try:
        world.model.inject((tenant.namespace, tenant.app), "privacy", rate=2.0)
        wait_for("the leader paused as it opened the incident", lambda: hook.paused_at, timeout=20)
        wait_for("contained by the other replica", lambda: views.replicas(world.api, tenant.namespace) == 0, timeout=20)
    finally:
        world.cluster.call(world.cluster.cluster.admission.remove, hook)
        resumed = time.monotonic()
        old.resume()
    paused = hook.paused_at
    assert paused is not None
    assert any(r.path.endswith("/chatbot-v7/scale") for r in _writes(world, new, since=paused))
    wait_for("the old leader reports standby", lambda: old.role() == "standby", timeout=10)
    # Let it run as it would after a long GC pause: the rest of its reconcile, its overdue cycle, the watch backlog.
    time.sleep(2 * RENEW_DEADLINE)
    assert new.role() == "leader"

    lease_writes = [r for r in world.cluster.audit(user=old.user) if r.write and _is_lease(r) and r.code < 300]
    renewed = max(r.received for r in lease_writes if r.received < paused)
    expired = renewed + LEASE_DURATION
    late = _writes(world, old, since=expired)
    assert late == [], f"the old leader wrote after its lease expired: {late}"
    assert [r for r in lease_writes if r.received >= resumed] == []  # nor did it take the Lease back
    assert len(views.incidents(world.api, tenant.namespace)) == 1  # the new leader adopted the old one's incident
    print(f"paused {resumed - paused:.1f}s while acting; last renewal {paused - renewed:.2f}s before; no late write")
    assert old.metrics().get('airlock_leader{lease="airlock"}') == 0.0


def test_a_leader_cut_off_from_the_api_server_steps_down_at_the_renew_deadline(ha: HA, tenant: Tenant) -> None:
    world = ha.world
    _setup(world, tenant)
    old = ha.leader()
    new = ha.other(old)
    assert old.relay is not None
    old.relay.cut()
    cut = time.monotonic()
    try:
        wait_for("the cut-off leader says standby", lambda: old.role() == "standby", timeout=RENEW_DEADLINE + 3)
        stepped_down = time.monotonic() - cut
        wait_for("the other replica leads", lambda: new.role() == "leader", timeout=LEASE_DURATION + 5)
        taken_over = time.monotonic() - cut
        assert stepped_down < taken_over
        world.model.inject((tenant.namespace, tenant.app), "privacy", rate=2.0)
        wait_for("contained by the new leader", lambda: views.replicas(world.api, tenant.namespace) == 0, timeout=20)
    finally:
        old.relay.heal()
    time.sleep(2 * RENEW_DEADLINE)  # reconnected: watches resume, the election loop reads the Lease again
    assert old.role() == "standby"
    assert ha.leader() is new
    assert _writes(world, old, since=cut) == []
    print(f"cut off: stepped down after {stepped_down:.1f}s, the other led after {taken_over:.1f}s")


class KillAt:
    """Admission hook: at the leader's first status write recording a containment, SIGKILL it; the write is lost."""

    def __init__(self, replica: Replica, namespace: str) -> None:
        self.replica = replica
        self.namespace = namespace
        self.killed_at: float | None = None

    def __call__(self, operation: str, ref: ResourceRef, old: object, new: object, user: UserInfo) -> None:
        status = (new or {}).get("status") if isinstance(new, dict) else None
        if (
            self.killed_at is None
            and user.username == self.replica.user
            and ref.resource == "aisystems"
            and ref.subresource == "status"
            and ref.namespace == self.namespace
            and ((status or {}).get("containment") or {}).get("active")
        ):
            self.killed_at = time.monotonic()
            self.replica.process.kill()
            raise AdmissionDenied("the leader died before this write landed", code=503, reason="ServiceUnavailable")


def test_a_containment_the_dead_leader_could_not_record_is_adopted_by_the_new_one(ha: HA, tenant: Tenant) -> None:
    """The leader dies between marking the target and recording it; the breach is over when the other takes over.

    Nothing but the target's own marker says the model is contained: the new leader must take it
    as its containment (and release it exactly), not call the system Healthy.  The standby is
    frozen meanwhile, so it takes over with the old leader's last writes still unread on its watch.
    """
    world, ns = ha.world, tenant.namespace
    _setup(world, tenant)
    old = ha.leader()
    new = ha.other(old)
    hook = KillAt(old, ns)
    world.cluster.call(world.cluster.cluster.admission.append, hook)
    try:
        world.model.inject((ns, tenant.app), "privacy", rate=2.0)
        wait_for("the leader killed between the target write and its record", lambda: hook.killed_at, timeout=20)
        new.pause()
    finally:
        world.cluster.call(world.cluster.cluster.admission.remove, hook)
    try:
        assert views.replicas(world.api, ns) == 0  # the target was contained by the dead leader …
        assert (views.status(world.api, ns).get("containment") or {}).get("active") is None  # … not recorded
        world.model.heal((ns, tenant.app))
        query = views.pii_query(ns, tenant.app)
        wait_for("the leak over in Prometheus", lambda: not world.prometheus.query_value(query), timeout=15)
    finally:
        new.resume()
    wait_for("the other replica leads", lambda: new.role() == "leader", timeout=10)
    status = wait_for(
        "the new leader records the containment it found on the target",
        lambda: ((s := views.status(world.api, ns)).get("containment") or {}).get("active") and s,
        timeout=15,
    )
    assert status["containment"]["saved"]["replicas"] == 3  # what the target's saved-state said
    assert status["phase"] in ("Contained", "ShutDown")
    assert views.replicas(world.api, ns) == 0
    ha.restart(old)
    world.api.annotate("AISystem", ns, "chatbot", {"airlock.dev/release": "r1", "airlock.dev/requested-by": ALICE})
    wait_for("restored exactly: 3 replicas", lambda: views.replicas(world.api, ns) == 3, timeout=20)
    wait_for("the original selector", lambda: views.selector(world.api, ns) == {"app": tenant.app}, timeout=10)
