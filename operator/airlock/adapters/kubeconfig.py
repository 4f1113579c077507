"""Where the Kubernetes API is and how to authenticate: kubeconfig or in-cluster.

One loader for the operator (also handed to Kopf) and the CLI, so
``--kubeconfig``/``--context`` and ``KUBECONFIG`` mean the same everywhere.
Exec and auth-provider plugins beyond a static token are out of scope.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class ConfigError(Exception):
    """No usable cluster configuration."""


@dataclass(frozen=True)
class ClusterConfig:
    server: str
    token: str | None = None
    # In-cluster tokens are rotated by the kubelet: read the file on every use.
    token_path: str | None = None
    ca_path: str | None = None
    insecure: bool = False
    cert_path: str | None = None
    key_path: str | None = None
    namespace: str = "default"
    impersonate: str | None = None
    impersonate_groups: tuple[str, ...] = ()

    def ssl_context(self) -> ssl.SSLContext | bool:
        if not self.server.startswith("https"):
            return False
        if self.insecure:
            return False
        context = ssl.create_default_context(cafile=self.ca_path) if self.ca_path else ssl.create_default_context()
        if self.cert_path and self.key_path:
            context.load_cert_chain(self.cert_path, self.key_path)
        return context

    def headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        token = Path(self.token_path).read_text().strip() if self.token_path else self.token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def impersonation(self) -> list[tuple[str, str]]:
        """``Impersonate-*`` headers (repeated for each group, so not a dict)."""
        if not self.impersonate:
            return []
        return [("Impersonate-User", self.impersonate), *(("Impersonate-Group", g) for g in self.impersonate_groups)]


def _materialise(data: str | None, suffix: str) -> str | None:
    # aiohttp/ssl want files; kubeconfigs often carry base64 data inline.
    if not data:
        return None
    handle = tempfile.NamedTemporaryFile(prefix="airlock-", suffix=suffix, delete=False)  # noqa: SIM115
    with handle:
        handle.write(base64.b64decode(data))
    return handle.name


def load(kubeconfig: str | None = None, context: str | None = None) -> ClusterConfig:
    """Load from ``kubeconfig`` (or ``$KUBECONFIG``, ``~/.kube/config``), else in-cluster."""
    path = kubeconfig or os.environ.get("KUBECONFIG")
    if not path and Path("~/.kube/config").expanduser().exists():
        path = "~/.kube/config"
    if path:
        return _from_kubeconfig(path, context)
    if (SA_DIR / "token").exists() and os.environ.get("KUBERNETES_SERVICE_HOST"):
        return _in_cluster()
    raise ConfigError("no kubeconfig found (set KUBECONFIG or --kubeconfig) and not running in a cluster")


def _from_kubeconfig(paths: str, context_name: str | None) -> ClusterConfig:
    contexts: dict[str, Any] = {}
    clusters: dict[str, Any] = {}
    users: dict[str, Any] = {}
    current: str | None = None
    for raw in paths.split(os.pathsep):
        if not raw:
            continue
        path = Path(raw).expanduser()
        try:
            config = yaml.safe_load(path.read_text()) or {}
        except OSError as exc:
            raise ConfigError(f"cannot read kubeconfig {path}: {exc}") from None
        current = current or config.get("current-context")
        for key, target in (("contexts", contexts), ("clusters", clusters), ("users", users)):
            for item in config.get(key) or []:
                target.setdefault(item["name"], item.get(key[:-1]) or {})
    name = context_name or current
    if not name or name not in contexts:
        raise ConfigError(f"kubeconfig context {name!r} not found")
    context = contexts[name]
    cluster = clusters.get(context.get("cluster"), {})
    user = users.get(context.get("user"), {})
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = Path(user["tokenFile"]).read_text().strip()
    return ClusterConfig(
        server=str(cluster.get("server", "")).rstrip("/"),
        token=token,
        ca_path=cluster.get("certificate-authority") or _materialise(cluster.get("certificate-authority-data"), ".crt"),
        insecure=bool(cluster.get("insecure-skip-tls-verify", False)),
        cert_path=user.get("client-certificate") or _materialise(user.get("client-certificate-data"), ".crt"),
        key_path=user.get("client-key") or _materialise(user.get("client-key-data"), ".key"),
        namespace=context.get("namespace") or "default",
        impersonate=user.get("as") or None,
        impersonate_groups=tuple(user.get("as-groups") or ()),
    )


def _in_cluster() -> ClusterConfig:
    host = os.environ["KUBERNETES_SERVICE_HOST"]
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if ":" in host:
        host = f"[{host}]"
    namespace_file = SA_DIR / "namespace"
    return ClusterConfig(
        server=f"https://{host}:{port}",
        token_path=str(SA_DIR / "token"),
        ca_path=str(SA_DIR / "ca.crt"),
        namespace=namespace_file.read_text().strip() if namespace_file.exists() else "default",
    )
