"""Incident bookkeeping against the API server: find, open, update, resolve.

"One open incident per system" is enforced by looking the system's incidents
up by label before creating one, and by deterministic names: a restart between
"create" and "record it in the system's status" finds the same incident
instead of opening a second.
"""

from __future__ import annotations

import datetime
from typing import Any

from airlock.adapters import kube
from airlock.api import annotations as keys
from airlock.api.incident import AIIncident, IncidentPhase, TimelineEntry
from airlock.domain import incidents as domain_incidents

CLOSED_PHASES = (IncidentPhase.RESOLVED, IncidentPhase.CLOSED)


def is_open(incident: AIIncident | None) -> bool:
    return incident is not None and (incident.status is None or incident.status.phase not in CLOSED_PHASES)


async def find_open(client: kube.KubeClient, namespace: str, system: str, *, drill: bool = False) -> AIIncident | None:
    items = await client.list(kube.AIINCIDENTS, namespace, label_selector=f"{keys.SYSTEM_LABEL}={system}")
    candidates = []
    for item in items:
        try:
            incident = AIIncident.model_validate(item)
        except ValueError:
            continue  # someone else's malformed object: not ours to interpret
        if is_open(incident) and incident.spec.drill == drill:
            candidates.append(incident)
    candidates.sort(key=lambda i: i.metadata.name or "")
    return candidates[0] if candidates else None


async def create(client: kube.KubeClient, incident: AIIncident) -> AIIncident:
    """Create ``incident`` (spec first, then status: the status subresource ignores status on create)."""
    body = incident.dump()
    status = body.pop("status", None)
    namespace = incident.metadata.namespace
    try:
        created = await client.create(kube.AIINCIDENTS, namespace, body)
    except kube.Conflict:
        created = await client.get(kube.AIINCIDENTS, namespace, incident.metadata.name or "")
        existing = AIIncident.model_validate(created)
        if existing.status is not None and existing.status.phase is not None:
            return existing  # created (with status) by an earlier attempt
    if status:
        created = await client.patch(
            kube.AIINCIDENTS, namespace, incident.metadata.name or "", {"status": status}, sub="status"
        )
    return AIIncident.model_validate(created)


async def write_status(client: kube.KubeClient, incident: AIIncident) -> AIIncident:
    body: dict[str, Any] = {"status": (incident.status.dump() if incident.status else {})}
    result = await client.patch(
        kube.AIINCIDENTS, incident.metadata.namespace, incident.metadata.name or "", body, sub="status"
    )
    return AIIncident.model_validate(result)


async def patch_spec(client: kube.KubeClient, incident: AIIncident, spec_patch: dict[str, Any]) -> AIIncident:
    result = await client.patch(
        kube.AIINCIDENTS, incident.metadata.namespace, incident.metadata.name or "", {"spec": spec_patch}
    )
    return AIIncident.model_validate(result)


def add(incident: AIIncident, entry: TimelineEntry) -> None:
    if incident.status is not None:
        incident.status.timeline.append(entry)


def note(incident: AIIncident, now: datetime.datetime, type_: str, message: str, by: str | None = "airlock") -> None:
    add(incident, domain_incidents.entry(now, type_, message, by))
