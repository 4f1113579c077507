"""The main scenarios on a real cluster (kind), with airlock installed by its Helm chart.

The same stories as tests/integration/test_containment.py and tests/cli/test_control.py run on the
sandbox, here against a real API server (CRD schemas and CEL, RBAC, impersonation, the admission
webhooks over TLS with the chart's generated CA), the operator image, a real Prometheus scraping
the synthetic model server, and real Deployments and Services.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from harness import (
    ALICE,
    APP,
    MALLORY,
    MONITOR_INTERVAL,
    NAMESPACE,
    REPLICAS,
    RESPONDER_GROUP,
    SCRAPE_INTERVAL,
    SYSTEM,
    Cluster,
    wait_for,
)

FALLBACK = {"app": f"{APP}-fallback"}
# From the leak to scaled-to-zero: Prometheus needs a few scrapes before the 20s rate crosses 0.5/s
# (2/s injected), then at most one monitor interval, then the patches — "interval + 10s" plus the scrapes.
CONTAIN_WITHIN = MONITOR_INTERVAL + 10 + 3 * SCRAPE_INTERVAL


def _contained(cluster: Cluster) -> bool:
    return cluster.replicas() == 0 and cluster.selector() == FALLBACK


def test_a_pii_leak_is_contained_automatically(healthy: Cluster) -> None:
    cluster = healthy
    cluster.inject("privacy", rate=2)
    started = time.monotonic()
    wait_for("chatbot-v7 at 0 replicas and the Service on the fallback", lambda: _contained(cluster), timeout=60)
    elapsed = time.monotonic() - started
    print(f"contained {elapsed:.1f}s after the leak began")
    assert elapsed <= CONTAIN_WITHIN, f"contained after {elapsed:.1f}s, expected within {CONTAIN_WITHIN}s"

    status = wait_for("phase ShutDown", lambda: (s := cluster.status()).get("phase") == "ShutDown" and s, timeout=30)
    assert status["severity"] == "SEV1"
    assert status["containment"]["active"] is True
    assert status["containment"]["saved"]["replicas"] == REPLICAS
    assert status["containment"]["saved"]["selector"] == {"app": APP}
    incident = cluster.get("aiincident", status["incident"])
    assert incident["spec"]["severity"] == "SEV1"
    assert incident["spec"]["failureMode"] == "privacy"
    assert incident["status"]["phase"] == "Contained"
    assert incident["status"]["timeToContainSeconds"] is not None
    assert [e["type"] for e in incident["status"]["timeline"]][:2] == ["Detected", "Contained"]
    assert cluster.events("Contained"), "no Contained Event on the AISystem"

    # Put it back for the next scenario: the fix, then a release by Alice (a plain annotation; the CLI is
    # exercised in test_release_after_the_fix_restores_exactly).
    cluster.heal()
    wait_for("pii-leak monitor ok", lambda: cluster.monitor_state("pii-leak") == "ok", timeout=120, interval=2)
    cluster.kubectl(
        "annotate",
        "ais",
        SYSTEM,
        "-n",
        NAMESPACE,
        "--overwrite",
        f"airlock.dev/release=e2e-auto-{int(time.time())}",
        *cluster.as_user(ALICE, RESPONDER_GROUP),
    )
    wait_for("restored", lambda: cluster.replicas() == REPLICAS and cluster.selector() == {"app": APP}, timeout=60)


def test_an_authorized_responder_forces_a_shutdown(healthy: Cluster) -> None:
    cluster = healthy
    alice = cluster.as_user(ALICE, RESPONDER_GROUP)
    reason = "e2e: PII in answers"
    cluster.kubectl("annotate", "ais", SYSTEM, "-n", NAMESPACE, f"airlock.dev/shutdown={reason}", *alice)

    annotations = cluster.annotations()
    assert annotations["airlock.dev/shutdown"] == reason
    # Stamped by the mutating webhook from the request's userInfo, not written by the client.
    assert annotations["airlock.dev/requested-by"] == ALICE
    assert RESPONDER_GROUP in annotations["airlock.dev/requested-by-groups"].split(",")
    wait_for("chatbot-v7 at 0 replicas and the Service on the fallback", lambda: _contained(cluster), timeout=60)
    status = wait_for("phase ShutDown", lambda: (s := cluster.status()).get("phase") == "ShutDown" and s, timeout=30)
    assert status["containment"]["saved"]["replicas"] == REPLICAS
    assert cluster.get("aiincident", status["incident"])["status"]["phase"] == "Contained"

    # Alice lifts her hold: removing the annotation restores the saved state.
    cluster.kubectl("annotate", "ais", SYSTEM, "-n", NAMESPACE, "airlock.dev/shutdown-", *alice)
    wait_for("restored", lambda: cluster.replicas() == REPLICAS and cluster.selector() == {"app": APP}, timeout=60)


def test_someone_who_is_not_a_responder_is_refused_by_the_api_server(healthy: Cluster) -> None:
    cluster = healthy
    mallory = cluster.as_user(MALLORY)
    # RBAC lets her patch AISystems (the airlock-responder ClusterRole is bound to her) ...
    can = cluster.kubectl("auth", "can-i", "patch", "aisystems.airlock.dev", "-n", NAMESPACE, *mallory, check=False)
    assert can.stdout.strip() == "yes", can.stdout + can.stderr

    refused = cluster.kubectl(
        "annotate", "ais", SYSTEM, "-n", NAMESPACE, "airlock.dev/shutdown=looks odd to me", *mallory, check=False
    )
    # ... but the admission webhook asks the AISystem's responders, and she is not one.
    assert refused.returncode != 0
    assert "admission webhook" in refused.stderr, refused.stderr
    assert "denied the request" in refused.stderr, refused.stderr
    assert f"{MALLORY} may not shutdown" in refused.stderr
    assert f"user {ALICE}" in refused.stderr, "the refusal names who may"
    assert f"group {RESPONDER_GROUP}" in refused.stderr, "the refusal names who may"
    assert "airlock.dev/shutdown" not in cluster.annotations()
    time.sleep(MONITOR_INTERVAL + 2)  # nothing happens afterwards either
    assert cluster.replicas() == REPLICAS
    assert cluster.selector() == {"app": APP}
    assert cluster.status().get("phase") not in ("ShutDown", "Contained")


def test_release_after_the_fix_restores_exactly(healthy: Cluster, alice_kubeconfig: Path) -> None:
    cluster = healthy
    cluster.inject("privacy", rate=2)
    status = wait_for(
        "automatic ShutDown", lambda: (s := cluster.status()).get("phase") == "ShutDown" and s, timeout=60
    )
    assert _contained(cluster)

    # While the leak goes on, release is refused and nothing is restored.
    refused = cluster.airlock(alice_kubeconfig, "release", SYSTEM, "-n", NAMESPACE)
    output = refused.stdout + refused.stderr
    assert refused.returncode == 1, output
    assert "REFUSED by airlock" in output
    assert "pii-leak (SEV1" in output
    assert cluster.replicas() == 0

    # The fix: the leak stops; once the monitor is ok, Alice releases from her own terminal.
    cluster.heal()
    wait_for("pii-leak monitor ok", lambda: cluster.monitor_state("pii-leak") == "ok", timeout=120, interval=2)
    released = cluster.airlock(alice_kubeconfig, "release", SYSTEM, "-n", NAMESPACE)
    output = released.stdout + released.stderr
    assert released.returncode == 0, output
    assert re.search(r"^Released in \d+\.\ds", output, re.MULTILINE), output
    assert f"restored   Deployment chatbot-v7: {REPLICAS} replicas" in output

    assert cluster.replicas() == REPLICAS
    assert cluster.selector() == {"app": APP}
    target = cluster.get("deployment", "chatbot-v7")
    assert "airlock.dev/contained-by" not in (target["metadata"].get("annotations") or {})
    assert cluster.annotations()["airlock.dev/requested-by"] == ALICE
    wait_for(
        "incident Resolved",
        lambda: cluster.get("aiincident", status["incident"])["status"]["phase"] == "Resolved",
        timeout=30,
    )
