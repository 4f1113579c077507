"""A whole airlock world on one machine: sandbox API server, real Prometheus,
synthetic model server and the real operator process (``airlock run``).

Used by the integration tests, the benchmarks and ``airlock demo``.  Callers
talk to it the way a user would: manifests in; objects, Events and status out.
Polling is bounded; every wait says what it was waiting for.

A world runs with one of the admissions a cluster can have (:class:`AdmissionMode`): none
(the default), the Python authority hook, the shipped ValidatingAdmissionPolicies as the
Helm chart renders them, the operator's own webhook over HTTPS, or both. With any of them,
the operator runs as the chart's ServiceAccount (exempt from its own admission) and
``World.api`` as an administrator (``system:masters`` and the admin group).
"""

from __future__ import annotations

import builtins
import contextlib
import enum
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airlock.api import crd as crd_module
from airlock.domain import authority
from airlock.sandbox import admission as sandbox_admission
from airlock.sandbox import serving
from airlock.sandbox.cluster import ClusterThread, SandboxCluster, token_for
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
    "ValidatingAdmissionPolicy": ("/apis/admissionregistration.k8s.io/v1", "validatingadmissionpolicies", False),
    "ValidatingAdmissionPolicyBinding": (
        "/apis/admissionregistration.k8s.io/v1",
        "validatingadmissionpolicybindings",
        False,
    ),
    "MutatingWebhookConfiguration": ("/apis/admissionregistration.k8s.io/v1", "mutatingwebhookconfigurations", False),
    "ValidatingWebhookConfiguration": (
        "/apis/admissionregistration.k8s.io/v1",
        "validatingwebhookconfigurations",
        False,
    ),
    **serving.PATHS,
}


class AdmissionMode(enum.StrEnum):
    """Which admission the world's API server runs with."""

    NONE = "none"  # nothing checks writes: the operator's own re-checks are all there is
    HOOK = "hook"  # the Python authority hook (airlock.sandbox.admission.AuthorityHook)
    POLICY = "policy"  # the shipped ValidatingAdmissionPolicies, evaluated by the sandbox
    WEBHOOK = "webhook"  # the operator's webhook (airlock run --webhook-port), called over HTTPS
    BOTH = "both"  # the policies and the webhook, as the chart installs them with admissionPolicy.enabled

    @property
    def policies(self) -> bool:
        return self in (AdmissionMode.POLICY, AdmissionMode.BOTH)

    @property
    def webhook(self) -> bool:
        return self in (AdmissionMode.WEBHOOK, AdmissionMode.BOTH)


# Who the operator is with any admission (the chart's ServiceAccount in namespace airlock-system).
OPERATOR_USERNAME = authority.DEFAULT_OPERATOR
OPERATOR_GROUPS = ("system:serviceaccounts", "system:serviceaccounts:airlock-system")
# Who sets the world up with any admission: an administrator, in the admin group like a GitOps controller.
SETUP_USERNAME = "system:admin"


class Api:
    """A minimal synchronous client for assertions (the operator uses its own).

    ``token`` (``token_for(user, groups)``) makes the sandbox see another caller; without one
    the caller is ``system:admin``.
    """

    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.token = token

    def as_user(self, username: str, groups: Sequence[str] = ()) -> Api:
        """The same API, called as ``username`` in ``groups``."""
        return Api(self.url, token_for(username, list(groups)))

    def path(self, kind: str, namespace: str | None = None, name: str | None = None, sub: str | None = None) -> str:
        base, plural, namespaced = PATHS[kind]
        path = base + (f"/namespaces/{namespace}" if namespaced and namespace else "") + f"/{plural}"
        if name:
            path += f"/{name}"
        if sub:
            path += f"/{sub}"
        return path

    def _request(self, method: str, path: str, body: Any, content_type: str) -> urllib.request.Request:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", content_type)
        request.add_header("Accept", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        return request

    def request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> tuple[int, Any]:
        """(HTTP status, decoded body) without raising: for writes that may be refused."""
        try:
            with urllib.request.urlopen(self._request(method, path, body, content_type), timeout=15) as response:
                text = response.read().decode()
                return response.status, json.loads(text) if text else None
        except urllib.error.HTTPError as exc:
            text = exc.read().decode()
            try:
                return exc.code, json.loads(text) if text else None
            except ValueError:
                return exc.code, text

    def call(self, method: str, path: str, body: Any = None, content_type: str = "application/json") -> Any:
        request = self._request(method, path, body, content_type)
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


def free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class OperatorWebhook:
    """The operator's admission webhook (``airlock run --webhook-port``), registered with the sandbox."""

    port: int
    ca_file: Path

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def arguments(self) -> list[str]:
        return [
            f"--webhook-port={self.port}",
            "--webhook-addr=127.0.0.1",
            f"--webhook-ca-dump={self.ca_file}",
        ]

    def wait_ready(self, operator: OperatorProcess, timeout: float = 30.0) -> bytes:
        """The CA the operator dumped, once its server answers TLS with a certificate of that CA."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if not operator.alive():
                raise AssertionError(f"the operator exited before its webhook came up:\n{operator.log_tail()}")
            try:
                pem = self.ca_file.read_bytes()
                context = ssl.create_default_context(cadata=pem.decode("ascii"))
                with (
                    socket.create_connection(("127.0.0.1", self.port), timeout=2) as raw,
                    context.wrap_socket(raw, server_hostname="127.0.0.1"),
                ):
                    return pem
            except (OSError, ValueError, ssl.SSLError) as error:
                last = error
            time.sleep(0.05)
        raise AssertionError(f"the operator's webhook did not come up in {timeout}s ({last!r}):\n{operator.log_tail()}")

    def register(self, api: Api, operator: OperatorProcess) -> None:
        """Install ``policies/admission/webhook.yaml`` (chart-rendered) pointing here, with the current CA."""
        pem = self.wait_ready(operator)
        for document in sandbox_admission.shipped_webhooks(self.url, pem, operator=OPERATOR_USERNAME):
            api.apply(document)


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
    admission: AdmissionMode = AdmissionMode.NONE
    webhook: OperatorWebhook | None = field(default=None)

    def restart_operator(self) -> None:
        """Stop and start the operator; its webhook (a new self-signed CA) is registered again."""
        self.operator.stop()
        if self.webhook is not None:
            self.webhook.ca_file.unlink(missing_ok=True)
        self.operator.start()
        if self.webhook is not None:
            self.webhook.register(self.api, self.operator)


@contextlib.contextmanager
def running_world(
    directory: Path,
    operator_args: list[str] | None = None,
    *,
    start_operator: bool = True,
    serving_crds: bool = False,
    scrape_targets: list[str] | None = None,
    scrape_interval: str = "1s",
    admission: AdmissionMode | str = AdmissionMode.NONE,
    admin_groups: Sequence[str] = authority.DEFAULT_ADMIN_GROUPS,
) -> Iterator[World]:
    """Start a world in ``directory`` (logs, kubeconfig, Prometheus data) and stop it on exit.

    ``serving_crds``: the cluster serves KServe, Gateway API and Istio kinds from the start
    (``airlock.sandbox.serving``); without it they can be installed later, as on a real cluster.
    ``scrape_targets``: more ``host:port`` for Prometheus besides the model server (e.g. an
    ``airlock guard`` started later on a port chosen up front).
    ``admission``: what the API server enforces (:class:`AdmissionMode`), with ``admin_groups``.
    ``start_operator=False`` leaves ``world.operator`` unstarted, for worlds that run their own
    replicas (:mod:`airlock.sandbox.replicas`).
    """
    mode = AdmissionMode(admission)
    directory.mkdir(parents=True, exist_ok=True)
    sandbox = SandboxCluster()
    if mode is AdmissionMode.HOOK:
        sandbox_admission.install(sandbox, admin_groups=admin_groups, operator=OPERATOR_USERNAME)
    cluster = ClusterThread(sandbox).start()
    model = ModelServer(apps=())
    prometheus: PrometheusProcess | None = None
    operator: OperatorProcess | None = None
    try:
        secured = mode is not AdmissionMode.NONE
        setup_groups = list(dict.fromkeys(["system:masters", *admin_groups]))
        setup_token = token_for(SETUP_USERNAME, setup_groups) if secured else None
        api = Api(cluster.url, setup_token)
        load_crds(api)
        if serving_crds:
            serving.install(api)
        kubeconfig = cluster.write_kubeconfig(directory / "kubeconfig", token=setup_token)
        args = list(operator_args or [])
        operator_kubeconfig = kubeconfig
        if secured:
            operator_kubeconfig = cluster.write_kubeconfig(
                directory / "operator.kubeconfig", user=OPERATOR_USERNAME, groups=OPERATOR_GROUPS
            )
            args += [*(f"--admin-group={group}" for group in admin_groups), f"--operator-username={OPERATOR_USERNAME}"]
        if mode.policies:
            for document in sandbox_admission.shipped_policies(admin_groups=admin_groups, operator=OPERATOR_USERNAME):
                api.apply(document)
        webhook = OperatorWebhook(free_port(), directory / "webhook-ca.pem") if mode.webhook else None
        if webhook is not None:
            args += webhook.arguments()
        model.start()
        prometheus = PrometheusProcess(
            [model.target, *(scrape_targets or [])],
            data_dir=directory / "prometheus",
            scrape_interval=scrape_interval,
            evaluation_interval=scrape_interval,
        )
        prometheus.start()
        operator = OperatorProcess(operator_kubeconfig, prometheus.url, directory / "operator.log", args)
        if start_operator:
            operator.start()
        if webhook is not None:
            webhook.register(api, operator)
        prometheus.wait_for_scrape(timeout=30, targets=[model.target])  # the others may start later
        yield World(cluster, api, kubeconfig, model, prometheus, operator, directory, mode, webhook)
    finally:
        if operator is not None:
            operator.stop()
        if prometheus is not None:
            prometheus.close()
        model.stop()
        cluster.stop()
