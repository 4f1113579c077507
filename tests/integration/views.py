"""What a user sees of a system, read back from the API server: status, conditions, Events, target, incidents."""

from __future__ import annotations

import datetime
from typing import Any

from tests.integration.world import Api

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
