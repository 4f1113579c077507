"""More manifests for integration tests: the other target kinds, autoscalers, third-party CRDs, monitors.

The Argo Rollouts and KEDA CRDs are the minimum the sandbox needs to serve those
kinds the way a real cluster would (a scale subresource on Rollout, so
``scaleToZero`` goes through it as it does for a Deployment).
"""

from __future__ import annotations

from typing import Any

ROLLOUT_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "rollouts.argoproj.io"},
    "spec": {
        "group": "argoproj.io",
        "scope": "Namespaced",
        "names": {"plural": "rollouts", "singular": "rollout", "kind": "Rollout", "shortNames": ["ro"]},
        "versions": [
            {
                "name": "v1alpha1",
                "served": True,
                "storage": True,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                "subresources": {
                    "status": {},
                    "scale": {
                        "specReplicasPath": ".spec.replicas",
                        "statusReplicasPath": ".status.replicas",
                        "labelSelectorPath": ".status.selector",
                    },
                },
            }
        ],
    },
}

KEDA_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "scaledobjects.keda.sh"},
    "spec": {
        "group": "keda.sh",
        "scope": "Namespaced",
        "names": {"plural": "scaledobjects", "singular": "scaledobject", "kind": "ScaledObject", "shortNames": ["so"]},
        "versions": [
            {
                "name": "v1alpha1",
                "served": True,
                "storage": True,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                "subresources": {"status": {}},
            }
        ],
    },
}


def _pod_template(app: str) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": app, "track": "model"}},
        "spec": {"containers": [{"name": "model", "image": "example/model:v7"}]},
    }


def statefulset(namespace: str, name: str, app: str, replicas: int = 3) -> dict[str, Any]:
    # The update strategy as a real API server returns it (defaulted), so "restored exactly" is meaningful.
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": app}},
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "selector": {"matchLabels": {"app": app, "track": "model"}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "template": _pod_template(app),
        },
    }


def rollout(namespace: str, name: str, app: str, replicas: int = 3) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": app}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": app, "track": "model"}},
            "template": _pod_template(app),
            "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}},
        },
    }


def scaled_object(
    namespace: str, name: str, deployment: str, annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": metadata,
        "spec": {
            "scaleTargetRef": {"name": deployment},
            "minReplicaCount": 1,
            "maxReplicaCount": 10,
            "triggers": [{"type": "prometheus", "metadata": {"query": "sum(rate(model_requests_total[1m]))"}}],
        },
    }


def target_ref(kind: str, name: str) -> dict[str, str]:
    api_version = "argoproj.io/v1alpha1" if kind == "Rollout" else "apps/v1"
    return {"apiVersion": api_version, "kind": kind, "name": name}


# ------------------------------------------------------------------ monitors
#
# Short rate windows and 1 s intervals keep every scenario within seconds.  The
# fairness gauge is the fastest trigger there is (no rate window to fill or
# drain), so scenarios about actions and responses use it.

SELECT = 'namespace="{{ namespace }}",app="{{ params.app }}"'


def monitor(
    name: str, failure_mode: str, query: str, thresholds: list[tuple[str, str, float]], **extra: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "failureMode": failure_mode,
        "query": query,
        "interval": "1s",
        "noData": "gap",
        "thresholds": [{"severity": s, "op": op, "value": v, "for": "0s"} for s, op, v in thresholds],
        **extra,
    }


def fairness_monitor(severity: str = "SEV1", below: float = 0.8) -> dict[str, Any]:
    """The four-fifths rule on the model's outcome-rate ratio."""
    return monitor("fairness", "fairness", f"min(fairness_disparity_ratio{{{SELECT}}})", [(severity, "<", below)])
