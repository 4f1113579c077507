"""Helpers for the admission scenarios: a guarded system, and writes made as someone."""

from __future__ import annotations

from typing import Any

from airlock.api import annotations as keys
from tests.integration import checks
from tests.integration.conftest import Tenant, World
from tests.integration.systems import ALICE, chatbot
from tests.integration.world import Api, deployment, service

MALLORY = "mallory@example.com"  # not a responder of anything
BOB = "bob@example.com"


def guarded_system(world: World, tenant: Tenant) -> dict[str, Any]:
    """The chatbot with inline responders (no policyRef: the policy can see who may), Healthy."""
    api = world.api
    api.create(deployment(tenant.namespace, "chatbot-v7", tenant.app, replicas=3))
    api.create(service(tenant.namespace, "chatbot", {"app": tenant.app}))
    system = chatbot(tenant.namespace, tenant.app)
    assert "policyRef" not in system["spec"]
    api.create(system)
    checks.wait_phase(world, tenant.namespace, "Healthy", timeout=20)
    return system


def as_user(world: World, username: str, *groups: str) -> Api:
    return world.api.as_user(username, groups)


def annotate(api: Api, tenant: Tenant, annotations: dict[str, str | None]) -> tuple[int, Any]:
    """A merge patch of the system's annotations; (status, body) whether it is admitted or not."""
    path = api.path("AISystem", tenant.namespace, checks.SYSTEM)
    return api.request("PATCH", path, {"metadata": {"annotations": annotations}}, "application/merge-patch+json")


def relabel(api: Api, tenant: Tenant, value: str) -> tuple[int, Any]:
    """A write that changes no control annotation: a label."""
    path = api.path("AISystem", tenant.namespace, checks.SYSTEM)
    return api.request("PATCH", path, {"metadata": {"labels": {"team": value}}}, "application/merge-patch+json")


def annotations(world: World, tenant: Tenant) -> dict[str, str]:
    system = world.api.get("AISystem", tenant.namespace, checks.SYSTEM) or {}
    found: dict[str, str] = (system.get("metadata") or {}).get("annotations") or {}
    return found


def wait_shut_down_by_alice(world: World, tenant: Tenant) -> None:
    """The responder's shutdown went through and the operator acted on it."""
    status = checks.wait_phase(world, tenant.namespace, "ShutDown", timeout=10)
    assert status["containment"]["by"] == ALICE
    assert checks.replicas(world, "Deployment", tenant.namespace, "chatbot-v7") == 0
    assert annotations(world, tenant)[keys.REQUESTED_BY] == ALICE
