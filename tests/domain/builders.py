"""Manifests and fixed times shared by the domain tests.

A plain module, not a conftest: the domain tests run with ``--noconftest``.
Specs are written as the dicts a user would ``kubectl apply`` (camelCase) and
validated by the real models, so the tests exercise what users write.
"""

from __future__ import annotations

import copy
import datetime
from typing import Any

from airlock.api.aisystem import AISystemSpec, MonitorState, MonitorStatus
from airlock.api.common import FailureMode, Severity
from airlock.api.matrix import Monitor
from airlock.api.policy import ContainmentPolicySpec
from airlock.domain import plan as plan_module

T0 = datetime.datetime(2026, 11, 26, 13, 30, 12, tzinfo=datetime.UTC)
NAMESPACE = "ml-prod"
SYSTEM = "support-chatbot"


def at(seconds: float = 0, *, minutes: float = 0) -> datetime.datetime:
    """T0 plus an offset: the only clock the domain tests use."""
    return T0 + datetime.timedelta(seconds=seconds, minutes=minutes)


PII_LEAK: dict[str, Any] = {
    "name": "pii-leak",
    "failureMode": "privacy",
    "query": 'sum(rate(pii_detections_total{namespace="{{ namespace }}",app="{{ params.app }}"}[1m]))',
    "interval": "15s",
    "noData": "gap",
    "thresholds": [
        {"severity": "SEV1", "op": ">", "value": 0.5, "for": "0s"},
        {"severity": "SEV3", "op": ">", "value": 0, "for": "2m"},
    ],
}

ANSWER_DRIFT: dict[str, Any] = {
    "name": "answer-quality-drift",
    "failureMode": "drift",
    "query": 'avg(rate(answer_helpful_total{app="{{ params.app }}"}[1h]))',
    "baseline": {"offset": "7d", "window": "1d"},
    "thresholds": [{"severity": "SEV2", "op": "<", "value": -0.15, "for": "30m"}],
}

SEVERITIES: dict[str, Any] = {
    "SEV1": {"response": "shutdown", "actions": ["reroute", "scaleToZero"], "notify": ["internal", "regulator"]},
    "SEV2": {"response": "escalate", "actions": ["reroute", "pauseRollout"], "ackWithin": "15m"},
    "SEV3": {"response": "investigate", "notify": ["internal"]},
    "SEV4": {"response": "observe"},
}

RESPONDERS: list[dict[str, Any]] = [
    {
        "name": "ml-oncall",
        "subjects": [
            {"kind": "Group", "name": "oncall-ml"},
            {"kind": "User", "name": "alice@example.com"},
            {"kind": "ServiceAccount", "namespace": "ops", "name": "pager-bot"},
        ],
        "may": ["acknowledge", "approve", "shutdown", "release", "drill"],
    }
]


def spec_dict(**overrides: Any) -> dict[str, Any]:
    """The SPEC §2.1 example system; keyword arguments replace top-level fields (None deletes)."""
    spec: dict[str, Any] = {
        "mode": "enforce",
        "target": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "chatbot-v7"},
        "fallback": {"service": "chatbot", "selector": {"app": "chatbot-fallback"}},
        "params": {"app": "chatbot"},
        "monitors": [copy.deepcopy(PII_LEAK), copy.deepcopy(ANSWER_DRIFT)],
        "severities": copy.deepcopy(SEVERITIES),
        "responders": copy.deepcopy(RESPONDERS),
    }
    for key, value in overrides.items():
        if value is None:
            spec.pop(key, None)
        else:
            spec[key] = value
    return spec


def system_spec(**overrides: Any) -> AISystemSpec:
    return AISystemSpec.model_validate(spec_dict(**overrides))


def policy_spec(body: dict[str, Any]) -> ContainmentPolicySpec:
    return ContainmentPolicySpec.model_validate(body)


def monitor(**overrides: Any) -> Monitor:
    """The pii-leak monitor; keyword arguments (camelCase keys) replace its fields."""
    body = copy.deepcopy(PII_LEAK)
    body.update(overrides)
    return Monitor.model_validate(body)


def build(
    spec: AISystemSpec | None = None, policy: ContainmentPolicySpec | None = None, **overrides: Any
) -> plan_module.Plan:
    return plan_module.build_plan(NAMESPACE, SYSTEM, spec or system_spec(**overrides), policy)


def status(
    name: str = "pii-leak",
    state: MonitorState = MonitorState.OK,
    severity: Severity | None = None,
    value: float | None = 0.0,
    failure_mode: FailureMode = FailureMode.PRIVACY,
) -> MonitorStatus:
    """A monitor's evaluation result as the decision layer receives it."""
    return MonitorStatus(name=name, state=state, severity=severity, value=value, failure_mode=failure_mode)


def breached(name: str, severity: Severity, value: float = 0.8) -> MonitorStatus:
    return status(name, MonitorState.BREACHED, severity, value)


def ok(name: str = "pii-leak", value: float = 0.0) -> MonitorStatus:
    return status(name, MonitorState.OK, None, value)
