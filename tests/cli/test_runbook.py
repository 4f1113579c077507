"""The runbook, rendered from the shipped examples: frozen golden files plus what it must always say.

``render_runbook`` is pure, so these tests need no cluster.  The golden files
under ``tests/cli/golden/`` were read as the on-call engineer reads them at
3 a.m.; regenerate them deliberately with ``AIRLOCK_UPDATE_GOLDEN=1 pytest
tests/cli/test_runbook.py`` and read the diff before committing it.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from airlock.api.aisystem import AISystem
from airlock.api.incident import AIIncident
from airlock.api.policy import ContainmentPolicy
from airlock.domain.runbook import render_runbook

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("AIRLOCK_UPDATE_GOLDEN") == "1"

EXAMPLES = {
    "support-chatbot": "llm-chatbot",
    "fraud-scorer": "fraud-model",
    "content-moderator": "content-moderation",
    "kserve-chatbot": "vllm-runtime",
}

INCIDENT = "support-chatbot-20261126-133012"


def manifest(path: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / path).read_text())
    return loaded


def system(name: str, status: dict[str, Any] | None = None) -> AISystem:
    body = manifest(f"examples/{name}.yaml")
    if status is not None:
        body["status"] = status
    return AISystem.model_validate(body)


def policy(name: str) -> ContainmentPolicy:
    return ContainmentPolicy.model_validate(manifest(f"policies/{name}.yaml"))


# The support chatbot at 13:30 on a bad day: airlock shut it down on a PII leak, nobody has acknowledged yet.
CONTAINED_STATUS: dict[str, Any] = {
    "phase": "ShutDown",
    "severity": "SEV1",
    "incident": INCIDENT,
    "monitors": [
        {"name": "error-burst", "state": "ok", "value": 0.01},
        {"name": "pii-leak", "state": "breached", "value": 0.8, "severity": "SEV1"},
        {"name": "prompt-injection", "state": "ok", "value": 0},
        {"name": "harmful-output", "state": "ok", "value": 0.002},
        {"name": "answer-quality-drift", "state": "noData", "message": "no samples in the baseline window"},
        {"name": "token-spend", "state": "ok", "value": 0.1},
    ],
    "containment": {
        "active": True,
        "actions": ["reroute", "scaleToZero"],
        "since": "2026-11-26T13:30:14Z",
        "by": "airlock",
        "reason": "monitor pii-leak breached SEV1 (0.8)",
        "severity": "SEV1",
        "saved": {"replicas": 3, "service": "chatbot", "selector": {"app": "chatbot"}},
    },
}

CONTAINED_INCIDENT: dict[str, Any] = {
    "apiVersion": "airlock.dev/v1alpha1",
    "kind": "AIIncident",
    "metadata": {"name": INCIDENT, "namespace": "ml-prod"},
    "spec": {
        "system": "support-chatbot",
        "failureMode": "privacy",
        "severity": "SEV1",
        "trigger": {"type": "monitor", "monitor": "pii-leak", "value": 0.8, "condition": "> 0.5"},
    },
    "status": {
        "phase": "Contained",
        "detectedAt": "2026-11-26T13:30:12Z",
        "containedAt": "2026-11-26T13:30:14Z",
        "timeToContainSeconds": 2.1,
    },
}


def cases() -> dict[str, str]:
    """Golden file name -> rendered runbook."""
    out = {}
    for name, policy_name in EXAMPLES.items():
        for output, suffix in (("text", "txt"), ("markdown", "md")):
            out[f"{name}.{suffix}"] = render_runbook(system(name), policy(policy_name), None, output)
    contained = system("support-chatbot", copy.deepcopy(CONTAINED_STATUS))
    incident = AIIncident.model_validate(copy.deepcopy(CONTAINED_INCIDENT))
    for output, suffix in (("text", "txt"), ("markdown", "md")):
        out[f"support-chatbot-contained.{suffix}"] = render_runbook(contained, policy("llm-chatbot"), incident, output)
    return out


RENDERED = cases()


@pytest.mark.parametrize("golden", sorted(RENDERED))
def test_matches_golden(golden: str) -> None:
    path = GOLDEN / golden
    if UPDATE:
        path.write_text(RENDERED[golden], encoding="utf-8")
    assert path.exists(), f"{path} missing: run with AIRLOCK_UPDATE_GOLDEN=1 and read the result"
    assert RENDERED[golden] == path.read_text(encoding="utf-8"), (
        f"{golden} changed: if intended, regenerate with AIRLOCK_UPDATE_GOLDEN=1 and read the diff"
    )


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_text_fits_one_screen(name: str) -> None:
    for golden in (f"{name}.txt", "support-chatbot-contained.txt"):
        lines = RENDERED[golden].splitlines()
        assert len(lines) <= 45, f"{golden}: {len(lines)} lines"
        assert max(len(line) for line in lines) <= 102, golden
        assert RENDERED[golden].isascii(), f"{golden}: the terminal runbook is ASCII (any locale, any pager)"


def test_support_chatbot_says_who_and_exactly_how() -> None:
    text = RENDERED["support-chatbot.txt"]
    # The first thing after the header: what to do, as commands to paste.
    assert text.index("IF IT MISBEHAVES RIGHT NOW") < text.index("WHO MAY")
    assert 'kubectl airlock shutdown support-chatbot -n ml-prod --reason "<what you see>"' in text
    assert 'kubectl annotate ais support-chatbot -n ml-prod airlock.dev/shutdown="<what you see>"' in text
    assert 'airlock.dev/requested-by="$me" airlock.dev/requested-by-groups="$g"' in text
    assert "kubectl airlock ack <incident> -n ml-prod" in text
    assert "kubectl airlock approve <incident> -n ml-prod" in text
    assert "kubectl airlock release support-chatbot -n ml-prod" in text
    # The responders, merged: the system's ml-oncall (alice, pager-bot) over the policy's groups.
    who = text[text.index("WHO MAY") : text.index("WHAT AIRLOCK DOES")]
    shutdown = who[who.index("shutdown") : who.index("release")]
    for holder in ("oncall-ml", "oncall-security", "incident-commanders", "alice@example.com", "ops/pager-bot"):
        assert holder in shutdown
    release = who[who.index("release") :]
    assert "oncall-security" not in release  # security may shut down, not release
    # What airlock does alone, and where traffic goes.
    assert "harmful-output (safety)" in text
    assert "> 0.05 for 1m" in text
    assert "shutdown, at once" in text
    assert "reroute, scaleToZero" in text
    assert "15m, else SEV1" in text
    assert "FALLBACK   Service chatbot -> selector app=chatbot-fallback" in text
    assert "GDPR Art. 33" in text
    assert "probably" not in text.lower()


def test_contained_runbook_names_the_incident_and_what_breaches() -> None:
    text = RENDERED["support-chatbot-contained.txt"]
    assert "NOW: ShutDown SEV1 - reroute, scaleToZero by airlock: monitor pii-leak breached SEV1 (0.8)" in text
    assert "MONITORS: pii-leak breached 0.8 SEV1; answer-quality-drift noData; 4 ok" in text
    assert f"INCIDENT: {INCIDENT} (SEV1 privacy, Contained, NOT acknowledged)" in text
    assert f"kubectl airlock ack {INCIDENT} -n ml-prod" in text
    assert "Already ShutDown by airlock" in text


def test_dry_run_says_airlock_will_not_touch_it_and_how_to_by_hand() -> None:
    text = RENDERED["fraud-scorer.txt"]
    assert "DRY RUN: airlock decides, records and notifies but NEVER touches StatefulSet fraud-scorer." in text
    assert "kubectl scale statefulset/fraud-scorer -n payments --replicas=0" in text
    assert """-p '{"spec":{"selector":{"app":"fraud-rules-engine"}}}'""" in text
    assert "release by" in text
    assert "2 responders" in text
    # Only risk-ml-oncall may shut it down; payments on-call may acknowledge and approve.
    assert "  shutdown      group oncall-risk-ml\n" in text
    assert "groups oncall-risk-ml, model-risk, oncall-payments; serviceaccount ops/pager-bot" in text


def test_markdown_is_a_wiki_page_with_tables() -> None:
    page = RENDERED["support-chatbot.md"]
    assert page.startswith("# Runbook: support-chatbot (ml-prod)\n")
    assert (
        "| **shutdown** | oncall-ml, oncall-security, incident-commanders | alice@example.com | ops/pager-bot |" in page
    )
    assert (
        "| Severity | Failure modes | Monitors | Response | Actions | Notify | Ack within | Release approvals |" in page
    )
    assert "kubectl airlock shutdown support-chatbot -n ml-prod" in page
    for heading in ("## If it misbehaves right now", "## Who may act", "## What airlock does by itself", "## Fallback"):
        assert heading in page


def test_a_plan_airlock_cannot_execute_says_so_and_gives_the_manual_way() -> None:
    body = manifest("examples/support-chatbot.yaml")
    body["spec"]["policyRef"] = {"name": "no-such-policy"}
    text = render_runbook(AISystem.model_validate(body), None, None, "text")
    assert "PLAN INVALID: spec.policyRef.name: ContainmentPolicy 'no-such-policy' not found" in text
    assert "kubectl scale deployment/chatbot-v7 -n ml-prod --replicas=0" in text
    assert "kubectl airlock shutdown" not in text  # the operator ignores it while the plan is invalid


def test_nobody_with_shutdown_is_said_plainly() -> None:
    body = manifest("examples/support-chatbot.yaml")
    body["spec"].pop("policyRef")
    body["spec"]["monitors"] = []
    body["spec"]["responders"][0]["may"] = ["acknowledge"]
    text = render_runbook(AISystem.model_validate(body), None, None, "text")
    assert "nobody may shut it down through airlock: page the owner" in text
    assert "shutdown, release, approve, report  nobody" in text
    assert "nothing: no monitors, it contains only on request" in text
