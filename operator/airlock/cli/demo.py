"""``airlock demo``: the Tuesday-afternoon story, told by the real operator on this machine.

Everything is real except the cluster: an emulated API server (the sandbox),
Debian's Prometheus scraping a synthetic model server, and ``airlock run`` as a
child process.  Each step checks what a user would check; the demo exits 0
only if every step happened.
"""

from __future__ import annotations

import argparse
import datetime
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

NS, APP = "ml-prod", "chatbot"
ONCALL = "alice@example.com"

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
                "description": "Answers in which the output scanner found customer PII, per second.",
                "query": "sum by (namespace, app) (rate(pii_detections_total[5s]))",
                "match": {"namespace": "{{ namespace }}", "app": "{{ params.app }}"},
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
            }
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
    parser.set_defaults(func=run)


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
    from airlock.sandbox.world import running_world

    directory = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="airlock-demo-"))
    story = Story()
    print("airlock demo — a chatbot leaks customers' data on a Tuesday afternoon.\n")
    with running_world(directory) as world:
        story.say(
            f"sandbox API server {world.cluster.url}, Prometheus {world.prometheus.url}, operator pid {world.operator.process.pid if world.operator.process else '?'}"
        )
        try:
            return _story(world, story, directory)
        finally:
            print(f"\nlogs and kubeconfig: {directory}")


def _story(world: Any, story: Story, directory: Path) -> int:
    from airlock.sandbox.world import deployment, service, wait_for

    api = world.api
    api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    world.model.add_app(NS, APP)
    api.create(deployment(NS, "chatbot-v7", APP, replicas=3))
    api.create(service(NS, "chatbot", {"app": APP}))
    api.apply(POLICY)
    api.apply(SYSTEM)
    story.say(
        "applied: CRDs, ContainmentPolicy demo-llm-chatbot, AISystem ml-prod/support-chatbot → Deployment chatbot-v7 (3 replicas)"
    )

    def system() -> dict[str, Any]:
        return api.get("AISystem", NS, "support-chatbot") or {}

    def phase() -> str | None:
        return (system().get("status") or {}).get("phase")

    try:
        wait_for("phase Healthy", lambda: phase() == "Healthy", timeout=60)
        story.say("healthy traffic: monitor pii-leak ok — phase Healthy")

        world.model.inject((NS, APP), "privacy", rate=2.0)
        leak_at = datetime.datetime.now(datetime.UTC)
        story.say("14:02 a prompt starts pulling other customers' order history into answers (PII detections 2/s)")

        wait_for(
            "replicas 0", lambda: (api.get("Deployment", NS, "chatbot-v7") or {})["spec"]["replicas"] == 0, timeout=30
        )
        status = wait_for("phase ShutDown", lambda: phase() == "ShutDown" and system()["status"], timeout=15)
        selector = (api.get("Service", NS, "chatbot") or {})["spec"]["selector"]
        if selector != {"app": "chatbot-fallback"}:
            return story.fail(f"Service chatbot not rerouted: selector {selector}")
        incident_name = status["incident"]
        story.say(
            f"SEV1 privacy — Service chatbot rerouted to the fallback, chatbot-v7 scaled to zero (phase {status['phase']})"
        )
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
        resolved = api.get("AIIncident", NS, incident_name) or {}
        if resolved.get("status", {}).get("phase") != "Resolved":
            return story.fail(f"incident not Resolved: {resolved.get('status', {}).get('phase')}")
        story.say("released: 3 replicas and the original Service selector restored exactly; incident Resolved")
    except AssertionError as exc:
        print(world.operator.log_tail(), file=sys.stderr)
        return story.fail(str(exc))
    total = (datetime.datetime.now(datetime.UTC) - leak_at).total_seconds()
    print(
        f"\nDEMO OK — contained {ttc} s after the breach was visible in Prometheus "
        f"({measured:.1f} s after the leak began, scrape delay included); incident closed out in {total:.0f} s. "
        "Nobody needed a meeting."
    )
    del directory
    return 0
