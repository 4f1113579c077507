"""Incidents and systems for the notice tests, written as the manifests a user applies (camelCase)."""

from __future__ import annotations

import datetime
from typing import Any

from airlock.api.aisystem import AISystemSpec
from airlock.api.incident import AIIncident

T0 = datetime.datetime(2026, 11, 26, 13, 30, 12, tzinfo=datetime.UTC)
SYSTEM = "support-chatbot"


def system(*, high_risk: bool = True, personal_data: bool = True, **extra: Any) -> AISystemSpec:
    return AISystemSpec.model_validate(
        {
            "description": "Tier-one support chatbot",
            "owner": "support-ml",
            "target": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "chatbot-v7"},
            "responders": [
                {"name": "ml-oncall", "subjects": [{"kind": "Group", "name": "oncall-ml"}], "may": ["acknowledge"]}
            ],
            "regulatory": {
                "euAiAct": {
                    "highRisk": high_risk,
                    "memberStates": ["DE", "AT"],
                    "provider": "Example Support AI GmbH",
                    "systemId": "EU-AIDB-000123",
                },
                "gdpr": {"personalData": personal_data, "controller": "Example Retail SE"},
            },
            **extra,
        }
    )


def incident(
    failure_mode: str = "privacy",
    *,
    harm: list[str] | None = None,
    detected: datetime.datetime = T0,
    drill: bool = False,
    worked: bool = False,
) -> AIIncident:
    """A fresh incident, or (``worked``) one that was contained and acknowledged."""
    status: dict[str, Any] = {
        "phase": "Open",
        "detectedAt": detected.isoformat(),
        "timeline": [
            {
                "at": detected.isoformat(),
                "type": "Detected",
                "message": f"SEV1 {failure_mode}: monitor {failure_mode}-monitor > 0.5 (0.8)",
                "by": "airlock",
            }
        ],
        "postmortem": {"state": "pending"},
    }
    if worked:
        contained = detected + datetime.timedelta(seconds=2.1)
        acked = detected + datetime.timedelta(minutes=4)
        status.update(
            phase="Contained",
            containedAt=contained.isoformat(),
            timeToContainSeconds=2.1,
            acknowledgedAt=acked.isoformat(),
            acknowledgedBy="alice@example.com",
            actions=[
                {"action": "reroute", "at": contained.isoformat(), "result": "applied"},
                {"action": "scaleToZero", "at": contained.isoformat(), "result": "applied"},
            ],
        )
        status["timeline"] += [
            {"at": contained.isoformat(), "type": "Contained", "message": "reroute, scaleToZero applied"},
            {"at": acked.isoformat(), "type": "Acknowledged", "message": "acknowledged", "by": "alice@example.com"},
        ]
    return AIIncident.model_validate(
        {
            "metadata": {"name": f"{SYSTEM}-20261126-133012", "namespace": "ml-prod"},
            "spec": {
                "system": SYSTEM,
                "failureMode": failure_mode,
                "severity": "SEV1",
                "drill": drill,
                "harm": harm or [],
                "trigger": {
                    "type": "monitor",
                    "monitor": f"{failure_mode}-monitor",
                    "value": 0.8,
                    "condition": "> 0.5",
                    "query": f'sum(rate({failure_mode}_events_total{{app="chatbot"}}[1m]))',
                },
            },
            "status": status,
        }
    )
