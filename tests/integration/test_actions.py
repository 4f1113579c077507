"""Each containment action on a live workload, and the release that restores it exactly.

One scenario per action (reroute, pauseRollout on each target kind, scaleToZero with
and without KEDA, isolate), plus the revert fight.  A fairness breach (a gauge, so
it starts and stops within a scrape) triggers containment; release must leave the
target, its Service and its ScaledObject exactly as they were before — the way a
GitOps tool would see them.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.integration import checks
from tests.integration.checks import SYSTEM, Snapshot, snapshot
from tests.integration.conftest import Tenant, World
from tests.integration.systems import ALICE, chatbot
from tests.integration.workloads import (
    KEDA_CRD,
    ROLLOUT_CRD,
    fairness_monitor,
    rollout,
    scaled_object,
    statefulset,
    target_ref,
)
from tests.integration.world import deployment, service, wait_for

pytestmark = pytest.mark.integration

TARGET = "chatbot-v7"
# Breach visible in Prometheus within one scrape (1 s), evaluated within one interval (1 s).
ACT_WITHIN = 6.0


@pytest.fixture(scope="module", autouse=True)
def third_party_crds(world: World) -> None:
    # On a real cluster that has Argo Rollouts or KEDA, their own CRDs stay (and their controllers act).
    world.create_cluster_scoped(ROLLOUT_CRD, keep_existing=True)
    world.create_cluster_scoped(KEDA_CRD, keep_existing=True)
    wait_for(
        "Rollout and ScaledObject served",
        lambda: all(world.api.call("GET", world.api.path(kind)) is not None for kind in ("Rollout", "ScaledObject")),
        timeout=5,
    )


def _system(tenant: Tenant, actions: list[str], kind: str = "Deployment", response: str = "contain") -> dict[str, Any]:
    return chatbot(
        tenant.namespace,
        tenant.app,
        monitors=[fairness_monitor("SEV1")],
        severities={"SEV1": {"response": response, "actions": actions, "notify": ["internal"]}},
        extra={"target": target_ref(kind, TARGET)},
    )


def _contain(world: World, tenant: Tenant, system: dict[str, Any], expected_phase: str) -> dict[str, Any]:
    """Break fairness, create the system, and wait for containment; return the status.

    (Whether a healthy system stays untouched is test_responses' business: here the action is.)
    """
    world.model.inject((tenant.namespace, tenant.app), "fairness", value=0.5)
    world.api.create(system)
    return checks.wait_phase(world, tenant.namespace, expected_phase, timeout=ACT_WITHIN)


def _release(world: World, tenant: Tenant, value: str = "fixed-1") -> None:
    """Heal the model, ask for a release as a responder, and wait until airlock handled it."""
    ns = tenant.namespace
    world.model.heal((ns, tenant.app))
    wait_for("fairness back to ok", lambda: checks.monitor(world, ns, "fairness").get("state") == "ok", timeout=6)
    world.api.annotate("AISystem", ns, SYSTEM, {"airlock.dev/release": value, "airlock.dev/requested-by": ALICE})
    wait_for(
        "release handled and system Healthy",
        lambda: (s := checks.status(world, ns)).get("lastHandledRelease") == value and s.get("phase") == "Healthy",
        timeout=5,
    )


def _assert_restored(world: World, kind: str, namespace: str, name: str, before: Snapshot) -> None:
    after = snapshot(world, kind, namespace, name)
    for key in checks.CONTROL_ANNOTATIONS:
        assert key not in after.annotations, f"{kind} {name} still carries {key}"
    assert after == before, f"{kind} {name} not restored exactly"


def _assert_resolved(world: World, tenant: Tenant, value: str = "fixed-1") -> None:
    ns = tenant.namespace
    status = checks.status(world, ns)
    assert status["lastHandledRelease"] == value
    assert "containment" not in status
    assert checks.condition(world, ns, "Contained")["status"] == "False"
    incident = checks.incident(world, ns)
    assert incident is not None
    assert incident["status"]["phase"] == "Resolved"
    assert incident["status"]["resolvedAt"]
    # Resolved after the containment (the follow-ups loop may already have added PostmortemDrafted after it).
    timeline = checks.timeline(incident)
    assert "Resolved" in timeline
    assert timeline.index("Contained") < timeline.index("Resolved")
    assert "Released" in checks.reasons(world, ns)


def _saved_on_target(world: World, kind: str, namespace: str) -> dict[str, Any]:
    annotations = snapshot(world, kind, namespace, TARGET).annotations
    assert annotations.get("airlock.dev/contained-by") == SYSTEM
    saved: dict[str, Any] = json.loads(annotations["airlock.dev/saved-state"])
    return saved


def test_reroute_switches_the_whole_selector_and_release_restores_it(world: World, tenant: Tenant) -> None:
    api, ns = world.api, tenant.namespace
    api.create(deployment(ns, TARGET, tenant.app, replicas=3))
    # Extra keys: a merge patch would leave `tier` and `track` behind and select nothing.
    api.create(service(ns, "chatbot", {"app": tenant.app, "track": "model", "tier": "gpu"}))
    before = {
        "Deployment": snapshot(world, "Deployment", ns, TARGET),
        "Service": snapshot(world, "Service", ns, "chatbot"),
    }

    status = _contain(world, tenant, _system(tenant, ["reroute"]), "Contained")

    assert api.get("Service", ns, "chatbot")["spec"]["selector"] == {"app": f"{tenant.app}-fallback"}  # type: ignore[index]
    assert status["containment"]["actions"] == ["reroute"]
    assert status["containment"]["saved"]["selector"] == {"app": tenant.app, "track": "model", "tier": "gpu"}
    assert _saved_on_target(world, "Deployment", ns)["selector"] == status["containment"]["saved"]["selector"]
    assert checks.replicas(world, "Deployment", ns, TARGET) == 3  # reroute alone keeps the model running
    incident = checks.incident(world, ns)
    assert incident is not None
    assert incident["status"]["phase"] == "Contained"
    assert [a["action"] for a in incident["status"]["actions"]] == ["reroute"]

    _release(world, tenant)

    _assert_restored(world, "Service", ns, "chatbot", before["Service"])
    _assert_restored(world, "Deployment", ns, TARGET, before["Deployment"])
    _assert_resolved(world, tenant)

    # The same release value again (the annotation simply stays) is never handled twice: the next
    # containment holds after the model heals, until someone asks for a release with a new value.
    world.model.inject((ns, tenant.app), "fairness", value=0.5)
    checks.wait_phase(world, ns, "Contained", timeout=ACT_WITHIN)
    world.model.heal((ns, tenant.app))
    wait_for("fairness back to ok", lambda: checks.monitor(world, ns, "fairness").get("state") == "ok", timeout=6)
    time.sleep(1.5)  # a few more evaluations and watch events: nothing may release
    assert checks.phase(world, ns) == "Contained"
    assert checks.reasons(world, ns).count("Released") == 1
    assert api.get("Service", ns, "chatbot")["spec"]["selector"] == {"app": f"{tenant.app}-fallback"}  # type: ignore[index]


def test_pause_rollout_on_a_deployment(world: World, tenant: Tenant) -> None:
    api, ns = world.api, tenant.namespace
    api.create(deployment(ns, TARGET, tenant.app, replicas=3))
    api.create(service(ns, "chatbot", {"app": tenant.app}))
    before = snapshot(world, "Deployment", ns, TARGET)

    status = _contain(world, tenant, _system(tenant, ["pauseRollout"]), "Contained")

    target = api.get("Deployment", ns, TARGET) or {}
    assert target["spec"]["paused"] is True
    assert target["spec"]["replicas"] == 3  # pausing a rollout keeps serving
    assert status["containment"]["saved"]["paused"] is False
    assert api.get("Service", ns, "chatbot")["spec"]["selector"] == {"app": tenant.app}  # type: ignore[index]

    _release(world, tenant)

    _assert_restored(world, "Deployment", ns, TARGET, before)
    _assert_resolved(world, tenant)


def test_pause_rollout_on_a_statefulset_raises_the_partition(world: World, tenant: Tenant) -> None:
    api, ns = world.api, tenant.namespace
    api.create(statefulset(ns, TARGET, tenant.app, replicas=3))
    before = snapshot(world, "StatefulSet", ns, TARGET)

    status = _contain(world, tenant, _system(tenant, ["pauseRollout"], kind="StatefulSet"), "Contained")

    target = api.get("StatefulSet", ns, TARGET) or {}
    # No ordinal is that high: the controller updates no pod until the partition is lowered again.
    assert target["spec"]["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 2147483647}}
    assert target["spec"]["replicas"] == 3
    assert status["containment"]["saved"]["updateStrategy"] == before.spec["updateStrategy"]

    _release(world, tenant)

    _assert_restored(world, "StatefulSet", ns, TARGET, before)
    _assert_resolved(world, tenant)


def test_pause_rollout_and_scale_to_zero_on_an_argo_rollout(world: World, tenant: Tenant) -> None:
    api, ns = world.api, tenant.namespace
    api.create(rollout(ns, TARGET, tenant.app, replicas=3))
    before = snapshot(world, "Rollout", ns, TARGET)

    status = _contain(world, tenant, _system(tenant, ["pauseRollout", "scaleToZero"], kind="Rollout"), "ShutDown")

    target = api.get("Rollout", ns, TARGET) or {}
    assert target["spec"]["paused"] is True
    assert target["spec"]["replicas"] == 0  # through the Rollout's scale subresource
    assert status["containment"]["saved"]["replicas"] == 3
    assert status["containment"]["saved"]["paused"] is False
    assert _saved_on_target(world, "Rollout", ns)["replicas"] == 3

    _release(world, tenant)

    _assert_restored(world, "Rollout", ns, TARGET, before)
    _assert_resolved(world, tenant)


def test_scale_to_zero_pauses_keda_and_release_removes_the_pause(world: World, tenant: Tenant) -> None:
    api, ns = world.api, tenant.namespace
    api.create(deployment(ns, TARGET, tenant.app, replicas=3))
    api.create(scaled_object(ns, "chatbot-scaler", TARGET))
    before = {
        "Deployment": snapshot(world, "Deployment", ns, TARGET),
        "ScaledObject": snapshot(world, "ScaledObject", ns, "chatbot-scaler"),
    }
    assert "autoscaling.keda.sh/paused-replicas" not in before["ScaledObject"].annotations

    status = _contain(world, tenant, _system(tenant, ["scaleToZero"]), "ShutDown")

    assert checks.replicas(world, "Deployment", ns, TARGET) == 0
    # KEDA would otherwise scale the model straight back up on the next trigger.
    keda = snapshot(world, "ScaledObject", ns, "chatbot-scaler")
    assert keda.annotations["autoscaling.keda.sh/paused-replicas"] == "0"
    assert status["containment"]["saved"]["replicas"] == 3
    assert status["containment"]["saved"]["keda"]["name"] == "chatbot-scaler"
    assert status["containment"]["saved"]["keda"].get("pausedReplicas") is None  # there was no pause to keep

    _release(world, tenant)

    _assert_restored(world, "Deployment", ns, TARGET, before["Deployment"])
    _assert_restored(world, "ScaledObject", ns, "chatbot-scaler", before["ScaledObject"])
    _assert_resolved(world, tenant)


def test_scale_to_zero_keeps_an_existing_keda_pause_value(world: World, tenant: Tenant) -> None:
    api, ns = world.api, tenant.namespace
    api.create(deployment(ns, TARGET, tenant.app, replicas=2))
    api.create(scaled_object(ns, "chatbot-scaler", TARGET, {"autoscaling.keda.sh/paused-replicas": "2"}))
    before = {
        "Deployment": snapshot(world, "Deployment", ns, TARGET),
        "ScaledObject": snapshot(world, "ScaledObject", ns, "chatbot-scaler"),
    }

    status = _contain(world, tenant, _system(tenant, ["scaleToZero"]), "ShutDown")

    assert checks.replicas(world, "Deployment", ns, TARGET) == 0
    keda = snapshot(world, "ScaledObject", ns, "chatbot-scaler")
    assert keda.annotations["autoscaling.keda.sh/paused-replicas"] == "0"
    assert status["containment"]["saved"]["keda"] == {"name": "chatbot-scaler", "pausedReplicas": "2"}

    _release(world, tenant)

    _assert_restored(world, "ScaledObject", ns, "chatbot-scaler", before["ScaledObject"])
    _assert_restored(world, "Deployment", ns, TARGET, before["Deployment"])
    _assert_resolved(world, tenant)


def test_isolate_cuts_the_pods_off_and_keeps_them_running(world: World, tenant: Tenant) -> None:
    api, ns = world.api, tenant.namespace
    api.create(deployment(ns, TARGET, tenant.app, replicas=3))
    api.create(service(ns, "chatbot", {"app": tenant.app}))
    before = snapshot(world, "Deployment", ns, TARGET)
    service_before = snapshot(world, "Service", ns, "chatbot")

    status = _contain(world, tenant, _system(tenant, ["isolate"]), "Contained")

    policy = api.get("NetworkPolicy", ns, f"airlock-isolate-{SYSTEM}")
    assert policy is not None
    assert policy["spec"]["podSelector"] == {"matchLabels": {"app": tenant.app, "track": "model"}}
    assert sorted(policy["spec"]["policyTypes"]) == ["Egress", "Ingress"]
    # No rule at all: deny everything, both ways.
    assert not policy["spec"].get("ingress")
    assert not policy["spec"].get("egress")
    assert status["containment"]["actions"] == ["isolate"]
    # The pods stay alive for forensics: the Deployment's spec is untouched (only airlock's markers added).
    during = snapshot(world, "Deployment", ns, TARGET)
    assert during.spec == before.spec
    assert snapshot(world, "Service", ns, "chatbot") == service_before

    _release(world, tenant)

    assert api.get("NetworkPolicy", ns, f"airlock-isolate-{SYSTEM}") is None
    _assert_restored(world, "Deployment", ns, TARGET, before)
    _assert_resolved(world, tenant)


def test_revert_fight_reapplies_and_keeps_the_original_saved_state(world: World, tenant: Tenant) -> None:
    api, ns = world.api, tenant.namespace
    api.create(deployment(ns, TARGET, tenant.app, replicas=3))
    api.create(service(ns, "chatbot", {"app": tenant.app}))

    _contain(world, tenant, _system(tenant, ["scaleToZero"]), "ShutDown")
    assert checks.replicas(world, "Deployment", ns, TARGET) == 0

    # An HPA or Argo CD self-heal puts the replicas back through the scale subresource.
    api.patch("Deployment", ns, TARGET, {"spec": {"replicas": 3}}, sub="scale")

    wait_for(
        "ContainmentReverted event",
        lambda: "ContainmentReverted" in checks.reasons(world, ns),
        timeout=ACT_WITHIN,
    )
    wait_for("replicas 0 again", lambda: checks.replicas(world, "Deployment", ns, TARGET) == 0, timeout=2)
    status = checks.status(world, ns)
    assert status["phase"] == "ShutDown"
    assert status["containment"]["saved"]["replicas"] == 3  # the original, not the 0 airlock itself set
    assert _saved_on_target(world, "Deployment", ns)["replicas"] == 3
    event = next(e for e in world.api.events(ns, SYSTEM) if e["reason"] == "ContainmentReverted")
    assert event["type"] == "Warning"
    assert "scaleToZero" in event["message"]
    incident = checks.incident(world, ns)
    assert incident is not None
    assert "ContainmentReverted" in checks.timeline(incident)
    assert [a["result"] for a in incident["status"]["actions"]] == ["applied", "re-applied"]
