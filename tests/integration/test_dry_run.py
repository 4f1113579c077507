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
from tests.integration.systems import ALICE, chatbot
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

    # The rehearsal ends like the real thing: the model heals, a responder releases.
    world.model.heal((ns, tenant.app))
    wait_for("fairness back to ok", lambda: checks.monitor(world, ns, "fairness").get("state") == "ok", timeout=6)
    api.annotate("AISystem", ns, "chatbot", {"airlock.dev/release": "dry-1", "airlock.dev/requested-by": ALICE})
    wait_for(
        "dry-run incident resolved",
        lambda: ((checks.incident(world, ns) or {}).get("status") or {}).get("phase") == "Resolved",
        timeout=3,
    )
    wait_for("system Healthy", lambda: checks.phase(world, ns) == "Healthy", timeout=3)
    assert "wouldContain" not in checks.status(world, ns)
    assert checks.versions(world, "deployments", ns, TARGET) == writes["deployments"]
    assert checks.versions(world, "services", ns, "chatbot") == writes["services"]
