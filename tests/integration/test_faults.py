"""Faults around containment: invalid plans, missing objects, write conflicts, a Prometheus outage.

Each test breaks one thing a platform team will eventually break, and asserts
on what they would see: the AISystem's phase, conditions and Events, the
target workload, the incident.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from airlock.sandbox._k8s_identity import ADMIN
from airlock.sandbox._k8s_patches import merge_patch
from airlock.sandbox.cluster import AdmissionDenied, ResourceRef, SandboxCluster
from tests.integration import views
from tests.integration.conftest import Tenant, World, running_world
from tests.integration.systems import ALICE, chatbot, pii_monitor
from tests.integration.world import deployment, service, wait_for

pytestmark = pytest.mark.integration

PII_SEVERITIES: dict[str, Any] = {
    "SEV1": {"response": "shutdown", "actions": ["scaleToZero"], "notify": ["internal"]},
    "SEV3": {"response": "investigate", "notify": ["internal"]},
}


def _breach_visible(world: World, tenant: Tenant, above: float = 0.5) -> None:
    """Wait until Prometheus itself shows the injected PII leak (the operator's input, not its output)."""
    query = views.pii_query(tenant.namespace, tenant.app)
    wait_for(
        "the breach in Prometheus",
        lambda: (world.prometheus.query_value(query) or 0.0) > above,
        timeout=15,
    )


def _policy(name: str, severities: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "airlock.dev/v1alpha1",
        "kind": "ContainmentPolicy",
        "metadata": {"name": name},
        "spec": {"description": "shared matrix of the support bots", "severities": severities},
    }


@pytest.mark.parametrize(
    ("breakage", "field"),
    [
        ("severity-removed", "spec.monitors[0].thresholds[1].severity"),
        ("reroute-without-fallback", "spec.fallback"),
    ],
)
def test_policy_change_makes_system_invalid_without_touching_target(
    world: World, tenant: Tenant, breakage: str, field: str
) -> None:
    api, ns = world.api, tenant.namespace
    policy_name = f"{ns}-bots"
    api.create(deployment(ns, "chatbot-v7", tenant.app, replicas=3))
    api.create(service(ns, "chatbot", {"app": tenant.app}))
    world.create_cluster_scoped(_policy(policy_name, PII_SEVERITIES))  # deleted with the world if the test fails
    system = chatbot(ns, tenant.app, fallback=breakage != "reroute-without-fallback")
    del system["spec"]["severities"]
    system["spec"]["policyRef"] = {"name": policy_name}
    api.create(system)
    wait_for("system Healthy", lambda: views.phase(api, ns) == "Healthy", timeout=30)

    # The policy changes under the system: valid on its own, not for this system.
    if breakage == "severity-removed":
        broken: dict[str, Any] = {"SEV3": None}
    else:
        broken = {"SEV1": {"actions": ["reroute", "scaleToZero"]}}
    api.patch("ContainmentPolicy", None, policy_name, {"spec": {"severities": broken}})

    wait_for("phase Invalid", lambda: views.phase(api, ns) == "Invalid", timeout=10)
    stalled = views.condition(api, ns, "Stalled")
    assert stalled["status"] == "True", stalled
    assert stalled["reason"] == "InvalidSpec"
    assert field in stalled["message"], stalled
    assert views.condition(api, ns, "Ready")["status"] == "False"
    invalid = wait_for("InvalidSpec Event", lambda: views.events(api, ns, "InvalidSpec"), timeout=5)
    assert invalid[0]["type"] == "Warning"
    assert field in invalid[0]["message"]

    # A real breach while Invalid: an unexecutable plan touches nothing.
    world.model.inject((ns, tenant.app), "privacy", rate=2.0)
    _breach_visible(world, tenant)
    time.sleep(2.5)  # more than two monitor intervals
    assert views.phase(api, ns) == "Invalid"
    assert views.replicas(api, ns) == 3
    assert views.selector(api, ns) == {"app": tenant.app}
    assert views.CONTAINED_BY not in views.target_annotations(api, ns)
    assert views.incidents(api, ns) == []
    assert len(views.events(api, ns, "InvalidSpec")) == 1, "one Event per distinct error, not one per cycle"

    # The policy is fixed: the system is valid again and the breach is contained at once.
    api.apply(_policy(policy_name, PII_SEVERITIES))
    wait_for("target scaled to zero", lambda: views.replicas(api, ns) == 0, timeout=10)
    wait_for("phase ShutDown", lambda: views.phase(api, ns) == "ShutDown", timeout=5)
    stalled = views.condition(api, ns, "Stalled")
    assert stalled["status"] == "False", stalled
    assert views.status(api, ns)["containment"]["saved"]["replicas"] == 3
    api.delete("ContainmentPolicy", None, policy_name)


def test_missing_target_is_reported_then_contained_once_created(world: World, tenant: Tenant) -> None:
    api, ns = world.api, tenant.namespace
    api.create(service(ns, "chatbot", {"app": tenant.app}))
    api.create(chatbot(ns, tenant.app))
    wait_for("system Healthy", lambda: views.phase(api, ns) == "Healthy", timeout=30)

    world.model.inject((ns, tenant.app), "privacy", rate=2.0)
    missing = wait_for("TargetMissing Event", lambda: views.events(api, ns, "TargetMissing"), timeout=15)
    assert missing[0]["type"] == "Warning"
    assert "chatbot-v7" in missing[0]["message"]
    ready = wait_for(
        "Ready=False TargetMissing",
        lambda: (c := views.condition(api, ns, "Ready")).get("reason") == "TargetMissing" and c,
        timeout=5,
    )
    assert ready["status"] == "False"
    assert "chatbot-v7" in ready["message"]
    # Nothing could be applied: the system must not claim to be shut down.
    assert views.phase(api, ns) == "Degraded"
    assert views.condition(api, ns, "Contained")["status"] == "False"
    assert views.selector(api, ns) == {"app": tenant.app}
    time.sleep(2)  # several cycles of retries
    assert len(views.events(api, ns, "TargetMissing")) == 1, "one Event per distinct problem, not one per retry"

    # The Deployment appears (a late sync): containment is retried and happens.
    api.create(deployment(ns, "chatbot-v7", tenant.app, replicas=3))
    wait_for("target scaled to zero", lambda: views.replicas(api, ns) == 0, timeout=10)
    assert views.selector(api, ns) == {"app": f"{tenant.app}-fallback"}
    wait_for("phase ShutDown", lambda: views.phase(api, ns) == "ShutDown", timeout=5)
    wait_for("Ready=True", lambda: views.condition(api, ns, "Ready").get("status") == "True", timeout=5)
    containment = views.status(api, ns)["containment"]
    assert containment["active"] is True
    assert containment["saved"]["replicas"] == 3
    assert len(views.incidents(api, ns)) == 1


def test_missing_fallback_service_still_scales_to_zero_and_records_failure(world: World, tenant: Tenant) -> None:
    api, ns = world.api, tenant.namespace
    api.create(deployment(ns, "chatbot-v7", tenant.app, replicas=3))
    api.create(chatbot(ns, tenant.app))  # spec.fallback.service "chatbot" does not exist
    wait_for("system Healthy", lambda: views.phase(api, ns) == "Healthy", timeout=30)

    world.model.inject((ns, tenant.app), "privacy", rate=2.0)
    wait_for("target scaled to zero", lambda: views.replicas(api, ns) == 0, timeout=15)
    containment = wait_for(
        "the reroute failure in status",
        lambda: (c := views.status(api, ns).get("containment") or {}).get("failed") and c,
        timeout=5,
    )
    assert containment["active"] is True
    assert containment["actions"] == ["scaleToZero"]
    assert any(f.startswith("reroute:") and "chatbot" in f for f in containment["failed"]), containment
    assert containment["saved"]["replicas"] == 3
    assert views.phase(api, ns) == "ShutDown"
    ready = views.condition(api, ns, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ActionFailed")
    failed_events = wait_for("ActionFailed Event", lambda: views.events(api, ns, "ActionFailed"), timeout=5)
    assert failed_events[0]["type"] == "Warning"
    assert "reroute" in failed_events[0]["message"]
    incident = views.incidents(api, ns)[0]
    records = {r["action"]: r["result"] for r in incident["status"]["actions"]}
    assert records["scaleToZero"] == "applied"
    assert records["reroute"].startswith("failed: ")

    # Retried each cycle, but reported once: no Event or incident-record flood.
    time.sleep(3)
    assert len(views.events(api, ns, "ActionFailed")) == 1
    incident = views.incidents(api, ns)[0]
    assert [r["action"] for r in incident["status"]["actions"]].count("reroute") == 1

    # The Service appears: the retry reroutes, and the failure clears.
    api.create(service(ns, "chatbot", {"app": tenant.app}))
    wait_for(
        "traffic on the fallback",
        lambda: views.selector(api, ns) == {"app": f"{tenant.app}-fallback"},
        timeout=10,
    )
    containment = wait_for(
        "failure cleared",
        lambda: not (c := views.status(api, ns).get("containment") or {}).get("failed") and c,
        timeout=5,
    )
    assert sorted(containment["actions"]) == ["reroute", "scaleToZero"]
    assert containment["saved"]["selector"] == {"app": tenant.app}
    assert containment["saved"]["replicas"] == 3


class _ConflictOnce:
    """Admission hook: airlock's first write to the target answers 409, as if someone wrote first.

    And someone did: right after the rejected write, "the HPA" scales the target
    from 3 to 4 replicas.  A correct retry reads the fresh object, so the saved
    state (and a later release) says 4, not the stale 3.
    """

    def __init__(self, cluster: SandboxCluster, namespace: str, name: str) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.name = name
        self.rejected_at: float | None = None

    def __call__(
        self, operation: str, ref: ResourceRef, old: dict[str, Any] | None, new: dict[str, Any] | None, user: Any
    ) -> None:
        if self.rejected_at is not None or operation != "UPDATE" or new is None or old is None:
            return
        if (ref.resource, ref.namespace, ref.name) != ("deployments", self.namespace, self.name):
            return
        if views.CONTAINED_BY not in ((new.get("metadata") or {}).get("annotations") or {}):
            return
        self.rejected_at = time.monotonic()
        asyncio.get_running_loop().create_task(self._hpa_scales(4))
        raise AdmissionDenied(
            f'Operation cannot be fulfilled on deployments.apps "{self.name}": the object has been modified; '
            "please apply your changes to the latest version and try again",
            code=409,
            reason="Conflict",
        )

    async def _hpa_scales(self, replicas: int) -> None:
        # In-process, on the cluster's loop: lands right after the 409, before airlock's retry.
        store = self.cluster._store  # the emulator's own write path, the one an HPA's PATCH takes
        rt = self.cluster.resolve("deployments")
        await store.update(
            rt, self.namespace, self.name, "scale", lambda s: merge_patch(s, {"spec": {"replicas": replicas}}), ADMIN
        )


@pytest.fixture
def admission(world: World) -> Iterator[list[Any]]:
    """Admission hooks of this test only (removed afterwards)."""
    hooks: list[Any] = []
    yield hooks
    for hook in hooks:
        world.cluster.call(world.cluster.cluster.admission.remove, hook)


@pytest.mark.sandbox_only("injects a 409 Conflict into the operator's PATCH of the target, then a racing write")
def test_conflict_on_target_patch_is_retried_on_fresh_state(world: World, tenant: Tenant, admission: list[Any]) -> None:
    api, ns = world.api, tenant.namespace
    api.create(deployment(ns, "chatbot-v7", tenant.app, replicas=3))
    api.create(service(ns, "chatbot", {"app": tenant.app}))
    api.create(chatbot(ns, tenant.app, monitors=[pii_monitor(interval="3s")]))
    wait_for("system Healthy", lambda: views.phase(api, ns) == "Healthy", timeout=30)
    hook = _ConflictOnce(world.cluster.cluster, ns, "chatbot-v7")
    admission.append(hook)
    world.cluster.call(world.cluster.cluster.admission.append, hook)

    world.model.inject((ns, tenant.app), "privacy", rate=2.0)
    wait_for("target scaled to zero", lambda: views.replicas(api, ns) == 0, timeout=15)
    contained_at = time.monotonic()
    assert hook.rejected_at is not None, "the 409 was never injected"
    # Retried at once, not one monitor interval (3 s) later.
    assert contained_at - hook.rejected_at < 2.0

    status = wait_for(
        "phase ShutDown", lambda: (s := views.status(api, ns)).get("phase") == "ShutDown" and s, timeout=5
    )
    assert status["containment"]["saved"]["replicas"] == 4, "saved from the fresh object, not the stale read"
    assert not status["containment"].get("failed")
    assert views.selector(api, ns) == {"app": f"{tenant.app}-fallback"}
    assert len(views.incidents(api, ns)) == 1
    assert not views.events(api, ns, "ActionFailed")

    views.heal(world, ns, tenant.app)
    api.annotate("AISystem", ns, "chatbot", {"airlock.dev/release": "r1", "airlock.dev/requested-by": ALICE})
    wait_for("HPA's 4 replicas restored", lambda: views.replicas(api, ns) == 4, timeout=10)
    wait_for("selector restored", lambda: views.selector(api, ns) == {"app": tenant.app}, timeout=5)


# --------------------------------------------------------------- Prometheus outage
# A world of its own: killing Prometheus must not leak into the other tests.


@pytest.fixture
def own_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with running_world(tmp_path_factory.mktemp("outage")) as world:
        yield world


def test_prometheus_outage_holds_or_fails_closed(own_world: World) -> None:
    world = own_world
    api = world.api
    ns, app = world.create_namespace("outage"), "chatbot-out"
    world.model.add_app(ns, app)
    api.create(service(ns, "chatbot", {"app": app}))
    # Two systems on the same signals: one holds during an outage (the default), one fails closed.
    api.create(deployment(ns, "hold-v7", app, replicas=3))
    api.create(chatbot(ns, app, name="hold", target="hold-v7", fallback=False, severities=PII_SEVERITIES))
    api.create(deployment(ns, "strict-v7", app, replicas=2))
    api.create(
        chatbot(
            ns,
            app,
            name="strict",
            target="strict-v7",
            fallback=False,
            severities=PII_SEVERITIES,
            extra={"onProviderError": "contain", "failClosedAfter": "3s"},
        )
    )
    wait_for(
        "both Healthy",
        lambda: views.phase(api, ns, "hold") == views.phase(api, ns, "strict") == "Healthy",
        timeout=30,
    )

    world.prometheus.kill()
    killed = time.monotonic()
    try:
        # A loaded machine can show a transient noData (MonitoringGap) just before: wait for the outage itself.
        healthy = wait_for(
            "MonitoringHealthy=False (ProviderError)",
            lambda: (
                (c := views.condition(api, ns, "MonitoringHealthy", "hold")).get("status") == "False"
                and c.get("reason") == "ProviderError"
                and c
            ),
            timeout=2 * 1.0 + 2.0,  # two 1 s intervals, plus the write, plus slack for a loaded machine
        )
        assert "Prometheus" in healthy["message"] or "pii-leak" in healthy["message"], healthy
        assert views.monitor(api, ns, "hold")["state"] == "error"
        assert "Prometheus" in (views.monitor(api, ns, "hold").get("message") or "")
        wait_for("hold phase Unknown", lambda: views.phase(api, ns, "hold") == "Unknown", timeout=3)

        # `contain` fails closed once the outage outlasts failClosedAfter; `hold` never does.
        wait_for("strict scaled to zero", lambda: views.replicas(api, ns, "strict-v7") == 0, timeout=10)
        assert time.monotonic() - killed >= 3.0, "failed closed before failClosedAfter"
        strict = views.status(api, ns, "strict")
        assert strict["containment"]["active"] is True
        assert strict["containment"]["saved"]["replicas"] == 2
        assert "failing closed" in strict["containment"]["reason"]
        time.sleep(1.5)
        assert views.replicas(api, ns, "hold-v7") == 3
        assert views.phase(api, ns, "hold") == "Unknown"
        assert views.incidents(api, ns, "hold") == []
        assert views.status(api, ns, "hold").get("containment") is None
    finally:
        world.prometheus.restart()

    wait_for(
        "MonitoringHealthy=True again",
        lambda: views.condition(api, ns, "MonitoringHealthy", "hold").get("status") == "True",
        timeout=20,
    )
    wait_for("hold Healthy again", lambda: views.phase(api, ns, "hold") == "Healthy", timeout=10)
    assert views.monitor(api, ns, "hold")["state"] == "ok"
    # Failing closed is a containment like any other: it stays until a responder releases it.
    assert views.replicas(api, ns, "strict-v7") == 0
    api.annotate("AISystem", ns, "strict", {"airlock.dev/release": "r1", "airlock.dev/requested-by": ALICE})
    wait_for("strict restored", lambda: views.replicas(api, ns, "strict-v7") == 2, timeout=10)
    wait_for("strict Healthy", lambda: views.phase(api, ns, "strict") == "Healthy", timeout=10)
