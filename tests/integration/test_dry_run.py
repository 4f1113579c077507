"""dryRun: the whole evaluation and the whole record, and not a single write to the workload.

A team adopting airlock runs a policy in dryRun first: it must see exactly what
enforce mode would have done (incident, severity, the actions) while the
model keeps serving untouched.  "Untouched" is measured at the API server: the
sandbox keeps every version of every object, so no write can hide.
"""

from __future__ import annotations

import time

import pytest

from tests.integration import checks
from tests.integration.conftest import Tenant, World
from tests.integration.systems import chatbot
from tests.integration.workloads import fairness_monitor
from tests.integration.world import deployment, service, wait_for

pytestmark = pytest.mark.integration

TARGET = "chatbot-v7"
ACT_WITHIN = 6.0


def test_dry_run_decides_and_records_but_never_writes_to_the_workload(world: World, tenant: Tenant) -> None:
    api, ns = world.api, tenant.namespace
    api.create(deployment(ns, TARGET, tenant.app, replicas=3))
    api.create(service(ns, "chatbot", {"app": tenant.app}))
    writes = {
        "deployments": checks.versions(world, "deployments", ns, TARGET),
        "services": checks.versions(world, "services", ns, "chatbot"),
    }
    api.create(
        chatbot(
            ns,
            tenant.app,
            mode="dryRun",
            monitors=[fairness_monitor("SEV1")],
            severities={
                "SEV1": {"response": "shutdown", "actions": ["reroute", "scaleToZero"], "notify": ["internal"]}
            },
            target=TARGET,
        )
    )
    checks.wait_phase(world, ns, "Healthy", timeout=10)

    world.model.inject((ns, tenant.app), "fairness", value=0.5)

    incident = checks.wait_incident(world, ns, timeout=ACT_WITHIN, severity="SEV1")
    status = wait_for(
        "status.wouldContain", lambda: (s := checks.status(world, ns)).get("wouldContain") and s, timeout=2
    )
    time.sleep(1.5)  # several more evaluations: enforce mode would have acted long ago

    # The full evaluation and decision, on the record.
    assert incident["spec"]["dryRun"] is True
    assert incident["spec"]["failureMode"] == "fairness"
    assert incident["spec"]["trigger"]["monitor"] == "fairness"
    assert incident["status"]["phase"] == "Open"
    assert status["wouldContain"] == ["reroute", "scaleToZero"]
    assert "WouldContain" in checks.reasons(world, ns)
    assert status["phase"] == "Degraded"
    assert status["severity"] == "SEV1"
    assert status["incident"] == incident["metadata"]["name"]
    assert "containment" not in status
    assert checks.monitor(world, ns, "fairness")["state"] == "breached"
    assert checks.condition(world, ns, "Contained")["status"] == "False"
    assert "IncidentOpened" in checks.reasons(world, ns)
    assert "Contained" not in checks.reasons(world, ns)
    assert "Contained" not in checks.timeline(checks.incident(world, ns) or {})

    # Zero writes to the target and the Service, and nothing created beside them.
    assert checks.versions(world, "deployments", ns, TARGET) == writes["deployments"]
    assert checks.versions(world, "services", ns, "chatbot") == writes["services"]
    assert api.list("NetworkPolicy", ns) == []
    target = api.get("Deployment", ns, TARGET) or {}
    assert target["spec"]["replicas"] == 3
    assert "airlock.dev/contained-by" not in (target["metadata"].get("annotations") or {})

    # The rehearsal ends when the breach ends: nothing was contained, so there is nothing to release.
    world.model.heal((ns, tenant.app))
    wait_for("fairness back to ok", lambda: checks.monitor(world, ns, "fairness").get("state") == "ok", timeout=6)
    resolved = wait_for(
        "dry-run incident resolved",
        lambda: (i := checks.incident(world, ns) or {}).get("status", {}).get("phase") == "Resolved" and i,
        timeout=3,
    )
    assert any("breach ended" in e["message"] for e in resolved["status"]["timeline"] if e["type"] == "Resolved")
    wait_for("system Healthy", lambda: checks.phase(world, ns) == "Healthy", timeout=3)
    assert "wouldContain" not in checks.status(world, ns)
    assert checks.versions(world, "deployments", ns, TARGET) == writes["deployments"]
    assert checks.versions(world, "services", ns, "chatbot") == writes["services"]


def _dry_run_system(world: World, tenant: Tenant) -> None:
    api, ns = world.api, tenant.namespace
    api.create(deployment(ns, TARGET, tenant.app, replicas=3))
    api.create(service(ns, "chatbot", {"app": tenant.app}))
    api.create(
        chatbot(
            ns,
            tenant.app,
            mode="dryRun",
            monitors=[fairness_monitor("SEV1")],
            severities={"SEV1": {"response": "shutdown", "actions": ["reroute", "scaleToZero"]}},
            target=TARGET,
        )
    )
    checks.wait_phase(world, ns, "Healthy", timeout=10)


def test_switching_to_enforce_after_a_recovered_dry_run_breach_touches_nothing(world: World, tenant: Tenant) -> None:
    """SPEC §7 "trying airlock is safe": only breaches after the switch act."""
    api, ns = world.api, tenant.namespace
    _dry_run_system(world, tenant)
    world.model.inject((ns, tenant.app), "fairness", value=0.5)
    checks.wait_incident(world, ns, timeout=ACT_WITHIN, severity="SEV1")
    writes = checks.versions(world, "deployments", ns, TARGET)
    world.model.heal((ns, tenant.app))
    # Airlock itself has seen the breach end (the incident is resolved for it), not just a status not yet updated.
    wait_for(
        "the dry-run incident resolved",
        lambda: [i["status"]["phase"] for i in checks.incidents(world, ns)] == ["Resolved"],
        timeout=10,
    )

    api.patch("AISystem", ns, "chatbot", {"spec": {"mode": "enforce"}})
    wait_for("enforce observed", lambda: checks.status(world, ns).get("observedGeneration") == 2, timeout=5)
    time.sleep(2.5)  # evaluations in enforce mode
    assert checks.replicas(world, "Deployment", ns, TARGET) == 3
    assert checks.versions(world, "deployments", ns, TARGET) == writes
    assert checks.phase(world, ns) == "Healthy"
    assert [i["status"]["phase"] for i in checks.incidents(world, ns)] == ["Resolved"]


def test_switching_to_enforce_during_a_breach_acts_on_it_with_an_incident_of_its_own(
    world: World, tenant: Tenant
) -> None:
    api, ns = world.api, tenant.namespace
    _dry_run_system(world, tenant)
    world.model.inject((ns, tenant.app), "fairness", value=0.5)
    dry = checks.wait_incident(world, ns, timeout=ACT_WITHIN, severity="SEV1")["metadata"]["name"]

    api.patch("AISystem", ns, "chatbot", {"spec": {"mode": "enforce"}})
    wait_for("contained", lambda: checks.replicas(world, "Deployment", ns, TARGET) == 0, timeout=ACT_WITHIN)
    incidents = {i["metadata"]["name"]: i for i in checks.incidents(world, ns)}
    ended = incidents.pop(dry)
    assert ended["status"]["phase"] == "Resolved"
    assert any("mode switched to enforce" in e["message"] for e in ended["status"]["timeline"])
    (enforced,) = incidents.values()
    assert enforced["spec"].get("dryRun") is not True
    assert enforced["status"]["phase"] in ("Open", "Contained")
    assert checks.status(world, ns)["incident"] == enforced["metadata"]["name"]
