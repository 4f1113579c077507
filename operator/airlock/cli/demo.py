"""``airlock demo``: the Tuesday-afternoon story, told by the real operator on this machine.

Everything is real except the cluster and the model: an emulated API server (the
sandbox), a synthetic OpenAI-compatible model server, ``airlock guard`` in front of it
(its metrics scraped by Debian's Prometheus), and ``airlock run`` as a child process.  Each step checks what a user would check; the demo exits 0
only if every step happened.
"""

from __future__ import annotations

import argparse
import datetime
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airlock.sandbox.world import Api

NS, APP = "ml-prod", "chatbot"
ONCALL = "alice@example.com"
COMPLIANCE = "carol@example.com"
HMAC_KEY = "demo-hmac-key"

POLICY: dict[str, Any] = {
    "apiVersion": "airlock.dev/v1alpha1",
    "kind": "ContainmentPolicy",
    "metadata": {"name": "demo-llm-chatbot"},
    "spec": {
        "description": "Demo matrix for an LLM chatbot (short intervals so the story fits in a minute)",
        "monitors": [
            {
                "name": "pii-leak",
                "failureMode": "privacy",
                "description": "Other customers' personal data in answers (airlock guard: cross-customer), per second.",
                "query": (
                    "sum by (namespace, system) "
                    '(rate(airlock_guard_detections_total{detector="cross-customer",direction="response"}[5s]))'
                ),
                "match": {"namespace": "{{ namespace }}", "system": "{{ name }}"},
                "interval": "2s",
                "thresholds": [
                    {"severity": "SEV1", "op": ">", "value": 0.5, "for": "0s"},
                    {"severity": "SEV3", "op": ">", "value": 0, "for": "2m"},
                ],
            }
        ],
        "severities": {
            "SEV1": {
                "response": "shutdown",
                "actions": ["reroute", "scaleToZero"],
                "notify": ["internal", "regulator", "users"],
                "postmortemRequired": True,
            },
            "SEV2": {
                "response": "escalate",
                "actions": ["reroute", "pauseRollout"],
                "ackWithin": "15m",
                "notify": ["internal"],
            },
            "SEV3": {"response": "investigate", "notify": ["internal"]},
            "SEV4": {"response": "observe"},
        },
        "responders": [
            {
                "name": "ml-oncall",
                "subjects": [{"kind": "Group", "name": "oncall-ml"}, {"kind": "User", "name": ONCALL}],
                "may": ["acknowledge", "approve", "shutdown", "release", "drill"],
            },
            {"name": "compliance", "subjects": [{"kind": "User", "name": COMPLIANCE}], "may": ["report"]},
        ],
    },
}

SYSTEM: dict[str, Any] = {
    "apiVersion": "airlock.dev/v1alpha1",
    "kind": "AISystem",
    "metadata": {"name": "support-chatbot", "namespace": NS},
    "spec": {
        "description": "Tier-one support chatbot",
        "owner": "support-ml",
        "policyRef": {"name": "demo-llm-chatbot"},
        "target": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "chatbot-v7"},
        "fallback": {"service": "chatbot", "selector": {"app": "chatbot-fallback"}},
        "params": {"app": APP},
        "regulatory": {
            "euAiAct": {"highRisk": True, "memberStates": ["DE", "FR"], "provider": "Example Retail GmbH"},
            "gdpr": {"personalData": True, "controller": "Example Retail GmbH"},
        },
        "notifications": {
            "channels": [{"name": "oncall-webhook", "type": "webhook", "secretRef": {"name": "airlock-notify"}}]
        },
    },
}


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo",
        help="run the local sandbox story",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--keep", metavar="DIR", help="keep logs and kubeconfig in DIR")
    parser.add_argument(
        "--stack",
        choices=("deployment", "kserve"),
        default="deployment",
        help="deployment (default): a Deployment behind a Service; kserve: a KServe InferenceService behind a "
        "Gateway API HTTPRoute with InferencePool backends",
    )
    parser.set_defaults(func=run)


def _draft(api: Api, incident: str, kind: str) -> dict[str, Any] | None:
    """The incident's current draft ConfigMap (immutable, named in status.drafts), once there is one."""
    name = (((api.get("AIIncident", NS, incident) or {}).get("status") or {}).get("drafts") or {}).get(kind)
    return api.get("ConfigMap", NS, name) if name else None


class Story:
    def __init__(self) -> None:
        self.start = time.monotonic()
        self.steps: list[tuple[float, str]] = []

    def say(self, text: str) -> None:
        elapsed = time.monotonic() - self.start
        self.steps.append((elapsed, text))
        print(f"[{elapsed:6.1f}s] {text}", flush=True)

    def fail(self, text: str) -> int:
        print(f"\nDEMO FAILED: {text}", file=sys.stderr)
        return 1


def _ensure_prometheus() -> bool:
    if shutil.which("prometheus"):
        return True
    import os

    if os.geteuid() != 0:
        print(
            "airlock demo needs Debian's prometheus: sudo apt-get install -y --no-install-recommends prometheus",
            file=sys.stderr,
        )
        return False
    print("installing Debian's prometheus (apt-get) ...", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=False)
    result = subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "prometheus"], check=False)
    subprocess.run(["systemctl", "stop", "prometheus"], check=False, capture_output=True)
    return result.returncode == 0 and shutil.which("prometheus") is not None


def run(args: argparse.Namespace) -> int:
    if not _ensure_prometheus():
        return 1
    if getattr(args, "stack", "deployment") == "kserve":
        from airlock.cli import demo_kserve

        return demo_kserve.run(args)
    from airlock.sandbox.receiver import Receiver
    from airlock.sandbox.world import running_world

    directory = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="airlock-demo-"))
    story = Story()
    print("airlock demo — a chatbot leaks customers' data on a Tuesday afternoon.\n")
    guard = _guard(directory)
    with (
        running_world(directory, scrape_targets=[guard.metrics_target]) as world,
        Receiver(hmac_key=HMAC_KEY) as receiver,
    ):
        guard.kubeconfig = world.kubeconfig
        story.say(
            f"sandbox API server {world.cluster.url}, Prometheus {world.prometheus.url}, operator pid {world.operator.process.pid if world.operator.process else '?'}, on-call webhook {receiver.url}"
        )
        try:
            return _story(world, story, directory, receiver, guard)
        finally:
            guard.stop()
            print(f"\nlogs and kubeconfig: {directory}")


def _story(world: Any, story: Story, directory: Path, receiver: Any, guard: Any) -> int:
    import base64

    from airlock.sandbox.receiver import verify_webhook
    from airlock.sandbox.world import deployment, service, wait_for

    api = world.api
    api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    secret = {"url": f"{receiver.url}/webhook", "hmacKey": HMAC_KEY}
    api.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "airlock-notify", "namespace": NS},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in secret.items()},
        }
    )
    world.model.add_app(NS, APP)
    api.create(deployment(NS, "chatbot-v7", APP, replicas=3))
    api.create(service(NS, "chatbot", {"app": APP}))
    api.apply(POLICY)
    api.apply(SYSTEM)
    story.say(
        "applied: CRDs, ContainmentPolicy demo-llm-chatbot, AISystem ml-prod/support-chatbot → Deployment chatbot-v7 (3 replicas)"
    )
    client = _start_guarded_traffic(world, story, guard)

    def system() -> dict[str, Any]:
        return api.get("AISystem", NS, "support-chatbot") or {}

    def phase() -> str | None:
        return (system().get("status") or {}).get("phase")

    try:
        if client is None:
            return story.fail("airlock guard did not become ready:\n" + guard.log_tail())
        wait_for("phase Healthy", lambda: phase() == "Healthy", timeout=60)
        story.say("healthy traffic: monitor pii-leak ok — phase Healthy")

        world.model.inject((NS, APP), "privacy", rate=2.0)
        leak_at = datetime.datetime.now(datetime.UTC)
        story.say(
            "14:02 a prompt starts pulling other customers' order history into answers "
            "(through airlock guard, cross-customer: redact)"
        )

        wait_for(
            "replicas 0", lambda: (api.get("Deployment", NS, "chatbot-v7") or {})["spec"]["replicas"] == 0, timeout=30
        )
        zero_at = time.monotonic()
        status = wait_for("phase ShutDown", lambda: phase() == "ShutDown" and system()["status"], timeout=15)
        selector = (api.get("Service", NS, "chatbot") or {})["spec"]["selector"]
        if selector != {"app": "chatbot-fallback"}:
            return story.fail(f"Service chatbot not rerouted: selector {selector}")
        incident_name = status["incident"]
        story.say(
            f"SEV1 privacy — Service chatbot rerouted to the fallback, chatbot-v7 scaled to zero (phase {status['phase']})"
        )
        problem = _tell_the_guard(story, client, zero_at)
        if problem:
            return story.fail(problem)
        incident = api.get("AIIncident", NS, incident_name) or {}
        ttc = incident.get("status", {}).get("timeToContainSeconds")
        measured = (datetime.datetime.now(datetime.UTC) - leak_at).total_seconds()
        story.say(
            f"incident {incident_name} opened: SEV1 privacy; time to contain {ttc} s "
            "(from the first Prometheus sample showing the breach to the API server accepting the scale-down)"
        )
        print("\n  incident timeline:")
        for entry in incident.get("status", {}).get("timeline", []):
            print(f"    {entry['at']}  {entry['type']:<12} {entry['message']}  (by {entry.get('by')})")
        print()

        def delivered() -> list[Any]:
            return [r for r in receiver.received("/webhook") if r.accepted and r.json.get("incident") == incident_name]

        hook = wait_for("internal notice delivered", delivered, timeout=15)[0]
        if not verify_webhook(hook, HMAC_KEY):
            return story.fail("the webhook notice's HMAC signature does not verify")
        story.say(f"internal notice delivered to the on-call webhook (HMAC-signed): {hook.json['subject']}")
        drafts = wait_for("notice drafts", lambda: _draft(api, incident_name, "notices"), timeout=15)
        story.say(
            "drafted, not sent (a human files them): "
            + ", ".join(sorted(drafts["data"]))
            + f" — kubectl airlock incident show {incident_name} -n {NS} --notice regulator"
        )
        reporting = wait_for(
            "reporting clocks",
            lambda: (api.get("AIIncident", NS, incident_name) or {}).get("status", {}).get("reporting"),
            timeout=15,
        )
        for clock in reporting:
            story.say(f"reporting clock {clock['regime']}: due {clock['deadline']} ({clock['state']})")
        print("\n  users notice (draft):")
        for line in drafts["data"]["users.md"].splitlines()[:8]:
            print(f"    {line}")
        print()
        api.annotate(
            "AIIncident",
            NS,
            incident_name,
            {"airlock.dev/report-submitted": "gdpr-art33=DPA-2026-0042", "airlock.dev/requested-by": COMPLIANCE},
        )
        wait_for(
            "GDPR report submitted",
            lambda: any(
                r["regime"] == "gdpr-art33" and r["state"] == "submitted"
                for r in (api.get("AIIncident", NS, incident_name) or {}).get("status", {}).get("reporting", [])
            ),
            timeout=15,
        )
        story.say(f"compliance ({COMPLIANCE}) files the GDPR Art. 33 notice: reference DPA-2026-0042 recorded")

        world.model.heal((NS, APP))
        story.say("the fix ships (the retrieval filter is repaired); PII detections back to 0")
        wait_for("monitor ok", lambda: (system()["status"]["monitors"] or [{}])[0].get("state") == "ok", timeout=30)
        api.annotate(
            "AISystem",
            NS,
            "support-chatbot",
            {"airlock.dev/release": "fix-4711", "airlock.dev/requested-by": ONCALL},
        )
        story.say(f"on-call {ONCALL}: kubectl annotate ais support-chatbot airlock.dev/release=fix-4711")
        wait_for(
            "exact restore",
            lambda: (
                (api.get("Deployment", NS, "chatbot-v7") or {})["spec"]["replicas"] == 3
                and (api.get("Service", NS, "chatbot") or {})["spec"]["selector"] == {"app": APP}
            ),
            timeout=15,
        )
        wait_for("phase Healthy again", lambda: phase() == "Healthy", timeout=15)
        problem = _guard_back_on_the_model(story, client)
        if problem:
            return story.fail(problem)
        resolved = api.get("AIIncident", NS, incident_name) or {}
        if resolved.get("status", {}).get("phase") != "Resolved":
            return story.fail(f"incident not Resolved: {resolved.get('status', {}).get('phase')}")
        story.say("released: 3 replicas and the original Service selector restored exactly; incident Resolved")
        draft = wait_for("post-mortem draft", lambda: _draft(api, incident_name, "postmortem"), timeout=15)
        text = draft["data"]["postmortem.md"]
        story.say(
            f"post-mortem drafted ({len(text.splitlines())} lines, evidence chart included): "
            f"kubectl airlock postmortem {incident_name} -n {NS}"
        )
        print()
        for line in text.splitlines()[:12]:
            print(f"    {line}")
        print("    ...\n")
        api.annotate(
            "AIIncident",
            NS,
            incident_name,
            {"airlock.dev/postmortem": "https://wiki.example.com/pm/4711", "airlock.dev/requested-by": ONCALL},
        )
        wait_for(
            "incident Closed",
            lambda: (api.get("AIIncident", NS, incident_name) or {}).get("status", {}).get("phase") == "Closed",
            timeout=15,
        )
        story.say("post-mortem written up and linked (airlock.dev/postmortem): incident Closed")
    except AssertionError as exc:
        print(world.operator.log_tail(), file=sys.stderr)
        print(guard.log_tail(), file=sys.stderr)
        return story.fail(str(exc))
    finally:
        if client is not None:
            client.stop()
    total = (datetime.datetime.now(datetime.UTC) - leak_at).total_seconds()
    print(
        f"\nDEMO OK — contained {ttc} s after the breach was visible in Prometheus "
        f"({measured:.1f} s after the leak began, scrape delay included); incident closed out in {total:.0f} s. "
        "Nobody needed a meeting."
    )
    del directory
    return 0


# -- the guard's part of the story ------------------------------------------------------------

GUARD_CONFIG: dict[str, Any] = {"detectors": {"pii": "redact", "cross-customer": "redact", "canary": "block"}}


def _guard(directory: Path) -> Any:
    """``airlock guard`` for the demo's chatbot, its ports chosen before the world starts (Prometheus scrapes it)."""
    from airlock.sandbox.guarded import GuardProcess

    return GuardProcess(
        kubeconfig=directory / "kubeconfig",
        system=f"{NS}/support-chatbot",
        upstream="",
        log_path=directory / "guard.log",
        config=GUARD_CONFIG,
    )


def _start_guarded_traffic(world: Any, story: Story, guard: Any) -> Any:
    """Start the guard in front of the model's chat (fallback: the fallback model's), then a customer."""
    from airlock.sandbox.guarded import ChatClient
    from airlock.sandbox.world import wait_for

    world.model.add_app(NS, "chatbot-fallback", fallback=True)
    guard.upstream = world.model.chat_url(NS, APP)
    guard.fallback = world.model.chat_url(NS, "chatbot-fallback")
    guard.start()
    try:
        wait_for("airlock guard ready", guard.ready, timeout=30)
    except AssertionError:
        return None
    story.say(
        f"airlock guard in front of chatbot-v7 ({guard.url}; pii and cross-customer: redact, canary: block; "
        "fallback: chatbot-fallback); a customer asks every 0.2 s, every other answer streamed"
    )
    return ChatClient(guard.url, interval=0.2).start()


def _tell_the_guard(story: Story, client: Any, zero_at: float) -> str | None:
    """What the customer saw: redacted answers only, then the fallback; the two times from the first leak."""
    from airlock.sandbox.chat import LEAKED_VALUES
    from airlock.sandbox.world import wait_for

    wait_for("an answer from the fallback", lambda: any(a.route == "fallback" for a in client.seen()), timeout=15)
    answers = client.seen()
    leaking = [a for a in answers if "[REDACTED:" in a.text]
    if not leaking:
        return "the guard redacted no answer while the model leaked"
    first = leaking[0].at
    fallback_at = next(a.at for a in answers if a.route == "fallback" and a.at >= first)
    seen_values = sorted({v for a in answers for v in LEAKED_VALUES if v in a.text})
    if seen_values:
        return f"the customer received other customers' data: {seen_values}"
    kinds = sorted({kind for a in leaking for kind in re.findall(r"\[REDACTED:([a-z0-9-]+)\]", a.text)})
    story.say(
        f"the customer got {len(leaking)} answers with other customers' data redacted "
        f"({', '.join(f'[REDACTED:{k}]' for k in kinds)}) and none of the {len(LEAKED_VALUES)} leaked values; "
        "from the first leaking answer: "
        f"(a) the guard served the fallback after {fallback_at - first:.1f} s, "
        f"(b) chatbot-v7 was at zero replicas after {zero_at - first:.1f} s"
    )
    return None


def _guard_back_on_the_model(story: Story, client: Any) -> str | None:
    from airlock.sandbox.world import wait_for

    released = time.monotonic()
    wait_for(
        "the guard back on chatbot-v7",
        lambda: any(a.route == "upstream" and a.at > released for a in client.seen()),
        timeout=15,
    )
    story.say("airlock guard serves chatbot-v7 again (its AISystem is Healthy)")
    return None
