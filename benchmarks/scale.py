"""Scale (SPEC §6, §10): N AISystems × 3 shared monitors at 15 s on one leader (default 1,000; target 10,000).

Measures, after every system has been evaluated once:
* overruns: ``airlock_evaluation_overruns_total`` (a cycle starting > 1 s after its due time): target 0;
* Prometheus queries per interval (``airlock_provider_queries_total``): must stay 3 —
  one vector query per shared monitor — whatever the number of systems;
* the operator's peak RSS (``/proc/PID/status`` VmRSS, sampled every 0.5 s from its start,
  through the creation of every system): target ≤ 500 MiB;
* every evaluation cycle's duration (``airlock_evaluation_cycle_seconds``, read each second:
  one cycle per read, so each duration is exact): mean and p95;
* API calls per cycle: every request the sandbox API server received during the measured
  window (only the operator talks to it then) divided by the cycles.

The operator runs as a separate process with leader election (the chart's default), like
one replica of the chart; Prometheus scrapes the model server every 5 s (a 10,000-app
exposition is 190,000 series).

    python benchmarks/scale.py [--systems 1000] [--duration 120] [--no-leader-elect]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import re
import socket
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from airlock.sandbox.world import World, running_world, wait_for

MATCH = {"namespace": "{{ namespace }}", "app": "{{ params.app }}"}
POLICY: dict[str, Any] = {
    "apiVersion": "airlock.dev/v1alpha1",
    "kind": "ContainmentPolicy",
    "metadata": {"name": "scale-chatbot"},
    "spec": {
        "monitors": [
            {
                "name": "error-burst",
                "failureMode": "sudden",
                "query": 'sum by (namespace, app) (rate(model_requests_total{code="500"}[1m])) '
                "/ sum by (namespace, app) (rate(model_requests_total[1m]))",
                "match": MATCH,
                "interval": "15s",
                "noData": "ok",
                "thresholds": [{"severity": "SEV2", "op": ">", "value": 0.2}],
            },
            {
                "name": "pii-leak",
                "failureMode": "privacy",
                "query": "sum by (namespace, app) (rate(pii_detections_total[1m]))",
                "match": MATCH,
                "interval": "15s",
                "thresholds": [{"severity": "SEV1", "op": ">", "value": 0.5}],
            },
            {
                "name": "harmful-output",
                "failureMode": "safety",
                "query": "sum by (namespace, app) (rate(harmful_output_total[1m])) "
                "/ sum by (namespace, app) (rate(answer_total[1m]))",
                "match": MATCH,
                "interval": "15s",
                "thresholds": [{"severity": "SEV1", "op": ">", "value": 0.05}],
            },
        ],
        "severities": {
            "SEV1": {"response": "shutdown", "actions": ["scaleToZero"]},
            "SEV2": {"response": "escalate", "actions": ["pauseRollout"], "ackWithin": "15m"},
        },
    },
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _metrics(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        match = re.match(r"^(airlock_[a-z_]+(?:\{[^}]*\})?) ([0-9.e+-]+)$", line)
        if match:
            values[match.group(1)] = float(match.group(2))
    return values


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _system(n: int) -> dict[str, Any]:
    return {
        "apiVersion": "airlock.dev/v1alpha1",
        "kind": "AISystem",
        "metadata": {"name": f"bot{n}", "namespace": f"team{n % 50}"},
        "spec": {
            "policyRef": {"name": "scale-chatbot"},
            "target": {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"bot{n}"},
            "params": {"app": f"bot{n}"},
        },
    }


def _evaluated(world: World, count: int, port: int) -> bool:
    """Every system evaluated: as many monitor evaluations as monitors, and a sample of them Healthy.

    Not by listing every AISystem: serialising 10,000 objects every few seconds would make the
    benchmark itself the API server's heaviest client.
    """
    evaluations = sum(v for k, v in _metrics(port).items() if k.startswith("airlock_evaluations_total"))
    if evaluations < 3 * count:
        return False
    sample = random.Random(count).sample(range(count), min(count, 20))
    return all(
        ((world.api.get("AISystem", f"team{n % 50}", f"bot{n}") or {}).get("status") or {}).get("phase") == "Healthy"
        for n in sample
    )


class RssSampler(threading.Thread):
    """The operator's resident memory every 0.5 s until stopped: the peak of the whole run."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0.0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            with contextlib.suppress(OSError):
                self.peak = max(self.peak, _rss_mib(self.pid))
            self.stopping.wait(0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--systems", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=120.0)
    parser.add_argument("--no-leader-elect", action="store_true", help="run the operator without leader election")
    parser.add_argument("--max-rss-mib", type=float, default=500.0)
    parser.add_argument("--workdir", type=Path, default=None, help="keep the operator's log here")
    args = parser.parse_args(argv)
    port = _free_port()
    operator_args = ["--metrics-port", str(port), "--status-refresh", "60"]
    if not args.no_leader_elect:
        operator_args += ["--leader-elect", "--lease-namespace", "airlock-system"]
    with (
        tempfile.TemporaryDirectory(prefix="airlock-scale-") as tmp,
        running_world(args.workdir or Path(tmp), operator_args, scrape_interval="5s") as world,
    ):
        assert world.operator.process is not None
        sampler = RssSampler(world.operator.process.pid)
        sampler.start()
        for n in range(args.systems):
            world.model.add_app(f"team{n % 50}", f"bot{n}")
        world.api.apply(POLICY)
        started = time.monotonic()
        for n in range(args.systems):
            world.api.create(_system(n))
        created = time.monotonic() - started
        wait_for(
            f"{args.systems} systems Healthy",
            lambda: _evaluated(world, args.systems, port),
            timeout=600,
            interval=5.0,
        )
        ready = time.monotonic() - started
        before = _metrics(port)
        requests_before = world.cluster.call(lambda: world.cluster.cluster.requests_served)
        cycles: list[float] = []
        last = before
        end = time.monotonic() + args.duration
        while time.monotonic() < end:
            time.sleep(1.0)
            now = _metrics(port)
            done = now["airlock_evaluation_cycle_seconds_count"] - last["airlock_evaluation_cycle_seconds_count"]
            spent = now["airlock_evaluation_cycle_seconds_sum"] - last["airlock_evaluation_cycle_seconds_sum"]
            if done:
                cycles.extend([spent / done] * int(done))  # one per second in practice: exact
            last = now
        requests = world.cluster.call(lambda: world.cluster.cluster.requests_served) - requests_before
        after = _metrics(port)
        sampler.stopping.set()
    intervals = args.duration / 15.0
    queries = after["airlock_provider_queries_total"] - before["airlock_provider_queries_total"]
    overruns = after["airlock_evaluation_overruns_total"] - before["airlock_evaluation_overruns_total"]
    ordered = sorted(cycles)
    result = {
        "systems": args.systems,
        "monitors_per_system": 3,
        "interval_seconds": 15,
        "leader_elect": not args.no_leader_elect,
        "create_seconds": round(created, 1),
        "all_evaluated_seconds": round(ready, 1),
        "measured_seconds": args.duration,
        "overruns": overruns,
        "prometheus_queries_per_interval": round(queries / intervals, 2),
        "peak_rss_mib": round(sampler.peak, 1),
        "cycles": len(ordered),
        "mean_cycle_seconds": round(statistics.fmean(ordered), 3) if ordered else None,
        "p95_cycle_seconds": round(ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))], 3)
        if ordered
        else None,
        "api_calls_per_cycle": round(requests / len(ordered), 1) if ordered else None,
    }
    print(json.dumps(result, indent=2))
    ok = overruns == 0 and sampler.peak <= args.max_rss_mib and result["prometheus_queries_per_interval"] <= 3.5
    print("PASS" if ok else "FAIL: a target was missed", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
