"""Incident communications end to end: notices, delivery, regulatory clocks, post-mortem (issues 5 and 6).

The real operator against the sandbox, real Prometheus and a local receiver
standing in for the webhook and PagerDuty endpoints.
"""

from __future__ import annotations

import base64
import datetime
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from airlock.sandbox.cluster import AdmissionDenied, ResourceRef
from airlock.sandbox.receiver import Receiver, verify_webhook
from tests.integration import checks
from tests.integration.conftest import Tenant, World
from tests.integration.systems import ALICE, chatbot
from tests.integration.world import deployment, service, wait_for

pytestmark = pytest.mark.integration

HMAC_KEY = "s3cret-hmac"
CAROL = "carol@example.com"  # compliance: may report, nothing else
MALLORY = "mallory@example.com"


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver(hmac_key=HMAC_KEY) as running:
        yield running


def _secret(namespace: str, name: str, data: dict[str, str]) -> dict[str, Any]:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace}, "data": encoded}


def _system(tenant: Tenant, receiver: Receiver, **extra: Any) -> dict[str, Any]:
    system = chatbot(tenant.namespace, tenant.app)
    spec = system["spec"]
    spec["severities"]["SEV1"]["notify"] = ["internal", "regulator", "users"]
    spec["severities"]["SEV1"]["postmortemRequired"] = True
    spec["regulatory"] = {
        "euAiAct": {"highRisk": True, "memberStates": ["DE", "FR"], "provider": "Example AG"},
        "gdpr": {"personalData": True, "controller": "Example AG"},
    }
    spec["notifications"] = {
        "channels": [
            {
                "name": "ops-webhook",
                "type": "webhook",
                "url": f"{receiver.url}/webhook",
                "secretRef": {"name": "airlock-notify"},
            },
            {
                "name": "pager",
                "type": "pagerduty",
                "url": f"{receiver.url}/pagerduty",
                "secretRef": {"name": "airlock-notify"},
            },
        ]
    }
    spec["responders"].append({"name": "compliance", "subjects": [{"kind": "User", "name": CAROL}], "may": ["report"]})
    spec.update(extra)
    return system


def _setup(world: World, tenant: Tenant, receiver: Receiver, **extra: Any) -> None:
    api, ns = world.api, tenant.namespace
    # The one Secret name the operator may read (its default --notification-secret): both channels' keys.
    api.create(_secret(ns, "airlock-notify", {"hmacKey": HMAC_KEY, "routingKey": "R0UT1NG"}))
    api.create(deployment(ns, "chatbot-v7", tenant.app, replicas=3))
    api.create(service(ns, "chatbot", {"app": tenant.app}))
    api.create(_system(tenant, receiver, **extra))
    checks.wait_phase(world, ns, "Healthy", timeout=20)


def _draft(world: World, ns: str, incident: str, kind: str) -> dict[str, Any] | None:
    """The incident's current draft ConfigMap, as status.drafts names it."""
    found = world.api.get("AIIncident", ns, incident) or {}
    name = ((found.get("status") or {}).get("drafts") or {}).get(kind)
    return world.api.get("ConfigMap", ns, name) if name else None


class _CreateOnlyConfigMaps:
    """Admission hook: ConfigMaps may be created, never changed or deleted — what the chart's RBAC grants."""

    def __call__(self, operation: str, ref: ResourceRef, old: Any, new: Any, user: Any) -> None:
        if ref.resource == "configmaps" and operation != "CREATE":
            raise AdmissionDenied(f"configmaps: {operation} is not granted to the operator", code=403)


@pytest.fixture(autouse=True)
def _create_only_configmaps(world: World) -> Iterator[None]:
    hook = _CreateOnlyConfigMaps()
    world.cluster.call(world.cluster.cluster.admission.append, hook)
    yield
    world.cluster.call(world.cluster.cluster.admission.remove, hook)


def _mine(receiver: Receiver, path: str, incident: str) -> list[Any]:
    return [r for r in receiver.received(path) if r.json and incident in str(r.json)]


def _incident(world: World, ns: str, name: str) -> dict[str, Any]:
    found = world.api.get("AIIncident", ns, name)
    assert found is not None
    return found


def _regimes(incident: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["regime"]: r for r in (incident.get("status") or {}).get("reporting") or []}


def test_privacy_incident_from_notices_to_closed_post_mortem(world: World, tenant: Tenant, receiver: Receiver) -> None:
    api, ns = world.api, tenant.namespace
    _setup(world, tenant, receiver)
    world.model.inject((ns, tenant.app), "privacy", rate=2.0)
    checks.wait_phase(world, ns, "ShutDown", timeout=15)
    name = checks.wait_incident(world, ns, timeout=5, severity="SEV1")["metadata"]["name"]

    # Internal: the signed webhook and a PagerDuty trigger, at once.
    hook = wait_for("webhook opened", lambda: _mine(receiver, "/webhook", name), timeout=10)[0]
    assert verify_webhook(hook, HMAC_KEY)
    assert hook.json["event"] == "opened"
    assert hook.json["audience"] == "internal"
    assert hook.json["severity"] == "SEV1"
    assert hook.header("idempotency-key")
    page = wait_for("PagerDuty trigger", lambda: _mine(receiver, "/pagerduty", name), timeout=10)[0]
    assert page.json["event_action"] == "trigger"
    assert page.json["dedup_key"] == f"airlock/{ns}/{name}"
    assert page.json["payload"]["severity"] == "critical"

    # Regulator and users: drafted (not auto-sent), the drafts in a ConfigMap owned by the incident.
    incident = _incident(world, ns, name)
    drafted = {n["audience"] for n in incident["status"]["notifications"] if n.get("channel") is None}
    assert drafted == {"regulator", "users"}
    assert all(n["state"] == "drafted" for n in incident["status"]["notifications"] if n.get("channel") is None)
    drafts = wait_for("drafts", lambda: _draft(world, ns, name, "notices"), timeout=10)
    first_draft = drafts["metadata"]["name"]
    assert first_draft.startswith(f"{name}-notices-")  # named by its content
    assert drafts["immutable"] is True
    assert set(drafts["data"]) == {
        "internal.md",
        "users.md",
        "regulator-eu-ai-act-art73.md",
        "regulator-gdpr-art33.md",
    }
    assert drafts["metadata"]["ownerReferences"][0]["uid"] == incident["metadata"]["uid"]
    assert "Art. 73" in drafts["data"]["regulator-eu-ai-act-art73.md"]
    assert not [r for r in receiver.received() if r.json and r.json.get("audience") in ("regulator", "users")]

    # The clocks: GDPR 72 h and the 2-day Art. 3(49) classification, from detection.
    detected = datetime.datetime.fromisoformat(incident["status"]["detectedAt"].replace("Z", "+00:00"))
    regimes = _regimes(incident)
    assert set(regimes) == {"gdpr-art33", "eu-ai-act-art73-classification"}
    gdpr_due = datetime.datetime.fromisoformat(regimes["gdpr-art33"]["deadline"].replace("Z", "+00:00"))
    assert gdpr_due - detected == datetime.timedelta(hours=72)
    on_track = {c["type"]: c for c in incident["status"]["conditions"]}["ReportingOnTrack"]
    assert on_track["status"] == "True"
    assert on_track["reason"] == "OnTrack"

    # A stranger may not classify; compliance may: (c) fundamental rights, widespread → 2-day Art. 73 clock.
    api.annotate("AIIncident", ns, name, {"airlock.dev/harm": "c", "airlock.dev/requested-by": MALLORY})
    wait_for(
        "refusal",
        lambda: any(MALLORY in e["message"] for e in api.events(ns, name) if e["reason"] == "UnauthorizedRequest"),
        timeout=10,
    )
    assert _incident(world, ns, name)["spec"].get("harm", []) == []
    api.annotate("AIIncident", ns, name, {"airlock.dev/harm": "c,widespread", "airlock.dev/requested-by": CAROL})
    wait_for("Art. 73 clock", lambda: "eu-ai-act-art73" in _regimes(_incident(world, ns, name)), timeout=10)
    incident = _incident(world, ns, name)
    assert incident["spec"]["harm"] == ["c"]
    assert incident["spec"]["widespread"] is True
    art73 = datetime.datetime.fromisoformat(_regimes(incident)["eu-ai-act-art73"]["deadline"].replace("Z", "+00:00"))
    assert art73 - detected == datetime.timedelta(days=2)
    assert "eu-ai-act-art73-classification" not in _regimes(incident)

    # Submission recorded with its reference and who recorded it.
    api.annotate(
        "AIIncident",
        ns,
        name,
        {"airlock.dev/report-submitted": "gdpr-art33=DPA-2026-1142", "airlock.dev/requested-by": CAROL},
    )
    wait_for(
        "submitted", lambda: _regimes(_incident(world, ns, name))["gdpr-art33"]["state"] == "submitted", timeout=10
    )
    gdpr = _regimes(_incident(world, ns, name))["gdpr-art33"]
    assert gdpr["reference"] == "DPA-2026-1142"
    assert gdpr["submittedBy"] == CAROL

    # Acknowledge → PagerDuty acknowledge; heal + release → resolve, same dedup key.
    api.annotate("AIIncident", ns, name, {"airlock.dev/acknowledge": "on it", "airlock.dev/requested-by": ALICE})
    wait_for(
        "PD acknowledge",
        lambda: [r for r in _mine(receiver, "/pagerduty", name) if r.json["event_action"] == "acknowledge"],
        timeout=10,
    )
    world.model.heal((ns, tenant.app))
    wait_for("monitor ok", lambda: checks.monitor(world, ns, "pii-leak").get("state") == "ok", timeout=15)
    api.annotate("AISystem", ns, "chatbot", {"airlock.dev/release": "fixed", "airlock.dev/requested-by": ALICE})
    checks.wait_phase(world, ns, "Healthy", timeout=10)
    wait_for(
        "PD resolve",
        lambda: [r for r in _mine(receiver, "/pagerduty", name) if r.json["event_action"] == "resolve"],
        timeout=10,
    )
    assert {r.json["dedup_key"] for r in _mine(receiver, "/pagerduty", name)} == {f"airlock/{ns}/{name}"}
    # The drafts moved on with the incident: a new immutable version, the first one kept as it was.
    current = wait_for(
        "a newer notice draft",
        lambda: (d := _draft(world, ns, name, "notices")) and d["metadata"]["name"] != first_draft and d,
        timeout=10,
    )
    assert current["immutable"] is True
    assert api.get("ConfigMap", ns, first_draft)["data"] == drafts["data"]
    events = [r.json["event"] for r in _mine(receiver, "/webhook", name)]
    # The order depends on when each milestone was seen; each is announced exactly once.
    assert sorted(events) == ["acknowledged", "contained", "opened", "resolved"]
    # Exactly once: as many deliveries as distinct idempotency keys.
    keys = [r.header("idempotency-key") for r in _mine(receiver, "/webhook", name)]
    assert len(keys) == len(set(keys))

    # SEV1 requires a post-mortem: the incident stays Resolved, the draft is in an immutable ConfigMap.
    draft = wait_for("post-mortem draft", lambda: _draft(world, ns, name, "postmortem"), timeout=10)
    assert draft["metadata"]["name"].startswith(f"{name}-postmortem-")
    assert draft["immutable"] is True
    assert draft["metadata"]["ownerReferences"][0]["uid"] == incident["metadata"]["uid"]
    assert name in draft["data"]["postmortem.md"]
    time.sleep(2)
    assert _incident(world, ns, name)["status"]["phase"] == "Resolved"
    # "draft" while its questions are unanswered is refused, naming them.
    api.annotate("AIIncident", ns, name, {"airlock.dev/postmortem": "draft", "airlock.dev/requested-by": ALICE})
    refusal = wait_for(
        "PostmortemIncomplete",
        lambda: [e for e in api.events(ns, name) if e["reason"] == "PostmortemIncomplete"],
        timeout=10,
    )[0]
    assert "unanswered" in refusal["message"]
    assert f"airlock.dev/postmortem=configmap/{name}-pm" in refusal["message"]  # how to hand in the answers
    assert _incident(world, ns, name)["status"]["phase"] == "Resolved"
    # "none" is refused too: SEV1 requires one.
    api.annotate("AIIncident", ns, name, {"airlock.dev/postmortem": "none", "airlock.dev/requested-by": ALICE})
    wait_for(
        "PostmortemRequired",
        lambda: [e for e in api.events(ns, name) if e["reason"] == "PostmortemRequired"],
        timeout=10,
    )
    assert _incident(world, ns, name)["status"]["phase"] == "Resolved"
    # The responders' answers, in a ConfigMap of their own (the draft is read-only).
    answered = draft["data"]["postmortem.md"].replace("_Answer here._", "A bad retrieval index; see the ticket.")
    api.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{name}-pm", "namespace": ns},
            "data": {"postmortem.md": answered},
        }
    )
    api.annotate(
        "AIIncident", ns, name, {"airlock.dev/postmortem": f"configmap/{name}-pm", "airlock.dev/requested-by": ALICE}
    )
    wait_for("Closed", lambda: _incident(world, ns, name)["status"]["phase"] == "Closed", timeout=10)
    closed = _incident(world, ns, name)["status"]
    assert closed["postmortem"] == {"state": "complete", "ref": f"configmap/{name}-pm"}
    assert closed["closedAt"]


def test_endpoint_outage_and_a_kill_9_lose_and_duplicate_nothing(
    world: World, tenant: Tenant, receiver: Receiver
) -> None:
    _api, ns = world.api, tenant.namespace
    _setup(world, tenant, receiver)
    receiver.fail_with(503)
    try:
        world.model.inject((ns, tenant.app), "privacy", rate=2.0)
        checks.wait_phase(world, ns, "ShutDown", timeout=15)
        name = checks.wait_incident(world, ns, timeout=5, severity="SEV1")["metadata"]["name"]

        def retrying() -> list[dict[str, Any]]:
            found = _incident(world, ns, name)["status"]["notifications"]
            return [
                n for n in found if n.get("channel") == "ops-webhook" and n["attempts"] >= 2 and n["state"] == "failed"
            ]

        entry = wait_for("retries with backoff", retrying, timeout=20)[0]
        assert entry["nextAttempt"]
        assert "503" in entry["lastError"]
        failed = {c["type"]: c for c in _incident(world, ns, name)["status"]["conditions"]}["NoticesDelivered"]
        assert failed["status"] == "False"
        assert failed["reason"] == "Retrying"
        world.operator.kill()
    finally:
        receiver.fail_with(None)
    world.operator.start()

    def delivered() -> bool:
        found = _incident(world, ns, name)["status"]["notifications"]
        mine = [n for n in found if n.get("channel") is not None]
        return bool(mine) and all(n["state"] == "sent" for n in mine)

    wait_for(
        "every notice sent after the restart",
        lambda: delivered() or print(_incident(world, ns, name)["status"]["notifications"]),
        timeout=40,
        interval=2,
    )
    accepted = [r for r in _mine(receiver, "/webhook", name) if r.accepted]
    keys = [r.header("idempotency-key") for r in accepted]
    assert keys
    assert len(keys) == len(set(keys)), "a notice was delivered twice"
    sent = [n for n in _incident(world, ns, name)["status"]["notifications"] if n.get("channel") == "ops-webhook"]
    assert {n["idempotencyKey"] for n in sent} == set(keys)
    pages = [r for r in _mine(receiver, "/pagerduty", name) if r.accepted]
    assert [r.json["event_action"] for r in pages] == ["trigger"]


def _stale_incident(ns: str, name: str, hours_ago: float) -> tuple[dict[str, Any], dict[str, Any]]:
    detected = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=hours_ago)
    stamp = detected.strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {
        "apiVersion": "airlock.dev/v1alpha1",
        "kind": "AIIncident",
        "metadata": {"name": name, "namespace": ns, "labels": {"airlock.dev/system": "chatbot"}},
        "spec": {
            "system": "chatbot",
            "failureMode": "privacy",
            "severity": "SEV1",
            "trigger": {"type": "manual", "by": ALICE, "reason": "found in a support ticket"},
        },
    }
    status = {
        "status": {
            "phase": "Resolved",
            "detectedAt": stamp,
            "resolvedAt": stamp,
            "timeline": [{"at": stamp, "type": "Detected", "message": "SEV1 privacy", "by": ALICE}],
        }
    }
    return body, status


def test_deadline_warnings_fire_once_each_and_overdue_shows(world: World, tenant: Tenant, receiver: Receiver) -> None:
    api, ns = world.api, tenant.namespace
    _setup(world, tenant, receiver)
    for name, hours in (("late", 71.0), ("overdue", 73.0)):
        body, status = _stale_incident(ns, name, hours)
        api.create(body)
        api.patch("AIIncident", ns, name, status, sub="status")

    def reasons(name: str) -> list[str]:
        return [e["reason"] for e in api.events(ns, name) if e["reason"].startswith("Report")]

    wait_for("90 % warning", lambda: "ReportDeadlineNinetyPercentElapsed" in reasons("late"), timeout=15)
    wait_for("overdue", lambda: "ReportOverdue" in reasons("overdue"), timeout=15)
    time.sleep(3)  # a few more passes: each warning stays one Event
    late = reasons("late")
    assert sorted(r for r in late if r.startswith("ReportDeadline")) == [
        "ReportDeadlineHalfElapsed",
        "ReportDeadlineHalfElapsed",
        "ReportDeadlineNinetyPercentElapsed",
        "ReportDeadlineNinetyPercentElapsed",
    ]  # Art. 73 classification (2 d) and GDPR (72 h): both past 90 %
    assert late.count("ReportOverdue") == 1  # the 48 h classification clock ran out 23 h ago
    overdue = _incident(world, ns, "overdue")
    states = {r["regime"]: r["state"] for r in overdue["status"]["reporting"]}
    assert states == {"gdpr-art33": "overdue", "eu-ai-act-art73-classification": "overdue"}
    cond = {c["type"]: c for c in overdue["status"]["conditions"]}["ReportingOnTrack"]
    assert cond["status"] == "False"
    assert cond["reason"] == "Overdue"
    assert "OVERDUE" in cond["message"]
    # The AISystem hears of it too.
    assert "ReportOverdue" in checks.reasons(world, ns)


def test_broken_template_is_reported_on_the_system_and_never_stops_containment(
    world: World, tenant: Tenant, receiver: Receiver
) -> None:
    ns = tenant.namespace
    templates = {
        "users": {"body": "Dear user, {{ incident.nope }}"},
        "regulator": {"configMapRef": {"name": "legal-templates", "key": "regulator.j2"}},
    }
    _setup(world, tenant, receiver, templates=templates)
    cond = wait_for(
        "NoticesReady False",
        lambda: (c := checks.condition(world, ns, "NoticesReady")).get("status") == "False" and c,
        timeout=15,
    )
    assert cond["reason"] == "TemplateInvalid"
    assert "templates.users.body" in cond["message"]
    assert "nope" in cond["message"]
    assert "templates.regulator.configMapRef" in cond["message"]
    assert "legal-templates" in cond["message"]
    assert "TemplateInvalid" in checks.reasons(world, ns)
    # Containment does not depend on notices.
    world.model.inject((ns, tenant.app), "privacy", rate=2.0)
    checks.wait_phase(world, ns, "ShutDown", timeout=15)
    name = checks.wait_incident(world, ns, timeout=5, severity="SEV1")["metadata"]["name"]
    drafts = wait_for("drafts with defaults", lambda: _draft(world, ns, name, "notices"), timeout=10)
    assert "Dear user" not in drafts["data"]["users.md"]  # the shipped default stood in
    world.model.heal((ns, tenant.app))


def test_a_channel_whose_secret_airlock_may_not_read_is_refused_on_the_system(
    world: World, tenant: Tenant, receiver: Receiver
) -> None:
    api, ns = world.api, tenant.namespace
    channels = _system(tenant, receiver)["spec"]["notifications"]["channels"]
    channels[1]["secretRef"] = {"name": "pagerduty"}  # not a name the operator's RBAC allows
    _setup(world, tenant, receiver, notifications={"channels": channels})
    cond = wait_for(
        "NoticesReady False",
        lambda: (c := checks.condition(world, ns, "NoticesReady")).get("status") == "False" and c,
        timeout=15,
    )
    assert cond["reason"] == "SecretNotAllowed"
    field = "spec.notifications.channels[1].secretRef.name"
    assert cond["message"].startswith(f"{field}: Secret 'pagerduty' (channel pager) is not one airlock may read")
    assert "allowed: airlock-notify" in cond["message"]
    (event,) = [e for e in api.events(ns, "chatbot") if e["reason"] == "SecretNotAllowed"]
    assert event["type"] == "Warning"
    assert field in event["message"]

    # A breach: the allowed channel delivers; the other fails at once, for good, saying why — no 403 in sight.
    world.model.inject((ns, tenant.app), "privacy", rate=2.0)
    checks.wait_phase(world, ns, "ShutDown", timeout=15)
    name = checks.wait_incident(world, ns, timeout=5, severity="SEV1")["metadata"]["name"]
    wait_for("webhook opened", lambda: _mine(receiver, "/webhook", name), timeout=10)

    def pager() -> list[dict[str, Any]]:
        found = _incident(world, ns, name)["status"]["notifications"]
        return [n for n in found if n.get("channel") == "pager" and n["state"] == "failed"]

    entry = wait_for("the pager's notice refused", pager, timeout=10)[0]
    assert entry["attempts"] == 1
    assert entry.get("nextAttempt") is None  # not retried: retrying cannot help
    assert "Secret 'pagerduty' is not one airlock may read (allowed: airlock-notify)" in entry["lastError"]
    assert not _mine(receiver, "/pagerduty", name)
    paths = world.cluster.call(lambda: [str(r.url.path) for r in world.cluster.cluster])
    assert f"/api/v1/namespaces/{ns}/secrets/airlock-notify" in paths  # the allowed one, read by name
    assert f"/api/v1/namespaces/{ns}/secrets/pagerduty" not in paths  # never asked for: RBAC would say 403
    world.model.heal((ns, tenant.app))


def test_drill_rehearses_the_plan_pages_internal_only_and_never_writes_the_workload(
    world: World, tenant: Tenant, receiver: Receiver
) -> None:
    api, ns = world.api, tenant.namespace
    _setup(world, tenant, receiver)
    before = {
        what: checks.versions(world, resource, ns, name)
        for what, resource, name in (
            ("deployment", "deployments", "chatbot-v7"),
            ("service", "services", "chatbot"),
        )
    }
    api.annotate("AISystem", ns, "chatbot", {"airlock.dev/drill": "privacy/t1", "airlock.dev/requested-by": ALICE})
    wait_for("drill handled", lambda: checks.status(world, ns).get("lastHandledDrill") == "privacy/t1", timeout=10)
    (drill,) = [i for i in api.list("AIIncident", ns) if i["spec"].get("drill")]
    name = drill["metadata"]["name"]
    assert "-drill-" in name
    assert drill["spec"]["trigger"] == {"type": "drill", "by": ALICE, "reason": "privacy/t1"}
    record = drill["status"]["drill"]
    assert record["scenario"] == "privacy"
    assert record["actions"] == ["reroute", "scaleToZero"]
    assert any("ml-oncall" in p for p in record["paged"])
    assert "DrillDecision" in checks.timeline(drill)
    assert "DrillStarted" in checks.reasons(world, ns)
    # Internal channels only, marked as a drill; regulator and users only drafted.
    hook = wait_for("drill notice", lambda: _mine(receiver, "/webhook", name), timeout=10)[0]
    assert hook.json["drill"] is True
    assert hook.json["subject"].startswith("[DRILL]")
    drafts = wait_for("drafts", lambda: _draft(world, ns, name, "notices"), timeout=10)
    assert drafts["data"]["users.md"].startswith("Subject: [DRILL]")
    assert not [r for r in _mine(receiver, "/webhook", name) if r.json.get("audience") != "internal"]
    # A drill owes no regulator anything.
    assert wait_for("reporting", lambda: _incident(world, ns, name)["status"].get("reporting") == [], timeout=5) is True

    # Acknowledged: the time to acknowledge is measured and the drill ends.
    time.sleep(1)
    api.annotate("AIIncident", ns, name, {"airlock.dev/acknowledge": "here", "airlock.dev/requested-by": ALICE})
    wait_for("drill closed", lambda: _incident(world, ns, name)["status"]["phase"] == "Closed", timeout=10)
    status = _incident(world, ns, name)["status"]
    assert status["acknowledgedBy"] == ALICE
    assert status["drill"]["timeToAcknowledgeSeconds"] >= 1.0
    wait_for(
        "the drill's end announced",
        lambda: {"acknowledged", "resolved"} <= {r.json["event"] for r in _mine(receiver, "/webhook", name)},
        timeout=10,
    )
    # Not one write to the workload or the Service, and the system never left Healthy.
    for what, resource, obj in (("deployment", "deployments", "chatbot-v7"), ("service", "services", "chatbot")):
        assert checks.versions(world, resource, ns, obj) == before[what], f"the drill wrote the {what}"
    assert checks.phase(world, ns) == "Healthy"
    assert [i for i in api.list("AIIncident", ns) if not i["spec"].get("drill")] == []

    # A second drill needs a new value; someone without the drill verb is refused.
    api.annotate("AISystem", ns, "chatbot", {"airlock.dev/drill": "manual/t2", "airlock.dev/requested-by": MALLORY})
    wait_for("refused", lambda: checks.status(world, ns).get("lastHandledDrill") == "manual/t2", timeout=10)
    assert len([i for i in api.list("AIIncident", ns) if i["spec"].get("drill")]) == 1
    assert any(MALLORY in e["message"] for e in api.events(ns, "chatbot") if e["reason"] == "UnauthorizedRequest")


class _KillWhenSent:
    """Admission hook: SIGKILL the operator at the write that records a notice as sent, and lose that write.

    The endpoint has the notice; airlock's record still says ``sending``: the worst
    moment for exactly-once.  After the restart it must resend with the same key.
    """

    def __init__(self, world: World, namespace: str) -> None:
        assert world.operator.process is not None
        self.pid = world.operator.process.pid
        self.namespace = namespace
        self.fired = threading.Event()

    def __call__(self, operation: str, ref: ResourceRef, old: Any, new: Any, user: Any) -> None:
        if self.fired.is_set() or ref.resource != "aiincidents" or ref.namespace != self.namespace:
            return
        states = [n.get("state") for n in ((new or {}).get("status") or {}).get("notifications") or []]
        if "sent" not in states:
            return
        self.fired.set()
        os.kill(self.pid, signal.SIGKILL)
        raise AdmissionDenied("the operator died before this write landed", code=503, reason="ServiceUnavailable")


def test_kill_9_between_delivery_and_its_record_resends_with_the_same_key(
    world: World, tenant: Tenant, receiver: Receiver
) -> None:
    ns = tenant.namespace
    _setup(world, tenant, receiver)
    hook = _KillWhenSent(world, ns)
    world.cluster.call(world.cluster.cluster.admission.append, hook)
    try:
        world.model.inject((ns, tenant.app), "privacy", rate=2.0)
        assert hook.fired.wait(20), "no notice was ever recorded as sent"
        assert world.operator.process is not None
        world.operator.process.wait(timeout=10)
    finally:
        world.cluster.call(world.cluster.cluster.admission.remove, hook)
    world.operator.start()
    name = checks.wait_incident(world, ns, timeout=10, severity="SEV1")["metadata"]["name"]

    def delivered() -> bool:
        found = _incident(world, ns, name)["status"]["notifications"]
        mine = [n for n in found if n.get("channel") is not None]
        return bool(mine) and all(n["state"] == "sent" for n in mine)

    wait_for("every notice recorded as sent", delivered, timeout=30)
    entries = [n for n in _incident(world, ns, name)["status"]["notifications"] if n.get("channel") == "ops-webhook"]
    accepted = [r for r in _mine(receiver, "/webhook", name) if r.accepted]
    keys = [r.header("idempotency-key") for r in accepted]
    # Nothing lost: every outbox entry reached the endpoint; nothing new invented: no key the outbox lacks.
    assert set(keys) == {n["idempotencyKey"] for n in entries}
    # The interrupted one went out twice — with the same Idempotency-Key, so the receiver can drop the copy.
    assert len(keys) in (len(set(keys)), len(set(keys)) + 1)
    interrupted = [n for n in _incident(world, ns, name)["status"]["notifications"] if n["attempts"] >= 2]
    assert len(interrupted) == 1
    world.model.heal((ns, tenant.app))


def test_unacknowledged_escalation_re_pages_at_the_higher_severity(
    world: World, tenant: Tenant, receiver: Receiver
) -> None:
    ns = tenant.namespace
    monitor = {
        "name": "pii-leak",
        "failureMode": "privacy",
        "query": f'sum(rate(pii_detections_total{{namespace="{ns}",app="{tenant.app}"}}[3s]))',
        "interval": "1s",
        "thresholds": [{"severity": "SEV2", "op": ">", "value": 0, "for": "0s"}],
    }
    severities = {
        "SEV1": {"response": "shutdown", "actions": ["reroute", "scaleToZero"], "notify": ["internal"]},
        "SEV2": {"response": "escalate", "actions": ["pauseRollout"], "ackWithin": "3s", "notify": ["internal"]},
    }
    _setup(world, tenant, receiver, monitors=[monitor], severities=severities)
    world.model.inject((ns, tenant.app), "privacy", rate=2.0)
    name = checks.wait_incident(world, ns, timeout=10, severity="SEV2")["metadata"]["name"]
    first = wait_for("page at SEV2", lambda: _mine(receiver, "/pagerduty", name), timeout=10)[0]
    assert first.json["event_action"] == "trigger"
    assert first.json["payload"]["severity"] == "error"
    # Nobody acknowledges within 3 s: SEV1, contained, and paged again on the same PagerDuty incident.
    checks.wait_incident(world, ns, timeout=8, severity="SEV1")
    pages = wait_for(
        "re-page at SEV1", lambda: (p := _mine(receiver, "/pagerduty", name)) and len(p) >= 2 and p, timeout=10
    )
    assert [p.json["payload"]["severity"] for p in pages[:2]] == ["error", "critical"]
    assert {p.json["dedup_key"] for p in pages} == {f"airlock/{ns}/{name}"}
    events = [r.json["event"] for r in _mine(receiver, "/webhook", name)]
    assert events[:2] == ["opened", "severity-SEV1"]
    world.model.heal((ns, tenant.app))
