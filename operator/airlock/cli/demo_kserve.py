"""``airlock demo --stack kserve``: the same leak, on a KServe InferenceService behind a Gateway API HTTPRoute.

The model is an InferenceService; users reach it through an HTTPRoute whose backendRefs are
InferencePools of the Gateway API Inference Extension (the model's pool, and an idle pool of
a fallback model). When the leak crosses the line, airlock moves all the route's weight to
the fallback pool and stops the InferenceService with KServe's own annotation
(``serving.kserve.io/stop``); release puts every weight and annotation back as it was.

As in the default story, everything is real except the cluster (the sandbox serves the
KServe, Gateway API and Inference Extension kinds from cut-down CRDs; no controller acts on
them) and the model (the synthetic model server's PII counter stands in for a guard's).
"""

from __future__ import annotations

import datetime
import sys
import tempfile
from pathlib import Path
from typing import Any

from airlock.cli.demo import Story

NS, APP = "ml-prod", "chatbot"
ONCALL = "alice@example.com"
POOL_GROUP = "inference.networking.k8s.io"

POLICY: dict[str, Any] = {
    "apiVersion": "airlock.dev/v1alpha1",
    "kind": "ContainmentPolicy",
    "metadata": {"name": "demo-kserve-llm"},
    "spec": {
        "description": "Demo matrix for an LLM on KServe (short intervals so the story fits in a minute)",
        "monitors": [
            {
                "name": "pii-leak",
                "failureMode": "privacy",
                "description": "Answers in which the output scanner found customer PII, per second.",
                "query": "sum by (namespace, app) (rate(pii_detections_total[5s]))",
                "match": {"namespace": "{{ namespace }}", "app": "{{ params.app }}"},
                "interval": "2s",
                "thresholds": [{"severity": "SEV1", "op": ">", "value": 0.5, "for": "0s"}],
            }
        ],
        "severities": {
            # No pauseRollout anywhere: KServe has none, and the CRD refuses it for an InferenceService.
            "SEV1": {"response": "shutdown", "actions": ["reroute", "scaleToZero"], "notify": ["internal"]},
            "SEV3": {"response": "investigate"},
        },
        "responders": [
            {
                "name": "ml-oncall",
                "subjects": [{"kind": "User", "name": ONCALL}],
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
        "description": "Tier-one support chatbot on KServe",
        "owner": "support-ml",
        "policyRef": {"name": "demo-kserve-llm"},
        "target": {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "name": "chatbot"},
        "fallback": {
            "httpRoute": {
                "name": "chatbot",
                "backend": {"group": POOL_GROUP, "kind": "InferencePool", "name": "chatbot-fallback"},
            }
        },
        "params": {"app": APP},
    },
}


def run(args: Any) -> int:
    from airlock.sandbox.world import running_world

    directory = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="airlock-demo-kserve-"))
    story = Story()
    print("airlock demo --stack kserve — a chatbot on KServe leaks customers' data behind a Gateway API route.\n")
    with running_world(directory, serving_crds=True) as world:
        story.say(f"sandbox API server {world.api.url} (serving KServe, Gateway API, Inference Extension kinds)")
        try:
            return _story(world, story)
        finally:
            print(f"\nlogs and kubeconfig: {directory}")


def _weights(route: dict[str, Any]) -> str:
    rules = []
    for rule in route["spec"]["rules"]:
        refs = [f"{ref['name']}={ref.get('weight', '(default)')}" for ref in rule["backendRefs"]]
        rules.append(", ".join(refs))
    return " | ".join(rules)


def _state(api: Any, kind: str) -> tuple[Any, dict[str, str]]:
    """What release must put back: the spec and the annotations (none and an empty map are the same)."""
    obj = api.get(kind, NS, "chatbot") or {}
    return obj.get("spec"), dict((obj.get("metadata") or {}).get("annotations") or {})


def _story(world: Any, story: Story) -> int:
    from airlock.sandbox import serving
    from airlock.sandbox.world import wait_for

    api = world.api
    api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    world.model.add_app(NS, APP)
    api.create(serving.inference_service(NS, "chatbot"))
    api.create(serving.inference_pool(NS, "llama-pool", APP))
    api.create(serving.inference_pool(NS, "chatbot-fallback", f"{APP}-fallback"))
    route = serving.http_route(
        NS,
        "chatbot",
        [
            [serving.pool_backend("llama-pool", weight=100), serving.pool_backend("chatbot-fallback", weight=0)],
            [serving.pool_backend("llama-pool"), serving.pool_backend("chatbot-fallback", weight=0)],
        ],
        hostnames=("chat.example.com",),
    )
    api.create(route)
    api.apply(POLICY)
    api.apply(SYSTEM)
    before = {kind: _state(api, kind) for kind in ("HTTPRoute", "InferenceService")}
    story.say(
        "applied: InferenceService chatbot, InferencePools llama-pool and chatbot-fallback, "
        f"HTTPRoute chatbot ({_weights(route)}; stored as {_weights(api.get('HTTPRoute', NS, 'chatbot') or {})}: "
        "the CRD defaults an absent weight to 1), AISystem ml-prod/support-chatbot"
    )

    def phase() -> str | None:
        return ((api.get("AISystem", NS, "support-chatbot") or {}).get("status") or {}).get("phase")

    try:
        wait_for("phase Healthy", lambda: phase() == "Healthy", timeout=60)
        story.say("healthy traffic: monitor pii-leak ok — phase Healthy")
        world.model.inject((NS, APP), "privacy", rate=2.0)
        leak_at = datetime.datetime.now(datetime.UTC)
        story.say("a prompt starts pulling other customers' order history into answers (PII detections 2/s)")

        wait_for("phase ShutDown", lambda: phase() == "ShutDown", timeout=30)
        isvc = api.get("InferenceService", NS, "chatbot") or {}
        stop = isvc["metadata"].get("annotations", {}).get("serving.kserve.io/stop")
        live = api.get("HTTPRoute", NS, "chatbot") or {}
        if stop != "true":
            return story.fail(f"InferenceService chatbot not stopped: serving.kserve.io/stop={stop!r}")
        if any(
            ref.get("weight") != (1 if ref["name"] == "chatbot-fallback" else 0)
            for r in live["spec"]["rules"]
            for ref in r["backendRefs"]
        ):
            return story.fail(f"HTTPRoute chatbot not rerouted: {_weights(live)}")
        story.say(f"SEV1 privacy — HTTPRoute chatbot rerouted ({_weights(live)})")
        story.say('InferenceService chatbot stopped with KServe\'s own serving.kserve.io/stop: "true" (phase ShutDown)')
        status = (api.get("AISystem", NS, "support-chatbot") or {}).get("status") or {}
        incident = api.get("AIIncident", NS, status.get("incident") or "") or {}
        ttc = incident.get("status", {}).get("timeToContainSeconds")
        story.say(f"incident {incident.get('metadata', {}).get('name')} opened: time to contain {ttc} s")

        world.model.heal((NS, APP))

        def monitor_ok() -> bool:
            monitors = ((api.get("AISystem", NS, "support-chatbot") or {}).get("status") or {}).get("monitors") or [{}]
            return bool(monitors[0].get("state") == "ok")

        wait_for("monitor ok", monitor_ok, timeout=30)
        api.annotate(
            "AISystem", NS, "support-chatbot", {"airlock.dev/release": "fix-4711", "airlock.dev/requested-by": ONCALL}
        )
        story.say(f"the fix ships; on-call {ONCALL}: kubectl airlock release support-chatbot -n {NS}")
        wait_for("phase Healthy again", lambda: phase() == "Healthy", timeout=15)
        for kind, state in before.items():
            if _state(api, kind) != state:
                return story.fail(f"{kind} chatbot not restored exactly: {_state(api, kind)} != {state}")
        resolved = (api.get("AIIncident", NS, incident.get("metadata", {}).get("name") or "") or {}).get("status") or {}
        if resolved.get("phase") != "Resolved":
            return story.fail(f"incident not Resolved: {resolved.get('phase')}")
        story.say(
            f"released: HTTPRoute weights restored exactly ({_weights(api.get('HTTPRoute', NS, 'chatbot') or {})}), "
            "stop annotation removed; incident Resolved"
        )
    except AssertionError as exc:
        print(world.operator.log_tail(), file=sys.stderr)
        return story.fail(str(exc))
    total = (datetime.datetime.now(datetime.UTC) - leak_at).total_seconds()
    print(
        f"\nDEMO OK (kserve) — contained {ttc} s after the breach was visible in Prometheus; released in {total:.0f} s."
    )
    return 0
