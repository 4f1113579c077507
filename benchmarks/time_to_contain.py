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

Both clocks are read on this machine by pollers (10 ms for the target,
50 ms for Prometheus), so each figure carries up to that much error.

    python benchmarks/time_to_contain.py [--runs 20] [--interval 5s] [--admission none|policy|webhook|both]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from airlock.api.durations import parse_seconds
from airlock.sandbox.world import AdmissionMode, World, deployment, running_world, service, wait_for

ALICE = "alice@example.com"
THRESHOLD = 0.5


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


def _replicas(world: World, namespace: str) -> int:
    obj = world.api.get("Deployment", namespace, "chatbot-v7") or {}
    return int(obj.get("spec", {}).get("replicas", -1))


def _watch_zero(world: World, namespace: str, done: dict[str, float], stop: threading.Event) -> None:
    while not stop.is_set():
        if _replicas(world, namespace) == 0:
            done["t1"] = time.monotonic()
            return
        time.sleep(0.01)


def _setup(world: World, n: int, interval: str) -> tuple[str, str]:
    namespace, app = f"bench{n}", f"bot{n}"
    world.api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    world.model.add_app(namespace, app)
    world.api.create(deployment(namespace, "chatbot-v7", app, replicas=3))
    world.api.create(service(namespace, "chatbot", {"app": app}))
    world.api.create(system(namespace, app, interval))
    wait_for(
        f"{namespace} Healthy",
        lambda: ((world.api.get("AISystem", namespace, "chatbot") or {}).get("status") or {}).get("phase") == "Healthy",
        timeout=60,
    )
    return namespace, app


def automatic(world: World, n: int, interval: str) -> float:
    namespace, app = _setup(world, n, interval)
    done: dict[str, float] = {}
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_zero, args=(world, namespace, done, stop), daemon=True)
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
    if t0 is None or "t1" not in done:
        raise SystemExit(f"run {n}: breach or containment not observed")
    # Contained before the poller saw the breach in Prometheus: count as 0.
    return max(0.0, done["t1"] - t0)


def forced(world: World, n: int, interval: str) -> tuple[float, float]:
    """(time to contain, time the API server took to accept the annotation)."""
    namespace, _ = _setup(world, 1000 + n, interval)
    done: dict[str, float] = {}
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_zero, args=(world, namespace, done, stop), daemon=True)
    watcher.start()
    sent = time.monotonic()
    world.api.as_user(ALICE).annotate(
        "AISystem", namespace, "chatbot", {"airlock.dev/shutdown": "benchmark", "airlock.dev/requested-by": ALICE}
    )
    t0 = time.monotonic()
    watcher.join(timeout=30)
    stop.set()
    if "t1" not in done:
        raise SystemExit(f"forced run {n}: replicas never reached 0")
    return done["t1"] - t0, t0 - sent


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
    parser.add_argument("--admission", choices=[m.value for m in AdmissionMode if m is not AdmissionMode.HOOK],
                        default="none", help="the admission the API server runs with (default none)")  # fmt: skip
    args = parser.parse_args(argv)
    interval_s = parse_seconds(args.interval)
    with (
        tempfile.TemporaryDirectory(prefix="airlock-bench-") as tmp,
        running_world(Path(tmp), admission=args.admission) as world,
    ):
        auto = [automatic(world, n, args.interval) for n in range(args.runs)]
        force = [forced(world, n, args.interval) for n in range(args.runs)]
    result = {
        "interval_seconds": interval_s,
        "admission": args.admission,
        "automatic": summary(auto),
        "automatic_target_p95": interval_s + 1,
        "forced_shutdown": summary([contained for contained, _ in force]),
        "forced_target_p95": 1.0,
        "forced_annotation_accepted": summary([accepted for _, accepted in force]),
    }
    print(json.dumps(result, indent=2))
    ok = result["automatic"]["p95"] <= interval_s + 1 and result["forced_shutdown"]["p95"] <= 1.0
    print("PASS" if ok else "FAIL: a target was missed", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
