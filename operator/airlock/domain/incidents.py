"""Incident records: deterministic names, the opening body, timeline entries.

One open incident per system; later breaches join its timeline and may raise
(never silently lower) its severity.  The name is derived from the system and
the first breach sample's time, so the same breach always names the same
incident.
"""

from __future__ import annotations

import datetime

from airlock.api import annotations as keys
from airlock.api.common import FailureMode, Severity
from airlock.api.incident import (
    AIIncident,
    AIIncidentSpec,
    AIIncidentStatus,
    IncidentPhase,
    Postmortem,
    TimelineEntry,
    Trigger,
)

MAX_NAME = 253


def incident_name(system: str, detected: datetime.datetime, drill: bool = False, dry_run: bool = False) -> str:
    # A naive time is UTC, as in every serialised Timestamp: never the host's zone,
    # or the same breach would name different incidents on different machines.
    if detected.tzinfo is None:
        detected = detected.replace(tzinfo=datetime.UTC)
    stamp = detected.astimezone(datetime.UTC).strftime("%Y%m%d-%H%M%S")
    # A drill and a dry run never share a name with a real incident of the same breach (a system
    # switched from dryRun to enforce during a breach opens its own incident for it).
    kind = "drill-" if drill else "dryrun-" if dry_run else ""
    suffix = f"-{kind}{stamp}"
    # A cut before the suffix must not leave "x.-2026…" (a DNS label cannot start with '-').
    return system[: MAX_NAME - len(suffix)].rstrip(".") + suffix


def open_incident(
    *,
    system: str,
    namespace: str,
    severity: Severity,
    failure_mode: FailureMode,
    trigger: Trigger,
    detected: datetime.datetime,
    now: datetime.datetime,
    dry_run: bool = False,
    drill: bool = False,
) -> AIIncident:
    name = incident_name(system, detected, drill, dry_run and not drill)
    what = trigger.reason or (
        f"monitor {trigger.monitor} {trigger.condition} ({trigger.value:g})"
        if trigger.monitor and trigger.value is not None
        else trigger.type.value
    )
    return AIIncident.model_validate(
        {
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {keys.SYSTEM_LABEL: system, keys.MANAGED_BY_LABEL: "airlock"},
            },
            "spec": AIIncidentSpec(
                system=system,
                failure_mode=failure_mode,
                severity=severity,
                drill=drill,
                dry_run=dry_run,
                trigger=trigger,
            ).dump(),
            "status": AIIncidentStatus(
                phase=IncidentPhase.OPEN,
                detected_at=detected,
                timeline=[
                    TimelineEntry(
                        at=now,
                        type="Detected",
                        message=f"{severity.value} {failure_mode.value}: {what}",
                        by=trigger.by or "airlock",
                    )
                ],
                postmortem=Postmortem(),
            ).dump(),
        }
    )


def entry(now: datetime.datetime, type_: str, message: str, by: str | None = "airlock") -> TimelineEntry:
    return TimelineEntry(at=now, type=type_, message=message, by=by)


def time_to_contain(detected: datetime.datetime, contained: datetime.datetime) -> float:
    return round(max(0.0, (contained - detected).total_seconds()), 3)
