"""A whole airlock world on one machine: sandbox API server, real Prometheus,
synthetic model server and the real operator process (``airlock run``).

Used by the integration tests, the benchmarks and ``airlock demo``.  Callers
talk to it the way a user would: manifests in; objects, Events and status out.
Polling is bounded; every wait says what it was waiting for.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airlock.api import crd as crd_module
from airlock.sandbox.cluster import ClusterThread
from airlock.sandbox.model import ModelServer
from airlock.sandbox.prometheus import PrometheusProcess

PATHS = {
    "AISystem": ("/apis/airlock.dev/v1alpha1", "aisystems", True),
    "AIIncident": ("/apis/airlock.dev/v1alpha1", "aiincidents", True),
    "ContainmentPolicy": ("/apis/airlock.dev/v1alpha1", "containmentpolicies", False),
    "Deployment": ("/apis/apps/v1", "deployments", True),
    "StatefulSet": ("/apis/apps/v1", "statefulsets", True),
    "Rollout": ("/apis/argoproj.io/v1alpha1", "rollouts", True),
    "Service": ("/api/v1", "services", True),
    "ConfigMap": ("/api/v1", "configmaps", True),
    "Secret": ("/api/v1", "secrets", True),
    "Event": ("/api/v1", "events", True),
    "NetworkPolicy": ("/apis/networking.k8s.io/v1", "networkpolicies", True),
    "ScaledObject": ("/apis/keda.sh/v1alpha1", "scaledobjects", True),
    "CustomResourceDefinition": ("/apis/apiextensions.k8s.io/v1", "customresourcedefinitions", False),
    "Namespace": ("/api/v1", "namespaces", False),
}


class Api:
    """A minimal synchronous client for assertions (the operator uses its own)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def path(self, kind: str, namespace: str | None = None, name: str | None = None, sub: str | None = None) -> str:
        base, plural, namespaced = PATHS[kind]
        path = base + (f"/namespaces/{namespace}" if namespaced and namespace else "") + f"/{plural}"
        if name:
            path += f"/{name}"
        if sub:
            path += f"/{sub}"
        return path

    def call(self, method: str, path: str, body: Any = None, content_type: str = "application/json") -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", content_type)
        request.add_header("Accept", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                text = response.read().decode()
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise AssertionError(f"{method} {path}: {exc.code} {exc.read().decode()[:300]}") from None
        return json.loads(text) if text else None

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        result: dict[str, Any] | None = self.call("GET", self.path(kind, namespace, name))
        return result

    def list(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        result = self.call("GET", self.path(kind, namespace)) or {}
        items: list[dict[str, Any]] = result.get("items") or []
        return items

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        namespace = obj.get("metadata", {}).get("namespace")
        result: dict[str, Any] = self.call("POST", self.path(obj["kind"], namespace), obj)
        return result

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create, or merge-patch if it exists (like `kubectl apply` for our purposes)."""
        meta = obj["metadata"]
        existing = self.get(obj["kind"], meta.get("namespace"), meta["name"])
        if existing is None:
            return self.create(obj)
        result: dict[str, Any] = self.call(
            "PATCH", self.path(obj["kind"], meta.get("namespace"), meta["name"]), obj, "application/merge-patch+json"
        )
        return result

    def patch(self, kind: str, namespace: str | None, name: str, body: Any, sub: str | None = None) -> Any:
        return self.call("PATCH", self.path(kind, namespace, name, sub), body, "application/merge-patch+json")

    def delete(self, kind: str, namespace: str | None, name: str) -> None:
        self.call("DELETE", self.path(kind, namespace, name))

    def annotate(self, kind: str, namespace: str, name: str, annotations: dict[str, str | None]) -> Any:
        return self.patch(kind, namespace, name, {"metadata": {"annotations": annotations}})

    def events(self, namespace: str, name: str | None = None) -> builtins.list[dict[str, Any]]:
        events = self.list("Event", namespace)
        return [e for e in events if name is None or e.get("involvedObject", {}).get("name") == name]


def wait_for(what: str, check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` and the last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}"[:2000])


def load_crds(api: Api) -> None:
    """Register airlock's CRDs, generated from the models (the same as ``kubectl apply -f crds/``)."""
    for crd in crd_module.all_crds():
        api.apply(crd)


def deployment(namespace: str, name: str, app: str, replicas: int = 3) -> dict[str, Any]:
    labels = {"app": app, "track": "model"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "model", "image": "example/model:v7"}]},
            },
        },
    }


def service(namespace: str, name: str, selector: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": dict(selector), "ports": [{"port": 80, "targetPort": 8080}]},
    }


class OperatorProcess:
    """``airlock run`` as a child process, stoppable gracefully or with SIGKILL."""

    def __init__(self, kubeconfig: Path, prometheus_url: str, log_path: Path, extra: list[str] | None = None) -> None:
        self.kubeconfig = kubeconfig
        self.prometheus_url = prometheus_url
        self.log_path = log_path
        self.extra = extra or []
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> OperatorProcess:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        command = [
            sys.executable,
            "-m",
            "airlock",
            "run",
            "--all-namespaces",
            "--prometheus-url",
            self.prometheus_url,
            "--metrics-port",
            "0",
            "--health-port",
            "0",
            "--status-refresh",
            "1",
            "--prometheus-timeout",
            "2",
            *self.extra,
        ]
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        return self

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class World:
    """Everything running: the sandbox API server, Prometheus, the model server and the operator."""

    cluster: ClusterThread
    api: Api
    kubeconfig: Path
    model: ModelServer
    prometheus: PrometheusProcess
    operator: OperatorProcess
    directory: Path


@contextlib.contextmanager
def running_world(
    directory: Path,
    operator_args: list[str] | None = None,
    *,
    start_operator: bool = True,
    scrape_interval: str = "1s",
) -> Iterator[World]:
    """Start a world in ``directory`` (logs, kubeconfig, Prometheus data) and stop it on exit.

    ``start_operator=False`` leaves ``world.operator`` unstarted, for worlds that run
    their own replicas (:mod:`airlock.sandbox.replicas`).
    """
    directory.mkdir(parents=True, exist_ok=True)
    cluster = ClusterThread().start()
    model = ModelServer(apps=())
    prometheus: PrometheusProcess | None = None
    operator: OperatorProcess | None = None
    try:
        api = Api(cluster.url)
        load_crds(api)
        kubeconfig = cluster.write_kubeconfig(directory / "kubeconfig")
        model.start()
        prometheus = PrometheusProcess(
            [model.target], data_dir=directory / "prometheus", scrape_interval=scrape_interval
        )
        prometheus.start()
        operator = OperatorProcess(kubeconfig, prometheus.url, directory / "operator.log", operator_args)
        if start_operator:
            operator.start()
        prometheus.wait_for_scrape(timeout=30)
        yield World(cluster, api, kubeconfig, model, prometheus, operator, directory)
    finally:
        if operator is not None:
            operator.stop()
        if prometheus is not None:
            prometheus.close()
        model.stop()
        cluster.stop()
