"""The sandbox API server driven by the real kubectl binary, as the demo and users do."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from airlock.sandbox.cluster import ClusterThread
from tests.fixtures.cluster import Kubectl, kubectl_binary

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web, tier: front}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: app
        image: nginx:1
        env: [{name: A, value: "1"}]
"""

CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: {plural}.sandbox.airlock.dev
spec:
  group: sandbox.airlock.dev
  scope: Namespaced
  names: {{plural: {plural}, singular: {singular}, kind: {kind}, shortNames: [{short}], categories: [airlock]}}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {{status: {{}}}}
    additionalPrinterColumns:
    - {{name: Size, type: integer, jsonPath: .spec.size}}
    - {{name: Ready, type: string, jsonPath: '.status.conditions[?(@.type=="Ready")].status'}}
    schema:
      openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}
"""


def get_json(kubectl: Kubectl, *args: str) -> Any:
    return json.loads(kubectl("get", *args, "-o", "json").stdout)


def apply(kubectl: Kubectl, manifest: str) -> str:
    return kubectl("apply", "-f", "-", input=manifest).stdout


def test_apply_creates_then_updates_a_deployment(kubectl: Kubectl) -> None:
    assert apply(kubectl, DEPLOYMENT).strip() == "deployment.apps/web created"
    assert apply(kubectl, DEPLOYMENT).strip() == "deployment.apps/web unchanged"
    assert apply(kubectl, DEPLOYMENT.replace("nginx:1", "nginx:2")).strip() == "deployment.apps/web configured"

    deploy = get_json(kubectl, "deployment", "web")
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:2"
    assert deploy["metadata"]["generation"] == 2
    assert "kubectl.kubernetes.io/last-applied-configuration" in deploy["metadata"]["annotations"]


def test_server_side_apply(kubectl: Kubectl) -> None:
    args = ("apply", "--server-side", "-f", "-")
    assert "serverside-applied" in kubectl(*args, input=DEPLOYMENT).stdout
    assert "serverside-applied" in kubectl(*args, input=DEPLOYMENT.replace("replicas: 2", "replicas: 4")).stdout
    assert get_json(kubectl, "deploy", "web")["spec"]["replicas"] == 4


def test_get_with_label_selectors_and_output_formats(kubectl: Kubectl) -> None:
    apply(kubectl, DEPLOYMENT)
    apply(kubectl, DEPLOYMENT.replace("web", "api").replace("tier: front", "tier: back"))
    apply(kubectl, DEPLOYMENT.replace("web", "db").replace(", tier: front", ""))

    def names(*selector: str) -> list[str]:
        return kubectl("get", "deploy", *selector, "-o", "name").stdout.split()

    assert names("-l", "tier=front") == ["deployment.apps/web"]
    assert names("-l", "tier!=front") == ["deployment.apps/api", "deployment.apps/db"]
    assert names("-l", "tier in (front,back)") == ["deployment.apps/api", "deployment.apps/web"]
    assert names("-l", "tier notin (front)") == ["deployment.apps/api", "deployment.apps/db"]
    assert names("-l", "!tier") == ["deployment.apps/db"]
    assert names("--field-selector", "metadata.name=api") == ["deployment.apps/api"]

    wide = kubectl("get", "deploy", "web", "-o", "wide").stdout.splitlines()
    assert wide[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    assert wide[1].split()[:2] == ["web", "0/2"]
    assert wide[1].split()[-3:] == ["app", "nginx:1", "app=web"]
    listed = get_json(kubectl, "deploy", "-l", "tier")
    assert [item["metadata"]["name"] for item in listed["items"]] == ["api", "web"]
    assert "tier=front" in kubectl("get", "deploy", "web", "--show-labels").stdout


def test_annotate_overwrite_and_remove(kubectl: Kubectl) -> None:
    apply(kubectl, DEPLOYMENT)
    kubectl("annotate", "deploy", "web", "airlock.dev/reason=drill")
    refused = kubectl("annotate", "deploy", "web", "airlock.dev/reason=other", check=False)
    assert refused.returncode != 0
    assert "--overwrite" in refused.stderr
    kubectl("annotate", "deploy", "web", "airlock.dev/reason=other", "--overwrite")
    assert get_json(kubectl, "deploy", "web")["metadata"]["annotations"]["airlock.dev/reason"] == "other"
    kubectl("annotate", "deploy", "web", "airlock.dev/reason-")
    assert "airlock.dev/reason" not in get_json(kubectl, "deploy", "web")["metadata"]["annotations"]


def test_scale_and_rollout_pause_resume(kubectl: Kubectl, sandbox: ClusterThread) -> None:
    apply(kubectl, DEPLOYMENT)
    assert kubectl("scale", "deployment/web", "--replicas=5").stdout.strip() == "deployment.apps/web scaled"
    assert get_json(kubectl, "deploy", "web")["spec"]["replicas"] == 5
    kubectl("scale", "deployment/web", "--replicas=0", "--current-replicas=5")
    assert get_json(kubectl, "deploy", "web")["spec"]["replicas"] == 0

    assert "paused" in kubectl("rollout", "pause", "deployment/web").stdout
    assert get_json(kubectl, "deploy", "web")["spec"]["paused"] is True
    assert "resumed" in kubectl("rollout", "resume", "deployment/web").stdout
    assert "paused" not in get_json(kubectl, "deploy", "web")["spec"]
    replicas = [v["spec"]["replicas"] for v in sandbox.history("deploy", "default", "web")]
    assert replicas[:3] == [2, 5, 0]


def test_patch_types(kubectl: Kubectl) -> None:
    apply(kubectl, DEPLOYMENT)
    kubectl("patch", "deploy", "web", "--type", "merge", "-p", '{"metadata":{"labels":{"tier":null,"x":"y"}}}')
    assert get_json(kubectl, "deploy", "web")["metadata"]["labels"] == {"app": "web", "x": "y"}

    kubectl(
        "patch",
        "deploy",
        "web",
        "--type",
        "json",
        "-p",
        '[{"op":"test","path":"/spec/replicas","value":2},{"op":"replace","path":"/spec/replicas","value":3}]',
    )
    assert get_json(kubectl, "deploy", "web")["spec"]["replicas"] == 3
    failed = kubectl(
        "patch",
        "deploy",
        "web",
        "--type",
        "json",
        "-v=6",
        "-p",
        '[{"op":"test","path":"/spec/replicas","value":2}]',
        check=False,
    )
    assert failed.returncode != 0
    assert "422 Unprocessable Entity" in failed.stderr
    assert "The request is invalid" in failed.stderr

    strategic = '{"spec":{"template":{"spec":{"containers":[{"name":"app","env":[{"name":"B","value":"2"}]}]}}}}'
    kubectl("patch", "deploy", "web", "--type", "strategic", "-p", strategic)
    container = get_json(kubectl, "deploy", "web")["spec"]["template"]["spec"]["containers"][0]
    assert container["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    assert container["image"] == "nginx:1"


def test_delete_waits_for_finalizers(kubectl: Kubectl) -> None:
    apply(kubectl, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: held, finalizers: [airlock.dev/hold]}\n")
    apply(kubectl, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: free}\n")
    assert "deleted" in kubectl("delete", "configmap", "free", "--timeout=5s").stdout
    assert kubectl("get", "configmap", "free", check=False).returncode != 0

    kubectl("delete", "configmap", "held", "--wait=false")
    held = get_json(kubectl, "configmap", "held")
    assert held["metadata"]["deletionTimestamp"]
    kubectl("patch", "configmap", "held", "--type", "merge", "-p", '{"metadata":{"finalizers":null}}')
    missing = kubectl("get", "configmap", "held", check=False)
    assert missing.returncode != 0
    assert "NotFound" in missing.stderr


def test_get_watch_streams_changes(kubeconfig: Path, tmp_path: Path, sandbox: ClusterThread) -> None:
    sandbox.preload({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "before"}})
    command = [
        str(kubectl_binary()),
        f"--kubeconfig={kubeconfig}",
        f"--cache-dir={tmp_path / 'cache'}",
        "get",
        "configmaps",
        "--watch",
        "--output-watch-events",
        "--request-timeout=10s",
    ]
    watcher = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(watcher.stdout.readline, "")))  # type: ignore[union-attr]
    reader.start()
    try:
        deadline = time.monotonic() + 10
        while len(lines) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        sandbox.preload({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "during"}})
        while len(lines) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        watcher.terminate()
        watcher.wait(5)
        reader.join(5)
    assert [line.split()[:2] for line in lines[:3]] == [["EVENT", "NAME"], ["ADDED", "before"], ["ADDED", "during"]]


def test_namespaces(kubectl: Kubectl) -> None:
    names = kubectl("get", "ns", "-o", "name").stdout.split()
    assert {"namespace/default", "namespace/kube-system"} <= set(names)
    apply(kubectl, "apiVersion: v1\nkind: Namespace\nmetadata: {name: team-a}\n")
    apply(kubectl, DEPLOYMENT.replace("name: web", "name: web\n  namespace: team-a"))
    table = kubectl("get", "deploy", "-A").stdout.splitlines()
    assert table[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert table[1].split()[:2] == ["team-a", "web"]
    assert kubectl("get", "ns", "team-a").stdout.splitlines()[1].split()[:2] == ["team-a", "Active"]


def test_crds_short_names_and_categories(kubectl: Kubectl, tmp_path: Path) -> None:
    apply(kubectl, CRD.format(plural="widgets", singular="widget", kind="Widget", short="wdg"))
    apply(kubectl, CRD.format(plural="gadgets", singular="gadget", kind="Gadget", short="gdg"))
    kubectl("wait", "--for=condition=Established", "crd/widgets.sandbox.airlock.dev", "--timeout=5s")

    widget = "apiVersion: sandbox.airlock.dev/v1\nkind: Widget\nmetadata: {name: w1}\nspec: {size: 1}\n"
    assert apply(kubectl, widget).strip() == "widget.sandbox.airlock.dev/w1 created"
    assert apply(kubectl, widget.replace("size: 1", "size: 3")).strip() == "widget.sandbox.airlock.dev/w1 configured"
    apply(kubectl, "apiVersion: sandbox.airlock.dev/v1\nkind: Gadget\nmetadata: {name: g1}\n")
    kubectl(
        "patch",
        "widget",
        "w1",
        "--subresource=status",
        "--type=merge",
        "-p",
        '{"status":{"conditions":[{"type":"Ready","status":"True"}]}}',
    )

    table = kubectl("get", "wdg").stdout.splitlines()
    assert table[0].split() == ["NAME", "SIZE", "READY"]
    assert table[1].split() == ["w1", "3", "True"]
    everything = kubectl("get", "airlock", "-o", "name").stdout.split()
    assert everything == ["widget.sandbox.airlock.dev/w1", "gadget.sandbox.airlock.dev/g1"]
    assert get_json(kubectl, "widgets.sandbox.airlock.dev", "w1")["spec"] == {"size": 3}

    kubectl("delete", "crd", "gadgets.sandbox.airlock.dev")
    fresh_discovery = f"--cache-dir={tmp_path / 'fresh-cache'}"
    assert kubectl("get", "airlock", "-o", "name", fresh_discovery).stdout.split() == ["widget.sandbox.airlock.dev/w1"]


def test_auth_whoami_and_impersonation(kubectl: Kubectl, sandbox: ClusterThread, tmp_path: Path) -> None:
    def whoami(*args: str, config: Path | None = None) -> dict[str, Any]:
        review = json.loads(kubectl("auth", "whoami", "-o", "json", *args, config=config).stdout)
        user_info: dict[str, Any] = review["status"]["userInfo"]
        return user_info

    assert whoami()["username"] == "system:admin"
    assert whoami("--as", "alice", "--as-group", "devs") == {
        "username": "alice",
        "groups": ["devs", "system:authenticated"],
    }
    bob = sandbox.write_kubeconfig(tmp_path / "bob", user="bob", groups=["sre"])
    assert whoami(config=bob) == {"username": "bob", "groups": ["sre", "system:authenticated"]}


def test_create_generators_send_protobuf_which_is_decoded(kubectl: Kubectl) -> None:
    kubectl("create", "namespace", "team-b")
    kubectl("create", "configmap", "settings", "--from-literal=mode=strict", "-n", "team-b")
    kubectl("create", "secret", "generic", "creds", "--from-literal=user=admin", "-n", "team-b")
    kubectl("create", "serviceaccount", "robot", "-n", "team-b")
    kubectl("create", "deployment", "api", "--image=nginx:1", "--replicas=0", "--port=80", "-n", "team-b")
    kubectl("create", "service", "clusterip", "api", "--tcp=80:8080", "-n", "team-b")

    assert get_json(kubectl, "cm", "settings", "-n", "team-b")["data"] == {"mode": "strict"}
    assert get_json(kubectl, "secret", "creds", "-n", "team-b")["data"] == {"user": "YWRtaW4="}
    deploy = get_json(kubectl, "deploy", "api", "-n", "team-b")
    assert deploy["spec"]["replicas"] == 0
    assert deploy["spec"]["template"]["spec"]["containers"] == [
        {"name": "nginx", "image": "nginx:1", "ports": [{"containerPort": 80}]}
    ]
    service = get_json(kubectl, "svc", "api", "-n", "team-b")
    assert service["spec"]["ports"] == [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}]

    refused = kubectl("create", "role", "reader", "--verb=get", "--resource=pods", check=False)
    assert refused.returncode != 0
    assert "send JSON instead" in refused.stderr


def test_standalone_module_serves_until_sigterm(tmp_path: Path) -> None:
    config = tmp_path / "kubeconfig"
    preload = tmp_path / "preload.yaml"
    preload.write_text(DEPLOYMENT + "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: team-c}\n")
    command = [
        sys.executable,
        "-m",
        "airlock.sandbox.cluster",
        "--port",
        "0",
        "--kubeconfig",
        str(config),
        "--preload",
        str(preload),
    ]
    server = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stderr.readline()  # type: ignore[union-attr]
        assert "listening on http://127.0.0.1:" in line
        assert str(config) in line
        binary = str(kubectl_binary())
        names = subprocess.run(
            [binary, f"--kubeconfig={config}", f"--cache-dir={tmp_path / 'cache'}", "get", "ns,deploy", "-o", "name"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.split()
        assert "namespace/team-c" in names
        assert "deployment.apps/web" in names
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(10) == 0
        server.stderr.close()  # type: ignore[union-attr]
