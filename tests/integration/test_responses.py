"""Each response of the matrix, as the on-call engineer lives it.

observe records; investigate opens an incident; escalate pages and waits for an
approval — or climbs to the next severity when nobody acknowledges in time;
contain and shutdown act at once.  A fairness breach (a gauge: on and off
within a scrape) drives every scenario.  "Nothing touched" is checked with
the sandbox's object history: not one write to the target or its Service.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.integration import checks
from tests.integration.conftest import Tenant, World
from tests.integration.systems import ALICE, chatbot
from tests.integration.workloads import fairness_monitor
from tests.integration.world import deployment, service, wait_for

pytestmark = pytest.mark.integration

TARGET = "chatbot-v7"
ACT_WITHIN = 6.0  # one scrape + one monitor interval + slack
SETTLE = 1.2  # more than one more evaluation (1 s interval), during which nothing may happen


def _setup(world: World, tenant: Tenant, severity: str, severities: dict[str, Any]) -> None:
    ns = tenant.namespace
    world.api.create(deployment(ns, TARGET, tenant.app, replicas=3))
    world.api.create(service(ns, "chatbot", {"app": tenant.app}))
    world.api.create(
        chatbot(ns, tenant.app, monitors=[fairness_monitor(severity)], severities=severities, target=TARGET)
    )
    checks.wait_phase(world, ns, "Healthy", timeout=10)


def _writes(world: World, ns: str) -> tuple[int, int]:
    return (checks.versions(world, "deployments", ns, TARGET), checks.versions(world, "services", ns, "chatbot"))


def _break(world: World, tenant: Tenant) -> None:
    world.model.inject((tenant.namespace, tenant.app), "fairness", value=0.5)


def _untouched(world: World, tenant: Tenant) -> None:
    ns = tenant.namespace
    target = world.api.get("Deployment", ns, TARGET) or {}
    assert target["spec"]["replicas"] == 3
    assert "paused" not in target["spec"]
    assert "airlock.dev/contained-by" not in (target["metadata"].get("annotations") or {})
    assert (world.api.get("Service", ns, "chatbot") or {})["spec"]["selector"] == {"app": tenant.app}
    assert "containment" not in checks.status(world, ns)


def test_observe_records_only(world: World, tenant: Tenant) -> None:
    ns = tenant.namespace
    _setup(world, tenant, "SEV4", {"SEV4": {"response": "observe"}})
    writes = _writes(world, ns)

    _break(world, tenant)

    status = checks.wait_phase(world, ns, "Degraded", timeout=ACT_WITHIN)
    time.sleep(SETTLE)
    assert status["severity"] == "SEV4"
    assert checks.monitor(world, ns, "fairness")["state"] == "breached"
    assert "incident" not in checks.status(world, ns)
    assert checks.incidents(world, ns) == []
    assert "IncidentOpened" not in checks.reasons(world, ns)
    assert _writes(world, ns) == writes
    _untouched(world, tenant)


def test_investigate_opens_an_incident_and_touches_nothing(world: World, tenant: Tenant) -> None:
    ns = tenant.namespace
    _setup(world, tenant, "SEV3", {"SEV3": {"response": "investigate", "notify": ["internal"]}})
    writes = _writes(world, ns)

    _break(world, tenant)

    incident = checks.wait_incident(world, ns, timeout=ACT_WITHIN, severity="SEV3", failureMode="fairness")
    time.sleep(SETTLE)
    status = checks.status(world, ns)
    assert status["phase"] == "Degraded"
    assert status["incident"] == incident["metadata"]["name"]
    incident = checks.incident(world, ns) or {}
    assert incident["status"]["phase"] == "Open"
    assert checks.timeline(incident) == ["Detected"]
    assert "IncidentOpened" in checks.reasons(world, ns)
    assert _writes(world, ns) == writes
    _untouched(world, tenant)


ESCALATE = {
    "SEV1": {"response": "shutdown", "actions": ["reroute", "scaleToZero"], "notify": ["internal"]},
    "SEV2": {"response": "escalate", "actions": ["reroute", "pauseRollout"], "ackWithin": "15m"},
}


def test_escalate_waits_for_a_responders_approval(world: World, tenant: Tenant) -> None:
    ns = tenant.namespace
    _setup(world, tenant, "SEV2", ESCALATE)
    writes = _writes(world, ns)

    _break(world, tenant)

    incident = checks.wait_incident(world, ns, timeout=ACT_WITHIN, severity="SEV2")
    time.sleep(SETTLE)
    assert checks.phase(world, ns) == "Degraded"  # paged, waiting for a human
    assert _writes(world, ns) == writes
    _untouched(world, tenant)

    name = incident["metadata"]["name"]
    world.api.annotate("AIIncident", ns, name, {"airlock.dev/approve": "go", "airlock.dev/requested-by": ALICE})

    status = checks.wait_phase(world, ns, "Contained", timeout=3)
    target = world.api.get("Deployment", ns, TARGET) or {}
    assert target["spec"]["paused"] is True
    assert target["spec"]["replicas"] == 3  # SEV2's actions, not SEV1's
    assert (world.api.get("Service", ns, "chatbot") or {})["spec"]["selector"] == {"app": f"{tenant.app}-fallback"}
    assert sorted(status["containment"]["actions"]) == ["pauseRollout", "reroute"]
    assert status["severity"] == "SEV2"
    incident = world.api.get("AIIncident", ns, name) or {}
    assert incident["spec"]["severity"] == "SEV2"
    assert incident["status"]["phase"] == "Contained"
    timeline = incident["status"]["timeline"]
    approved = [e for e in timeline if e["type"] == "Approved"]
    assert approved, timeline
    assert approved[0]["by"] == ALICE
    assert checks.timeline(incident).index("Approved") < checks.timeline(incident).index("Contained")
    assert "Approved" in checks.reasons(world, ns)


def test_escalate_without_acknowledgement_climbs_to_shutdown(world: World, tenant: Tenant) -> None:
    ns = tenant.namespace
    severities = {**ESCALATE, "SEV2": {**ESCALATE["SEV2"], "ackWithin": "3s"}}
    _setup(world, tenant, "SEV2", severities)

    _break(world, tenant)

    incident = checks.wait_incident(world, ns, timeout=ACT_WITHIN, severity="SEV2")
    name = incident["metadata"]["name"]
    checks.wait_phase(world, ns, "Degraded", timeout=2)  # paged; the status follows the incident
    # Nobody acknowledges: after 3 s SEV2 becomes SEV1, whose response is shutdown.
    checks.wait_incident(world, ns, timeout=3 + 2, severity="SEV1")
    status = checks.wait_phase(world, ns, "ShutDown", timeout=2)
    assert checks.replicas(world, "Deployment", ns, TARGET) == 0
    assert (world.api.get("Service", ns, "chatbot") or {})["spec"]["selector"] == {"app": f"{tenant.app}-fallback"}
    assert status["severity"] == "SEV1"
    incident = world.api.get("AIIncident", ns, name) or {}
    assert incident["spec"]["failureMode"] == "fairness"
    assert incident["status"]["phase"] == "Contained"
    assert checks.timeline(incident)[:3] == ["Detected", "SeverityRaised", "Contained"]
    raised = incident["status"]["timeline"][1]
    assert "SEV2 → SEV1" in raised["message"]
    assert "not acknowledged" in raised["message"]
    assert "SeverityRaised" in checks.reasons(world, ns)


def test_escalate_acknowledged_in_time_does_not_climb(world: World, tenant: Tenant) -> None:
    ns = tenant.namespace
    severities = {**ESCALATE, "SEV2": {**ESCALATE["SEV2"], "ackWithin": "3s"}}
    _setup(world, tenant, "SEV2", severities)
    writes = _writes(world, ns)

    _break(world, tenant)

    incident = checks.wait_incident(world, ns, timeout=ACT_WITHIN, severity="SEV2")
    seen = time.monotonic()  # detection happened before this
    name = incident["metadata"]["name"]
    world.api.annotate("AIIncident", ns, name, {"airlock.dev/acknowledge": "on it", "airlock.dev/requested-by": ALICE})
    acked = wait_for(
        "acknowledgedAt",
        lambda: (i := world.api.get("AIIncident", ns, name) or {}).get("status", {}).get("acknowledgedAt") and i,
        timeout=3,
    )
    assert acked["status"]["acknowledgedBy"] == ALICE

    # Well past ackWithin: still SEV2, still waiting for an approval, nothing touched.
    time.sleep(max(0.0, seen + 3 + SETTLE - time.monotonic()))
    incident = world.api.get("AIIncident", ns, name) or {}
    assert incident["spec"]["severity"] == "SEV2"
    assert "SeverityRaised" not in checks.timeline(incident)
    assert "Acknowledged" in checks.timeline(incident)
    assert checks.phase(world, ns) == "Degraded"
    assert _writes(world, ns) == writes
    _untouched(world, tenant)


def test_contain_acts_at_once(world: World, tenant: Tenant) -> None:
    ns = tenant.namespace
    _setup(world, tenant, "SEV1", {"SEV1": {"response": "contain", "actions": ["reroute", "pauseRollout"]}})

    _break(world, tenant)
    broken = time.monotonic()

    status = checks.wait_phase(world, ns, "Contained", timeout=ACT_WITHIN)
    assert time.monotonic() - broken < ACT_WITHIN
    target = world.api.get("Deployment", ns, TARGET) or {}
    assert target["spec"]["paused"] is True
    assert target["spec"]["replicas"] == 3  # contained, still running
    assert (world.api.get("Service", ns, "chatbot") or {})["spec"]["selector"] == {"app": f"{tenant.app}-fallback"}
    assert status["containment"]["by"] == "airlock"
    assert checks.condition(world, ns, "Contained")["status"] == "True"
    incident = checks.incident(world, ns) or {}
    assert incident["status"]["phase"] == "Contained"
    assert checks.timeline(incident)[:2] == ["Detected", "Contained"]
    assert {"IncidentOpened", "Contained"} <= set(checks.reasons(world, ns))


def test_shutdown_acts_at_once_and_reports_shut_down(world: World, tenant: Tenant) -> None:
    ns = tenant.namespace
    _setup(world, tenant, "SEV1", {"SEV1": {"response": "shutdown", "actions": ["reroute", "scaleToZero"]}})

    _break(world, tenant)

    status = checks.wait_phase(world, ns, "ShutDown", timeout=ACT_WITHIN)
    assert checks.replicas(world, "Deployment", ns, TARGET) == 0
    assert (world.api.get("Service", ns, "chatbot") or {})["spec"]["selector"] == {"app": f"{tenant.app}-fallback"}
    assert status["severity"] == "SEV1"
    assert status["containment"]["saved"]["replicas"] == 3
    incident = checks.incident(world, ns) or {}
    assert incident["spec"]["severity"] == "SEV1"
    assert incident["status"]["phase"] == "Contained"
    assert checks.reasons(world, ns).count("Contained") == 1
