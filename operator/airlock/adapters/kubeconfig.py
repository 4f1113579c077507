"""Where the Kubernetes API is and how to authenticate: kubeconfig or in-cluster.

One loader for the operator (also handed to Kopf) and the CLI, so
``--kubeconfig``/``--context`` and ``KUBECONFIG`` mean the same everywhere, and
the same as to kubectl:

- ``KUBECONFIG`` may list several files; the first file to define a context,
  cluster or user wins, and the first ``current-context`` wins;
- relative ``certificate-authority``, ``client-certificate``, ``client-key``,
  ``tokenFile`` and exec ``command`` paths are relative to the directory of the
  file that holds them, not to the working directory;
- a missing or unreadable file is a :class:`ConfigError` naming the kubeconfig,
  the entry and the field — never a traceback.

Key material stays in memory.  Inline ``*-data`` (and an exec plugin's client
certificate) is decoded into memory and handed to OpenSSL through an anonymous
memory file (``memfd_create``, read back as ``/proc/self/fd/N``) that is closed
as soon as the SSL context holds it: nothing is written to a disk.  Where there
is no memfd (not Linux), a 0600 temporary file is removed right after loading.

Authentication supported: bearer ``token`` and ``tokenFile`` (re-read on every
request, like the in-cluster token the kubelet rotates), client certificates
(files or inline data), ``client.authentication.k8s.io`` exec credential
plugins (``aws eks get-token``, ``gke-gcloud-auth-plugin``, ``kubelogin`` …:
run without a terminal, the credential cached until its
``expirationTimestamp``), impersonation (``as``/``as-groups``).  Not supported,
refused with a clear error: ``auth-provider`` (removed from kubectl in 1.26;
use the provider's exec plugin) and basic auth (``username``/``password``).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime
import json
import os
import ssl
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
# A credential is fetched again this long before it expires.
EXEC_REFRESH_MARGIN = datetime.timedelta(seconds=60)
EXEC_TIMEOUT = 60.0


class ConfigError(Exception):
    """No usable cluster configuration."""


@dataclass(frozen=True)
class ExecPlugin:
    """A kubeconfig user's ``exec`` credential plugin."""

    command: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    api_version: str = "client.authentication.k8s.io/v1"
    where: str = ""  # "kubeconfig F, user U": for error messages


@dataclass(frozen=True)
class Credential:
    """What an exec plugin returned."""

    token: str | None = field(default=None, repr=False)
    cert_pem: bytes | None = field(default=None, repr=False)
    key_pem: bytes | None = field(default=None, repr=False)
    expires: datetime.datetime | None = None


@dataclass(frozen=True)
class ClusterConfig:
    server: str
    token: str | None = field(default=None, repr=False)
    # Tokens in files are rotated (the kubelet's projected token): read the file on every use.
    token_path: str | None = None
    ca_path: str | None = None
    ca_pem: bytes | None = field(default=None, repr=False)
    insecure: bool = False
    cert_path: str | None = None
    key_path: str | None = None
    cert_pem: bytes | None = field(default=None, repr=False)
    key_pem: bytes | None = field(default=None, repr=False)
    namespace: str = "default"
    impersonate: str | None = None
    impersonate_groups: tuple[str, ...] = ()
    exec_plugin: ExecPlugin | None = None
    # The exec plugin's last credential, shared by copies (dataclasses.replace) of this config.
    _cache: dict[str, Credential] = field(default_factory=dict, compare=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    def credential(self) -> Credential | None:
        """The exec plugin's credential, fetched again shortly before it expires (None without a plugin)."""
        if self.exec_plugin is None:
            return None
        with self._lock:
            cached = self._cache.get("exec")
            now = datetime.datetime.now(datetime.UTC)
            if cached is None or (cached.expires is not None and cached.expires - EXEC_REFRESH_MARGIN <= now):
                cached = run_exec_plugin(self.exec_plugin, self.server)
                self._cache["exec"] = cached
            return cached

    def ssl_context(self) -> ssl.SSLContext | bool:
        if not self.server.startswith("https"):
            return False
        if self.insecure:
            return False
        context = ssl.create_default_context(
            cafile=self.ca_path, cadata=self.ca_pem.decode("ascii") if self.ca_pem else None
        )
        credential = self.credential()
        cert: str | bytes | None = self.cert_path or self.cert_pem
        key: str | bytes | None = self.key_path or self.key_pem
        if credential is not None and credential.cert_pem and credential.key_pem:
            cert, key = credential.cert_pem, credential.key_pem
        if cert and key:
            with _readable(cert, "client-certificate") as cert_file, _readable(key, "client-key") as key_file:
                context.load_cert_chain(cert_file, key_file)
        return context

    def bearer_token(self) -> str | None:
        credential = self.credential()
        if credential is not None and credential.token:
            return credential.token
        if self.token_path:
            try:
                return Path(self.token_path).read_text().strip() or None
            except OSError as exc:
                raise ConfigError(f"cannot read the token file {self.token_path}: {exc.strerror or exc}") from None
        return self.token

    def headers(self) -> dict[str, str]:
        token = self.bearer_token()
        return {"Authorization": f"Bearer {token}"} if token else {}

    def impersonation(self) -> list[tuple[str, str]]:
        """``Impersonate-*`` headers (repeated for each group, so not a dict)."""
        if not self.impersonate:
            return []
        return [("Impersonate-User", self.impersonate), *(("Impersonate-Group", g) for g in self.impersonate_groups)]


@contextlib.contextmanager
def _readable(material: str | bytes, name: str) -> Iterator[str]:
    """A path OpenSSL can read ``material`` (a path, or PEM bytes) from, gone when the block ends."""
    if isinstance(material, str):
        yield material
        return
    if hasattr(os, "memfd_create") and Path("/proc/self/fd").is_dir():
        # An anonymous file in memory: no name in any directory, gone with its last descriptor.
        fd = os.memfd_create(f"airlock-{name}", os.MFD_CLOEXEC)
        try:
            _write_all(fd, material)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    fd, path = tempfile.mkstemp(prefix=".airlock-", suffix=".pem")  # 0600, removed at once
    try:
        _write_all(fd, material)
        os.close(fd)
        fd = -1
        yield path
    finally:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(path)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


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


@dataclass(frozen=True)
class _Entry:
    """A context, cluster or user, with the file that defined it."""

    name: str
    body: dict[str, Any]
    source: Path

    def where(self, kind: str) -> str:
        return f"kubeconfig {self.source}, {kind} {self.name!r}"

    def file(self, key: str, kind: str) -> str | None:
        """The entry's ``key`` as an existing file, relative to the kubeconfig's directory."""
        value = self.body.get(key)
        if not value:
            return None
        path = Path(str(value)).expanduser()
        if not path.is_absolute():
            path = self.source.parent / path
        if not path.is_file():
            raise ConfigError(f"{self.where(kind)}: {key} {path} does not exist")
        if not os.access(path, os.R_OK):
            raise ConfigError(f"{self.where(kind)}: {key} {path} is not readable")
        return str(path)

    def data(self, key: str, kind: str) -> bytes | None:
        value = self.body.get(key)
        if not value:
            return None
        try:
            return base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(f"{self.where(kind)}: {key} is not base64") from None


def _from_kubeconfig(paths: str, context_name: str | None) -> ClusterConfig:
    found: dict[str, dict[str, _Entry]] = {"contexts": {}, "clusters": {}, "users": {}}
    current: str | None = None
    for raw in paths.split(os.pathsep):
        if not raw:
            continue
        path = Path(raw).expanduser().absolute()
        try:
            config = yaml.safe_load(path.read_text()) or {}
        except OSError as exc:
            raise ConfigError(f"cannot read kubeconfig {path}: {exc.strerror or exc}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"kubeconfig {path} is not YAML: {exc}") from None
        if not isinstance(config, dict):
            raise ConfigError(f"kubeconfig {path} is not a kubeconfig (a mapping)")
        current = current or config.get("current-context")
        for key, target in found.items():
            for item in config.get(key) or []:
                if isinstance(item, dict) and item.get("name"):
                    entry = str(item["name"])
                    target.setdefault(entry, _Entry(entry, item.get(key[:-1]) or {}, path))
    name = context_name or current
    if not name or name not in found["contexts"]:
        raise ConfigError(f"kubeconfig context {name!r} not found in {paths}")
    context = found["contexts"][name]
    cluster_name = str(context.body.get("cluster") or "")
    cluster = found["clusters"].get(cluster_name)
    if cluster is None:
        raise ConfigError(f"{context.where('context')}: cluster {cluster_name!r} not found")
    user_name = str(context.body.get("user") or "")
    user = found["users"].get(user_name) or _Entry(user_name, {}, context.source)
    _refuse_unsupported(user)
    ca_path = cluster.file("certificate-authority", "cluster")
    ca_pem = None if ca_path else cluster.data("certificate-authority-data", "cluster")
    cert_path = user.file("client-certificate", "user")
    key_path = user.file("client-key", "user")
    return ClusterConfig(
        server=str(cluster.body.get("server", "")).rstrip("/"),
        token=user.body.get("token") or None,
        token_path=None if user.body.get("token") else user.file("tokenFile", "user"),
        ca_path=ca_path,
        ca_pem=ca_pem,
        insecure=bool(cluster.body.get("insecure-skip-tls-verify", False)),
        cert_path=cert_path,
        key_path=key_path,
        cert_pem=None if cert_path else user.data("client-certificate-data", "user"),
        key_pem=None if key_path else user.data("client-key-data", "user"),
        namespace=context.body.get("namespace") or "default",
        impersonate=user.body.get("as") or None,
        impersonate_groups=tuple(user.body.get("as-groups") or ()),
        exec_plugin=_exec_plugin(user),
    )


def _refuse_unsupported(user: _Entry) -> None:
    if user.body.get("auth-provider"):
        provider = (user.body["auth-provider"] or {}).get("name", "?")
        raise ConfigError(
            f"{user.where('user')}: auth-provider {provider!r} is not supported (kubectl removed it in 1.26): "
            "use the provider's exec credential plugin (e.g. gke-gcloud-auth-plugin, kubelogin)"
        )
    if user.body.get("username") or user.body.get("password"):
        raise ConfigError(f"{user.where('user')}: basic auth (username/password) is not supported: use a token")


def _exec_plugin(user: _Entry) -> ExecPlugin | None:
    spec = user.body.get("exec")
    if not spec:
        return None
    where = user.where("user")
    command = str(spec.get("command") or "")
    if not command:
        raise ConfigError(f"{where}: exec.command is empty")
    if os.sep in command and not Path(command).is_absolute():
        command = str(user.source.parent / command)  # kubectl: relative to the kubeconfig
    env = tuple((str(e.get("name")), str(e.get("value", ""))) for e in spec.get("env") or [] if isinstance(e, dict))
    return ExecPlugin(
        command=command,
        args=tuple(str(a) for a in spec.get("args") or ()),
        env=env,
        api_version=str(spec.get("apiVersion") or "client.authentication.k8s.io/v1"),
        where=where,
    )


def run_exec_plugin(plugin: ExecPlugin, server: str) -> Credential:
    """Run an exec credential plugin without a terminal, as kubectl does with ``interactiveMode: Never``."""
    request = {
        "apiVersion": plugin.api_version,
        "kind": "ExecCredential",
        "spec": {"interactive": False},
    }
    env: Mapping[str, str] = {**os.environ, **dict(plugin.env), "KUBERNETES_EXEC_INFO": json.dumps(request)}
    where = f"{plugin.where}: exec {plugin.command}"
    try:
        # The kubeconfig's owner chose this command, as for kubectl.
        result = subprocess.run(
            [plugin.command, *plugin.args],
            env=dict(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=EXEC_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        raise ConfigError(f"{where}: command not found (install it, or use a token)") from None
    except PermissionError:
        raise ConfigError(f"{where}: not executable") from None
    except subprocess.TimeoutExpired:
        raise ConfigError(f"{where}: no answer within {EXEC_TIMEOUT:g}s") from None
    if result.returncode != 0:
        said = result.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise ConfigError(f"{where}: exited {result.returncode}: {' / '.join(said) or 'no message'}")
    try:
        status = json.loads(result.stdout)["status"]
    except (ValueError, KeyError, TypeError):
        raise ConfigError(f"{where}: did not print an ExecCredential with a status") from None
    expires = None
    if status.get("expirationTimestamp"):
        try:
            expires = datetime.datetime.fromisoformat(str(status["expirationTimestamp"]).replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(f"{where}: expirationTimestamp is not RFC 3339") from None
    cert = status.get("clientCertificateData")
    key = status.get("clientKeyData")
    if not status.get("token") and not (cert and key):
        raise ConfigError(f"{where}: the credential has neither a token nor a client certificate and key")
    return Credential(
        token=status.get("token") or None,
        cert_pem=str(cert).encode() if cert else None,
        key_pem=str(key).encode() if key else None,
        expires=expires,
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
