"""Time to contain (SPEC §6), measured end to end on the sandbox world.

Two figures, each over N runs (default 20):

* **automatic**: a PII leak starts in the model server; t0 is the first moment
  the monitor's own query, asked of Prometheus, returns a value over the
  threshold ("breach visible in Prometheus"); t1 is the first moment the
  Deployment's ``spec.replicas`` is 0 at the API server.  Target:
  p95 ≤ monitor interval + 1 s.
* **force shutdown**: t0 is the ``airlock.dev/shutdown`` annotation being
  accepted by the API server; t1 as above.  Target: p95 ≤ 1 s.  The responder
  (alice) writes it; how long the API server took to accept it (admission
  included) is reported too.

``--admission`` runs the world with the shipped ValidatingAdmissionPolicies
(``policy``), the operator's own webhook (``webhook``), both, or none (default).

``--stack kserve`` measures the same on a KServe InferenceService behind a Gateway API
HTTPRoute (SPEC §8), with two t1 per run: the route's weights all on the fallback
InferencePool (``reroute``), and the InferenceService's ``serving.kserve.io/stop: "true"``
(``scaleToZero``).  ``--stack all`` alternates Deployment and KServe runs in the same
world, so the figures are comparable; its target: the KServe figures no more than 0.1 s
above the Deployment's at p95, and every forced shutdown ≤ 1 s at p95.

Both clocks are read on this machine by pollers (10 ms for the target,
50 ms for Prometheus), so each figure carries up to that much error.

    python benchmarks/time_to_contain.py [--runs 20] [--interval 5s] [--stack deployment|kserve|all]
        [--admission none|policy|webhook|both]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from airlock.api.durations import parse_seconds
from airlock.sandbox import serving
from airlock.sandbox.world import AdmissionMode, World, deployment, running_world, service, wait_for

ALICE = "alice@example.com"
THRESHOLD = 0.5
ACCEPTED = "annotation_accepted"  # how long the API server took to accept the shutdown (admission included)


def system(namespace: str, app: str, interval: str) -> dict[str, Any]:
    return {
        "apiVersion": "airlock.dev/v1alpha1",
        "kind": "AISystem",
        "metadata": {"name": "chatbot", "namespace": namespace},
        "spec": {
            "target": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "chatbot-v7"},
            "fallback": {"service": "chatbot", "selector": {"app": f"{app}-fallback"}},
            "params": {"app": app},
            "monitors": [
                {
                    "name": "pii-leak",
                    "failureMode": "privacy",
                    "query": _query(namespace, app),
                    "interval": interval,
                    "thresholds": [{"severity": "SEV1", "op": ">", "value": THRESHOLD}],
                }
            ],
            "severities": {"SEV1": {"response": "shutdown", "actions": ["reroute", "scaleToZero"]}},
            "responders": [
                {"name": "oncall", "subjects": [{"kind": "User", "name": ALICE}], "may": ["shutdown", "release"]}
            ],
        },
    }


def _query(namespace: str, app: str) -> str:
    return f'sum(rate(pii_detections_total{{namespace="{namespace}",app="{app}"}}[3s]))'


POOL_GROUP = serving.INFERENCE_POOL_GROUP
# How much later than the Deployment's the KServe figures may be at p95 (issue 13).
KSERVE_MARGIN = 0.1


def kserve_system(namespace: str, app: str, interval: str) -> dict[str, Any]:
    """The same system, on an InferenceService behind an HTTPRoute whose fallback is an InferencePool."""
    body = system(namespace, app, interval)
    body["spec"]["target"] = {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "name": "chatbot"}
    body["spec"]["fallback"] = {
        "httpRoute": {"name": "chatbot", "backend": {"group": POOL_GROUP, "kind": "InferencePool", "name": "fallback"}}
    }
    return body


def _rerouted(world: World, namespace: str) -> bool:
    route = world.api.get("HTTPRoute", namespace, "chatbot") or {}
    rules = [rule.get("backendRefs", []) for rule in route.get("spec", {}).get("rules", [])]
    refs = [ref for rule in rules if any(r["name"] == "fallback" for r in rule) for ref in rule]
    return bool(refs) and all(ref.get("weight") == (1 if ref["name"] == "fallback" else 0) for ref in refs)


def _stopped(world: World, namespace: str) -> bool:
    isvc = world.api.get("InferenceService", namespace, "chatbot") or {}
    return bool((isvc.get("metadata", {}).get("annotations") or {}).get("serving.kserve.io/stop") == "true")


def _watch(checks: dict[str, Callable[[], bool]], done: dict[str, float], stop: threading.Event) -> None:
    """Record, for each check, the first moment it holds (10 ms poller)."""
    while not stop.is_set() and len(done) < len(checks):
        for name, check in checks.items():
            if name not in done and check():
                done[name] = time.monotonic()
        time.sleep(0.01)


def _replicas(world: World, namespace: str) -> int:
    obj = world.api.get("Deployment", namespace, "chatbot-v7") or {}
    return int(obj.get("spec", {}).get("replicas", -1))


def _setup(world: World, n: int, interval: str, stack: str = "deployment") -> tuple[str, str]:
    namespace, app = (f"bench{n}", f"bot{n}") if stack == "deployment" else (f"kbench{n}", f"kbot{n}")
    world.api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    world.model.add_app(namespace, app)
    if stack == "deployment":
        world.api.create(deployment(namespace, "chatbot-v7", app, replicas=3))
        world.api.create(service(namespace, "chatbot", {"app": app}))
        world.api.create(system(namespace, app, interval))
    else:
        world.api.create(serving.inference_service(namespace, "chatbot"))
        world.api.create(serving.inference_pool(namespace, "model", app))
        world.api.create(serving.inference_pool(namespace, "fallback", f"{app}-fallback"))
        rule = [serving.pool_backend("model", weight=100), serving.pool_backend("fallback", weight=0)]
        world.api.create(serving.http_route(namespace, "chatbot", [rule, [serving.pool_backend("model")]]))
        world.api.create(kserve_system(namespace, app, interval))
    wait_for(
        f"{namespace} Healthy",
        lambda: ((world.api.get("AISystem", namespace, "chatbot") or {}).get("status") or {}).get("phase") == "Healthy",
        timeout=60,
    )
    return namespace, app


def _checks(world: World, namespace: str, stack: str) -> dict[str, Callable[[], bool]]:
    """What "contained" means at the API server, per figure."""
    if stack == "deployment":
        return {"deployment": lambda: _replicas(world, namespace) == 0}
    return {
        "httproute_reroute": lambda: _rerouted(world, namespace),
        "inferenceservice": lambda: _stopped(world, namespace),
    }


def automatic(world: World, n: int, interval: str, stack: str = "deployment") -> dict[str, float]:
    namespace, app = _setup(world, n, interval, stack)
    done: dict[str, float] = {}
    stop = threading.Event()
    checks = _checks(world, namespace, stack)
    watcher = threading.Thread(target=_watch, args=(checks, done, stop), daemon=True)
    watcher.start()
    world.model.inject((namespace, app), "privacy", rate=2.0)
    query = _query(namespace, app)
    t0 = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and t0 is None:
        value = world.prometheus.query_value(query)
        if value is not None and value > THRESHOLD:
            t0 = time.monotonic()
        else:
            time.sleep(0.05)
    watcher.join(timeout=60)
    stop.set()
    world.model.heal((namespace, app))
    if t0 is None or len(done) < len(checks):
        raise SystemExit(f"{stack} run {n}: breach or containment not observed ({sorted(done)})")
    # Contained before the poller saw the breach in Prometheus: count as 0.
    return {name: max(0.0, at - t0) for name, at in done.items()}


def forced(world: World, n: int, interval: str, stack: str = "deployment") -> dict[str, float]:
    """Time to contain per check, and (``ACCEPTED``) how long the API server took to accept the annotation."""
    namespace, _ = _setup(world, 1000 + n, interval, stack)
    done: dict[str, float] = {}
    stop = threading.Event()
    checks = _checks(world, namespace, stack)
    watcher = threading.Thread(target=_watch, args=(checks, done, stop), daemon=True)
    watcher.start()
    sent = time.monotonic()
    world.api.as_user(ALICE).annotate(
        "AISystem", namespace, "chatbot", {"airlock.dev/shutdown": "benchmark", "airlock.dev/requested-by": ALICE}
    )
    t0 = time.monotonic()
    watcher.join(timeout=30)
    stop.set()
    if len(done) < len(checks):
        raise SystemExit(f"{stack} forced run {n}: not contained ({sorted(done)})")
    return {**{name: at - t0 for name, at in done.items()}, f"{ACCEPTED}/{stack}": t0 - sent}


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "n": len(ordered),
        "p50": round(statistics.median(ordered), 3),
        "p95": round(p95, 3),
        "max": round(ordered[-1], 3),
        "min": round(ordered[0], 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--interval", default="5s")
    parser.add_argument("--stack", choices=("deployment", "kserve", "all"), default="deployment")
    parser.add_argument("--admission", choices=[m.value for m in AdmissionMode if m is not AdmissionMode.HOOK],
                        default="none", help="the admission the API server runs with (default none)")  # fmt: skip
    args = parser.parse_args(argv)
    interval_s = parse_seconds(args.interval)
    stacks = ["deployment", "kserve"] if args.stack == "all" else [args.stack]
    auto: dict[str, list[float]] = {}
    force: dict[str, list[float]] = {}
    serving_crds = args.stack != "deployment"
    with (
        tempfile.TemporaryDirectory(prefix="airlock-bench-") as tmp,
        running_world(Path(tmp), serving_crds=serving_crds, admission=args.admission) as world,
    ):
        # Alternate the stacks run by run: both see the same machine load.
        for n in range(args.runs):
            for stack in stacks:
                for name, value in automatic(world, n, args.interval, stack).items():
                    auto.setdefault(name, []).append(value)
        for n in range(args.runs):
            for stack in stacks:
                for name, value in forced(world, n, args.interval, stack).items():
                    force.setdefault(name, []).append(value)
    accepted = {name: force.pop(name) for name in list(force) if name.startswith(ACCEPTED)}
    if args.stack == "deployment":
        result: dict[str, Any] = {
            "interval_seconds": interval_s,
            "automatic": summary(auto["deployment"]),
            "automatic_target_p95": interval_s + 1,
            "forced_shutdown": summary(force["deployment"]),
            "forced_target_p95": 1.0,
        }
        ok = result["automatic"]["p95"] <= interval_s + 1 and result["forced_shutdown"]["p95"] <= 1.0
    else:
        result = {
            "interval_seconds": interval_s,
            "automatic": {name: summary(values) for name, values in auto.items()},
            "automatic_target_p95": interval_s + 1,
            "forced_shutdown": {name: summary(values) for name, values in force.items()},
            "forced_target_p95": 1.0,
        }
        ok = all(s["p95"] <= interval_s + 1 for s in result["automatic"].values()) and all(
            s["p95"] <= 1.0 for s in result["forced_shutdown"].values()
        )
        if "deployment" in auto:
            result["kserve_margin_p95"] = KSERVE_MARGIN
            for kind in ("automatic", "forced_shutdown"):
                base = result[kind]["deployment"]["p95"]
                for name in ("httproute_reroute", "inferenceservice"):
                    over = round(result[kind][name]["p95"] - base, 3)
                    result.setdefault("over_deployment_p95", {})[f"{kind}/{name}"] = over
                    ok = ok and over <= KSERVE_MARGIN
    result["admission"] = args.admission
    result["forced_annotation_accepted"] = {name: summary(values) for name, values in accepted.items()}
    print(json.dumps(result, indent=2))
    print("PASS" if ok else "FAIL: a target was missed", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
