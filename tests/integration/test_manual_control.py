"""Manual control through annotations, and the operator's own authority re-check (SPEC §3–§4).

The sandbox runs without the admission webhook here, so these tests show the
defense in depth: whatever reaches the object, the operator acts only for
responders with the verb, and keeps a shutdown authorized when it was asked.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.integration import checks
from tests.integration.conftest import Tenant, World
from tests.integration.systems import ALICE, chatbot
from tests.integration.world import deployment, service, wait_for

pytestmark = pytest.mark.integration
BOB = "bob@example.com"  # a responder who may only run drills
MALLORY = "mallory@example.com"  # not a responder at all


def _setup(world: World, tenant: Tenant) -> None:
    api = world.api
    api.create(deployment(tenant.namespace, "chatbot-v7", tenant.app, replicas=3))
    api.create(service(tenant.namespace, "chatbot", {"app": tenant.app}))
    system = chatbot(tenant.namespace, tenant.app)
    system["spec"]["responders"].append(
        {"name": "drill-runner", "subjects": [{"kind": "User", "name": BOB}], "may": ["drill"]}
    )
    api.create(system)
    checks.wait_phase(world, tenant.namespace, "Healthy", timeout=20)


def test_shutdown_held_regardless_of_metrics_and_lifted_by_removal(world: World, tenant: Tenant) -> None:
    api, ns = world.api, tenant.namespace
    _setup(world, tenant)
    api.annotate(
        "AISystem", ns, "chatbot", {"airlock.dev/shutdown": "PII in answers", "airlock.dev/requested-by": ALICE}
    )
    wait_for("replicas 0", lambda: checks.replicas(world, "Deployment", ns, "chatbot-v7") == 0, timeout=5)
    status = checks.wait_phase(world, ns, "ShutDown", timeout=5)
    assert status["containment"]["manual"] is True
    assert status["containment"]["by"] == ALICE
    assert status["severity"] == "SEV1"
    incident = checks.wait_incident(world, ns, timeout=5, severity="SEV1")
    assert incident["spec"]["trigger"]["type"] == "manual"
    assert incident["spec"]["trigger"]["by"] == ALICE
    assert (api.get("Service", ns, "chatbot") or {})["spec"]["selector"] == {"app": f"{tenant.app}-fallback"}

    # Someone with another verb annotates later: the shutdown stays, and it stays Alice's.
    api.annotate("AISystem", ns, "chatbot", {"airlock.dev/drill": "tabletop-1", "airlock.dev/requested-by": BOB})
    time.sleep(3)  # three evaluations (1 s interval) for a wrong decision to show
    assert checks.replicas(world, "Deployment", ns, "chatbot-v7") == 0
    assert checks.status(world, ns)["containment"]["by"] == ALICE

    # Removing the annotation lifts it and restores exactly.
    api.annotate("AISystem", ns, "chatbot", {"airlock.dev/shutdown": None, "airlock.dev/requested-by": ALICE})
    wait_for(
        "restored",
        lambda: (
            checks.replicas(world, "Deployment", ns, "chatbot-v7") == 3
            and (api.get("Service", ns, "chatbot") or {})["spec"]["selector"] == {"app": tenant.app}
        ),
        timeout=5,
    )
    checks.wait_phase(world, ns, "Healthy", timeout=5)
    assert (api.get("AIIncident", ns, incident["metadata"]["name"]) or {})["status"]["phase"] == "Resolved"


def test_unauthorized_shutdown_is_ignored_with_an_event(world: World, tenant: Tenant) -> None:
    api, ns = world.api, tenant.namespace
    _setup(world, tenant)
    versions = checks.versions(world, "deployments", ns, "chatbot-v7")
    api.annotate("AISystem", ns, "chatbot", {"airlock.dev/shutdown": "I think", "airlock.dev/requested-by": MALLORY})
    event = wait_for(
        "UnauthorizedRequest Event",
        lambda: [e for e in api.events(ns, "chatbot") if e["reason"] == "UnauthorizedRequest"],
        timeout=5,
    )[0]
    assert MALLORY in event["message"]
    assert "alice@example.com" in event["message"]  # names who may
    assert event["type"] == "Warning"
    # Not contained.  (Not necessarily "Healthy": the 3 s rate window over a 1 s scrape can come
    # out empty for a cycle on a loaded machine, which is "Unknown" — monitoring, not the refusal.)
    assert checks.phase(world, ns) in ("Healthy", "Unknown")
    assert not (checks.status(world, ns).get("containment") or {}).get("active")
    assert checks.versions(world, "deployments", ns, "chatbot-v7") == versions
    assert checks.incidents(world, ns) == []

    # A drill-only responder may not shut down either.
    api.annotate("AISystem", ns, "chatbot", {"airlock.dev/shutdown": "drill person", "airlock.dev/requested-by": BOB})
    wait_for(
        "second refusal",
        lambda: any(BOB in e["message"] for e in api.events(ns, "chatbot") if e["reason"] == "UnauthorizedRequest"),
        timeout=5,
    )
    assert checks.replicas(world, "Deployment", ns, "chatbot-v7") == 3


def test_two_person_release(world: World, tenant: Tenant) -> None:
    api, ns = world.api, tenant.namespace
    api.create(deployment(ns, "chatbot-v7", tenant.app, replicas=3))
    api.create(service(ns, "chatbot", {"app": tenant.app}))
    system = chatbot(ns, tenant.app)
    system["spec"]["severities"]["SEV1"]["releaseApprovals"] = 2
    system["spec"]["responders"].append(
        {"name": "ml-lead", "subjects": [{"kind": "User", "name": BOB}], "may": ["release"]}
    )
    api.create(system)
    checks.wait_phase(world, ns, "Healthy", timeout=20)
    world.model.inject((ns, tenant.app), "privacy", rate=2.0)
    checks.wait_phase(world, ns, "ShutDown", timeout=10)
    world.model.heal((ns, tenant.app))
    wait_for("monitor ok", lambda: checks.monitor(world, ns, "pii-leak").get("state") == "ok", timeout=15)

    api.annotate("AISystem", ns, "chatbot", {"airlock.dev/release": "a1", "airlock.dev/requested-by": ALICE})
    wait_for("first approval", lambda: "ReleaseApprovalRecorded" in checks.reasons(world, ns), timeout=5)
    # The same person asking twice is still one person.
    api.annotate("AISystem", ns, "chatbot", {"airlock.dev/release": "a2", "airlock.dev/requested-by": ALICE})
    wait_for("a2 handled", lambda: checks.status(world, ns).get("lastHandledRelease") == "a2", timeout=5)
    assert checks.replicas(world, "Deployment", ns, "chatbot-v7") == 0
    approvals = checks.status(world, ns)["containment"]["releaseApprovals"]
    assert [a["by"] for a in approvals] == [ALICE]

    api.annotate("AISystem", ns, "chatbot", {"airlock.dev/release": "b1", "airlock.dev/requested-by": BOB})
    wait_for("restored", lambda: checks.replicas(world, "Deployment", ns, "chatbot-v7") == 3, timeout=5)
    checks.wait_phase(world, ns, "Healthy", timeout=5)


def test_acknowledge_after_the_metrics_recovered(world: World, tenant: Tenant) -> None:
    # Contained and healed, not yet released: the incident is still someone's to own.
    api, ns = world.api, tenant.namespace
    _setup(world, tenant)
    world.model.inject((ns, tenant.app), "privacy", rate=2.0)
    checks.wait_phase(world, ns, "ShutDown", timeout=10)
    world.model.heal((ns, tenant.app))
    wait_for("monitor ok", lambda: checks.monitor(world, ns, "pii-leak").get("state") == "ok", timeout=15)
    name = checks.status(world, ns)["incident"]
    api.annotate("AIIncident", ns, name, {"airlock.dev/acknowledge": "on it", "airlock.dev/requested-by": ALICE})
    incident = wait_for(
        "acknowledgedBy",
        lambda: (i := api.get("AIIncident", ns, name) or {}).get("status", {}).get("acknowledgedBy") and i,
        timeout=5,
    )
    assert incident["status"]["acknowledgedBy"] == ALICE
    assert "Acknowledged" in checks.timeline(incident)


def _unauthorized(world: World, ns: str) -> list[dict[str, Any]]:
    return [e for e in world.api.events(ns, "chatbot") if e["reason"] == "UnauthorizedRequest"]


def test_lifting_is_acting_a_stranger_cannot_lift_or_change_a_shutdown(world: World, tenant: Tenant) -> None:
    """SPEC §7: removing or changing airlock.dev/shutdown needs shutdown or release, checked by the operator too.

    No admission here (as on a cluster with neither webhook nor policy, or VAP-only where
    requested-by must merely name the caller): the operator's own check is what holds.
    """
    api, ns = world.api, tenant.namespace
    _setup(world, tenant)
    api.annotate(
        "AISystem", ns, "chatbot", {"airlock.dev/shutdown": "PII in answers", "airlock.dev/requested-by": ALICE}
    )
    checks.wait_phase(world, ns, "ShutDown", timeout=5)
    incident = checks.wait_incident(world, ns, timeout=5, severity="SEV1")["metadata"]["name"]

    # Mallory removes it, naming herself (what a ValidatingAdmissionPolicy would insist on).
    api.annotate("AISystem", ns, "chatbot", {"airlock.dev/shutdown": None, "airlock.dev/requested-by": MALLORY})
    event = wait_for(
        "refusal of the removal", lambda: [e for e in _unauthorized(world, ns) if MALLORY in e["message"]]
    )[0]
    assert "removing airlock.dev/shutdown ignored (it stays shut down)" in event["message"]
    assert "may not release" in event["message"]
    assert ALICE in event["message"]  # names who may
    time.sleep(3)  # three evaluations for a wrong lift to show
    assert checks.replicas(world, "Deployment", ns, "chatbot-v7") == 0
    status = checks.status(world, ns)
    assert status["phase"] == "ShutDown"
    assert status["containment"]["manual"] is True
    assert status["containment"]["by"] == ALICE
    assert status["containment"]["manualRequest"] == "PII in answers"
    timeline = (api.get("AIIncident", ns, incident) or {})["status"]["timeline"]
    assert any(e["type"] == "UnauthorizedRequest" and MALLORY in e["message"] for e in timeline)

    # Bob (drills only) changes the value: refused too, and the hold keeps Alice's reason.
    api.annotate("AISystem", ns, "chatbot", {"airlock.dev/shutdown": "nothing to see", "airlock.dev/requested-by": BOB})
    wait_for("refusal of the change", lambda: [e for e in _unauthorized(world, ns) if BOB in e["message"]])
    time.sleep(2)
    assert checks.status(world, ns)["containment"]["manualRequest"] == "PII in answers"
    assert checks.replicas(world, "Deployment", ns, "chatbot-v7") == 0

    # Alice (shutdown and release) removes the stranger's value: that is her lift, and it restores exactly.
    api.annotate("AISystem", ns, "chatbot", {"airlock.dev/shutdown": None, "airlock.dev/requested-by": ALICE})
    wait_for(
        "restored",
        lambda: (
            checks.replicas(world, "Deployment", ns, "chatbot-v7") == 3
            and (api.get("Service", ns, "chatbot") or {})["spec"]["selector"] == {"app": tenant.app}
        ),
        timeout=5,
    )
    checks.wait_phase(world, ns, "Healthy", timeout=5)
    resolved = api.get("AIIncident", ns, incident) or {}
    assert resolved["status"]["phase"] == "Resolved"
    assert [e["by"] for e in resolved["status"]["timeline"] if e["type"] == "Resolved"] == [ALICE]
    assert len([e for e in _unauthorized(world, ns) if MALLORY in e["message"]]) == 1  # reported once


def test_a_release_lifts_a_hold_whose_removal_was_refused(world: World, tenant: Tenant) -> None:
    api, ns = world.api, tenant.namespace
    _setup(world, tenant)
    api.annotate("AISystem", ns, "chatbot", {"airlock.dev/shutdown": "hold", "airlock.dev/requested-by": ALICE})
    checks.wait_phase(world, ns, "ShutDown", timeout=5)
    api.annotate("AISystem", ns, "chatbot", {"airlock.dev/shutdown": None, "airlock.dev/requested-by": MALLORY})
    wait_for("refusal", lambda: [e for e in _unauthorized(world, ns) if MALLORY in e["message"]])
    # The annotation is gone; an authorized release is the way to lift the hold now.
    api.annotate("AISystem", ns, "chatbot", {"airlock.dev/release": "r1", "airlock.dev/requested-by": ALICE})
    wait_for("restored", lambda: checks.replicas(world, "Deployment", ns, "chatbot-v7") == 3, timeout=5)
    checks.wait_phase(world, ns, "Healthy", timeout=5)


def test_a_refused_shutdown_is_dead_whoever_annotates_later(world: World, tenant: Tenant) -> None:
    """SPEC §7: a refused value is never acted on, even when an authorized responder's drill stamps requested-by."""
    api, ns = world.api, tenant.namespace
    _setup(world, tenant)
    versions = checks.versions(world, "deployments", ns, "chatbot-v7")
    api.annotate(
        "AISystem", ns, "chatbot", {"airlock.dev/shutdown": "stale reason", "airlock.dev/requested-by": MALLORY}
    )
    wait_for("refusal", lambda: _unauthorized(world, ns))
    refused = wait_for(
        "the refusal on the record",
        lambda: [r for r in checks.status(world, ns).get("requests", []) if r["verdict"] == "refused"],
    )
    assert refused[0]["by"] == MALLORY
    assert refused[0]["value"] == "stale reason"

    # Alice runs a drill: the write names her in requested-by while Mallory's value is still there.
    api.annotate("AISystem", ns, "chatbot", {"airlock.dev/drill": "privacy/1", "airlock.dev/requested-by": ALICE})
    wait_for("the drill ran", lambda: any(i["spec"].get("drill") for i in checks.incidents(world, ns)), timeout=5)
    time.sleep(3)
    assert checks.phase(world, ns) == "Healthy"
    assert checks.replicas(world, "Deployment", ns, "chatbot-v7") == 3
    assert checks.versions(world, "deployments", ns, "chatbot-v7") == versions
    assert [i for i in checks.incidents(world, ns) if not i["spec"].get("drill")] == []
    assert len(_unauthorized(world, ns)) == 1


def test_a_refused_acknowledgement_stays_refused(world: World, tenant: Tenant) -> None:
    api, ns = world.api, tenant.namespace
    _setup(world, tenant)
    world.model.inject((ns, tenant.app), "privacy", rate=2.0)
    checks.wait_phase(world, ns, "ShutDown", timeout=10)
    name = checks.status(world, ns)["incident"]
    api.annotate("AIIncident", ns, name, {"airlock.dev/acknowledge": "seen", "airlock.dev/requested-by": MALLORY})
    wait_for(
        "refusal on the incident",
        lambda: [
            r for r in (api.get("AIIncident", ns, name) or {})["status"].get("requests", []) if r["by"] == MALLORY
        ],
    )
    # An authorized approval names Alice in requested-by; Mallory's acknowledgement must not become hers.
    api.annotate("AIIncident", ns, name, {"airlock.dev/approve": "go", "airlock.dev/requested-by": ALICE})
    wait_for(
        "approval recorded",
        lambda: "Approved" in checks.timeline(api.get("AIIncident", ns, name) or {}),
        timeout=5,
    )
    time.sleep(2)
    incident = api.get("AIIncident", ns, name) or {}
    assert "acknowledgedBy" not in incident["status"]
    assert "acknowledgedAt" not in incident["status"]
