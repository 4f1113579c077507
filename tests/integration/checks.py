"""What a user looks at while a scenario unfolds: status, incidents, Events, target objects.

Read-only helpers for the integration tests; every wait is bounded and says what it waits for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.integration.conftest import Tenant, World
from tests.integration.world import wait_for

SYSTEM = "chatbot"
CONTROL_ANNOTATIONS = ("airlock.dev/contained-by", "airlock.dev/saved-state")


def new_tenant(world: World, label: str) -> Tenant:
    """A namespace and model app of one scenario, named after it (for module-level fixtures; deleted with the world)."""
    tenant = Tenant(namespace=world.create_namespace(label), app=f"{label}-bot")
    world.model.add_app(tenant.namespace, tenant.app)
    return tenant


def status(world: World, namespace: str, name: str = SYSTEM) -> dict[str, Any]:
    obj = world.api.get("AISystem", namespace, name) or {}
    result: dict[str, Any] = obj.get("status") or {}
    return result


def phase(world: World, namespace: str, name: str = SYSTEM) -> str | None:
    value: str | None = status(world, namespace, name).get("phase")
    return value


def monitor(world: World, namespace: str, monitor_name: str, name: str = SYSTEM) -> dict[str, Any]:
    for mon in status(world, namespace, name).get("monitors") or []:
        if mon.get("name") == monitor_name:
            found: dict[str, Any] = mon
            return found
    return {}


def condition(world: World, namespace: str, type_: str, name: str = SYSTEM) -> dict[str, Any]:
    for cond in status(world, namespace, name).get("conditions") or []:
        if cond.get("type") == type_:
            found: dict[str, Any] = cond
            return found
    return {}


def incidents(world: World, namespace: str) -> list[dict[str, Any]]:
    return world.api.list("AIIncident", namespace)


def incident(world: World, namespace: str) -> dict[str, Any] | None:
    """The one incident of the namespace's system (each scenario has one system), or None."""
    found = incidents(world, namespace)
    assert len(found) <= 1, f"more than one incident: {[i['metadata']['name'] for i in found]}"
    return found[0] if found else None


def timeline(obj: dict[str, Any]) -> list[str]:
    return [entry["type"] for entry in (obj.get("status") or {}).get("timeline") or []]


def reasons(world: World, namespace: str, name: str = SYSTEM) -> list[str]:
    return [e["reason"] for e in world.api.events(namespace, name)]


def replicas(world: World, kind: str, namespace: str, name: str) -> int | None:
    obj = world.api.get(kind, namespace, name) or {}
    value: int | None = (obj.get("spec") or {}).get("replicas")
    return value


def wait_phase(world: World, namespace: str, expected: str, timeout: float) -> dict[str, Any]:
    wait_for(f"{namespace}: phase {expected}", lambda: phase(world, namespace) == expected, timeout=timeout)
    return status(world, namespace)


def wait_incident(world: World, namespace: str, timeout: float, **spec: str) -> dict[str, Any]:
    """Wait for the system's incident to have the given spec fields (e.g. severity="SEV1")."""

    def check() -> dict[str, Any] | None:
        found = incident(world, namespace)
        if found is None or any(found["spec"].get(k) != v for k, v in spec.items()):
            return None
        # The operator creates the spec first and the status right after (the status subresource
        # ignores status on create): an incident is recorded once it has its status.
        return found if (found.get("status") or {}).get("phase") else None

    result: dict[str, Any] = wait_for(f"{namespace}: incident with {spec}", check, timeout=timeout)
    return result


@dataclass(frozen=True)
class Snapshot:
    """What release must put back exactly: spec, labels and annotations (not bookkeeping metadata)."""

    spec: dict[str, Any]
    labels: dict[str, str]
    annotations: dict[str, str]


# Annotations a cluster's own controllers write (the Deployment controller's revision): not airlock's, and
# written whenever the controller gets to it, so they are no part of what release must restore.
CONTROLLER_ANNOTATIONS = ("deployment.kubernetes.io/revision",)


def snapshot(world: World, kind: str, namespace: str, name: str) -> Snapshot:
    obj = world.api.get(kind, namespace, name)
    assert obj is not None, f"{kind} {namespace}/{name} not found"
    meta = obj.get("metadata") or {}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in CONTROLLER_ANNOTATIONS}
    return Snapshot(spec=obj.get("spec") or {}, labels=dict(meta.get("labels") or {}), annotations=annotations)


KINDS = {"deployments": "Deployment", "services": "Service", "statefulsets": "StatefulSet"}


def versions(world: World, resource: str, namespace: str, name: str) -> object:
    """Something that changes with every write to the object: compare it before and after.

    On the sandbox, how many versions its API server has stored (every write makes one,
    even one that puts the same content back). On a real cluster, where controllers write
    status and the revision annotation, the spec, labels and annotations a write by airlock
    would change.
    """
    if world.cluster is not None:
        return len(world.cluster.history(resource, namespace, name))
    return snapshot(world, KINDS[resource], namespace, name)
