"""A whole airlock world on one machine: an API server, real Prometheus,
synthetic model server and the real operator process (``airlock run``).

Used by the integration tests, the benchmarks and ``airlock demo``.  Callers
talk to it the way a user would: manifests in; objects, Events and status out.
Polling is bounded; every wait says what it was waiting for.

The API server is the embedded sandbox by default. Given a kubeconfig
(``running_world(..., kubeconfig=path)``; the tests take it from
``AIRLOCK_TEST_KUBECONFIG``) the world uses that cluster instead — an existing
cluster, kind, or an envtest-style kube-apiserver + etcd: the CRDs are applied
server-side, the operator runs as a child process with that kubeconfig and serves
only this run's namespaces (``<prefix>-*``), and everything the world created
there (namespaces, cluster-scoped objects) is deleted when it stops. Prometheus
and the model server stay on this machine in both cases: only the operator and
the tests talk to the API server. Nothing assumes the cluster has no
controllers — Deployments may really get Pods.

A world runs with one of the admissions a cluster can have (:class:`AdmissionMode`): none
(the default), the Python authority hook, the shipped ValidatingAdmissionPolicies as the
Helm chart renders them, the operator's own webhook over HTTPS, or both. With any of them,
the operator runs as the chart's ServiceAccount (exempt from its own admission) and
``World.api`` as an administrator (``system:masters`` and the admin group).
On a cluster given by kubeconfig the world runs without admission (``SANDBOX_ONLY_ADMISSION``
says why for each mode): the shipped policies and the webhook are exercised on the sandbox.
"""

from __future__ import annotations

import builtins
import contextlib
import enum
import json
import os
import secrets
import signal
import socket
import ssl
import string
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

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
    "ClusterRole": ("/apis/rbac.authorization.k8s.io/v1", "clusterroles", False),
    "RoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "rolebindings", True),
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
FIELD_MANAGER = "airlock-tests"


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


# Why a world on a cluster given by kubeconfig runs without admission (running_world refuses the others).
SANDBOX_ONLY_ADMISSION = {
    AdmissionMode.HOOK: "the authority hook is Python code inside the sandbox API server",
    AdmissionMode.POLICY: (
        "the world acts as its test users with the sandbox's tokens (Api.as_user) and runs the operator as the "
        "chart's ServiceAccount; on a real cluster that takes impersonation and RBAC grants, which it does not make"
    ),
    AdmissionMode.WEBHOOK: "that cluster's API server would have to reach the operator's webhook on this machine",
    AdmissionMode.BOTH: "that cluster's API server would have to reach the operator's webhook on this machine",
}


class Api:
    """A minimal synchronous client for assertions (the operator uses its own).

    ``Api(url)`` talks plain HTTP to the sandbox; ``token`` (``token_for(user, groups)``) makes
    the sandbox see another caller (without one the caller is ``system:admin``).
    :meth:`from_kubeconfig` talks to any cluster with the kubeconfig's credentials (TLS, client
    certificates, tokens, exec plugins), through the ``kubernetes`` client's connection handling.
    """

    def __init__(self, url: str, token: str | None = None, *, client: Any = None) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self._client = client

    @classmethod
    def from_kubeconfig(cls, path: Path) -> Api:
        """A client with the kubeconfig's current context (its ``as``/``as-groups`` are not honoured)."""
        from kubernetes import config

        client = config.new_client_from_config(config_file=str(path))  # type: ignore[no-untyped-call]
        return cls(client.configuration.host, client=client)

    def as_user(self, username: str, groups: Sequence[str] = ()) -> Api:
        """The same API, called as ``username`` in ``groups`` (the sandbox's tokens).

        On a real cluster, act as someone through :meth:`World.user_kubeconfig` (impersonation).
        """
        if self._client is not None:
            raise RuntimeError(
                f"Api.as_user({username!r}) needs the sandbox's tokens; on a real cluster use World.user_kubeconfig"
            )
        return Api(self.url, token_for(username, list(groups)))

    def _send(self, method: str, path: str, body: Any, content_type: str, timeout: float = 10.0) -> tuple[int, str]:
        if self._client is None:
            data = json.dumps(body).encode() if body is not None else None
            request = urllib.request.Request(self.url + path, data=data, method=method)
            request.add_header("Content-Type", content_type)
            request.add_header("Accept", "application/json")
            if self.token:
                request.add_header("Authorization", f"Bearer {self.token}")
            try:
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    return response.status, response.read().decode()
            except urllib.error.HTTPError as exc:
                return exc.code, exc.read().decode()
        from kubernetes.client.exceptions import ApiException

        resource, _, query = path.partition("?")
        params = self._client.param_serialize(
            method=method,
            resource_path=resource,
            query_params=urllib.parse.parse_qsl(query),
            header_params={"Content-Type": content_type, "Accept": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = self._client.call_api(*params, _request_timeout=timeout)
            response.read()
            return int(response.status), (response.data or b"").decode()
        except ApiException as exc:
            return int(exc.status or 0), str(exc.body or "")

    def path(self, kind: str, namespace: str | None = None, name: str | None = None, sub: str | None = None) -> str:
        base, plural, namespaced = PATHS[kind]
        path = base + (f"/namespaces/{namespace}" if namespaced and namespace else "") + f"/{plural}"
        if name:
            path += f"/{name}"
        if sub:
            path += f"/{sub}"
        return path

    def request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> tuple[int, Any]:
        """(HTTP status, decoded body) without raising: for writes that may be refused."""
        status, text = self._send(method, path, body, content_type, timeout=15.0)
        try:
            return status, json.loads(text) if text else None
        except ValueError:
            return status, text

    def call(self, method: str, path: str, body: Any = None, content_type: str = "application/json") -> Any:
        status, text = self._send(method, path, body, content_type)
        if status == 404:
            return None
        if not 200 <= status < 300:
            raise AssertionError(f"{method} {path}: {status} {text[:300]}")
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

    def apply_server_side(self, obj: dict[str, Any]) -> dict[str, Any]:
        """``kubectl apply --server-side --force-conflicts`` of one object."""
        meta = obj["metadata"]
        path = self.path(obj["kind"], meta.get("namespace"), meta["name"])
        query = urllib.parse.urlencode({"fieldManager": FIELD_MANAGER, "force": "true"})
        result: dict[str, Any] = self.call("PATCH", f"{path}?{query}", obj, "application/apply-patch+yaml")
        return result

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
    """Register airlock's CRDs, generated from the models (``kubectl apply --server-side -f crds/``).

    Returns once the API server serves them (condition Established).
    """
    crds = crd_module.all_crds()
    for crd in crds:
        api.apply_server_side(crd)
    for crd in crds:
        name = crd["metadata"]["name"]
        wait_for(
            f"CRD {name} Established",
            lambda name=name: any(  # type: ignore[misc]
                c.get("type") == "Established" and c.get("status") == "True"
                for c in ((api.get("CustomResourceDefinition", None, name) or {}).get("status") or {}).get("conditions")
                or []
            ),
            timeout=30,
        )


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

    def __init__(
        self,
        kubeconfig: Path,
        prometheus_url: str,
        log_path: Path,
        extra: list[str] | None = None,
        namespaces: Iterable[str] = (),
    ) -> None:
        self.kubeconfig = kubeconfig
        self.prometheus_url = prometheus_url
        self.log_path = log_path
        self.extra = extra or []
        # Namespace names or globs to serve; none means all namespaces.
        self.namespaces = list(namespaces)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> OperatorProcess:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        command = [
            sys.executable,
            "-m",
            "airlock",
            "run",
            *([f"--namespace={pattern}" for pattern in self.namespaces] or ["--all-namespaces"]),
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


# What an on-call responder may do (the chart's airlock-responder ClusterRole,
# charts/airlock/templates/rbac.yaml): bound in a test's namespace to the people it acts as,
# so that commands run as them work where RBAC is enforced.
RESPONDER_RULES: list[dict[str, list[str]]] = [
    {
        "apiGroups": ["airlock.dev"],
        "resources": ["aisystems", "aiincidents"],
        "verbs": ["get", "list", "watch", "patch"],
    },
    {"apiGroups": ["airlock.dev"], "resources": ["containmentpolicies"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets"], "verbs": ["get"]},
    {"apiGroups": ["argoproj.io"], "resources": ["rollouts"], "verbs": ["get"]},
    {"apiGroups": ["serving.kserve.io"], "resources": ["inferenceservices"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["services"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["list"]},
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]},
]


def _run_prefix() -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "al-" + "".join(secrets.choice(alphabet) for _ in range(6))


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
    """Everything running: an API server, Prometheus, the model server and the operator.

    ``cluster`` is the sandbox (for its test-only powers: object history, admission hooks);
    it is None when the world runs on an external cluster (``external``).
    """

    cluster: ClusterThread | None
    api: Api
    kubeconfig: Path
    model: ModelServer
    prometheus: PrometheusProcess
    operator: OperatorProcess
    directory: Path
    admission: AdmissionMode = AdmissionMode.NONE
    webhook: OperatorWebhook | None = None
    prefix: str = field(default_factory=_run_prefix)
    external: bool = False
    _namespaces: list[str] = field(default_factory=list)
    _cluster_scoped: list[tuple[str, str]] = field(default_factory=list)

    def namespace(self, label: str) -> str:
        """This run's name for a namespace (all of them start with ``prefix``: the operator serves those)."""
        return f"{self.prefix}-{label}"

    def create_namespace(self, label: str) -> str:
        """Create this run's namespace ``label`` (deleted again by :meth:`delete_namespace` or at the end)."""
        name = self.namespace(label)
        self.api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        self._namespaces.append(name)
        return name

    def delete_namespace(self, name: str) -> None:
        """Delete a namespace of this run, with everything in it (on a real cluster; see KNOWN_GAPS)."""
        with contextlib.suppress(AssertionError):
            self.api.delete("Namespace", None, name)
        if name in self._namespaces:
            self._namespaces.remove(name)

    def create_cluster_scoped(self, obj: dict[str, Any], *, keep_existing: bool = False) -> dict[str, Any] | None:
        """Create a cluster-scoped object that the world deletes when it stops.

        With ``keep_existing``, an object that is already there (a real Argo Rollouts CRD, say) is
        left alone and not deleted later; returns None then.
        """
        name = obj["metadata"]["name"]
        if keep_existing and self.api.get(obj["kind"], None, name) is not None:
            return None
        created = self.api.create(obj)
        self._cluster_scoped.append((obj["kind"], name))
        return created

    def grant_responder(self, namespace: str, users: Iterable[str] = (), groups: Iterable[str] = ()) -> None:
        """Let these people act as responders in ``namespace`` as far as RBAC goes (admission decides the rest)."""
        role = f"{self.prefix}-responder"
        if ("ClusterRole", role) not in self._cluster_scoped:
            self.create_cluster_scoped(
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "ClusterRole",
                    "metadata": {"name": role},
                    "rules": RESPONDER_RULES,
                }
            )
        subjects = [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": u} for u in users]
        subjects += [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g} for g in groups]
        self.api.create(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": f"responders-{len(subjects)}-{secrets.token_hex(3)}", "namespace": namespace},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                "subjects": subjects,
            }
        )

    def user_kubeconfig(self, path: Path, user: str, groups: Iterable[str] = (), namespace: str = "default") -> Path:
        """A kubeconfig that acts as ``user`` (in ``groups``): a sandbox token, or impersonation on a real cluster."""
        if self.cluster is not None:
            return self.cluster.write_kubeconfig(path, user=user, groups=groups, namespace=namespace)
        config = yaml.safe_load(self.kubeconfig.read_text())
        current = config.get("current-context")
        context = next(c for c in config.get("contexts") or [] if c.get("name") == current)["context"]
        context["namespace"] = namespace
        for entry in config.get("users") or []:
            if entry.get("name") == context.get("user"):
                entry["user"]["as"] = user
                if groups:
                    entry["user"]["as-groups"] = list(groups)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)
        return path

    def clean_up(self) -> None:
        """Delete what this run created on an external cluster (namespaces first, then cluster-scoped objects)."""
        if not self.external:
            return
        for name in list(self._namespaces):
            self.delete_namespace(name)
        for kind, name in reversed(self._cluster_scoped):
            with contextlib.suppress(AssertionError):
                self.api.delete(kind, None, name)
        self._cluster_scoped.clear()

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
    kubeconfig: Path | None = None,
    start_operator: bool = True,
    serving_crds: bool = False,
    scrape_targets: list[str] | None = None,
    scrape_interval: str = "1s",
    admission: AdmissionMode | str = AdmissionMode.NONE,
    admin_groups: Sequence[str] = authority.DEFAULT_ADMIN_GROUPS,
) -> Iterator[World]:
    """Start a world in ``directory`` (logs, kubeconfig, Prometheus data) and stop it on exit.

    Without ``kubeconfig`` the API server is a new sandbox; with one, that cluster (see the module docstring).
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
    if kubeconfig is not None and mode is not AdmissionMode.NONE:
        raise ValueError(f"admission={mode.value} runs on the sandbox only: {SANDBOX_ONLY_ADMISSION[mode]}")
    cluster: ClusterThread | None = None
    if kubeconfig is None:
        sandbox = SandboxCluster()
        if mode is AdmissionMode.HOOK:
            sandbox_admission.install(sandbox, admin_groups=admin_groups, operator=OPERATOR_USERNAME)
        cluster = ClusterThread(sandbox).start()
    model = ModelServer(apps=())
    prometheus: PrometheusProcess | None = None
    operator: OperatorProcess | None = None
    world: World | None = None
    prefix = _run_prefix()
    try:
        args = list(operator_args or [])
        webhook: OperatorWebhook | None = None
        if cluster is not None:
            secured = mode is not AdmissionMode.NONE
            setup_groups = list(dict.fromkeys(["system:masters", *admin_groups]))
            setup_token = token_for(SETUP_USERNAME, setup_groups) if secured else None
            api = Api(cluster.url, setup_token)
            config = cluster.write_kubeconfig(directory / "kubeconfig", token=setup_token)
            operator_config = config
            namespaces: list[str] = []
            if secured:
                operator_config = cluster.write_kubeconfig(
                    directory / "operator.kubeconfig", user=OPERATOR_USERNAME, groups=OPERATOR_GROUPS
                )
                args += [
                    *(f"--admin-group={group}" for group in admin_groups),
                    f"--operator-username={OPERATOR_USERNAME}",
                ]
        else:
            assert kubeconfig is not None
            config = operator_config = Path(kubeconfig)
            api = Api.from_kubeconfig(config)
            namespaces = [f"{prefix}-*"]
        load_crds(api)
        if serving_crds:
            serving.install(api)
        if mode.policies:
            for document in sandbox_admission.shipped_policies(admin_groups=admin_groups, operator=OPERATOR_USERNAME):
                api.apply(document)
        if mode.webhook:
            webhook = OperatorWebhook(free_port(), directory / "webhook-ca.pem")
            args += webhook.arguments()
        model.start()
        prometheus = PrometheusProcess(
            [model.target, *(scrape_targets or [])],
            data_dir=directory / "prometheus",
            scrape_interval=scrape_interval,
            evaluation_interval=scrape_interval,
        )
        prometheus.start()
        operator = OperatorProcess(operator_config, prometheus.url, directory / "operator.log", args, namespaces)
        if start_operator:
            operator.start()
        if webhook is not None:
            webhook.register(api, operator)
        prometheus.wait_for_scrape(timeout=30, targets=[model.target])  # the others may start later
        world = World(
            cluster,
            api,
            config,
            model,
            prometheus,
            operator,
            directory,
            admission=mode,
            webhook=webhook,
            prefix=prefix,
            external=cluster is None,
        )
        yield world
    finally:
        if world is not None:
            world.clean_up()
        if operator is not None:
            operator.stop()
        if prometheus is not None:
            prometheus.close()
        model.stop()
        if cluster is not None:
            cluster.stop()
