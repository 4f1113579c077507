"""Automatic containment end to end: real operator, sandbox API server, real Prometheus."""

from __future__ import annotations

import pytest

from tests.integration.conftest import Tenant, World
from tests.integration.systems import ALICE, chatbot
from tests.integration.world import deployment, service, wait_for

pytestmark = pytest.mark.integration


def _setup(world: World, tenant: Tenant, **kwargs: object) -> dict[str, object]:
    api = world.api
    api.create(deployment(tenant.namespace, "chatbot-v7", tenant.app, replicas=3))
    api.create(service(tenant.namespace, "chatbot", {"app": tenant.app}))
    system = chatbot(tenant.namespace, tenant.app, **kwargs)  # type: ignore[arg-type]
    api.create(system)
    return system


def _phase(world: World, tenant: Tenant, name: str = "chatbot") -> str | None:
    obj = world.api.get("AISystem", tenant.namespace, name) or {}
    return (obj.get("status") or {}).get("phase")


def test_privacy_breach_shuts_down_and_release_restores(world: World, tenant: Tenant) -> None:
    api = world.api
    ns = tenant.namespace
    _setup(world, tenant)
    wait_for("system Healthy", lambda: _phase(world, tenant) == "Healthy", timeout=30)

    world.model.inject((ns, tenant.app), "privacy", rate=2.0)

    wait_for(
        "replicas 0",
        lambda: (api.get("Deployment", ns, "chatbot-v7") or {})["spec"]["replicas"] == 0,
        timeout=20,
    )
    svc = api.get("Service", ns, "chatbot")
    assert svc is not None
    assert svc["spec"]["selector"] == {"app": f"{tenant.app}-fallback"}
    system = wait_for(
        "phase ShutDown", lambda: _phase(world, tenant) == "ShutDown" and api.get("AISystem", ns, "chatbot")
    )
    status = system["status"]
    assert status["severity"] == "SEV1"
    assert status["containment"]["active"] is True
    assert status["containment"]["saved"]["replicas"] == 3
    assert status["containment"]["saved"]["selector"] == {"app": tenant.app}
    incident = api.get("AIIncident", ns, status["incident"])
    assert incident is not None
    assert incident["spec"]["severity"] == "SEV1"
    assert incident["spec"]["failureMode"] == "privacy"
    assert incident["status"]["phase"] == "Contained"
    assert incident["status"]["timeToContainSeconds"] is not None
    types = [e["type"] for e in incident["status"]["timeline"]]
    assert types[:2] == ["Detected", "Contained"]
    reasons = {e["reason"] for e in api.events(ns, "chatbot")}
    assert {"IncidentOpened", "Contained"} <= reasons

    # Release while the leak continues: refused, nothing restored.
    api.annotate("AISystem", ns, "chatbot", {"airlock.dev/release": "r1", "airlock.dev/requested-by": ALICE})
    wait_for(
        "ReleaseRefused event",
        lambda: any(e["reason"] == "ReleaseRefused" for e in api.events(ns, "chatbot")),
        timeout=10,
    )
    assert api.get("Deployment", ns, "chatbot-v7")["spec"]["replicas"] == 0  # type: ignore[index]

    # The fix: the leak stops; release restores exactly.
    world.model.heal((ns, tenant.app))
    wait_for(
        "monitor back to ok",
        lambda: (api.get("AISystem", ns, "chatbot") or {})["status"]["monitors"][0]["state"] == "ok",
        timeout=20,
    )
    api.annotate("AISystem", ns, "chatbot", {"airlock.dev/release": "r2"})
    wait_for(
        "replicas and selector restored",
        lambda: (
            (api.get("Deployment", ns, "chatbot-v7") or {})["spec"]["replicas"] == 3
            and (api.get("Service", ns, "chatbot") or {})["spec"]["selector"] == {"app": tenant.app}
        ),
        timeout=10,
    )
    # The marker goes last, once everything it records is back.
    wait_for(
        "marker removed",
        lambda: (
            "airlock.dev/contained-by"
            not in ((api.get("Deployment", ns, "chatbot-v7") or {})["metadata"].get("annotations") or {})
        ),
        timeout=5,
    )
    wait_for("phase Healthy", lambda: _phase(world, tenant) == "Healthy", timeout=10)
    resolved = api.get("AIIncident", ns, status["incident"]) or {}
    assert resolved["status"]["phase"] == "Resolved"
    assert (api.get("AISystem", ns, "chatbot") or {})["status"]["lastHandledRelease"] == "r2"
