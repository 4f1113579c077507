"""Fixtures for integration tests: one world per module, one namespace per test."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from airlock.sandbox.cluster import ClusterThread
from airlock.sandbox.model import ModelServer
from airlock.sandbox.prometheus import PrometheusProcess
from tests.integration.world import Api, OperatorProcess, load_crds

_counter = itertools.count(1)


@dataclass
class World:
    cluster: ClusterThread
    api: Api
    kubeconfig: Path
    model: ModelServer
    prometheus: PrometheusProcess
    operator: OperatorProcess
    tmp: Path


@contextlib.contextmanager
def running_world(tmp: Path) -> Iterator[World]:
    """Start a whole world in ``tmp``; stop everything on exit (printing the operator's log tail)."""
    cluster = ClusterThread().start()
    api = Api(cluster.url)
    load_crds(api)
    kubeconfig = cluster.write_kubeconfig(tmp / "kubeconfig")
    model = ModelServer(apps=())
    model.start()
    prometheus = PrometheusProcess([model.target], data_dir=tmp / "prometheus")
    prometheus.start()
    operator = OperatorProcess(kubeconfig, prometheus.url, tmp / "operator.log").start()
    try:
        prometheus.wait_for_scrape(timeout=30)
        yield World(cluster, api, kubeconfig, model, prometheus, operator, tmp)
    finally:
        operator.stop()
        prometheus.close()
        model.stop()
        cluster.stop()
        log = tmp / "operator.log"
        if log.exists():
            print("---- operator log (tail) ----")
            print("\n".join(log.read_text(errors="replace").splitlines()[-60:]))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with running_world(tmp_path_factory.mktemp("world")) as world:
        yield world


@dataclass
class Tenant:
    """A namespace and model app of one test: tests in a module never see each other's objects."""

    namespace: str
    app: str


@pytest.fixture
def tenant(world: World) -> Tenant:
    n = next(_counter)
    tenant = Tenant(namespace=f"t{n}-ml", app=f"chatbot{n}")
    world.api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": tenant.namespace}})
    world.model.add_app(tenant.namespace, tenant.app)
    return tenant
