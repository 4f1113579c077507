"""Failover (issue 14, SPEC §10): the leader is killed during a breach; how long until the target is contained?

Two ``airlock run --leader-elect`` replicas (the chart's defaults: lease 4 s,
renew deadline 3 s, retry 0.5 s) against the sandbox API server, a real
Prometheus and the synthetic model server.  Each trial:

1. a fresh AISystem (one PII monitor at ``--interval``, SEV1 → reroute +
   scale to zero, internal notices to a local webhook receiver) is Healthy;
2. a PII leak starts; the leader is sent SIGKILL at a moment drawn uniformly
   from [0, interval + 2 s) after the leak starts — before or after it acted;
3. t0 is the first moment the monitor's own query, asked of Prometheus by a
   50 ms poller, shows the breach; t1 the first moment a 10 ms poller sees
   ``spec.replicas: 0`` at the API server.  The figure is t1 − t0;
4. checked: exactly one incident; every notice delivered to the receiver
   exactly once per idempotency key, and one ``opened`` notice; after the leak
   ends, a release restores 3 replicas and the original Service selector
   exactly and resolves the incident; the killed replica is started again and
   comes back as the standby.

Target: p95 ≤ lease duration + one monitor interval + 1 s (10 s at 5 s).

    python benchmarks/failover.py [--trials 20] [--interval 5s] [--seed 1]
"""

from __future__ import annotations

import argparse
import base64
import collections
import contextlib
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from airlock.api.durations import parse_seconds
from airlock.sandbox.receiver import Receiver
from airlock.sandbox.replicas import OPERATOR_NAMESPACE, Replica, start_replica
from airlock.sandbox.world import World, deployment, running_world, service, wait_for

ALICE = "alice@example.com"
THRESHOLD = 0.5
HMAC_KEY = "failover-benchmark"
LEASE_DURATION = 4.0


def _query(namespace: str, app: str) -> str:
    return f'sum(rate(pii_detections_total{{namespace="{namespace}",app="{app}"}}[3s]))'


def _system(namespace: str, app: str, interval: str, receiver: Receiver) -> dict[str, Any]:
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
            "severities": {
                "SEV1": {"response": "shutdown", "actions": ["reroute", "scaleToZero"], "notify": ["internal"]}
            },
            "notifications": {
                "channels": [
                    {
                        "name": "ops",
                        "type": "webhook",
                        "url": f"{receiver.url}/webhook",
                        "secretRef": {"name": "airlock-notify"},
                    }
                ]
            },
            "responders": [
                {"name": "oncall", "subjects": [{"kind": "User", "name": ALICE}], "may": ["shutdown", "release"]}
            ],
        },
    }


def _get(world: World, kind: str, namespace: str, name: str) -> dict[str, Any]:
    return world.api.get(kind, namespace, name) or {}


def _replicas(world: World, namespace: str) -> int:
    return int(_get(world, "Deployment", namespace, "chatbot-v7").get("spec", {}).get("replicas", -1))


def _leader(replicas: dict[str, Replica]) -> Replica:
    def one() -> Replica | None:
        roles = {name: r.role() for name, r in replicas.items()}
        leaders = [replicas[n] for n, role in roles.items() if role == "leader"]
        return leaders[0] if len(leaders) == 1 and all(roles.values()) else None

    found: Replica = wait_for("one leader, the other standby", one, timeout=30)
    return found


def trial(
    world: World, replicas: dict[str, Replica], receiver: Receiver, n: int, interval: str, rng: random.Random
) -> dict[str, Any]:
    namespace, app = f"failover{n}", f"bot{n}"
    api = world.api
    api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    secret = base64.b64encode(HMAC_KEY.encode()).decode()
    api.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "airlock-notify", "namespace": namespace},
            "data": {"hmacKey": secret},
        }
    )
    world.model.add_app(namespace, app)
    api.create(deployment(namespace, "chatbot-v7", app, replicas=3))
    api.create(service(namespace, "chatbot", {"app": app}))
    api.create(_system(namespace, app, interval, receiver))
    wait_for(
        f"{namespace} Healthy",
        lambda: (_get(world, "AISystem", namespace, "chatbot").get("status") or {}).get("phase") == "Healthy",
        timeout=60,
    )
    leader = _leader(replicas)
    standby = next(r for r in replicas.values() if r is not leader)

    t1: dict[str, float] = {}

    def watch_zero() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if _replicas(world, namespace) == 0:
                t1["at"] = time.monotonic()
                return
            time.sleep(0.01)

    watcher = threading.Thread(target=watch_zero, daemon=True)
    watcher.start()
    kill_after = rng.uniform(0.0, parse_seconds(interval) + 2.0)
    leaked = time.monotonic()
    world.model.inject((namespace, app), "privacy", rate=2.0)
    killed: float | None = None
    t0: float | None = None
    query = _query(namespace, app)
    deadline = leaked + 60
    while time.monotonic() < deadline and (t0 is None or killed is None):
        now = time.monotonic()
        if killed is None and now - leaked >= kill_after:
            leader.process.kill()
            killed = time.monotonic()
        if t0 is None:
            value = world.prometheus.query_value(query)
            if value is not None and value > THRESHOLD:
                t0 = time.monotonic()
        time.sleep(0.05 if t0 is None else max(0.0, min(0.05, leaked + kill_after - time.monotonic())))
    watcher.join(timeout=60)
    if t0 is None or killed is None or "at" not in t1:
        raise SystemExit(f"trial {n}: breach, kill or containment not observed")
    contained = t1["at"]
    ttc = max(0.0, contained - t0)
    before_kill = contained < killed
    by = {r.user for r in world.cluster.audit(since=leaked) if r.write and r.path.endswith("/chatbot-v7/scale")}

    # The survivor takes over (within a lease duration of the kill), then the killed replica comes
    # back: it must come back as the standby. (Restarting it first would let the two race for the
    # lease when the kill came late, just before this point.)
    wait_for("the other replica leads", lambda: standby.role() == "leader", timeout=30)
    leader.process.start()
    wait_for("the restarted replica answers as standby", lambda: leader.role() == "standby", timeout=30)

    incidents = [
        i
        for i in (api.list("AIIncident", namespace) or [])
        if i["spec"]["system"] == "chatbot" and not i["spec"].get("drill")
    ]
    incident = incidents[0]["metadata"]["name"] if len(incidents) == 1 else None
    wait_for("the opened notice delivered", lambda: _deliveries(receiver, incident or "-"), timeout=30)

    # Release: the leak ends, the monitor is ok again, a responder releases; exact restore.
    world.model.heal((namespace, app))
    wait_for("the leak over in Prometheus", lambda: not world.prometheus.query_value(query), timeout=30)
    over = time.time()

    def evaluated_ok() -> bool:
        monitors = (_get(world, "AISystem", namespace, "chatbot").get("status") or {}).get("monitors") or [{}]
        stamp = monitors[0].get("lastEvaluated") or "1970-01-01T00:00:00Z"
        when = time.mktime(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
        return monitors[0].get("state") == "ok" and when > over

    wait_for("the monitor evaluated ok after the leak", evaluated_ok, timeout=30)
    api.annotate("AISystem", namespace, "chatbot", {"airlock.dev/release": f"r{n}", "airlock.dev/requested-by": ALICE})
    wait_for("3 replicas again", lambda: _replicas(world, namespace) == 3, timeout=30)

    def selector() -> Any:
        return _get(world, "Service", namespace, "chatbot").get("spec", {}).get("selector")

    # The scale is restored first, the Service right after: allow the second write to land.
    with contextlib.suppress(AssertionError):
        wait_for("the original selector", lambda: selector() == {"app": app}, timeout=10)
    resolved = wait_for(
        "incident Resolved",
        lambda: (_get(world, "AIIncident", namespace, incident or "-").get("status") or {}).get("phase") == "Resolved",
        timeout=30,
    )
    time.sleep(2.0)  # the follow-ups loop announces the resolution
    deliveries = _deliveries(receiver, incident or "-")
    per_key = collections.Counter(deliveries)
    return {
        "trial": n,
        "kill_after_leak_s": round(kill_after, 2),
        "killed_before_containment": not before_kill,
        "seconds": round(ttc, 3),
        "contained_by": sorted(by),
        "incidents": len(incidents),
        "notices_distinct": len(per_key),
        "notices_repeated": sum(c - 1 for c in per_key.values()),
        "opened_notices": sum(1 for k in per_key if k.endswith("/opened")),
        "restored_exactly": _replicas(world, namespace) == 3 and selector() == {"app": app} and bool(resolved),
    }


def _deliveries(receiver: Receiver, incident: str) -> list[str]:
    """Accepted webhook deliveries for ``incident``: one ``<key>/<event>`` per request."""
    found = []
    for record in receiver.received("/webhook"):
        body = record.json or {}
        if record.accepted and body.get("incident") == incident:
            found.append(f"{record.header('Idempotency-Key')}/{body.get('event')}")
    return found


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
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--interval", default="5s")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=None, help="keep logs here (default: a temporary directory)")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    interval = parse_seconds(args.interval)
    target = LEASE_DURATION + interval + 1.0
    with (
        tempfile.TemporaryDirectory(prefix="airlock-failover-") as tmp,
        Receiver(hmac_key=HMAC_KEY) as receiver,
        running_world(args.workdir or Path(tmp), start_operator=False) as world,
    ):
        world.api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OPERATOR_NAMESPACE}})
        replicas = {name: start_replica(world, name) for name in ("airlock-a", "airlock-b")}
        try:
            trials = [trial(world, replicas, receiver, n, args.interval, rng) for n in range(args.trials)]
        finally:
            for replica in replicas.values():
                replica.process.stop()
    failovers = [t["seconds"] for t in trials if t["killed_before_containment"]]
    result = {
        "interval_seconds": interval,
        "lease_duration_seconds": LEASE_DURATION,
        "all_trials": summary([t["seconds"] for t in trials]),
        "killed_before_containment": summary(failovers) if failovers else None,
        "target_p95": target,
        "duplicate_incidents": sum(1 for t in trials if t["incidents"] != 1),
        "repeated_notice_deliveries": sum(t["notices_repeated"] for t in trials),
        "trials_with_other_than_one_opened_notice": sum(1 for t in trials if t["opened_notices"] != 1),
        "not_restored_exactly": sum(1 for t in trials if not t["restored_exactly"]),
        "trials": trials,
    }
    print(json.dumps(result, indent=2))
    ok = (
        result["all_trials"]["p95"] <= target
        and result["duplicate_incidents"] == 0
        and result["trials_with_other_than_one_opened_notice"] == 0
        and result["not_restored_exactly"] == 0
    )
    print("PASS" if ok else "FAIL: a target was missed", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
