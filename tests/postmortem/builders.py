"""Worked incidents of every failure mode for the post-mortem tests, written as the operator records them.

Each case is one bad day, told the way airlock's status tells it: the breach
sample, detection, acknowledgement, containment (and who authorized it), the
notices and regulatory clocks, the release — plus a minute-by-minute series
of the breached monitor, as a small Prometheus range query returns it.
Values are computed, never random, so the golden files are stable.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass
from typing import Any

from airlock.api.aisystem import AISystemSpec
from airlock.api.incident import AIIncident
from airlock.domain.postmortem import Evidence

T0 = datetime.datetime(2026, 11, 26, 13, 30, 0, tzinfo=datetime.UTC)


def at(seconds: float) -> str:
    """T0 + ``seconds``, as the API server writes it."""
    instant = T0 + datetime.timedelta(seconds=seconds)
    text = instant.isoformat(timespec="milliseconds" if instant.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def series(start: float, step: float, count: int, value: Any) -> list[tuple[datetime.datetime, float]]:
    """``count`` samples every ``step`` seconds from T0 + ``start``; ``value(i)`` gives the i-th value."""
    return [(T0 + datetime.timedelta(seconds=start + i * step), float(value(i))) for i in range(count)]


@dataclass(frozen=True)
class Case:
    incident: AIIncident
    system: AISystemSpec | None
    evidence: tuple[Evidence, ...]


RESPONDERS = [
    {
        "name": "ml-oncall",
        "subjects": [{"kind": "Group", "name": "oncall-ml"}, {"kind": "User", "name": "alice@example.com"}],
        "may": ["acknowledge", "approve", "shutdown", "release", "drill"],
    },
    {
        "name": "security-oncall",
        "subjects": [{"kind": "User", "name": "dana@example.com"}],
        "may": ["acknowledge", "approve", "shutdown"],
    },
]

SEVERITIES = {
    "SEV1": {
        "response": "shutdown",
        "actions": ["reroute", "scaleToZero"],
        "notify": ["internal", "regulator", "users"],
    },
    "SEV2": {
        "response": "escalate",
        "actions": ["reroute", "pauseRollout"],
        "ackWithin": "15m",
        "notify": ["internal"],
    },
    "SEV3": {"response": "investigate", "notify": ["internal"]},
}


def chatbot(*monitors: dict[str, Any], high_risk: bool = False, personal_data: bool = True) -> AISystemSpec:
    return AISystemSpec.model_validate(
        {
            "description": "Tier-one support chatbot",
            "owner": "support-ml",
            "target": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "chatbot-v7"},
            "fallback": {"service": "chatbot", "selector": {"app": "chatbot-fallback"}},
            "params": {"app": "chatbot"},
            "monitors": list(monitors),
            "severities": SEVERITIES,
            "responders": RESPONDERS,
            "regulatory": {
                "euAiAct": {"highRisk": high_risk, "memberStates": ["DE", "FR"], "provider": "Example Support AI GmbH"},
                "gdpr": {"personalData": personal_data, "controller": "Example Retail SE"},
            },
        }
    )


def monitor(name: str, mode: str, query: str, op: str, value: float, severity: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "failureMode": mode,
        "query": query,
        "thresholds": [{"severity": severity, "op": op, "value": value, "for": extra.pop("for_", "0s")}],
        **extra,
    }


def incident(
    name: str,
    *,
    system: str,
    namespace: str,
    mode: str,
    severity: str,
    trigger: dict[str, Any],
    status: dict[str, Any],
    **spec: Any,
) -> AIIncident:
    return AIIncident.model_validate(
        {
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"system": system, "failureMode": mode, "severity": severity, "trigger": trigger, **spec},
            "status": {"postmortem": {"state": "pending"}, **status},
        }
    )


def sudden() -> Case:
    """A bad serving image: 5xx burst 90 s after a rollout; airlock shut it down at once (SEV1 shutdown)."""
    query = 'sum(rate(model_requests_total{app="chatbot",code=~"5.."}[1m])) / sum(rate(model_requests_total{app="chatbot"}[1m]))'
    system = chatbot(
        monitor("error-burst", "sudden", query, ">", 0.5, "SEV1", description="Share of requests answered with a 5xx.")
    )
    trigger = {
        "type": "monitor",
        "monitor": "error-burst",
        "value": 0.72,
        "condition": "> 0.5",
        "query": query,
        "sampleTime": at(0),
    }
    status = {
        "phase": "Resolved",
        "detectedAt": at(1.4),
        "containedAt": at(2.6),
        "timeToContainSeconds": 2.6,
        "acknowledgedAt": at(190),
        "acknowledgedBy": "alice@example.com",
        "resolvedAt": at(2710),
        "timeline": [
            {
                "at": at(1.4),
                "type": "Detected",
                "message": "SEV1 sudden: monitor error-burst > 0.5 (0.72)",
                "by": "airlock",
            },
            {
                "at": at(2.6),
                "type": "Contained",
                "message": "reroute, scaleToZero on Deployment chatbot-v7",
                "by": "airlock",
            },
            {"at": at(190), "type": "Acknowledged", "message": "incident acknowledged", "by": "alice@example.com"},
            {"at": at(2710), "type": "Resolved", "message": "released by alice@example.com", "by": "alice@example.com"},
        ],
        "actions": [
            {"action": "reroute", "at": at(2.6), "result": "applied"},
            {"action": "scaleToZero", "at": at(2.6), "result": "applied"},
            {"action": "reroute", "at": at(2710), "result": "restored"},
            {"action": "scaleToZero", "at": at(2710), "result": "restored"},
        ],
        "notifications": [
            {
                "audience": "internal",
                "event": "opened",
                "state": "sent",
                "attempts": 1,
                "channel": "slack",
                "sentAt": at(3),
            },
            {"audience": "regulator", "event": "opened", "state": "drafted", "attempts": 0},
            {
                "audience": "users",
                "event": "contained",
                "state": "sent",
                "attempts": 2,
                "channel": "status-page",
                "sentAt": at(95),
            },
        ],
    }
    points = series(-600, 15, 60, lambda i: 0.004 if i < 40 else 0.72 - 0.01 * (i - 40) if i < 52 else 0.0)
    return Case(
        incident(
            "support-chatbot-20261126-133000",
            system="support-chatbot",
            namespace="ml-prod",
            mode="sudden",
            severity="SEV1",
            trigger=trigger,
            status=status,
        ),
        system,
        (Evidence("error-burst", query, "> 0.5", 0.5, points),),
    )


def drift() -> Case:
    """Helpfulness slid for days after a catalogue change; SEV2 escalate: airlock acted once carol approved."""
    query = 'avg(rate(answer_helpful_total{app="chatbot"}[1h]))'
    system = chatbot(
        monitor(
            "answer-quality-drift",
            "drift",
            query,
            "<",
            -0.15,
            "SEV2",
            for_="30m",
            baseline={"offset": "7d", "window": "1d"},
            description="Share of answers rated helpful, as relative change against the same day last week.",
        )
    )
    trigger = {
        "type": "monitor",
        "monitor": "answer-quality-drift",
        "value": -0.17,
        "condition": "< -0.15",
        "query": query,
        "sampleTime": at(-1800),
    }
    status = {
        "phase": "Closed",
        "detectedAt": at(0),
        "acknowledgedAt": at(540),
        "acknowledgedBy": "carol@example.com",
        "containedAt": at(612),
        "timeToContainSeconds": 2412,
        "resolvedAt": at(26 * 3600),
        "closedAt": at(9 * 86400),
        "timeline": [
            {
                "at": at(0),
                "type": "Detected",
                "message": "SEV2 drift: monitor answer-quality-drift < -0.15 (-0.17)",
                "by": "airlock",
            },
            {"at": at(540), "type": "Acknowledged", "message": "incident acknowledged", "by": "carol@example.com"},
            {
                "at": at(610),
                "type": "Approved",
                "message": "containment approved: catalogue fix pending",
                "by": "carol@example.com",
            },
            {
                "at": at(612),
                "type": "Contained",
                "message": "reroute, pauseRollout on Deployment chatbot-v7",
                "by": "airlock",
            },
            {
                "at": at(26 * 3600),
                "type": "Resolved",
                "message": "released by carol@example.com",
                "by": "carol@example.com",
            },
        ],
        "actions": [
            {"action": "reroute", "at": at(612), "result": "applied"},
            {"action": "pauseRollout", "at": at(612), "result": "applied"},
        ],
        "notifications": [
            {
                "audience": "internal",
                "event": "opened",
                "state": "sent",
                "attempts": 1,
                "channel": "slack",
                "sentAt": at(1),
            },
        ],
        "postmortem": {"state": "complete", "ref": "https://wiki.example.com/pm/chatbot-drift-2026-11"},
    }
    points = series(-4 * 3600, 300, 49, lambda i: round(-0.004 * i + 0.01 * math.sin(i / 3), 4))
    return Case(
        incident(
            "support-chatbot-20261126-133000",
            system="support-chatbot",
            namespace="ml-prod",
            mode="drift",
            severity="SEV2",
            trigger=trigger,
            status=status,
        ),
        system,
        (Evidence("answer-quality-drift", query, "< -0.15", -0.15, points),),
    )


def adversarial() -> Case:
    """An injection campaign through uploaded PDFs; security shut it down by hand and isolated the pods."""
    query = 'sum(rate(prompt_injection_detections_total{app="chatbot"}[5m]))'
    system = chatbot(monitor("prompt-injection", "adversarial", query, ">", 1, "SEV2", for_="2m"), high_risk=True)
    trigger = {
        "type": "monitor",
        "monitor": "prompt-injection",
        "value": 3.4,
        "condition": "> 1",
        "query": query,
        "sampleTime": at(0),
    }
    status = {
        "phase": "Contained",
        "detectedAt": at(121),
        "acknowledgedAt": at(300),
        "acknowledgedBy": "dana@example.com",
        "containedAt": at(420),
        "timeToContainSeconds": 420,
        "timeline": [
            {
                "at": at(121),
                "type": "Detected",
                "message": "SEV2 adversarial: monitor prompt-injection > 1 (3.4)",
                "by": "airlock",
            },
            {"at": at(300), "type": "Acknowledged", "message": "incident acknowledged", "by": "dana@example.com"},
            {
                "at": at(410),
                "type": "SeverityRaised",
                "message": "SEV2 → SEV1: manual shutdown | exfiltration via tools",
                "by": "dana@example.com",
            },
            {
                "at": at(420),
                "type": "Contained",
                "message": "isolate on Deployment chatbot-v7",
                "by": "dana@example.com",
            },
        ],
        "actions": [{"action": "isolate", "at": at(420), "result": "applied"}],
        "notifications": [
            {
                "audience": "internal",
                "event": "opened",
                "state": "sent",
                "attempts": 1,
                "channel": "slack",
                "sentAt": at(122),
            },
            {
                "audience": "internal",
                "event": "severity-SEV1",
                "state": "failed",
                "attempts": 5,
                "channel": "pagerduty",
                "lastError": "HTTP 503 from events.pagerduty.com",
            },
        ],
        "reporting": [
            {"regime": "eu-ai-act-art73-classification", "deadline": at(121 + 2 * 86400), "state": "pending"}
        ],
    }
    points = series(-900, 30, 50, lambda i: 0.05 if i < 28 else 1.2 + 0.1 * (i - 28))
    return Case(
        incident(
            "support-chatbot-20261126-133201",
            system="support-chatbot",
            namespace="ml-prod",
            mode="adversarial",
            severity="SEV1",
            trigger=trigger,
            status=status,
            harm=["c"],
        ),
        system,
        (Evidence("prompt-injection", query, "> 1", 1.0, points),),
    )


def privacy() -> Case:
    """Customer e-mail addresses in answers; shut down in 2.1 s; GDPR notified, Art. 73 clock running."""
    query = 'sum(rate(pii_detections_total{namespace="ml-prod",app="chatbot"}[1m]))'
    system = chatbot(
        monitor(
            "pii-leak",
            "privacy",
            query,
            ">",
            0.5,
            "SEV1",
            description="Customer PII detected in answers by the output scanner.",
        ),
        high_risk=True,
    )
    trigger = {
        "type": "monitor",
        "monitor": "pii-leak",
        "value": 0.8,
        "condition": "> 0.5",
        "query": query,
        "sampleTime": at(0),
    }
    status = {
        "phase": "Resolved",
        "detectedAt": at(1),
        "containedAt": at(2.1),
        "timeToContainSeconds": 2.1,
        "acknowledgedAt": at(240),
        "acknowledgedBy": "alice@example.com",
        "resolvedAt": at(5 * 3600 + 17 * 60),
        "timeline": [
            {"at": at(1), "type": "Detected", "message": "SEV1 privacy: monitor pii-leak > 0.5 (0.8)", "by": "airlock"},
            {
                "at": at(2.1),
                "type": "Contained",
                "message": "reroute, scaleToZero on Deployment chatbot-v7",
                "by": "airlock",
            },
            {"at": at(240), "type": "Acknowledged", "message": "incident acknowledged", "by": "alice@example.com"},
            {
                "at": at(3600),
                "type": "ReleaseRefused",
                "message": "monitor still breaching at a containing level: pii-leak (SEV1, value 0.6)",
                "by": "alice@example.com",
            },
            {
                "at": at(5 * 3600 + 17 * 60),
                "type": "Resolved",
                "message": "released by alice@example.com",
                "by": "alice@example.com",
            },
        ],
        "actions": [
            {"action": "reroute", "at": at(2.1), "result": "applied"},
            {"action": "scaleToZero", "at": at(2.1), "result": "applied"},
        ],
        "notifications": [
            {
                "audience": "internal",
                "event": "opened",
                "state": "sent",
                "attempts": 1,
                "channel": "slack",
                "sentAt": at(2),
            },
            {
                "audience": "regulator",
                "event": "opened",
                "state": "sent",
                "attempts": 1,
                "channel": "email",
                "sentAt": at(86400),
            },
            {"audience": "users", "event": "contained", "state": "drafted", "attempts": 0},
        ],
        "reporting": [
            {
                "regime": "gdpr-art33",
                "deadline": at(1 + 72 * 3600),
                "state": "submitted",
                "reference": "DPA-2026-1142",
                "submittedAt": at(86400),
                "submittedBy": "dpo@example.com",
            },
            {"regime": "eu-ai-act-art73", "deadline": at(1 + 15 * 86400), "state": "pending"},
        ],
    }
    points = series(-300, 15, 40, lambda i: 0.0 if i < 20 else 0.8 if i < 24 else 0.0)
    return Case(
        incident(
            "support-chatbot-20261126-133001",
            system="support-chatbot",
            namespace="ml-prod",
            mode="privacy",
            severity="SEV1",
            trigger=trigger,
            status=status,
            harm=["c"],
        ),
        system,
        (Evidence("pii-leak", query, "> 0.5", 0.5, points),),
    )


def fairness() -> Case:
    """A credit model approving one age band far less often; dryRun: airlock recorded, nobody touched it."""
    query = 'max(approval_rate_gap{app="loan-scorer",attribute="age_band"})'
    system = AISystemSpec.model_validate(
        {
            "description": "Consumer-loan pre-approval scoring",
            "owner": "credit-ml",
            "mode": "dryRun",
            "target": {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "loan-scorer"},
            "monitors": [monitor("approval-gap", "fairness", query, ">", 0.1, "SEV2", for_="1h")],
            "severities": {"SEV2": {"response": "escalate", "actions": ["pauseRollout"], "notify": ["internal"]}},
            "responders": [
                {
                    "name": "credit-oncall",
                    "subjects": [{"kind": "Group", "name": "oncall-credit"}],
                    "may": ["acknowledge", "approve"],
                }
            ],
            "regulatory": {"euAiAct": {"highRisk": True, "memberStates": ["NL"], "systemId": "EU-AIDB-000777"}},
        }
    )
    trigger = {
        "type": "monitor",
        "monitor": "approval-gap",
        "value": 0.14,
        "condition": "> 0.1",
        "query": query,
        "sampleTime": at(-3600),
    }
    status = {
        "phase": "Open",
        "detectedAt": at(0),
        "timeline": [
            {
                "at": at(0),
                "type": "Detected",
                "message": "SEV2 fairness: monitor approval-gap > 0.1 (0.14)",
                "by": "airlock",
            },
        ],
        "notifications": [
            {"audience": "internal", "event": "opened", "state": "sending", "attempts": 1, "channel": "email"}
        ],
        "reporting": [{"regime": "eu-ai-act-art73-classification", "deadline": at(2 * 86400), "state": "pending"}],
    }
    points = series(-2 * 3600, 600, 13, lambda i: 0.04 + 0.01 * i)
    return Case(
        incident(
            "loan-scorer-20261126-133000",
            system="loan-scorer",
            namespace="credit",
            mode="fairness",
            severity="SEV2",
            trigger=trigger,
            status=status,
            dryRun=True,
        ),
        system,
        (Evidence("approval-gap", query, "> 0.1", 0.1, points),),
    )


def safety() -> Case:
    """A moderator letting self-harm content through; scaling was forbidden at first, then re-applied."""
    query = 'sum(rate(harmful_output_total{app="moderator"}[5m])) / sum(rate(answer_total{app="moderator"}[5m]))'
    system = AISystemSpec.model_validate(
        {
            "description": "Classifies user posts before publication",
            "owner": "trust-safety-ml",
            "target": {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "moderator"},
            "fallback": {"service": "moderator", "selector": {"app": "moderator-v3"}},
            "monitors": [monitor("harmful-let-through", "safety", query, ">", 0.01, "SEV1", for_="1m")],
            "severities": {
                "SEV1": {
                    "response": "shutdown",
                    "actions": ["reroute", "pauseRollout"],
                    "notify": ["internal", "users"],
                }
            },
            "responders": [
                {
                    "name": "trust-safety-leads",
                    "subjects": [{"kind": "User", "name": "sam@example.com"}],
                    "may": ["acknowledge", "release"],
                }
            ],
        }
    )
    trigger = {
        "type": "monitor",
        "monitor": "harmful-let-through",
        "value": 0.031,
        "condition": "> 0.01",
        "query": query,
        "sampleTime": at(0),
    }
    status = {
        "phase": "Resolved",
        "detectedAt": at(61),
        "containedAt": at(63),
        "timeToContainSeconds": 63,
        "resolvedAt": at(3 * 3600),
        "timeline": [
            {
                "at": at(61),
                "type": "Detected",
                "message": "SEV1 safety: monitor harmful-let-through > 0.01 (0.031)",
                "by": "airlock",
            },
            {"at": at(63), "type": "Contained", "message": "reroute on Rollout moderator", "by": "airlock"},
            {"at": at(78), "type": "Contained", "message": "pauseRollout on Rollout moderator", "by": "airlock"},
            {"at": at(3 * 3600), "type": "Resolved", "message": "released by sam@example.com", "by": "sam@example.com"},
        ],
        "actions": [
            {"action": "reroute", "at": at(63), "result": "applied"},
            {"action": "pauseRollout", "at": at(63), "result": "failed: rollouts.argoproj.io is forbidden"},
            {"action": "pauseRollout", "at": at(78), "result": "applied"},
        ],
        "notifications": [
            {
                "audience": "internal",
                "event": "opened",
                "state": "sent",
                "attempts": 1,
                "channel": "slack",
                "sentAt": at(62),
            },
            {
                "audience": "users",
                "event": "contained",
                "state": "sent",
                "attempts": 1,
                "channel": "status-page",
                "sentAt": at(900),
            },
        ],
    }
    points = series(-600, 30, 40, lambda i: 0.002 if i < 18 else 0.031)
    return Case(
        incident(
            "content-moderator-20261126-133000",
            system="content-moderator",
            namespace="trust-safety",
            mode="safety",
            severity="SEV1",
            trigger=trigger,
            status=status,
            harm=["a"],
        ),
        system,
        (Evidence("harmful-let-through", query, "> 0.01", 0.01, points),),
    )


def cost() -> Case:
    """An agent loop tripling token spend overnight; nobody acknowledged, airlock paused and rerouted."""
    query = 'sum(rate(llm_tokens_total{app="chatbot"}[5m]))'
    system = chatbot(
        monitor("token-spend", "cost", query, ">", 2, "SEV2", for_="10m", baseline={"offset": "1d", "window": "1h"})
    )
    trigger = {
        "type": "monitor",
        "monitor": "token-spend",
        "value": 2.4,
        "condition": "> 2",
        "query": query,
        "sampleTime": at(-600),
    }
    status = {
        "phase": "Resolved",
        "detectedAt": at(0),
        "containedAt": at(901),
        "timeToContainSeconds": 1501,
        "resolvedAt": at(4 * 3600),
        "timeline": [
            {"at": at(0), "type": "Detected", "message": "SEV2 cost: monitor token-spend > 2 (2.4)", "by": "airlock"},
            {
                "at": at(900),
                "type": "SeverityRaised",
                "message": "SEV2 → SEV1: not acknowledged within 15m",
                "by": "airlock",
            },
            {
                "at": at(901),
                "type": "Contained",
                "message": "reroute, scaleToZero on Deployment chatbot-v7",
                "by": "airlock",
            },
            {"at": at(4 * 3600), "type": "Resolved", "message": "manual shutdown lifted"},
        ],
        "actions": [
            {"action": "reroute", "at": at(901), "result": "applied"},
            {"action": "scaleToZero", "at": at(901), "result": "applied"},
        ],
    }
    points = series(-3600, 120, 31, lambda i: 0.1 if i < 15 else 0.1 + 0.2 * (i - 15))
    return Case(
        incident(
            "support-chatbot-20261126-132000",
            system="support-chatbot",
            namespace="ml-prod",
            mode="cost",
            severity="SEV1",
            trigger=trigger,
            status=status,
        ),
        system,
        (Evidence("token-spend", query, "> 2", 2.0, points),),
    )


def drill() -> Case:
    """A privacy drill: the plan would have shut down; nobody outside ml-oncall was paged."""
    trigger = {"type": "drill", "by": "alice@example.com", "reason": "privacy"}
    status = {
        "phase": "Resolved",
        "detectedAt": at(0),
        "acknowledgedAt": at(420),
        "acknowledgedBy": "carol@example.com",
        "resolvedAt": at(1800),
        "timeline": [
            {"at": at(0), "type": "Detected", "message": "SEV1 privacy: drill privacy", "by": "alice@example.com"},
            {"at": at(420), "type": "Acknowledged", "message": "incident acknowledged", "by": "carol@example.com"},
            {"at": at(1800), "type": "Resolved", "message": "drill complete", "by": "alice@example.com"},
        ],
        "drill": {
            "scenario": "privacy",
            "decision": "SEV1 privacy: shutdown (reroute, scaleToZero), notify internal, regulator, users",
            "actions": ["reroute", "scaleToZero"],
            "audiences": ["internal", "regulator", "users"],
            "paged": ["ml-oncall (group oncall-ml, user alice@example.com)"],
            "gaps": [
                "no regulator channel configured: the GDPR notice would only be drafted",
                "no DPO among the responders",
            ],
            "timeToAcknowledgeSeconds": 420,
        },
    }
    return Case(
        incident(
            "support-chatbot-drill-20261126-133000",
            system="support-chatbot",
            namespace="ml-prod",
            mode="privacy",
            severity="SEV1",
            trigger=trigger,
            status=status,
            drill=True,
        ),
        chatbot(),
        (),
    )


def orphan() -> Case:
    """A manual shutdown of a system since deleted: no plan, no evidence, nothing but the record."""
    trigger = {"type": "manual", "by": "alice@example.com", "reason": "answers recommend a competitor's product"}
    status = {
        "phase": "Open",
        "detectedAt": at(0),
        "timeline": [
            {
                "at": at(0),
                "type": "Detected",
                "message": "SEV1 sudden: answers recommend a competitor's product",
                "by": "alice@example.com",
            }
        ],
    }
    return Case(
        incident(
            "sales-bot-20261126-133000",
            system="sales-bot",
            namespace="ml-prod",
            mode="sudden",
            severity="SEV1",
            trigger=trigger,
            status=status,
        ),
        None,
        (),
    )


CASES = {
    "sudden": sudden,
    "drift": drift,
    "adversarial": adversarial,
    "privacy": privacy,
    "fairness": fairness,
    "safety": safety,
    "cost": cost,
    "drill": drill,
    "orphan": orphan,
}
