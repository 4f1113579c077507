"""Session set-up of the e2e tests: a kind cluster with airlock installed by its Helm chart.

Needs a Docker engine, kind, kubectl and helm. Where one is missing (this development machine
has no Docker engine and no kind) every test is skipped with the reason; they run in
.github/workflows/e2e.yaml. AIRLOCK_E2E_KEEP=1 keeps the cluster afterwards (and reuses an
existing one on the next run); AIRLOCK_E2E_ARTIFACTS names where logs go (default build/e2e).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness import (
    ALICE,
    APP,
    CLUSTER,
    IMAGE,
    MANIFESTS,
    MONITOR_INTERVAL,
    MONITORING_NAMESPACE,
    NAMESPACE,
    OPERATOR_NAMESPACE,
    REPLICAS,
    RESPONDER_GROUP,
    ROOT,
    SERVICE,
    TARGET,
    Cluster,
    missing_tools,
    run,
    wait_for,
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def e2e_tools() -> None:
    """Skip the whole session, saying why, unless docker, kind, kubectl and helm all answer."""
    problem = missing_tools()
    if problem:
        pytest.skip(f"e2e needs docker, kind, kubectl and helm ({problem}); they run in .github/workflows/e2e.yaml")


def support_chatbot() -> dict[str, Any]:
    """examples/support-chatbot.yaml, with its pii-leak monitor sped up for a test run.

    Same thresholds (SEV1 above 0.5/s at once: shutdown = reroute + scale to zero), same policy,
    responders and fallback; evaluated every MONITOR_INTERVAL seconds over a 20s rate window
    instead of every 15s over 1m.
    """
    system: dict[str, Any] = yaml.safe_load((ROOT / "examples" / "support-chatbot.yaml").read_text())
    assert system["metadata"]["namespace"] == NAMESPACE
    spec = system["spec"]
    assert spec["target"]["name"] == TARGET, "the example changed"
    assert spec["fallback"]["service"] == SERVICE, "the example changed"
    assert spec["params"]["app"] == APP
    (pii,) = [m for m in spec["monitors"] if m["name"] == "pii-leak"]
    pii["interval"] = f"{MONITOR_INTERVAL}s"
    pii["query"] = pii["query"].replace("[1m]", "[20s]")
    assert "[20s]" in pii["query"], pii["query"]
    return system


@pytest.fixture(scope="session")
def cluster(e2e_tools: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    keep = os.environ.get("AIRLOCK_E2E_KEEP") == "1"
    artifacts = Path(os.environ.get("AIRLOCK_E2E_ARTIFACTS") or ROOT / "build" / "e2e")
    kubeconfig = tmp_path_factory.mktemp("kind") / "kubeconfig"

    kube = Cluster(kubeconfig, artifacts)
    try:
        if CLUSTER in run("kind", "get", "clusters").stdout.split():
            kubeconfig.write_text(run("kind", "get", "kubeconfig", "--name", CLUSTER).stdout)
        else:
            run(
                "kind",
                "create",
                "cluster",
                "--name",
                CLUSTER,
                "--wait",
                "120s",
                "--kubeconfig",
                str(kubeconfig),
                timeout=600,
            )
        _install(kube)
        yield kube
    finally:
        if kubeconfig.exists():
            kube.collect_logs()
        if keep:
            print(f"AIRLOCK_E2E_KEEP=1: kind cluster {CLUSTER} kept (kind get kubeconfig --name {CLUSTER})")
        else:
            run("kind", "delete", "cluster", "--name", CLUSTER, check=False, timeout=300)


def _install(kube: Cluster) -> None:
    # The operator image, also the model server's: docker build from the repository's Dockerfile.
    run("docker", "build", "-t", IMAGE, ".", timeout=1200)
    run("kind", "load", "docker-image", IMAGE, "--name", CLUSTER, timeout=600)

    kube.apply((MANIFESTS / "monitoring.yaml").read_text())
    kube.apply((MANIFESTS / "workloads.yaml").read_text())
    # Restart what runs the image, in case a kept cluster has an older airlock:e2e loaded.
    kube.kubectl("rollout", "restart", "-n", NAMESPACE, "deploy/model-server")

    kube.helm(
        "upgrade",
        "--install",
        "airlock",
        "charts/airlock",
        "--namespace",
        OPERATOR_NAMESPACE,
        "--create-namespace",
        "--set",
        "image.repository=airlock",
        "--set",
        "image.tag=e2e",
        "--set",
        "image.pullPolicy=Never",
        "--set",
        f"prometheus.url=http://prometheus.{MONITORING_NAMESPACE}:9090",
        "--set",
        f"responderGroups={{{RESPONDER_GROUP}}}",
        "--set",
        "logLevel=DEBUG",
        "--wait",
        "--timeout",
        "5m",
    )
    kube.kubectl("rollout", "restart", "-n", OPERATOR_NAMESPACE, "deploy/airlock")
    for namespace, deployment in (
        (OPERATOR_NAMESPACE, "airlock"),
        (MONITORING_NAMESPACE, "prometheus"),
        (NAMESPACE, "model-server"),
        (NAMESPACE, TARGET),
        (NAMESPACE, "chatbot-fallback"),
    ):
        kube.kubectl("rollout", "status", "-n", namespace, f"deploy/{deployment}", "--timeout=300s")

    kube.apply((MANIFESTS / "people.yaml").read_text())
    # The CRDs came with the chart; the API server validates the policy and the system against them.
    kube.kubectl("apply", "-f", str(ROOT / "policies" / "llm-chatbot.yaml"))
    kube.apply(support_chatbot())


@pytest.fixture(scope="session")
def alice_kubeconfig(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Alice's own kubeconfig (a client certificate for alice@example.com in group oncall-ml)."""
    return cluster.user_kubeconfig(ALICE, [RESPONDER_GROUP], tmp_path_factory.mktemp("alice") / "kubeconfig")


@pytest.fixture
def healthy(cluster: Cluster) -> Cluster:
    """Each scenario starts from a healthy model: serving with 3 replicas behind the Service chatbot."""
    cluster.heal()
    wait_for("pii-leak monitor ok", lambda: cluster.monitor_state("pii-leak") == "ok", timeout=120, interval=2)
    status = cluster.status()
    assert not (status.get("containment") or {}).get("active"), f"a previous scenario left it contained: {status}"
    assert cluster.replicas() == REPLICAS
    assert cluster.selector() == {"app": APP}
    return cluster
