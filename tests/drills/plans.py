"""Plans and drill incidents built from the shipped examples and policies, as the operator builds them.

A plain module, not a conftest: the pure tests need no fixtures.
"""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path
from typing import Any

import yaml

from airlock.api.aisystem import AISystem
from airlock.api.common import FailureMode, Severity
from airlock.api.incident import AIIncident, AIIncidentStatus, DrillRecord, Trigger, TriggerType
from airlock.api.matrix import Responder
from airlock.api.policy import ContainmentPolicy
from airlock.domain import drills, incidents
from airlock.domain.plan import Plan, build_plan

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime.datetime(2026, 11, 26, 13, 30, 12, tzinfo=datetime.UTC)

# Each shipped example and the shipped policy it refers to.
EXAMPLES = {
    "support-chatbot": "llm-chatbot",
    "fraud-scorer": "fraud-model",
    "content-moderator": "content-moderation",
}

ALL_IS_THERE = drills.Environment(target_exists=True, fallback_service_exists=True)


def manifest(path: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / path).read_text())
    return loaded


def plan(name: str, policy_changes: dict[str, Any] | None = None, **spec_changes: Any) -> Plan:
    """The merged plan of a shipped example; ``spec_changes`` (camelCase) edit the AISystem's spec first
    (None deletes a field), ``policy_changes`` its ContainmentPolicy's."""
    body = manifest(f"examples/{name}.yaml")
    for key, value in spec_changes.items():
        if value is None:
            body["spec"].pop(key, None)
        else:
            body["spec"][key] = value
    found = AISystem.model_validate(body)
    shared = manifest(f"policies/{EXAMPLES[name]}.yaml")
    shared["spec"].update(policy_changes or {})
    return build_plan(
        found.metadata.namespace or "",
        found.metadata.name or "",
        found.spec,
        ContainmentPolicy.model_validate(shared).spec,
    )


def with_responders(base: Plan, *bodies: dict[str, Any]) -> Plan:
    """``base`` with exactly these responders in force."""
    return dataclasses.replace(base, responders=[Responder.model_validate(b) for b in bodies])


def responder(name: str, *may: str, users: tuple[str, ...] = (), groups: tuple[str, ...] = ()) -> dict[str, Any]:
    subjects = [{"kind": "User", "name": u} for u in users] + [{"kind": "Group", "name": g} for g in groups]
    return {"name": name, "subjects": subjects, "may": list(may)}


def drill_incident(
    system_name: str,
    *,
    namespace: str = "ml-prod",
    at: datetime.datetime = T0,
    scenario: str = "privacy",
    acknowledged_after: float | None = None,
    gaps: tuple[str, ...] = (),
    record: bool = True,
    drill: bool = True,
) -> AIIncident:
    """A drill incident as the operator opens it, optionally acknowledged ``acknowledged_after`` seconds later."""
    value = f"{scenario}/{at.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}"
    trigger = Trigger(type=TriggerType.DRILL if drill else TriggerType.MONITOR, by="alice", reason=f"drill {value}")
    incident = incidents.open_incident(
        system=system_name,
        namespace=namespace,
        severity=Severity.SEV1,
        failure_mode=FailureMode(drills.FAILURE_MODES[drills.Scenario(scenario)]),
        trigger=trigger,
        detected=at,
        now=at,
        drill=drill,
    )
    status = incident.status or AIIncidentStatus()
    if record:
        status.drill = DrillRecord(
            scenario=scenario,
            decision=f"SEV1 {scenario}: rehearsed",
            gaps=list(gaps),
            time_to_acknowledge_seconds=acknowledged_after,
        )
    if acknowledged_after is not None:
        status.acknowledged_at = at + datetime.timedelta(seconds=acknowledged_after)
        status.acknowledged_by = "alice@example.com"
    incident.status = status
    return incident
