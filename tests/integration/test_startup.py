"""On start, no AISystem is planned before the ContainmentPolicies are known (no spurious InvalidSpec)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import kmock
import pytest
import yaml

from airlock.sandbox.cluster import ClusterThread
from airlock.sandbox.world import Api, OperatorProcess, deployment, load_crds, service, wait_for
from tests.integration.systems import chatbot

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
NS = "ml-prod"


@pytest.fixture
def cluster() -> Iterator[ClusterThread]:
    with ClusterThread() as running:
        yield running


def test_systems_wait_for_the_policies_initial_list(cluster: ClusterThread, tmp_path: Path) -> None:
    api = Api(cluster.url)
    load_crds(api)
    api.create(yaml.safe_load((ROOT / "policies" / "llm-chatbot.yaml").read_text()))
    api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    api.create(deployment(NS, "chatbot-v7", "chatbot"))
    api.create(service(NS, "chatbot", {"app": "chatbot"}))
    for n in range(3):
        system = chatbot(NS, "chatbot", name=f"chatbot-{n}", monitors=[], extra={"policyRef": {"name": "llm-chatbot"}})
        api.create(system)

    async def slow_list() -> None:
        # A real API server with many policies, or a slow one: the policies' list arrives after the systems'.
        await asyncio.sleep(1.5)

    def delay_policy_lists() -> None:
        cluster.cluster["list", kmock.resource("airlock.dev", "v1alpha1", "containmentpolicies")] << slow_list

    cluster.call(delay_policy_lists)
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    operator = OperatorProcess(kubeconfig, "http://127.0.0.1:9", tmp_path / "operator.log").start()
    try:
        for n in range(3):
            wait_for(
                f"chatbot-{n} planned",
                lambda n=n: (api.get("AISystem", NS, f"chatbot-{n}") or {}).get("status", {}).get("monitors"),
                timeout=30,
            )
    finally:
        operator.stop()
    invalid = [e["message"] for e in api.events(NS) if e["reason"] == "InvalidSpec"]
    assert invalid == [], operator.log_tail()
    for n in range(3):
        status = (api.get("AISystem", NS, f"chatbot-{n}") or {})["status"]
        assert status["phase"] != "Invalid"
        assert {m["name"] for m in status["monitors"]} >= {"pii-leak", "error-burst"}  # the policy's monitors
