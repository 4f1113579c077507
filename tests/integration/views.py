"""What a user sees of a system, read back from the API server: status, conditions, Events, target, incidents."""

from __future__ import annotations

import datetime
import time
from typing import Any

from tests.integration.conftest import World
from tests.integration.world import Api, wait_for

SYSTEM_LABEL = "airlock.dev/system"
SAVED_STATE = "airlock.dev/saved-state"
CONTAINED_BY = "airlock.dev/contained-by"


def status(api: Api, namespace: str, name: str = "chatbot") -> dict[str, Any]:
    obj = api.get("AISystem", namespace, name) or {}
    result: dict[str, Any] = obj.get("status") or {}
    return result


def phase(api: Api, namespace: str, name: str = "chatbot") -> str | None:
    value: str | None = status(api, namespace, name).get("phase")
    return value


def condition(api: Api, namespace: str, type_: str, name: str = "chatbot") -> dict[str, Any]:
    for cond in status(api, namespace, name).get("conditions") or []:
        if cond.get("type") == type_:
            result: dict[str, Any] = cond
            return result
    return {}


def monitor(api: Api, namespace: str, name: str = "chatbot", monitor: str = "pii-leak") -> dict[str, Any]:
    for mon in status(api, namespace, name).get("monitors") or []:
        if mon.get("name") == monitor:
            result: dict[str, Any] = mon
            return result
    return {}


def events(api: Api, namespace: str, reason: str, name: str = "chatbot") -> list[dict[str, Any]]:
    return [e for e in api.events(namespace, name) if e.get("reason") == reason]


def target(api: Api, namespace: str, name: str = "chatbot-v7") -> dict[str, Any]:
    return api.get("Deployment", namespace, name) or {}


def replicas(api: Api, namespace: str, name: str = "chatbot-v7") -> int | None:
    value: int | None = (target(api, namespace, name).get("spec") or {}).get("replicas")
    return value


def target_annotations(api: Api, namespace: str, name: str = "chatbot-v7") -> dict[str, str]:
    result: dict[str, str] = (target(api, namespace, name).get("metadata") or {}).get("annotations") or {}
    return result


def selector(api: Api, namespace: str, name: str = "chatbot") -> dict[str, str] | None:
    svc = api.get("Service", namespace, name)
    if svc is None:
        return None
    result: dict[str, str] = svc["spec"].get("selector") or {}
    return result


def incidents(api: Api, namespace: str, system: str = "chatbot") -> list[dict[str, Any]]:
    """Every AIIncident of ``system`` (by the airlock.dev/system label), oldest name first."""
    found = [
        i
        for i in api.list("AIIncident", namespace)
        if ((i.get("metadata") or {}).get("labels") or {}).get(SYSTEM_LABEL) == system
    ]
    return sorted(found, key=lambda i: i["metadata"]["name"])


def timestamp(value: str) -> float:
    """Epoch seconds of an RFC 3339 timestamp as written in status."""
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def pii_query(namespace: str, app: str) -> str:
    return f'sum(rate(pii_detections_total{{namespace="{namespace}",app="{app}"}}[3s]))'


def heal(world: World, namespace: str, app: str, name: str = "chatbot") -> None:
    """Stop the leak, and wait until the operator has *evaluated* the monitor as ok since.

    A monitor state read from status just after an operator restart may predate the
    breach (the crash lost that write), so "state ok" alone proves nothing.
    """
    world.model.heal((namespace, app))
    query = pii_query(namespace, app)
    wait_for("the leak over in Prometheus", lambda: not world.prometheus.query_value(query), timeout=15)
    over = time.time()
    wait_for(
        "monitor evaluated ok after the leak ended",
        lambda: (
            (mon := monitor(world.api, namespace, name)).get("state") == "ok"
            and timestamp(mon.get("lastEvaluated") or "1970-01-01T00:00:00Z") > over
        ),
        timeout=10,
    )
