"""Manifests for integration tests, written the way a platform team would."""

from __future__ import annotations

from typing import Any

ALICE = "alice@example.com"


def pii_monitor(interval: str = "1s", sev1: float = 0.5) -> dict[str, Any]:
    return {
        "name": "pii-leak",
        "failureMode": "privacy",
        "query": 'sum(rate(pii_detections_total{namespace="{{ namespace }}",app="{{ params.app }}"}[3s]))',
        "interval": interval,
        "noData": "gap",
        "thresholds": [
            {"severity": "SEV1", "op": ">", "value": sev1, "for": "0s"},
            {"severity": "SEV3", "op": ">", "value": 0, "for": "10m"},
        ],
    }


def chatbot(
    namespace: str,
    app: str,
    *,
    name: str = "chatbot",
    mode: str = "enforce",
    monitors: list[dict[str, Any]] | None = None,
    severities: dict[str, Any] | None = None,
    fallback: bool = True,
    target: str = "chatbot-v7",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "description": "Tier-one support chatbot",
        "owner": "support-ml",
        "mode": mode,
        "target": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
        "params": {"app": app},
        "monitors": monitors if monitors is not None else [pii_monitor()],
        "severities": severities
        or {
            "SEV1": {"response": "shutdown", "actions": ["reroute", "scaleToZero"], "notify": ["internal"]},
            "SEV2": {"response": "escalate", "actions": ["pauseRollout"], "ackWithin": "15m"},
            "SEV3": {"response": "investigate", "notify": ["internal"]},
            "SEV4": {"response": "observe"},
        },
        "responders": [
            {
                "name": "ml-oncall",
                "subjects": [{"kind": "User", "name": ALICE}, {"kind": "Group", "name": "oncall-ml"}],
                "may": ["acknowledge", "approve", "shutdown", "release", "drill"],
            }
        ],
    }
    if fallback:
        spec["fallback"] = {"service": "chatbot", "selector": {"app": f"{app}-fallback"}}
    spec.update(extra or {})
    return {
        "apiVersion": "airlock.dev/v1alpha1",
        "kind": "AISystem",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }
