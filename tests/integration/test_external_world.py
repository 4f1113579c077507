"""The real-cluster path of the integration world, with a sandbox standing in for the external cluster.

``AIRLOCK_TEST_KUBECONFIG`` makes the world talk to a cluster it did not start. Here that cluster
is a sandbox API server reached only through its kubeconfig, as kind or envtest would be: CRDs
applied server-side, the operator serving only this run's namespaces (another namespace's
system is left alone, as on a shared cluster), responders acting through impersonation, and
everything the run created deleted when it stops.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from airlock.sandbox.cluster import ClusterThread
from airlock.sandbox.world import World, deployment, running_world, service, wait_for
from tests.fixtures.cluster import kubectl_binary
from tests.integration import checks
from tests.integration.systems import ALICE, chatbot

pytestmark = [
    pytest.mark.integration,
    pytest.mark.sandbox_only("the real-cluster path's own test: a sandbox stands in for the external cluster"),
]


@pytest.fixture(scope="module")
def outside() -> Iterator[ClusterThread]:
    with ClusterThread() as cluster:
        yield cluster


@pytest.fixture(scope="module")
def world(outside: ClusterThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    directory = tmp_path_factory.mktemp("external")
    config = outside.write_kubeconfig(directory / "external.kubeconfig")
    with running_world(directory / "world", kubeconfig=config) as world:
        yield world


def test_the_world_uses_the_given_cluster_and_serves_only_its_namespaces(outside: ClusterThread, world: World) -> None:
    assert world.external
    assert world.cluster is None
    assert world.api.url == outside.url
    # The CRDs were applied server-side, by a named field manager.
    assert outside.get_object("customresourcedefinitions", None, "aisystems.airlock.dev") is not None

    ns = world.create_namespace("contain")
    app = "ext-bot"
    world.model.add_app(ns, app)
    world.api.create(deployment(ns, "chatbot-v7", app, replicas=3))
    world.api.create(service(ns, "chatbot", {"app": app}))
    world.api.create(chatbot(ns, app))
    # Someone else's namespace on the same cluster: not this run's, never touched.
    world.api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "someone-else"}})
    world.model.add_app("someone-else", app)
    world.api.create(deployment("someone-else", "chatbot-v7", app, replicas=3))
    world.api.create(chatbot("someone-else", app))

    checks.wait_phase(world, ns, "Healthy", timeout=30)
    world.model.inject((ns, app), "privacy", rate=2.0)
    world.model.inject(("someone-else", app), "privacy", rate=2.0)
    checks.wait_phase(world, ns, "ShutDown", timeout=20)
    assert checks.replicas(world, "Deployment", ns, "chatbot-v7") == 0
    assert checks.status(world, "someone-else") == {}
    assert checks.replicas(world, "Deployment", "someone-else", "chatbot-v7") == 3


def test_responders_act_through_impersonation(world: World, tmp_path: Path) -> None:
    ns = world.create_namespace("who")
    world.grant_responder(ns, users=[ALICE], groups=["oncall-ml"])
    config = world.user_kubeconfig(tmp_path / "alice", ALICE, ["oncall-ml"], namespace=ns)
    # As the API server sees kubectl (and `kubectl airlock`) with that kubeconfig.
    whoami = subprocess.run(
        [str(kubectl_binary()), f"--kubeconfig={config}", "auth", "whoami", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    user = json.loads(whoami.stdout)["status"]["userInfo"]
    assert user["username"] == ALICE
    assert "oncall-ml" in user["groups"]
    bindings = world.api.call("GET", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings")["items"]
    assert [s["name"] for s in bindings[0]["subjects"]] == [ALICE, "oncall-ml"]
    assert bindings[0]["roleRef"]["name"] == f"{world.prefix}-responder"


def test_what_the_run_created_is_deleted_when_it_stops(outside: ClusterThread, tmp_path: Path) -> None:
    config = outside.write_kubeconfig(tmp_path / "external.kubeconfig")
    with running_world(tmp_path / "world", kubeconfig=config) as world:
        ns = world.create_namespace("temporary")
        world.grant_responder(ns, users=[ALICE])
        prefix = world.prefix
        wait_for("operator started", lambda: world.operator.alive())
    assert outside.get_object("namespaces", None, ns) is None
    assert outside.get_object("clusterroles", None, f"{prefix}-responder") is None
    # Shared definitions stay: other runs (and the cluster's owner) rely on them.
    assert outside.get_object("customresourcedefinitions", None, "aisystems.airlock.dev") is not None
