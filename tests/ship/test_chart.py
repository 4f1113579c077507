"""The Helm chart ``charts/airlock``, rendered offline (helm-python-sdk: Helm's Go SDK, no binary, no cluster).

Every rendered object of a Kubernetes API group is validated against the OpenAPI
schemas of the two newest Kubernetes versions ``kubernetes-validate`` knows; the
promises the chart makes (least-privilege RBAC, the restricted Pod Security
profile, two leader-elected replicas per shard, admission manifests identical to
``policies/admission/``) are asserted on the rendered objects.
"""

from __future__ import annotations

import argparse
import base64
import copy
import datetime
import functools
import pathlib
from collections.abc import Iterator
from typing import Any

import helm_python as helm
import kubernetes_validate
import kubernetes_validate.utils
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from airlock.cli import run as run_cli
from airlock.sandbox import world

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "airlock"
ADMISSION = ROOT / "policies" / "admission"
URL = "http://prometheus-operated.monitoring:9090"
# The newest two Kubernetes minor versions kubernetes-validate has schemas for.
KUBE_VERSIONS = sorted(set(kubernetes_validate.utils.all_versions()), key=lambda v: tuple(map(int, v.split("."))))[-2:]
# Custom resources of other projects: no schema in kubernetes-validate; checked by shape below.
FOREIGN_GROUPS = {"monitoring.coreos.com", "cert-manager.io"}
ALL_ON: dict[str, Any] = {
    "prometheus": {"url": URL},
    "responderGroups": ["oncall-ml", "incident-commanders"],
    "adminGroups": ["platform-admins", "security"],
    "admissionPolicy": {"enabled": True},
    "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
    "prometheusRule": {"enabled": True},
    "networkPolicy": {"enabled": True, "metricsFrom": [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}]},
    "metricsAddress": "127.0.0.1",  # e.g. scraped through a sidecar only
    "webhook": {"certManager": {"enabled": True}},
}
# (release name, namespace, values)
VALUE_SETS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "default": ("airlock", "airlock-system", {"prometheus": {"url": URL}}),
    "namespaced": (
        "airlock",
        "airlock-system",
        {"prometheus": {"url": URL}, "watchNamespaces": ["ml-prod", "ml-staging"]},
    ),
    "cert-manager": (
        "airlock",
        "airlock-system",
        {
            "prometheus": {"url": URL},
            "webhook": {"certManager": {"enabled": True, "issuerRef": {"kind": "ClusterIssuer", "name": "ca"}}},
        },
    ),
    "no-webhook": ("airlock", "airlock-system", {"prometheus": {"url": URL}, "webhook": {"enabled": False}}),
    "namespaced-two-secrets": (
        "airlock",
        "airlock-system",
        {
            "prometheus": {"url": URL},
            "watchNamespaces": ["ml-prod"],
            "notificationSecrets": ["airlock-notify", "airlock-slack"],
        },
    ),
    "all-on": ("airlock", "airlock-system", ALL_ON),
    "other-release-and-namespace": ("prod", "ops", {**ALL_ON, "webhook": {"certManager": {"enabled": False}}}),
    "sharded": (
        "airlock",
        "airlock-system",
        {
            "prometheus": {"url": URL},
            "shards": 3,
            "prometheusRule": {"enabled": True},
            "serviceMonitor": {"enabled": True},
        },
    ),
    "single": ("airlock", "airlock-system", {"prometheus": {"url": URL}, "leaderElection": {"enabled": False}}),
}


@functools.cache
def chart() -> helm.Chart:
    return helm.Chart.load(CHART)


@functools.cache
def _render(case: str) -> tuple[tuple[str, str], ...]:
    release, namespace, values = VALUE_SETS[case]
    manifests = chart().render(values, name=release, namespace=namespace, is_install=True)
    return tuple(sorted(manifests.items()))


def render(case: str) -> dict[str, str]:
    return dict(_render(case))


@functools.cache
def objects(case: str) -> list[dict[str, Any]]:
    # Cached: callers must not modify what they get (copy first).
    found: list[dict[str, Any]] = []
    for path, text in render(case).items():
        if path.endswith(".yaml"):
            found.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return found


def of_kind(case: str, kind: str) -> list[dict[str, Any]]:
    return [obj for obj in objects(case) if obj["kind"] == kind]


def one(case: str, kind: str, name: str | None = None) -> dict[str, Any]:
    matches = [obj for obj in of_kind(case, kind) if name is None or obj["metadata"]["name"] == name]
    assert len(matches) == 1, f"{case}: {len(matches)} {kind} {name or ''}"
    return matches[0]


def deployments(case: str) -> list[dict[str, Any]]:
    found = of_kind(case, "Deployment")
    assert found, case
    return found


def container(case: str, deployment: dict[str, Any] | None = None) -> dict[str, Any]:
    """The operator container (of ``deployment``, else of the first Deployment)."""
    spec: dict[str, Any] = (deployment or deployments(case)[0])["spec"]["template"]["spec"]
    assert len(spec["containers"]) == 1
    found: dict[str, Any] = spec["containers"][0]
    return found


def rbac_rules(case: str) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for obj in objects(case):
        if obj["kind"] in ("Role", "ClusterRole"):
            for rule in obj["rules"]:
                yield obj, rule


def permissions(case: str, role_kind: str, name: str) -> set[tuple[str, str, str]]:
    found = set()
    for obj, rule in rbac_rules(case):
        if obj["kind"] == role_kind and obj["metadata"]["name"] == name:
            found |= {(g, r, v) for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}
    return found


def parsed_args(case: str, deployment: dict[str, Any] | None = None) -> argparse.Namespace:
    # The flags the chart passes, read by the real `airlock run` parser.
    parser = argparse.ArgumentParser()
    run_cli.register(parser.add_subparsers())
    return parser.parse_args(["run", *container(case, deployment)["args"]])


@pytest.mark.parametrize("case", VALUE_SETS)
def test_lint_is_clean(case: str) -> None:
    _, namespace, values = VALUE_SETS[case]
    report = helm.lint(CHART, values, strict=True, namespace=namespace)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("version", KUBE_VERSIONS)
@pytest.mark.parametrize("case", VALUE_SETS)
def test_every_kubernetes_object_is_valid(case: str, version: str) -> None:
    checked = 0
    for obj in objects(case):
        if obj["apiVersion"].split("/")[0] in FOREIGN_GROUPS:
            continue
        kubernetes_validate.validate(obj, version, strict=True)
        checked += 1
    assert checked >= 8


@pytest.mark.parametrize("case", VALUE_SETS)
def test_every_object_is_namespaced_to_the_release_or_cluster_scoped(case: str) -> None:
    _, namespace, values = VALUE_SETS[case]
    allowed = {namespace, *values.get("watchNamespaces", [])}
    for obj in objects(case):
        assert obj["metadata"].get("namespace", namespace) in allowed


def test_missing_prometheus_url_is_refused_by_the_schema() -> None:
    with pytest.raises(helm.HelmValuesError, match="prometheus"):
        chart().validate_schema({})
    with pytest.raises(helm.HelmError):
        chart().render({}, name="airlock", namespace="airlock-system")
    with pytest.raises(helm.HelmValuesError):
        chart().validate_schema({"prometheus": {"url": "prometheus:9090"}})  # no scheme
    chart().validate_schema({"prometheus": {"url": URL}})


@pytest.mark.parametrize("case", VALUE_SETS)
def test_no_wildcards_in_rbac(case: str) -> None:
    rules = list(rbac_rules(case))
    assert rules
    for obj, rule in rules:
        for key in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
            assert "*" not in rule.get(key, []), (obj["metadata"]["name"], rule)
            assert not any("*" in item for item in rule.get(key, []) if item), (obj["metadata"]["name"], rule)


OPERATOR_PERMISSIONS = {
    ("airlock.dev", "aisystems", "get"),
    ("airlock.dev", "aisystems", "list"),
    ("airlock.dev", "aisystems", "watch"),
    ("airlock.dev", "aisystems/status", "get"),
    ("airlock.dev", "aisystems/status", "patch"),
    *(("airlock.dev", "aiincidents", v) for v in ("get", "list", "watch", "create", "patch")),
    ("airlock.dev", "aiincidents/status", "get"),
    ("airlock.dev", "aiincidents/status", "patch"),
    *(("apps", r, v) for r in ("deployments", "statefulsets") for v in ("get", "list", "watch", "patch")),
    ("apps", "deployments/scale", "patch"),
    ("apps", "statefulsets/scale", "patch"),
    *(("argoproj.io", "rollouts", v) for v in ("get", "list", "watch", "patch")),
    ("argoproj.io", "rollouts/scale", "patch"),
    *(("serving.kserve.io", "inferenceservices", v) for v in ("get", "list", "watch", "patch")),
    ("", "services", "get"),
    ("", "services", "patch"),
    *(("gateway.networking.k8s.io", "httproutes", v) for v in ("get", "list", "watch", "patch")),
    ("gateway.networking.k8s.io", "referencegrants", "list"),
    *(("networking.istio.io", "virtualservices", v) for v in ("get", "list", "watch", "patch")),
    ("networking.k8s.io", "networkpolicies", "get"),
    ("networking.k8s.io", "networkpolicies", "create"),
    ("networking.k8s.io", "networkpolicies", "delete"),
    ("keda.sh", "scaledobjects", "list"),
    ("keda.sh", "scaledobjects", "patch"),
    ("", "events", "create"),
    ("", "configmaps", "get"),
    ("", "configmaps", "create"),
    ("", "secrets", "get"),  # by name only: see test_the_operator_cannot_take_over_the_cluster
}
CLUSTER_READS = {
    ("airlock.dev", "containmentpolicies", "get"),
    ("airlock.dev", "containmentpolicies", "list"),
    ("airlock.dev", "containmentpolicies", "watch"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
}


def test_cluster_wide_rbac_is_exactly_what_the_operator_calls() -> None:
    assert permissions("default", "ClusterRole", "airlock") == OPERATOR_PERMISSIONS
    assert permissions("default", "ClusterRole", "airlock-cluster") == CLUSTER_READS
    assert [r["metadata"]["name"] for r in of_kind("default", "Role")] == ["airlock-leader-election"]
    # No Pods; Secrets only one GET at a time (never listed or watched, so never cached).
    everything = {r for _, rule in rbac_rules("default") for r in rule["resources"]}
    assert not everything & {"pods", "pods/exec"}
    secret_verbs = {v for _, rule in rbac_rules("default") if "secrets" in rule["resources"] for v in rule["verbs"]}
    assert secret_verbs == {"get"}


def _bound_to_the_operator(case: str) -> list[dict[str, Any]]:
    """The Roles and ClusterRoles the operator's ServiceAccount is bound to."""
    sa = one(case, "ServiceAccount")["metadata"]
    roles = []
    for binding in [*of_kind(case, "RoleBinding"), *of_kind(case, "ClusterRoleBinding")]:
        if {"kind": "ServiceAccount", "name": sa["name"], "namespace": sa["namespace"]} not in binding["subjects"]:
            continue
        ref = binding["roleRef"]
        where = binding["metadata"].get("namespace") if ref["kind"] == "Role" else None
        roles += [
            r
            for r in of_kind(case, ref["kind"])
            if r["metadata"]["name"] == ref["name"] and r["metadata"].get("namespace") == where
        ]
    return roles


# What would let the operator's token take over a cluster: rewrite any ConfigMap (kube-system/aws-auth
# is cluster-admin on EKS) or read any Secret (every ServiceAccount token, every TLS key).
CONFIGMAP_WRITES = {"patch", "update", "delete", "deletecollection", "*"}
SECRET_READS = {"get", "list", "watch", "*"}


@pytest.mark.parametrize("case", VALUE_SETS)
def test_the_operator_cannot_take_over_the_cluster(case: str) -> None:
    roles = _bound_to_the_operator(case)
    elected = VALUE_SETS[case][2].get("leaderElection", {}).get("enabled", True)
    # A Role per watched namespace, and with leader election one for the Lease in the release namespace.
    expected = {"ClusterRole"} | ({"Role"} if "namespaced" in case or elected else set())
    assert {r["kind"] for r in roles} == expected
    allowed_secrets = VALUE_SETS[case][2].get("notificationSecrets", ["airlock-notify"])
    secret_rules = []
    for role in roles:
        for rule in role["rules"]:
            if "" not in rule["apiGroups"] and "*" not in rule["apiGroups"]:
                continue
            where = f"{role['kind']} {role['metadata']['name']}"
            if {"configmaps", "*"} & set(rule["resources"]):
                assert not CONFIGMAP_WRITES & set(rule["verbs"]), f"{where} may change ConfigMaps: {rule}"
            if {"secrets", "*"} & set(rule["resources"]) and SECRET_READS & set(rule["verbs"]):
                assert set(rule["verbs"]) == {"get"}, f"{where} may list or watch Secrets: {rule}"
                assert rule.get("resourceNames") == allowed_secrets, f"{where} may read any Secret: {rule}"
                secret_rules.append(rule)
    assert secret_rules  # the notification Secrets can be read (by name)
    # The operator is told the same names its RBAC allows.
    assert parsed_args(case).notification_secret == allowed_secrets


def _readme_rbac_table() -> dict[tuple[str, str], set[str]]:
    """(api group, resource) -> verbs, from the RBAC table in the chart's README."""
    text = (CHART / "README.md").read_text()
    table = text[text.index("| API group | resource | verbs | why |") :].split("\n\n", 1)[0]
    found: dict[tuple[str, str], set[str]] = {}
    for row in table.splitlines()[2:]:
        group_cell, resource_cell, verbs_cell = (cell.strip() for cell in row.strip().strip("|").split("|")[:3])
        group = "" if group_cell == "core" else group_cell.strip("`")
        for resource in resource_cell.split(","):
            found[(group, resource.strip().strip("`"))] = {v.strip() for v in verbs_cell.split(",")}
    return found


@pytest.mark.parametrize("case", ["default", "namespaced"])
def test_the_readme_rbac_table_lists_every_rule_of_the_operator(case: str) -> None:
    rendered: dict[tuple[str, str], set[str]] = {}
    for role in _bound_to_the_operator(case):
        for rule in role["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    rendered.setdefault((group, resource), set()).update(rule["verbs"])
    table = _readme_rbac_table()
    for key, verbs in rendered.items():
        assert table.get(key) == verbs, f"charts/airlock/README.md RBAC table: {key} should read {sorted(verbs)}"


def test_namespaced_mode_uses_a_role_per_namespace() -> None:
    roles = [r for r in of_kind("namespaced", "Role") if r["metadata"]["name"] == "airlock"]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["ml-prod", "ml-staging"]
    for role in roles:
        granted = {
            (g, r, v)
            for rule in role["rules"]
            for g in rule["apiGroups"]
            for r in rule["resources"]
            for v in rule["verbs"]
        }
        assert granted == OPERATOR_PERMISSIONS
    bindings = [b for b in of_kind("namespaced", "RoleBinding") if b["metadata"]["name"] == "airlock"]
    assert {b["subjects"][0]["namespace"] for b in bindings} == {"airlock-system"}
    cluster_roles = {r["metadata"]["name"] for r in of_kind("namespaced", "ClusterRole")}
    assert cluster_roles == {"airlock-cluster", "airlock-responder"}
    # Kopf lists namespaces when it serves a list of them.
    assert permissions("namespaced", "ClusterRole", "airlock-cluster") == CLUSTER_READS | {
        ("", "namespaces", "list"),
        ("", "namespaces", "watch"),
    }
    args = parsed_args("namespaced")
    assert args.namespace == ["ml-prod", "ml-staging"]
    assert not args.all_namespaces


def test_responder_role_and_bindings() -> None:
    assert permissions("default", "ClusterRole", "airlock-responder") == {
        *(("airlock.dev", r, v) for r in ("aisystems", "aiincidents") for v in ("get", "list", "watch", "patch")),
        *(("airlock.dev", "containmentpolicies", v) for v in ("get", "list", "watch")),
        # what `kubectl airlock` reads to report the outcome
        ("apps", "deployments", "get"),
        ("apps", "statefulsets", "get"),
        ("argoproj.io", "rollouts", "get"),
        ("serving.kserve.io", "inferenceservices", "get"),
        ("", "services", "get"),
        ("", "events", "list"),
        ("", "configmaps", "get"),
    }
    # The integration world binds the same permissions to the people it acts as on a real cluster.
    assert permissions("default", "ClusterRole", "airlock-responder") == {
        (g, r, v)
        for rule in world.RESPONDER_RULES
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }
    assert [b for b in of_kind("default", "ClusterRoleBinding") if b["metadata"]["name"] == "airlock-responder"] == []
    binding = one("all-on", "ClusterRoleBinding", "airlock-responder")
    assert binding["roleRef"]["name"] == "airlock-responder"
    assert [(s["kind"], s["name"]) for s in binding["subjects"]] == [
        ("Group", "oncall-ml"),
        ("Group", "incident-commanders"),
    ]


@pytest.mark.parametrize("case", VALUE_SETS)
def test_pod_meets_the_restricted_pod_security_profile(case: str) -> None:
    for deployment in deployments(case):
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        security = container(case, deployment)["securityContext"]
        assert security["runAsNonRoot"] is True
        assert security["runAsUser"] == 65532
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}
        assert "hostNetwork" not in pod
        assert "hostPID" not in pod
        # The one writable path.
        tmp = next(v for v in pod["volumes"] if v["name"] == "tmp")
        assert "emptyDir" in tmp
        assert {"name": "tmp", "mountPath": "/tmp"} in container(case, deployment)["volumeMounts"]


@pytest.mark.parametrize("case", VALUE_SETS)
def test_operator_replicas_probes_and_resources(case: str) -> None:
    _, namespace, values = VALUE_SETS[case]
    elected = values.get("leaderElection", {}).get("enabled", True)
    pdbs = of_kind(case, "PodDisruptionBudget")
    assert len(pdbs) == len(deployments(case))
    for deployment in deployments(case):
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        main = container(case, deployment)
        args = parsed_args(case, deployment)
        pdb = next(p for p in pdbs if p["metadata"]["name"] == deployment["metadata"]["name"])
        assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
        if elected:
            # SPEC §10: two replicas, one leader; a new pod before an old one stops; never below one.
            assert deployment["spec"]["replicas"] == 2
            assert deployment["spec"]["strategy"] == {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            }
            assert pdb["spec"] == {"minAvailable": 1, "selector": pdb["spec"]["selector"]}
            assert args.leader_elect is True
            assert (args.lease_duration, args.renew_deadline, args.retry_period) == (4.0, 3.0, 0.5)
            affinity = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
            term = affinity["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
            assert term["topologyKey"] == "kubernetes.io/hostname"
            assert term["labelSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
        else:
            assert deployment["spec"]["replicas"] == 1
            assert deployment["spec"]["strategy"] == {"type": "Recreate"}
            assert pdb["spec"]["maxUnavailable"] == 1
            assert args.leader_elect is False
            assert "affinity" not in deployment["spec"]["template"]["spec"]
        # The identity in the Lease is the pod's name; the Lease lives in the release namespace.
        env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in main["env"] if "valueFrom" in e}
        assert env == {"POD_NAME": "metadata.name", "AIRLOCK_LEASE_NAMESPACE": "metadata.namespace"}
        assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
        assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}  # leader or standby
        ports = {p["name"]: p["containerPort"] for p in main["ports"]}
        assert main["resources"]["requests"]
        assert main["resources"]["limits"]["memory"]
        assert args.prometheus_url == URL
        assert (ports["health"], ports["metrics"]) == (args.health_port, args.metrics_port) == (8080, 9090)
        assert args.health_address == "0.0.0.0"
        assert args.metrics_address == values.get("metricsAddress", "0.0.0.0")
        assert args.peering is None  # standalone Kopf: leader election, not peering
        sa = one(case, "ServiceAccount")
        assert args.operator_username == f"system:serviceaccount:{namespace}:{sa['metadata']['name']}"
        assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == sa["metadata"]["name"]
        assert args.admin_group == values.get("adminGroups", ["airlock-admins", "system:masters"])
        # Every replica of every shard serves metrics and (stateless) admission reviews.
        base = one(case, "ServiceAccount")["metadata"]["name"]
        metrics = one(case, "Service", base + "-metrics")
        assert metrics["spec"]["selector"].items() <= pod_labels.items()


def test_shards_are_separate_deployments_with_one_lease_each() -> None:
    found = deployments("sharded")
    assert [d["metadata"]["name"] for d in found] == ["airlock-shard-0", "airlock-shard-1", "airlock-shard-2"]
    shards = [parsed_args("sharded", d).shard for d in found]
    assert [(s.index, s.count) for s in shards] == [(0, 3), (1, 3), (2, 3)]
    assert [s.lease_name() for s in shards] == ["airlock-shard-0-of-3", "airlock-shard-1-of-3", "airlock-shard-2-of-3"]
    # No Deployment's selector matches another shard's pods.
    for mine in found:
        for other in found:
            if other is not mine:
                labels = other["spec"]["template"]["metadata"]["labels"]
                assert not mine["spec"]["selector"]["matchLabels"].items() <= labels.items()
    role = one("sharded", "Role", "airlock-leader-election")
    assert role["rules"][0]["resourceNames"] == [s.lease_name() for s in shards]
    alerts = [r for g in one("sharded", "PrometheusRule")["spec"]["groups"] for r in g["rules"]]
    no_leader = [r for r in alerts if r["alert"] == "AirlockNoLeader"]
    assert [r["labels"]["lease"] for r in no_leader] == [s.lease_name() for s in shards]


def test_leader_election_rbac_is_a_role_in_the_release_namespace_only() -> None:
    for case in ("default", "other-release-and-namespace", "namespaced"):
        _, namespace, _ = VALUE_SETS[case]
        role = next(r for r in of_kind(case, "Role") if r["metadata"]["name"].endswith("-leader-election"))
        assert role["metadata"]["namespace"] == namespace
        assert role["rules"] == [
            {
                "apiGroups": ["coordination.k8s.io"],
                "resources": ["leases"],
                "resourceNames": ["airlock"],  # SPEC §10: the Lease is `airlock`
                "verbs": ["get", "update"],
            },
            # create cannot name its object; list finds a Lease of another shard count.
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create", "list"]},
        ]
        binding = one(case, "RoleBinding", role["metadata"]["name"])
        assert binding["metadata"]["namespace"] == namespace
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": role["metadata"]["name"],
        }
        assert binding["subjects"][0]["namespace"] == namespace
        assert not any("leases" in rule["resources"] for obj, rule in rbac_rules(case) if obj["kind"] == "ClusterRole")
    assert not [r for r in of_kind("single", "Role") if "leader-election" in r["metadata"]["name"]]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"leaderElection": {"leaseDurationSeconds": 4, "renewDeadlineSeconds": 4}}, "must be shorter than"),
        ({"leaderElection": {"renewDeadlineSeconds": 1, "retryPeriodSeconds": 1}}, "must be longer than 1.2"),
        ({"leaderElection": {"enabled": False}, "shards": 2}, "shards > 1 needs leaderElection"),
    ],
)
def test_unsafe_leader_election_values_are_refused_at_render(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmError, match=message):
        chart().render({"prometheus": {"url": URL}, **values}, name="airlock", namespace="airlock-system")


def _expected_webhooks(namespace: str, service: str, username: str) -> dict[str, list[dict[str, Any]]]:
    expected: dict[str, list[dict[str, Any]]] = {}
    for doc in yaml.safe_load_all((ADMISSION / "webhook.yaml").read_text()):
        hooks = copy.deepcopy(doc["webhooks"])
        for hook in hooks:
            hook["clientConfig"]["service"].update(namespace=namespace, name=service)
            for condition in hook["matchConditions"]:
                condition["expression"] = condition["expression"].replace(
                    "system:serviceaccount:airlock-system:airlock", username
                )
        expected[doc["kind"]] = hooks
    return expected


def test_chart_copies_of_the_admission_manifests_are_identical() -> None:
    for name in ("webhook.yaml", "validating-admission-policy.yaml"):
        assert (CHART / "files" / name).read_text() == (ADMISSION / name).read_text(), name


@pytest.mark.parametrize("case", ["default", "cert-manager", "other-release-and-namespace"])
def test_webhook_configurations_match_policies_admission(case: str) -> None:
    release, namespace, values = VALUE_SETS[case]
    fullname = "airlock" if "airlock" in release else f"{release}-airlock"
    service = one(case, "Service", f"{fullname}-webhook")
    assert service["spec"]["ports"] == [{"name": "webhook", "port": 443, "targetPort": "webhook", "protocol": "TCP"}]
    expected = _expected_webhooks(namespace, f"{fullname}-webhook", f"system:serviceaccount:{namespace}:{fullname}")
    cert_manager = values.get("webhook", {}).get("certManager", {}).get("enabled", False)
    for kind, suffix in (
        ("MutatingWebhookConfiguration", "requested-by"),
        ("ValidatingWebhookConfiguration", "authority"),
    ):
        config = one(case, kind, f"{fullname}-{suffix}")
        hooks = copy.deepcopy(config["webhooks"])
        bundles = {hook["clientConfig"].pop("caBundle", None) for hook in hooks}
        assert hooks == expected[kind]
        annotations = config["metadata"].get("annotations", {})
        if cert_manager:
            assert bundles == {None}
            assert annotations["cert-manager.io/inject-ca-from"] == f"{namespace}/{fullname}-webhook"
        else:
            secret = one(case, "Secret", f"{fullname}-webhook-tls")
            assert bundles == {secret["data"]["ca.crt"]}
            assert "cert-manager.io/inject-ca-from" not in annotations
    args = parsed_args(case)
    assert args.webhook_port == 9443
    assert args.webhook_addr == "0.0.0.0"
    assert args.webhook_host == f"{fullname}-webhook.{namespace}.svc"
    assert args.webhook_cert_file
    assert args.webhook_key_file
    if namespace != "airlock-system":  # no placeholder left behind
        for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
            assert "airlock-system" not in yaml.safe_dump(of_kind(case, kind))


def test_generated_serving_certificate_is_signed_by_the_ca_bundle_for_the_service() -> None:
    secret = one("default", "Secret", "airlock-webhook-tls")
    ca = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["ca.crt"]))
    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    public_key = ca.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    assert cert.signature_hash_algorithm is not None
    public_key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert "airlock-webhook.airlock-system.svc" in names
    assert cert.not_valid_after_utc > datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=365)


def test_cert_manager_certificate_names_the_service() -> None:
    certificate = one("all-on", "Certificate")
    assert certificate["spec"]["secretName"] == "airlock-webhook-tls"
    assert "airlock-webhook.airlock-system.svc" in certificate["spec"]["dnsNames"]
    assert certificate["spec"]["issuerRef"] == {"kind": "Issuer", "name": "airlock-selfsigned"}
    assert one("all-on", "Issuer")["spec"] == {"selfSigned": {}}
    assert one("cert-manager", "Certificate")["spec"]["issuerRef"] == {"kind": "ClusterIssuer", "name": "ca"}
    assert of_kind("cert-manager", "Issuer") == []


def test_no_webhook_means_no_admission_objects() -> None:
    kinds = {obj["kind"] for obj in objects("no-webhook")}
    assert not kinds & {"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "Secret", "Certificate"}
    assert parsed_args("no-webhook").webhook_port == 0
    assert "WARNING: the admission webhook is off" in render("no-webhook")["airlock/templates/NOTES.txt"]


def test_validating_admission_policy_is_templated() -> None:
    assert of_kind("default", "ValidatingAdmissionPolicy") == []
    shipped = [doc for doc in yaml.safe_load_all((ADMISSION / "validating-admission-policy.yaml").read_text())]
    rendered = [
        obj for obj in objects("other-release-and-namespace") if obj["kind"].startswith("ValidatingAdmissionPolicy")
    ]
    assert [o["kind"] for o in rendered] == [o["kind"] for o in shipped]
    for ours, theirs in zip(rendered, shipped, strict=True):
        assert ours["metadata"]["name"] == theirs["metadata"]["name"].replace("airlock-", "prod-airlock-", 1)
        expected = _substitute(
            theirs["spec"],
            ("system:serviceaccount:airlock-system:airlock", "system:serviceaccount:ops:prod-airlock"),
            ("['airlock-admins', 'system:masters']", "['platform-admins', 'security']"),
        )
        if theirs["kind"].endswith("Binding"):
            expected["policyName"] = expected["policyName"].replace("airlock-", "prod-airlock-", 1)
        assert ours["spec"] == expected


def _substitute(value: Any, *pairs: tuple[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, *pairs) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, *pairs) for v in value]
    if isinstance(value, str):
        for old, new in pairs:
            value = value.replace(old, new)
    return value


def test_monitoring_objects() -> None:
    assert of_kind("default", "ServiceMonitor") == []
    assert of_kind("default", "PrometheusRule") == []
    monitor = one("all-on", "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    service = one("all-on", "Service", "airlock-metrics")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    rules = {r["alert"]: r for group in one("all-on", "PrometheusRule")["spec"]["groups"] for r in group["rules"]}
    assert set(rules) == {
        "AirlockNoLeader",
        "AirlockOperatorDown",
        "AirlockMonitoringGap",
        "AirlockContainmentActive",
        "AirlockReportDeadlineNear",
    }
    assert 'job="airlock-metrics"' in rules["AirlockOperatorDown"]["expr"]
    assert 'airlock_evaluations_total{state="error"}' in rules["AirlockMonitoringGap"]["expr"]
    assert rules["AirlockContainmentActive"]["expr"] == "airlock_containments_active > 0"
    assert rules["AirlockReportDeadlineNear"]["expr"] == "airlock_report_deadline_seconds < 86400"
    # No replica leads for more than two lease durations (4 s by default).
    no_leader = rules["AirlockNoLeader"]
    assert no_leader["expr"] == (
        'absent(airlock_leader{job="airlock-metrics", namespace="airlock-system", lease="airlock"} == 1)'
    )
    assert no_leader["for"] == "8s"
    assert (
        "kubectl airlock runbook {{ $labels.system }} -n {{ $labels.namespace }}"
        in (rules["AirlockContainmentActive"]["annotations"]["description"])
    )


def test_network_policy_keeps_webhook_and_probes_reachable() -> None:
    assert of_kind("default", "NetworkPolicy") == []
    policy = one("all-on", "NetworkPolicy")
    deployment = one("all-on", "Deployment")
    assert (
        policy["spec"]["podSelector"]["matchLabels"].items()
        <= deployment["spec"]["template"]["metadata"]["labels"].items()
    )
    open_ports = {p["port"] for rule in policy["spec"]["ingress"] if "from" not in rule for p in rule["ports"]}
    assert open_ports == {"health", "webhook"}
    metrics_rule = next(rule for rule in policy["spec"]["ingress"] if "from" in rule)
    assert metrics_rule["ports"] == [{"port": "metrics", "protocol": "TCP"}]


def test_notes_name_the_runbook_command() -> None:
    assert "kubectl airlock runbook <system> -n <namespace>" in render("default")["airlock/templates/NOTES.txt"]


def test_crds_ship_with_the_chart() -> None:
    kinds = {
        doc["spec"]["names"]["kind"]
        for path in (CHART / "crds").glob("*.yaml")
        for doc in yaml.safe_load_all(path.read_text())
    }
    assert kinds == {"AISystem", "AIIncident", "ContainmentPolicy"}


# -- airlock guard ------------------------------------------------------------------------------

EXAMPLES = CHART / "examples"
GUARD_VALUES: dict[str, Any] = yaml.safe_load((EXAMPLES / "guard-values.yaml").read_text())
SIDECAR_VALUES: dict[str, Any] = {
    "prometheus": {"url": URL},
    "guards": [
        {
            "namespace": "ml-prod",
            "system": "support-chatbot",
            "upstream": "http://127.0.0.1:8000",
            "sidecar": True,
            "serviceAccountName": "chatbot-v7",
            "config": {"detectors": {"pii": "redact"}},
        }
    ],
}
VALUE_SETS_GUARD = {"guard": GUARD_VALUES, "guard-sidecar": SIDECAR_VALUES}


@functools.cache
def guard_objects(case: str) -> list[dict[str, Any]]:
    manifests = chart().render(VALUE_SETS_GUARD[case], name="airlock", namespace="airlock-system", is_install=True)
    return [
        doc
        for path, text in sorted(manifests.items())
        if path.endswith(".yaml")
        for doc in yaml.safe_load_all(text)
        if doc and doc.get("metadata", {}).get("labels", {}).get("app.kubernetes.io/component") == "guard"
    ]


def guard_parser() -> argparse.ArgumentParser:
    from airlock.cli import guard as guard_cli

    parser = argparse.ArgumentParser()
    guard_cli.register(parser.add_subparsers())
    return parser


@pytest.mark.parametrize("case", VALUE_SETS_GUARD)
def test_guard_values_lint_and_validate(case: str) -> None:
    report = helm.lint(CHART, VALUE_SETS_GUARD[case], strict=True, namespace="airlock-system")
    assert report["errors"] == []
    assert guard_objects(case)
    for version in KUBE_VERSIONS:
        for obj in guard_objects(case):
            kubernetes_validate.validate(obj, version, strict=True)


def test_the_standalone_guard_deployment_service_and_its_flags() -> None:
    kinds = sorted(obj["kind"] for obj in guard_objects("guard"))
    assert kinds == ["ConfigMap", "Deployment", "NetworkPolicy", "Role", "RoleBinding", "Service", "ServiceAccount"]
    assert {obj["metadata"]["namespace"] for obj in guard_objects("guard")} == {"ml-prod"}
    deployment = next(o for o in guard_objects("guard") if o["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (main,) = pod["containers"]
    assert main["command"] == ["airlock", "guard"]
    args = guard_parser().parse_args(["guard", *main["args"]])
    assert args.system == "ml-prod/support-chatbot"
    assert args.upstream == "http://chatbot.ml-prod:8000"
    assert args.fallback_upstream == "http://chatbot-fallback.ml-prod:8000"
    assert args.config == "/etc/airlock-guard/guard.yaml"
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    ports = {p["name"]: p["containerPort"] for p in main["ports"]}
    assert ports == {"http": 8080, "metrics": args.metrics_port}
    assert main["securityContext"]["readOnlyRootFilesystem"] is True
    assert main["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["serviceAccountName"] == "support-chatbot-guard"
    config = next(o for o in guard_objects("guard") if o["kind"] == "ConfigMap")
    from airlock.api import guard as guard_api

    parsed = guard_api.parse(yaml.safe_load(config["data"]["guard.yaml"]))
    assert parsed.detectors[guard_api.Detector.CROSS_CUSTOMER] is guard_api.Mode.BLOCK
    service = next(o for o in guard_objects("guard") if o["kind"] == "Service")
    assert service["metadata"]["name"] == "chatbot-guard"
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


@pytest.mark.parametrize("case", VALUE_SETS_GUARD)
def test_the_guard_may_only_list_and_watch_its_own_system(case: str) -> None:
    (role,) = [o for o in guard_objects(case) if o["kind"] == "Role"]
    assert role["rules"] == [
        {
            "apiGroups": ["airlock.dev"],
            "resources": ["aisystems"],
            "resourceNames": ["support-chatbot"],
            "verbs": ["list", "watch"],
        }
    ]
    (binding,) = [o for o in guard_objects(case) if o["kind"] == "RoleBinding"]
    expected = "chatbot-v7" if case == "guard-sidecar" else "support-chatbot-guard"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": expected, "namespace": "ml-prod"}]


def test_only_the_guard_reaches_the_model() -> None:
    (policy,) = [o for o in guard_objects("guard") if o["kind"] == "NetworkPolicy"]
    deployment = next(o for o in guard_objects("guard") if o["kind"] == "Deployment")
    assert policy["spec"]["podSelector"] == {"matchLabels": {"app": "chatbot"}}
    first = policy["spec"]["ingress"][0]
    (source,) = first["from"]
    assert source["podSelector"]["matchLabels"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert first["ports"] == [{"port": 8000, "protocol": "TCP"}]


def test_the_sidecar_mode_renders_no_workload_and_its_example_is_valid() -> None:
    assert sorted(o["kind"] for o in guard_objects("guard-sidecar")) == ["ConfigMap", "Role", "RoleBinding"]
    example = [doc for doc in yaml.safe_load_all((EXAMPLES / "guard-sidecar.yaml").read_text()) if doc]
    for version in KUBE_VERSIONS:
        for obj in example:
            kubernetes_validate.validate(obj, version, strict=True)
    pod = example[0]["spec"]["template"]["spec"]
    guard = next(c for c in pod["containers"] if c["name"] == "guard")
    args = guard_parser().parse_args(["guard", *guard["args"]])
    assert args.upstream == "http://127.0.0.1:8000"
    assert args.config == "/etc/airlock-guard/guard.yaml"
    assert pod["serviceAccountName"] == SIDECAR_VALUES["guards"][0]["serviceAccountName"]
    mounted = next(v for v in pod["volumes"] if v["name"] == "guard-config")
    config = next(o for o in guard_objects("guard-sidecar") if o["kind"] == "ConfigMap")
    assert mounted["configMap"]["name"] == config["metadata"]["name"]
    (policy,) = [doc for doc in example if doc["kind"] == "NetworkPolicy"]
    open_ports = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
    assert 8000 not in open_ports


def test_a_guard_entry_with_an_unknown_detector_is_refused() -> None:
    bad = copy.deepcopy(GUARD_VALUES)
    bad["guards"][0]["config"] = {"detectors": {"piii": "redact"}}
    with pytest.raises(helm.HelmValuesError):
        chart().validate_schema(bad)
    bad["guards"][0]["config"] = {"detectors": {"pii": "shout"}}
    with pytest.raises(helm.HelmValuesError):
        chart().validate_schema(bad)
