"""What admission costs a write on the sandbox API server (no operator, no Prometheus).

The sandbox evaluates the shipped ValidatingAdmissionPolicies on every write they match
(``airlock.sandbox._k8s_vap``, CEL in pure Python). This measures, over HTTP like any
client, the latency of three kinds of AISystem writes with and without the policies, with
the shipped ContainmentPolicies (``policies/*.yaml``) present (they are params of the
AISystem policy that reads their responders):

* **label**: a write the policies' matchConditions skip (most writes: status, labels, spec);
* **control**: a responder setting ``airlock.dev/drill`` with ``requested-by`` (every
  validation of the AISystem policy is evaluated);
* **refused**: a non-responder's ``airlock.dev/shutdown`` (evaluated, then refused).

    python benchmarks/admission.py [--writes 200] [--systems 50]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from airlock.sandbox import admission
from airlock.sandbox.cluster import ClusterThread
from airlock.sandbox.world import Api, load_crds

ALICE = "alice@example.com"
MALLORY = "mallory@example.com"
SHIPPED_POLICIES = sorted((Path(__file__).resolve().parents[1] / "policies").glob("*.yaml"))


def system(namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "airlock.dev/v1alpha1",
        "kind": "AISystem",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "target": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "monitors": [
                {
                    "name": "pii-leak",
                    "failureMode": "privacy",
                    "query": "sum(rate(pii_detections_total[1m]))",
                    "interval": "15s",
                    "thresholds": [{"severity": "SEV1", "op": ">", "value": 0.5}],
                }
            ],
            "severities": {"SEV1": {"response": "shutdown", "actions": ["scaleToZero"]}},
            "responders": [
                {"name": "oncall", "subjects": [{"kind": "User", "name": ALICE}], "may": ["shutdown", "drill"]}
            ],
        },
    }


def timed(action: Callable[[int], tuple[int, Any]], writes: int, expect: int) -> list[float]:
    seconds: list[float] = []
    for i in range(writes):
        started = time.perf_counter()
        status, body = action(i)
        seconds.append(time.perf_counter() - started)
        if status != expect:
            raise SystemExit(f"write {i}: expected {expect}, got {status}: {body}")
    return seconds


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"n": len(ordered), "p50_ms": round(statistics.median(ordered) * 1000, 2), "p95_ms": round(p95 * 1000, 2)}


def measure(policies: bool, writes: int, systems: int) -> dict[str, dict[str, float]]:
    with ClusterThread() as cluster:
        api = Api(cluster.url)
        load_crds(api)
        api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}})
        for path in SHIPPED_POLICIES:
            api.create(yaml.safe_load(path.read_text()))
        for i in range(systems):
            api.create(system("bench", f"s{i}"))
        if policies:
            for document in admission.shipped_policies():
                api.apply(document)
        alice, mallory = api.as_user(ALICE), api.as_user(MALLORY)

        def patch(who: Api, i: int, metadata: dict[str, Any]) -> tuple[int, Any]:
            path = who.path("AISystem", "bench", f"s{i % systems}")
            return who.request("PATCH", path, {"metadata": metadata}, "application/merge-patch+json")

        label = timed(lambda i: patch(mallory, i, {"labels": {"n": str(i)}}), writes, 200)
        control = timed(
            lambda i: patch(
                alice, i, {"annotations": {"airlock.dev/drill": f"t/{i}", "airlock.dev/requested-by": ALICE}}
            ),
            writes,
            200,
        )
        refused = timed(
            lambda i: patch(
                mallory, i, {"annotations": {"airlock.dev/shutdown": "x", "airlock.dev/requested-by": MALLORY}}
            ),
            writes,
            403 if policies else 200,
        )
    return {"label": summary(label), "control": summary(control), "refused": summary(refused)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writes", type=int, default=200, help="writes of each kind (default 200)")
    parser.add_argument("--systems", type=int, default=50, help="AISystems written to in turn (default 50)")
    args = parser.parse_args(argv)
    result: dict[str, Any] = {
        "containment_policies": len(SHIPPED_POLICIES),
        "no_admission": measure(False, args.writes, args.systems),
        "shipped_policies": measure(True, args.writes, args.systems),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
