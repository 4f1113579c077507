"""``airlock incident show|list`` against the sandbox API server, with incidents as the operator records them.

Times are relative to the moment the test runs (the CLI reads the clocks at
the time of asking), so a clock due in three days reads "pending" and one
eight hours past its deadline reads OVERDUE whatever day the suite runs.  The
notice drafts are rendered by :mod:`airlock.domain.notices` and stored the way
the operator stores them (``<kind>.md: "Subject: …\\n\\n<body>"``).
"""

from __future__ import annotations

import datetime
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from airlock.api.common import Audience
from airlock.api.incident import AIIncident, Drafts
from airlock.cli import incident as incident_cli
from airlock.cli.main import main
from airlock.domain import deadlines, notices
from airlock.domain import drafts as drafts_names
from airlock.engine import followups
from airlock.sandbox.cluster import ClusterThread
from airlock.sandbox.world import Api, load_crds
from tests.notices.builders import system as chatbot_system

NS = "ml-prod"
OTHER_NS = "credit"
CHATBOT = "support-chatbot-20261126-133012"
FRAUD = "fraud-scorer-20261126-140000"
ORPHAN = "sales-bot-20261126-150000"
LOAN = "loan-scorer-20261123-090000"
DRILL = "support-chatbot-drill-20261126-120000"
NOW = datetime.datetime.now(datetime.UTC).replace(microsecond=0)  # reset by the autouse fixture below
RULE = "=" * 72


def at(hours: float = 0.0, seconds: float = 0.0) -> str:
    """NOW + an offset, as the API server writes it."""
    instant = NOW + datetime.timedelta(hours=hours, seconds=seconds)
    text = instant.isoformat(timespec="milliseconds" if instant.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def when(hours: float = 0.0, seconds: float = 0.0) -> str:
    """NOW + an offset, as the CLI prints it."""
    return (NOW + datetime.timedelta(hours=hours, seconds=seconds)).strftime("%Y-%m-%d %H:%M:%SZ")


def chatbot() -> AIIncident:
    """A SEV1 PII leak an hour ago: shut down in 2.1 s, acknowledged, notices half delivered, two clocks running."""
    return AIIncident.model_validate(
        {
            "metadata": {"name": CHATBOT, "namespace": NS},
            "spec": {
                "system": "support-chatbot",
                "failureMode": "privacy",
                "severity": "SEV1",
                "trigger": {
                    "type": "monitor",
                    "monitor": "pii-leak",
                    "value": 0.8,
                    "condition": "> 0.5",
                    "query": 'sum(rate(pii_detections_total{app="chatbot"}[1m]))',
                },
            },
            "status": {
                "phase": "Contained",
                "detectedAt": at(-1),
                "containedAt": at(-1, 2.1),
                "timeToContainSeconds": 2.1,
                "acknowledgedAt": at(-1, 240),
                "acknowledgedBy": "alice@example.com",
                "timeline": [
                    {
                        "at": at(-1),
                        "type": "Detected",
                        "message": "SEV1 privacy: monitor pii-leak > 0.5 (0.8)",
                        "by": "airlock",
                    },
                    {
                        "at": at(-1, 2.1),
                        "type": "Contained",
                        "message": "reroute, scaleToZero on Deployment chatbot-v7",
                        "by": "airlock",
                    },
                    {
                        "at": at(-1, 240),
                        "type": "Acknowledged",
                        "message": "incident acknowledged",
                        "by": "alice@example.com",
                    },
                ],
                "actions": [
                    {"action": "reroute", "at": at(-1, 2.1), "result": "applied"},
                    {"action": "scaleToZero", "at": at(-1, 2.1), "result": "applied"},
                ],
                "reporting": [
                    {"regime": "eu-ai-act-art73-classification", "deadline": at(47), "state": "pending"},
                    {"regime": "gdpr-art33", "deadline": at(71), "state": "pending", "warned": []},
                ],
                "notifications": [
                    {
                        "audience": "internal",
                        "event": "opened",
                        "channel": "ops-webhook",
                        "severity": "SEV1",
                        "state": "sent",
                        "attempts": 1,
                        "idempotencyKey": "k1",
                        "sentAt": at(-1, 3),
                    },
                    {
                        "audience": "internal",
                        "event": "opened",
                        "channel": "pager",
                        "severity": "SEV1",
                        "state": "sent",
                        "attempts": 1,
                        "idempotencyKey": "k2",
                        "sentAt": at(-1, 3),
                    },
                    {"audience": "regulator", "event": "opened", "state": "drafted", "idempotencyKey": "k3"},
                    {"audience": "users", "event": "opened", "state": "drafted", "idempotencyKey": "k4"},
                    {
                        "audience": "internal",
                        "event": "contained",
                        "channel": "ops-webhook",
                        "severity": "SEV1",
                        "state": "failed",
                        "attempts": 3,
                        "idempotencyKey": "k5",
                        "nextAttempt": at(0, 300),
                        "lastError": "HTTP 503 from https://hooks.example.com/airlock: Service Unavailable",
                    },
                ],
                "conditions": [
                    {
                        "type": "NoticesDelivered",
                        "status": "False",
                        "reason": "Retrying",
                        "message": "ops-webhook/internal/contained: HTTP 503",
                        "lastTransitionTime": at(-1, 10),
                    }
                ],
                "postmortem": {"state": "pending"},
            },
        }
    )


def fraud() -> AIIncident:
    """A SEV3 investigation: internal only, one notice still being sent."""
    return AIIncident.model_validate(
        {
            "metadata": {"name": FRAUD, "namespace": NS},
            "spec": {
                "system": "fraud-scorer",
                "failureMode": "drift",
                "severity": "SEV3",
                "trigger": {"type": "monitor", "monitor": "score-drift", "value": -0.2, "condition": "< -0.1"},
            },
            "status": {
                "phase": "Open",
                "detectedAt": at(-0.5),
                "notifications": [
                    {
                        "audience": "internal",
                        "event": "opened",
                        "channel": "slack",
                        "severity": "SEV3",
                        "state": "sending",
                        "attempts": 1,
                    }
                ],
            },
        }
    )


def orphan() -> AIIncident:
    """A manual shutdown whose drafts the operator never wrote (no ConfigMap)."""
    return AIIncident.model_validate(
        {
            "metadata": {"name": ORPHAN, "namespace": NS},
            "spec": {
                "system": "sales-bot",
                "failureMode": "sudden",
                "severity": "SEV1",
                "trigger": {"type": "manual", "by": "bob@example.com", "reason": "recommends a competitor"},
            },
            "status": {
                "phase": "Open",
                "detectedAt": at(-0.1),
                "notifications": [{"audience": "internal", "event": "opened", "state": "drafted"}],
            },
        }
    )


def loan() -> AIIncident:
    """Resolved three days ago but the GDPR notification is 8 h overdue; the Art. 73 classification is submitted."""
    return AIIncident.model_validate(
        {
            "metadata": {"name": LOAN, "namespace": OTHER_NS},
            "spec": {
                "system": "loan-scorer",
                "failureMode": "privacy",
                "severity": "SEV2",
                "dryRun": True,
                "harm": ["c"],
                "widespread": True,
                "trigger": {"type": "monitor", "monitor": "pii-leak", "value": 2.0, "condition": "> 1"},
            },
            "status": {
                "phase": "Resolved",
                "detectedAt": at(-80),
                "resolvedAt": at(-70),
                "reporting": [
                    {
                        "regime": "eu-ai-act-art73",
                        "deadline": at(-32),
                        "state": "submitted",
                        "reference": "EU-77",
                        "submittedAt": at(-40),
                        "submittedBy": "dana@example.com",
                    },
                    {"regime": "gdpr-art33", "deadline": at(-8), "state": "pending"},
                ],
                "notifications": [
                    {
                        "audience": "internal",
                        "event": "opened",
                        "channel": "email",
                        "state": "failed",
                        "attempts": 12,
                        "lastError": "SMTP 550 mailbox unavailable",
                    },
                    {
                        "audience": "internal",
                        "event": "resolved",
                        "channel": "email",
                        "state": "sent",
                        "attempts": 1,
                        "sentAt": at(-70),
                    },
                ],
                "postmortem": {"state": "pending"},
            },
        }
    )


def drill() -> AIIncident:
    """A closed drill: nobody outside internal was told, nothing owed."""
    return AIIncident.model_validate(
        {
            "metadata": {"name": DRILL, "namespace": NS},
            "spec": {
                "system": "support-chatbot",
                "failureMode": "privacy",
                "severity": "SEV1",
                "drill": True,
                "trigger": {"type": "drill", "by": "alice@example.com", "reason": "privacy"},
            },
            "status": {
                "phase": "Closed",
                "detectedAt": at(-5),
                "acknowledgedAt": at(-5, 420),
                "acknowledgedBy": "carol@example.com",
                "resolvedAt": at(-5, 420),
                "closedAt": at(-5, 420),
                "drill": {
                    "scenario": "privacy",
                    "decision": "SEV1 privacy: shutdown (reroute, scaleToZero)",
                    "paged": ["ml-oncall (group oncall-ml)"],
                    "gaps": ["no DPO among the responders"],
                    "timeToAcknowledgeSeconds": 420,
                },
            },
        }
    )


def drafts(incident: AIIncident, audiences: list[Audience]) -> dict[str, str]:
    """The ConfigMap data the operator writes for these audiences (followups._drafts)."""
    assert incident.status is not None
    context = notices.build_context(
        incident, incident.spec.system, chatbot_system(), incident.status.reporting, now=NOW
    )
    data = {}
    for audience in audiences:
        for notice in notices.render(audience, context):
            data[f"{notice.kind.value}.md"] = f"Subject: {notice.subject}\n\n{notice.body}"
    return data


def store(api: Api, incident: AIIncident) -> None:
    body: dict[str, Any] = incident.dump()
    status = body.pop("status")
    api.create(body)
    api.patch("AIIncident", incident.metadata.namespace, incident.metadata.name or "", {"status": status}, sub="status")


def store_config_map(api: Api, namespace: str, name: str, data: dict[str, str]) -> None:
    api.call(
        "POST",
        f"/api/v1/namespaces/{namespace}/configmaps",
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}, "data": data},
    )


def store_drafts(api: Api, namespace: str, incident: str, data: dict[str, str]) -> str:
    """As the operator stores notice drafts: a ConfigMap named by its content, named in status.drafts."""
    name = drafts_names.name(incident, drafts_names.NOTICES, data)
    store_config_map(api, namespace, name, data)
    api.patch("AIIncident", namespace, incident, {"status": {"drafts": {"notices": name}}}, sub="status")
    return name


@pytest.fixture(autouse=True)
def _now() -> None:
    """Each test's own "now": the module may be imported long before a test runs in the full suite."""
    global NOW
    NOW = datetime.datetime.now(datetime.UTC).replace(microsecond=0)


@pytest.fixture
def api(sandbox: ClusterThread) -> Api:
    found = Api(sandbox.url)
    load_crds(found)
    for namespace in (NS, OTHER_NS, "empty"):
        found.call(
            "POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
        )
    return found


@pytest.fixture
def world(api: Api) -> dict[str, dict[str, str]]:
    """Every incident stored; returns the notice drafts stored per incident."""
    stored: dict[str, dict[str, str]] = {}
    for incident in (chatbot(), fraud(), orphan(), loan(), drill()):
        store(api, incident)
    stored[CHATBOT] = drafts(chatbot(), [Audience.INTERNAL, Audience.REGULATOR, Audience.USERS])
    stored[FRAUD] = drafts(fraud(), [Audience.INTERNAL])
    store_drafts(api, NS, CHATBOT, stored[CHATBOT])
    # FRAUD's drafts as an operator before content-named drafts stored them: still found.
    store_config_map(api, NS, f"{FRAUD}-notices", stored[FRAUD])
    return stored


def airlock(capsys: pytest.CaptureFixture[str], kubeconfig: Path, *args: str) -> tuple[int, str, str]:
    """Run the CLI in-process; returns exit code, stdout and stderr (printed for a failing test's report)."""
    capsys.readouterr()
    code = main(["incident", *args, "--kubeconfig", str(kubeconfig)])
    out, err = capsys.readouterr()
    print(f"$ airlock incident {' '.join(args)}  # exit {code}\n{out}{err}")
    return code, out, err


# ---------------------------------------------------------------- show (text)


def test_show_text_is_a_readable_summary(
    world: dict[str, dict[str, str]], kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = airlock(capsys, kubeconfig, "show", CHATBOT, "-n", NS)
    assert code == 0
    assert err == ""
    lines = out.splitlines()
    assert lines[0] == f"Incident:      {CHATBOT}   (namespace {NS})"
    assert "System:        support-chatbot" in lines
    assert "Severity:      SEV1   failure mode: privacy" in lines
    assert "Phase:         Contained" in lines
    assert "Trigger:       monitor pii-leak > 0.5 (value 0.8)" in lines
    assert '               query: sum(rate(pii_detections_total{app="chatbot"}[1m]))' in lines
    assert f"Detected:      {when(-1)} (1h 0m ago)" in lines
    assert f"Acknowledged:  {when(-1, 240)} by alice@example.com" in lines
    assert f"Contained:     {when(-1, 2.1)} (time to contain 2.1s)" in lines
    assert "Resolved:      -" in lines
    assert "Closed:        -" in lines
    assert "Harm:          not classified (airlock.dev/harm not set)" in lines
    assert not any(line.startswith(("Drill:", "Dry run:")) for line in lines)
    assert "Post-mortem:   drafted when the incident is resolved" in lines
    assert "  NoticesDelivered=False (Retrying): ops-webhook/internal/contained: HTTP 503" in lines


def test_show_text_reporting_clocks(
    world: dict[str, dict[str, str]], kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = airlock(capsys, kubeconfig, "show", CHATBOT, "-n", NS)
    section = out.split("Reporting clocks:\n")[1].split("\n\n")[0].splitlines()
    assert section[0].split() == ["REGIME", "STATE", "DEADLINE"]
    classification, gdpr = section[1], section[2]
    title = deadlines.TITLES["eu-ai-act-art73-classification"]
    deadline = deadlines.format_instant(NOW + datetime.timedelta(hours=47))
    assert re.fullmatch(
        rf"  eu-ai-act-art73-classification +PENDING +{re.escape(title)}: due {deadline} \(1d 2[23]h left\)",
        classification,
    )
    title = deadlines.TITLES["gdpr-art33"]
    deadline = deadlines.format_instant(NOW + datetime.timedelta(hours=71))
    assert re.fullmatch(rf"  gdpr-art33 +PENDING +{re.escape(title)}: due {deadline} \(2d 2[23]h left\)", gdpr)


def test_show_text_outbox(
    world: dict[str, dict[str, str]], kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = airlock(capsys, kubeconfig, "show", CHATBOT, "-n", NS)
    section = out.split("Notices (outbox):\n")[1].split("\n\n")[0].splitlines()
    header = re.split(r" {3,}", section[0].strip())
    assert header == ["AUDIENCE", "EVENT", "CHANNEL", "STATE", "ATTEMPTS", "NEXT RETRY", "LAST ERROR"]
    rows = [re.split(r" {3,}", line.strip()) for line in section[1:]]
    assert rows[0] == ["internal", "opened", "ops-webhook", "sent", "1", "-", "-"]
    assert rows[1] == ["internal", "opened", "pager", "sent", "1", "-", "-"]
    assert rows[2] == ["regulator", "opened", "draft only", "drafted", "0", "-", "-"]
    assert rows[3] == ["users", "opened", "draft only", "drafted", "0", "-", "-"]
    assert rows[4][:5] == ["internal", "contained", "ops-webhook", "failed", "3"]
    assert re.fullmatch(rf"{re.escape(when(0, 300))} \(in [45]m\)", rows[4][5])
    assert rows[4][6] == "HTTP 503 from https://hooks.example.com/airlock: Service Unavailable"
    assert len(rows) == 5


def test_show_text_timeline_and_hints(
    world: dict[str, dict[str, str]], kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = airlock(capsys, kubeconfig, "show", CHATBOT, "-n", NS)
    timeline = out.split("Timeline:\n")[1].split("\n\n")[0].splitlines()
    assert [re.split(r" {3,}", line.strip()) for line in timeline] == [
        ["AT", "TYPE", "BY", "MESSAGE"],
        [when(-1), "Detected", "airlock", "SEV1 privacy: monitor pii-leak > 0.5 (0.8)"],
        [when(-1, 2.1), "Contained", "airlock", "reroute, scaleToZero on Deployment chatbot-v7"],
        [when(-1, 240), "Acknowledged", "alice@example.com", "incident acknowledged"],
    ]
    actions = out.split("Actions:\n")[1].split("\n\n")[0].splitlines()
    assert [line.split() for line in actions[1:]] == [
        ["reroute", *when(-1, 2.1).split(), "applied"],
        ["scaleToZero", *when(-1, 2.1).split(), "applied"],
    ]
    commands = [line.split("   #")[0].strip() for line in out.split("Next:\n")[1].splitlines()]
    assert commands == [
        f"airlock incident show {CHATBOT} --notice internal -n {NS}",
        f"airlock incident show {CHATBOT} --notice regulator -n {NS}",
        f"airlock incident show {CHATBOT} --notice users -n {NS}",
        f"kubectl annotate aii {CHATBOT} airlock.dev/harm=b -n {NS} --overwrite",
        f"kubectl annotate aii {CHATBOT} airlock.dev/report-submitted=eu-ai-act-art73-classification=REF -n {NS} --overwrite",
        f"kubectl annotate aii {CHATBOT} airlock.dev/report-submitted=gdpr-art33=REF -n {NS} --overwrite",
    ]


def test_show_text_overdue_submitted_and_resolved(
    world: dict[str, dict[str, str]], kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = airlock(capsys, kubeconfig, "show", LOAN, "-n", OTHER_NS)
    assert code == 0
    lines = out.splitlines()
    assert "Dry run:       yes: the system is in dryRun mode, airlock decided and notified but touched nothing" in lines
    assert (
        "Harm:          (c) infringement of obligations under Union law intended to protect fundamental rights; "
        "widespread infringement (Art. 3(61))"
    ) in lines
    assert "Acknowledged:  not yet" in lines
    assert f"Resolved:      {when(-70)}" in lines
    # Stored as pending, but its deadline passed 8 h ago: the CLI says so.
    gdpr = next(line for line in lines if line.startswith("  gdpr-art33"))
    assert re.search(
        r"\bOVERDUE +GDPR Art\. 33 personal-data breach notification: OVERDUE since .* \(8h 0m ago\)$", gdpr
    )
    art73 = next(line for line in lines if line.startswith("  eu-ai-act-art73 "))
    assert re.search(
        rf"\bSUBMITTED +EU AI Act Art\. 73 serious-incident report: submitted \(EU-77\) by dana@example.com at {re.escape(when(-40))}$",
        art73,
    )
    outbox = out.split("Notices (outbox):\n")[1].split("\n\n")[0].splitlines()
    assert re.split(r" {3,}", outbox[1].strip()) == [
        "internal",
        "opened",
        "email",
        "failed",
        "12",
        "gave up",
        "SMTP 550 mailbox unavailable",
    ]
    assert f"Post-mortem:   pending (draft: airlock postmortem {LOAN})" in lines
    hints = out.split("Next:\n")[1]
    assert f"kubectl annotate aii {LOAN} airlock.dev/report-submitted=gdpr-art33=REF -n {OTHER_NS}" in hints
    assert "report-submitted=eu-ai-act-art73=" not in hints  # submitted: nothing left to record
    assert f"airlock postmortem {LOAN} -n {OTHER_NS}" in hints
    assert f"kubectl annotate aii {LOAN} airlock.dev/postmortem=configmap/{LOAN}-pm -n {OTHER_NS}" in hints
    assert "airlock ack" not in hints  # resolved: too late to acknowledge


def test_show_text_drill(
    world: dict[str, dict[str, str]], kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = airlock(capsys, kubeconfig, "show", DRILL, "-n", NS)
    assert code == 0
    lines = out.splitlines()
    assert "Drill:         yes: a rehearsal, no workload was touched" in lines
    assert "Trigger:       drill by alice@example.com: scenario privacy" in lines
    assert "Harm:          n/a (drill)" in lines
    assert f"Closed:        {when(-5, 420)}" in lines
    assert "  would have:  SEV1 privacy: shutdown (reroute, scaleToZero)" in lines
    assert "  gap:         no DPO among the responders" in lines
    assert "  acknowledged after 7m" in lines
    assert "  none (drills owe no report)" in lines
    assert "Post-mortem:   not needed (drill)" in lines
    assert "  (empty)" in lines  # no timeline recorded
    assert "Next:" not in out  # nothing left to do


def test_show_text_manual_and_without_clocks(
    world: dict[str, dict[str, str]], kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = airlock(capsys, kubeconfig, "show", ORPHAN, "-n", NS)
    lines = out.splitlines()
    assert "Trigger:       manual shutdown by bob@example.com: recommends a competitor" in lines
    assert "  none owed" in lines
    assert f"  airlock ack {ORPHAN} -n {NS}" in "\n".join(lines)


# ---------------------------------------------------------------- show (json, yaml)

# Depend on the second the command runs.
MOVING = ("secondsLeft", "message")


def steady(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: steady(v) for k, v in value.items() if k not in MOVING}
    if isinstance(value, list):
        return [steady(v) for v in value]
    return value


def test_show_json(world: dict[str, dict[str, str]], kubeconfig: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = airlock(capsys, kubeconfig, "show", CHATBOT, "-n", NS, "-o", "json")
    assert code == 0
    assert err == ""
    shown = json.loads(out)
    assert shown["name"] == CHATBOT
    assert shown["namespace"] == NS
    assert (shown["system"], shown["severity"], shown["failureMode"], shown["phase"]) == (
        "support-chatbot",
        "SEV1",
        "privacy",
        "Contained",
    )
    assert (shown["drill"], shown["dryRun"]) == (False, False)
    assert shown["trigger"]["monitor"] == "pii-leak"
    assert shown["detectedAt"] == at(-1)
    assert shown["acknowledgedBy"] == "alice@example.com"
    assert shown["timeToContainSeconds"] == 2.1
    assert shown["resolvedAt"] is None
    assert shown["harm"] == {"categories": [], "widespread": False}
    gdpr = shown["reporting"][1]
    assert gdpr["regime"] == "gdpr-art33"
    assert gdpr["title"] == deadlines.TITLES["gdpr-art33"]
    assert gdpr["state"] == "pending"
    assert gdpr["deadline"] == at(71)
    assert 70 * 3600 < gdpr["secondsLeft"] <= 71 * 3600
    assert [(n["audience"], n.get("channel"), n["state"]) for n in shown["notifications"]] == [
        ("internal", "ops-webhook", "sent"),
        ("internal", "pager", "sent"),
        ("regulator", None, "drafted"),
        ("users", None, "drafted"),
        ("internal", "ops-webhook", "failed"),
    ]
    assert (shown["undelivered"], shown["failed"]) == (1, 1)
    assert shown["postmortem"] == {"state": "pending"}
    assert [e["type"] for e in shown["timeline"]] == ["Detected", "Contained", "Acknowledged"]
    assert (
        f"kubectl annotate aii {CHATBOT} airlock.dev/report-submitted=gdpr-art33=REF -n {NS} --overwrite"
        in (shown["hints"])
    )


def test_show_json_computes_clock_states(
    world: dict[str, dict[str, str]], kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = airlock(capsys, kubeconfig, "show", LOAN, "-n", OTHER_NS, "-o", "json")
    reporting = {r["regime"]: r for r in json.loads(out)["reporting"]}
    assert reporting["gdpr-art33"]["state"] == "overdue"
    assert reporting["gdpr-art33"]["secondsLeft"] < -8 * 3600 + 60
    assert reporting["eu-ai-act-art73"]["state"] == "submitted"
    assert reporting["eu-ai-act-art73"]["reference"] == "EU-77"
    assert reporting["eu-ai-act-art73"]["submittedBy"] == "dana@example.com"


def test_show_yaml_says_what_json_says(
    world: dict[str, dict[str, str]], kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = airlock(capsys, kubeconfig, "show", CHATBOT, "-n", NS, "-o", "yaml")
    assert code == 0
    as_yaml = yaml.safe_load(out)
    _, out, _ = airlock(capsys, kubeconfig, "show", CHATBOT, "-n", NS, "-o", "json")
    assert steady(as_yaml) == steady(json.loads(out))
    assert as_yaml["reporting"][0]["regime"] == "eu-ai-act-art73-classification"


# ---------------------------------------------------------------- show --notice


def test_notice_internal_prints_the_stored_draft(
    world: dict[str, dict[str, str]], kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = airlock(capsys, kubeconfig, "show", CHATBOT, "--notice", "internal", "-n", NS)
    assert code == 0
    assert err == ""
    stored = world[CHATBOT]["internal.md"]
    assert stored.startswith("Subject: ")
    assert out.rstrip("\n") == stored.rstrip("\n")


def test_notice_users(world: dict[str, dict[str, str]], kubeconfig: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = airlock(capsys, kubeconfig, "show", CHATBOT, "--notice", "users", "-n", NS)
    assert code == 0
    assert out.rstrip("\n") == world[CHATBOT]["users.md"].rstrip("\n")


def test_notice_regulator_prints_every_regime_separated_by_a_rule(
    world: dict[str, dict[str, str]], kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stored = world[CHATBOT]
    assert sorted(k for k in stored if k.startswith("regulator-")) == [
        "regulator-eu-ai-act-art73.md",
        "regulator-gdpr-art33.md",
    ]
    code, out, _ = airlock(capsys, kubeconfig, "show", CHATBOT, "--notice", "regulator", "-n", NS)
    assert code == 0
    parts = out.split(f"\n{RULE}\n\n")
    assert len(parts) == 2
    assert parts[0].rstrip("\n") == stored["regulator-eu-ai-act-art73.md"].rstrip("\n")
    assert parts[1].rstrip("\n") == stored["regulator-gdpr-art33.md"].rstrip("\n")
    assert "internal" not in {p.splitlines()[0] for p in parts}
    assert stored["internal.md"].splitlines()[0] not in out


def test_notice_as_json_and_yaml(
    world: dict[str, dict[str, str]], kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = airlock(capsys, kubeconfig, "show", CHATBOT, "--notice", "regulator", "-n", NS, "-o", "json")
    assert code == 0
    found = json.loads(out)
    assert [d["key"] for d in found] == ["regulator-eu-ai-act-art73.md", "regulator-gdpr-art33.md"]
    for draft in found:
        subject, body = world[CHATBOT][draft["key"]].split("\n\n", 1)
        assert draft["audience"] == "regulator"
        assert draft["subject"] == subject.removeprefix("Subject: ")
        assert draft["body"] == body
    code, out, _ = airlock(capsys, kubeconfig, "show", CHATBOT, "--notice", "regulator", "-n", NS, "-o", "yaml")
    assert code == 0
    assert yaml.safe_load(out) == found


def test_notice_for_an_audience_the_severity_does_not_notify(
    world: dict[str, dict[str, str]], kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = airlock(capsys, kubeconfig, "show", FRAUD, "--notice", "regulator", "-n", NS)
    assert code == 1
    assert out == ""
    assert err.startswith("airlock incident show: ")
    assert f"incident {FRAUD} (SEV3) does not notify regulator" in err
    assert "internal only" in err


def test_notice_whose_configmap_is_missing(
    world: dict[str, dict[str, str]], kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = airlock(capsys, kubeconfig, "show", ORPHAN, "--notice", "internal", "-n", NS)
    assert code == 1
    assert out == ""
    assert f"ConfigMap {ORPHAN}-notices not found in namespace {NS}" in err
    assert "is the operator running?" in err


def test_notice_of_an_incident_that_notifies_nobody(
    world: dict[str, dict[str, str]], kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = airlock(capsys, kubeconfig, "show", DRILL, "--notice", "internal", "-n", NS)
    assert code == 1
    assert f"incident {DRILL} has no notice drafts: ConfigMap {DRILL}-notices not found in namespace {NS}" in err


def test_notice_whose_key_is_missing(api: Api, kubeconfig: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store(api, chatbot())
    current = store_drafts(api, NS, CHATBOT, drafts(chatbot(), [Audience.INTERNAL]))
    code, out, err = airlock(capsys, kubeconfig, "show", CHATBOT, "--notice", "users", "-n", NS)
    assert code == 1
    assert out == ""
    assert f"ConfigMap {current} in namespace {NS} has no users draft (keys: internal.md)" in err
    code, _, err = airlock(capsys, kubeconfig, "show", CHATBOT, "--notice", "regulator", "-n", NS)
    assert code == 1
    assert "has no regulator draft (keys: internal.md)" in err


def test_notice_with_an_empty_draft_is_missing(api: Api, kubeconfig: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store(api, chatbot())
    store_drafts(api, NS, CHATBOT, {"internal.md": "  \n"})
    code, _, err = airlock(capsys, kubeconfig, "show", CHATBOT, "--notice", "internal", "-n", NS)
    assert code == 1
    assert "has no internal draft" in err


@pytest.mark.parametrize("extra", [[], ["--notice", "regulator"], ["-o", "json"]])
def test_show_an_unknown_incident(
    world: dict[str, dict[str, str]], kubeconfig: Path, capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    code, out, err = airlock(capsys, kubeconfig, "show", "nope", "-n", NS, *extra)
    assert code == 1
    assert out == ""
    assert f"airlock incident show: AIIncident nope not found in namespace {NS} (kubectl get aii -n {NS})" in err


def test_show_in_the_wrong_namespace_is_unknown(
    world: dict[str, dict[str, str]], kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = airlock(capsys, kubeconfig, "show", LOAN, "-n", NS)
    assert code == 1
    assert f"AIIncident {LOAN} not found in namespace {NS}" in err


def test_show_a_bad_notice_audience_is_a_usage_error(kubeconfig: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["incident", "show", CHATBOT, "--notice", "press", "--kubeconfig", str(kubeconfig)])
    assert exited.value.code == 2
    assert "invalid choice: 'press'" in capsys.readouterr().err


def test_the_namespace_defaults_to_the_kubeconfig_context(
    world: dict[str, dict[str, str]], sandbox: ClusterThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = sandbox.write_kubeconfig(tmp_path / "ml-prod", namespace=NS)
    code, out, _ = airlock(capsys, config, "show", CHATBOT, "--notice", "internal")
    assert code == 0
    assert out.rstrip("\n") == world[CHATBOT]["internal.md"].rstrip("\n")
    code, out, _ = airlock(capsys, config, "list")
    assert code == 0
    assert CHATBOT in out
    assert LOAN not in out


# ---------------------------------------------------------------- list


def table(out: str) -> list[list[str]]:
    return [re.split(r" {3,}", line.strip()) for line in out.splitlines()]


def test_list_a_namespace(
    world: dict[str, dict[str, str]], kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = airlock(capsys, kubeconfig, "list", "-n", NS)
    assert code == 0
    assert err == ""
    rows = table(out)
    assert rows[0] == ["NAME", "SYSTEM", "SEVERITY", "PHASE", "TTC", "DRILL", "NEXT REPORT", "UNDELIVERED", "AGE"]
    by_name = {r[0]: r for r in rows[1:]}
    assert [r[0] for r in rows[1:]] == sorted([CHATBOT, FRAUD, ORPHAN, DRILL])
    assert by_name[CHATBOT][:6] == [CHATBOT, "support-chatbot", "SEV1", "Contained", "2.1s", "no"]
    assert re.fullmatch(r"eu-ai-act-art73-classification in 1d 2[23]h", by_name[CHATBOT][6])
    assert by_name[CHATBOT][7] == "1 (1 failed)"
    assert by_name[CHATBOT][8] in ("1h 0m", "1h 1m")
    assert by_name[FRAUD] == [FRAUD, "fraud-scorer", "SEV3", "Open", "-", "no", "-", "1", by_name[FRAUD][8]]
    assert by_name[FRAUD][8] in ("30m", "31m")
    assert by_name[ORPHAN][5:8] == ["no", "-", "0"]  # drafted only: a human sends it, nothing undelivered
    assert by_name[DRILL][3:8] == ["Closed", "-", "yes", "-", "0"]
    assert by_name[DRILL][8] in ("5h 0m", "5h 1m")


def test_list_all_namespaces(
    world: dict[str, dict[str, str]], kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = airlock(capsys, kubeconfig, "list", "-A")
    assert code == 0
    rows = table(out)
    assert rows[0][:2] == ["NAMESPACE", "NAME"]
    assert [(r[0], r[1]) for r in rows[1:]] == [
        (OTHER_NS, LOAN),
        *((NS, name) for name in sorted([CHATBOT, FRAUD, ORPHAN, DRILL])),
    ]
    loan_row = rows[1]
    assert loan_row[2:7] == ["loan-scorer", "SEV2", "Resolved", "-", "no"]
    assert loan_row[7] == "gdpr-art33 OVERDUE 8h 0m"  # the submitted Art. 73 report is not next
    assert loan_row[8] == "1 (1 failed)"
    assert loan_row[9] in ("3d 8h", "3d 9h")


def test_list_json_and_yaml(
    world: dict[str, dict[str, str]], kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = airlock(capsys, kubeconfig, "list", "-A", "-o", "json")
    assert code == 0
    rows = json.loads(out)
    assert [(r["namespace"], r["name"]) for r in rows] == [
        (OTHER_NS, LOAN),
        *((NS, name) for name in sorted([CHATBOT, FRAUD, ORPHAN, DRILL])),
    ]
    chat = next(r for r in rows if r["name"] == CHATBOT)
    assert chat["system"] == "support-chatbot"
    assert chat["severity"] == "SEV1"
    assert chat["phase"] == "Contained"
    assert chat["timeToContainSeconds"] == 2.1
    assert chat["drill"] is False
    assert chat["nextReport"]["regime"] == "eu-ai-act-art73-classification"
    assert chat["nextReport"]["deadline"] == at(47)
    assert chat["nextReport"]["state"] == "pending"
    assert (chat["undelivered"], chat["failed"]) == (1, 1)
    assert rows[0]["nextReport"]["state"] == "overdue"
    assert all(r["nextReport"] is None for r in rows if r["name"] in (FRAUD, ORPHAN, DRILL))
    code, out, _ = airlock(capsys, kubeconfig, "list", "-A", "-o", "yaml")
    assert code == 0
    assert steady(yaml.safe_load(out)) == steady(rows)


def test_list_an_empty_namespace(
    world: dict[str, dict[str, str]], kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = airlock(capsys, kubeconfig, "list", "-n", "empty")
    assert code == 0
    assert out == ""
    assert err.strip() == "No AIIncidents found in namespace empty."
    code, out, _ = airlock(capsys, kubeconfig, "list", "-n", "empty", "-o", "json")
    assert code == 0
    assert json.loads(out) == []


def test_list_skips_what_it_cannot_read(api: Api, kubeconfig: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An object this CLI cannot parse (here: a trigger type of a newer airlock) does not hide the others."""
    store(api, fraud())
    broken = fraud().dump()
    broken.pop("status")
    broken["metadata"]["name"] = "broken"
    broken["spec"]["trigger"]["type"] = "webhook"
    api.create(broken)
    code, out, err = airlock(capsys, kubeconfig, "list", "-n", NS)
    assert code == 0
    assert [r[0] for r in table(out)[1:]] == [FRAUD]
    assert "airlock incident list: skipped: AIIncident broken is malformed: spec.trigger.type:" in err
    code, out, err = airlock(capsys, kubeconfig, "show", "broken", "-n", NS)
    assert code == 1
    assert out == ""
    assert "airlock incident show: AIIncident broken is malformed: spec.trigger.type:" in err


def test_list_with_namespace_and_all_is_a_usage_error(kubeconfig: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = airlock(capsys, kubeconfig, "list", "-n", NS, "-A")
    assert code == 2
    assert out == ""
    assert "give -n NAMESPACE or -A, not both" in err


def test_incident_without_a_verb_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["incident"]) == 2
    assert "say show INCIDENT or list" in capsys.readouterr().err


# ---------------------------------------------------------------- as a program


def test_as_a_command_line_program(world: dict[str, dict[str, str]], kubeconfig: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "airlock", "incident", *args, "--kubeconfig", str(kubeconfig)],
            capture_output=True,
            text=True,
            encoding="utf-8",
            check=False,
            timeout=60,
        )

    shown = run("show", CHATBOT, "-n", NS, "--notice", "regulator")
    assert shown.returncode == 0, shown.stderr
    assert RULE in shown.stdout
    missing = run("show", "nope", "-n", NS)
    assert missing.returncode == 1
    assert "airlock incident show: AIIncident nope not found" in missing.stderr
    assert "Traceback" not in missing.stderr
    listed = run("list", "-A")
    assert listed.returncode == 0, listed.stderr
    assert LOAN in listed.stdout


def test_unreachable_api_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dead = ClusterThread().start()
    config = dead.write_kubeconfig(tmp_path / "dead")
    dead.stop()
    code, out, err = airlock(capsys, config, "show", CHATBOT, "-n", NS)
    assert code == 1
    assert out == ""
    assert "airlock incident show: cannot reach the API server" in err


def test_usage_is_listed() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "airlock", "incident", "show", "--help"], capture_output=True, text=True, check=True
    )
    assert "INCIDENT" in result.stdout
    assert "--notice" in result.stdout
    assert "{internal,regulator,users}" in result.stdout
    assert "--kubeconfig" in result.stdout
    top = subprocess.run([sys.executable, "-m", "airlock", "--help"], capture_output=True, text=True, check=True)
    assert "incident" in top.stdout


def test_the_notices_configmap_name_matches_the_operator() -> None:
    incident = chatbot()
    assert incident_cli.notices_config_map(incident) == followups.notices_configmap(incident) == f"{CHATBOT}-notices"
    assert incident.status is not None
    incident.status.drafts = Drafts(notices=f"{CHATBOT}-notices-0123456789")
    assert incident_cli.notices_config_map(incident) == followups.notices_configmap(incident)
    assert followups.notices_configmap(incident) == f"{CHATBOT}-notices-0123456789"
