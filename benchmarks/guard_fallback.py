"""Time from the first leaking answer to airlock guard serving the fallback (issue 12 "Numbers").

The real pipeline on the sandbox world: a customer asks every ``--every`` seconds through
``airlock guard`` (cross-customer: redact) in front of the synthetic model's chat; a
``privacy`` failure makes the model quote other customers' data; the guard redacts and
counts it; Prometheus scrapes the guard (``--scrape``, 1 s); the operator's monitor (``--interval``) breaches
SEV1 and shuts the system down (reroute, scale to zero) and writes ``ShutDown``; the guard,
watching its AISystem, answers from the fallback model.

Per run, from the client's first answer with ``[REDACTED:`` (the first leaking answer), to:

* **fallback**: the first answer served by the fallback (``X-Airlock-Route: fallback``);
* **status**: ``ShutDown`` seen at the API server by a 10 ms poller;
* **zero**: ``spec.replicas == 0`` seen by the same poller.

``fallback - status`` is the guard's own share (the watch push and the next request).
Target: fallback p95 <= 1 s.

    python benchmarks/guard_fallback.py [--runs 10] [--interval 1s] [--scrape 1s] [--every 0.02]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from airlock.sandbox.guarded import ChatClient, GuardProcess
from airlock.sandbox.world import World, deployment, running_world, service, wait_for

NS, NAME, APP = "bench", "chatbot", "chatbot"
ONCALL = "alice@example.com"


def system(interval: str) -> dict[str, Any]:
    return {
        "apiVersion": "airlock.dev/v1alpha1",
        "kind": "AISystem",
        "metadata": {"name": NAME, "namespace": NS},
        "spec": {
            "target": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "chatbot-v7"},
            "fallback": {"service": "chatbot", "selector": {"app": "chatbot-fallback"}},
            "monitors": [
                {
                    "name": "pii-leak",
                    "failureMode": "privacy",
                    "query": (
                        'sum(rate(airlock_guard_detections_total{namespace="{{ namespace }}",system="{{ name }}",'
                        'detector="cross-customer"}[5s]))'
                    ),
                    "interval": interval,
                    "thresholds": [{"severity": "SEV1", "op": ">", "value": 0}],
                }
            ],
            "severities": {"SEV1": {"response": "shutdown", "actions": ["reroute", "scaleToZero"]}},
            "responders": [
                {"name": "oncall", "subjects": [{"kind": "User", "name": ONCALL}], "may": ["shutdown", "release"]}
            ],
        },
    }


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


class Poller(threading.Thread):
    """Notes when the API server first shows ShutDown and replicas 0 (10 ms polls)."""

    def __init__(self, world: World) -> None:
        super().__init__(daemon=True)
        self.world = world
        self.status: float | None = None
        self.zero: float | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        api = self.world.api
        while not self.stop.is_set() and (self.status is None or self.zero is None):
            now = time.monotonic()
            if (
                self.status is None
                and ((api.get("AISystem", NS, NAME) or {}).get("status") or {}).get("phase") == "ShutDown"
            ):
                self.status = now
            if self.zero is None and (api.get("Deployment", NS, "chatbot-v7") or {})["spec"]["replicas"] == 0:
                self.zero = now
            time.sleep(0.01)


def one_run(world: World, client: ChatClient, release: int) -> dict[str, float]:
    poller = Poller(world)
    poller.start()
    since = time.monotonic()
    world.model.inject((NS, APP), "privacy")
    first = wait_for(
        "a leaking answer",
        lambda: next((a for a in client.seen() if a.at > since and "[REDACTED:" in a.text), None),
        30,
    )
    fallback = wait_for(
        "the fallback",
        lambda: next((a for a in client.seen() if a.at > first.at and a.route == "fallback"), None),
        30,
    )
    wait_for("ShutDown and zero replicas", lambda: poller.status is not None and poller.zero is not None, 30)
    assert poller.status is not None
    assert poller.zero is not None
    result = {
        "fallback": fallback.at - first.at,
        "status": poller.status - first.at,
        "zero": poller.zero - first.at,
    }
    world.model.heal((NS, APP))
    phase = lambda: (world.api.get("AISystem", NS, NAME) or {}).get("status") or {}  # noqa: E731
    wait_for("monitor ok", lambda: (phase().get("monitors") or [{}])[0].get("state") == "ok", 60)
    world.api.annotate(
        "AISystem", NS, NAME, {"airlock.dev/release": f"bench-{release}", "airlock.dev/requested-by": ONCALL}
    )
    wait_for("Healthy", lambda: phase().get("phase") == "Healthy", 30)
    back = time.monotonic()
    wait_for(
        "the guard on the model again", lambda: any(a.at > back and a.route == "upstream" for a in client.seen()), 30
    )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--interval", default="1s", help="the monitor's interval (default 1s)")
    parser.add_argument("--every", type=float, default=0.02, help="seconds between the client's requests")
    parser.add_argument("--scrape", default="1s", help="Prometheus' scrape interval (default 1s)")
    parser.add_argument("--keep", default=None, metavar="DIR")
    args = parser.parse_args()
    directory = Path(args.keep or tempfile.mkdtemp(prefix="airlock-guard-fallback-"))
    directory.mkdir(parents=True, exist_ok=True)
    guard = GuardProcess(
        kubeconfig=directory / "kubeconfig",
        system=f"{NS}/{NAME}",
        upstream="",
        log_path=directory / "guard.log",
        config={"detectors": {"cross-customer": "redact", "pii": "redact"}},
        extra=["--log-level", "WARNING"],
    )
    results: list[dict[str, float]] = []
    with running_world(directory, scrape_targets=[guard.metrics_target], scrape_interval=args.scrape) as world:
        api = world.api
        api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        world.model.add_app(NS, APP)
        world.model.add_app(NS, "chatbot-fallback", fallback=True)
        api.create(deployment(NS, "chatbot-v7", APP, replicas=3))
        api.create(service(NS, "chatbot", {"app": APP}))
        api.apply(system(args.interval))
        guard.upstream = world.model.chat_url(NS, APP)
        guard.fallback = world.model.chat_url(NS, "chatbot-fallback")
        guard.start()
        try:
            wait_for("guard ready", guard.ready, 30)
            wait_for(
                "Healthy",
                lambda: ((api.get("AISystem", NS, NAME) or {}).get("status") or {}).get("phase") == "Healthy",
                60,
            )
            with ChatClient(guard.url, interval=args.every, stream_every=0) as client:
                for run in range(args.runs):
                    result = one_run(world, client, run)
                    results.append(result)
                    print(
                        f"run {run + 1:2}: fallback {result['fallback']:.3f} s, status {result['status']:.3f} s, "
                        f"zero replicas {result['zero']:.3f} s (guard's share {result['fallback'] - result['status']:.3f} s)",
                        flush=True,
                    )
        finally:
            guard.stop()
    print(
        f"\n{len(results)} runs, monitor interval {args.interval}, Prometheus scrape {args.scrape}, "
        f"a request every {args.every} s"
    )
    for key in ("fallback", "status", "zero"):
        values = [r[key] for r in results]
        print(f"  {key:9} p50 {statistics.median(values):.3f} s  p95 {pct(values, 95):.3f} s  max {max(values):.3f} s")
    share = [r["fallback"] - r["status"] for r in results]
    print(f"  guard's share (fallback - status): p50 {statistics.median(share):.3f} s  p95 {pct(share, 95):.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
