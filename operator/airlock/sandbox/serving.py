"""Serving stacks in the sandbox: KServe, the Gateway API (and its Inference Extension), Istio.

The CRDs under ``crds/`` are cut-down copies of the real ones — the fields airlock reads
and writes, with the real defaults and bounds — so the sandbox API server serves these
kinds the way a cluster with KServe, Gateway API and Istio installed would (the sandbox
itself validates no custom resource: ``tests/sandbox/test_serving_crds.py`` checks the
shapes against these schemas). There are no controllers: nothing acts on a stopped
InferenceService or a re-weighted route, exactly as in the rest of the sandbox.

The builders return manifests written the way a platform team would write them.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Protocol

import yaml

CRD_DIR = Path(__file__).resolve().parent / "crds"

# The kinds (and where the sandbox serves them) for the world's small client.
PATHS = {
    "InferenceService": ("/apis/serving.kserve.io/v1beta1", "inferenceservices", True),
    "HTTPRoute": ("/apis/gateway.networking.k8s.io/v1", "httproutes", True),
    "ReferenceGrant": ("/apis/gateway.networking.k8s.io/v1beta1", "referencegrants", True),
    "InferencePool": ("/apis/inference.networking.k8s.io/v1", "inferencepools", True),
    "VirtualService": ("/apis/networking.istio.io/v1", "virtualservices", True),
}

INFERENCE_POOL_GROUP = "inference.networking.k8s.io"


class Applier(Protocol):
    def apply(self, obj: dict[str, Any]) -> dict[str, Any]: ...


@functools.cache
def _load() -> tuple[dict[str, Any], ...]:
    return tuple(yaml.safe_load(path.read_text(encoding="utf-8")) for path in sorted(CRD_DIR.glob("*.yaml")))


def crds() -> list[dict[str, Any]]:
    """The serving stacks' CRDs (fresh copies)."""
    return [yaml.safe_load(yaml.safe_dump(crd)) for crd in _load()]


def crd(kind: str) -> dict[str, Any]:
    """The CRD of one kind, e.g. ``crd("HTTPRoute")``."""
    for definition in crds():
        if definition["spec"]["names"]["kind"] == kind:
            return definition
    raise KeyError(kind)


def install(api: Applier) -> None:
    """Register every serving CRD (like ``kubectl apply -f`` of KServe's, Gateway API's and Istio's)."""
    for definition in crds():
        api.apply(definition)


def inference_service(
    namespace: str, name: str, *, annotations: dict[str, str] | None = None, runtime: str = "vllm"
) -> dict[str, Any]:
    """A KServe InferenceService serving an LLM with the Hugging Face runtime (vLLM backend)."""
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": {"app": name}}
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": metadata,
        "spec": {
            "predictor": {
                "minReplicas": 1,
                "maxReplicas": 4,
                "model": {
                    "modelFormat": {"name": "huggingface"},
                    "runtime": f"kserve-huggingfaceserver-{runtime}" if runtime else "kserve-huggingfaceserver",
                    "storageUri": "hf://meta-llama/Llama-3.1-8B-Instruct",
                    "args": ["--backend=vllm", "--max-model-len=8192"],
                },
            }
        },
    }


def service_backend(name: str, *, port: int = 80, weight: int | None = None) -> dict[str, Any]:
    """A backendRef to a Service (``weight=None``: no weight written, the API's default 1 applies)."""
    ref: dict[str, Any] = {"name": name, "port": port}
    if weight is not None:
        ref["weight"] = weight
    return ref


def pool_backend(name: str, *, weight: int | None = None, namespace: str | None = None) -> dict[str, Any]:
    """A backendRef to an InferencePool of the Gateway API Inference Extension."""
    ref: dict[str, Any] = {"group": INFERENCE_POOL_GROUP, "kind": "InferencePool", "name": name}
    if namespace is not None:
        ref["namespace"] = namespace
    if weight is not None:
        ref["weight"] = weight
    return ref


def http_route(
    namespace: str, name: str, rules: list[list[dict[str, Any]]], *, hostnames: tuple[str, ...] = ()
) -> dict[str, Any]:
    """An HTTPRoute attached to the shared gateway, one rule per list of backendRefs."""
    paths = ["/v1/chat/completions", "/v1/completions", "/v1/models", "/"]
    spec: dict[str, Any] = {
        "parentRefs": [{"name": "inference-gateway", "namespace": "gateway-system"}],
        "rules": [
            {"matches": [{"path": {"type": "PathPrefix", "value": paths[min(i, len(paths) - 1)]}}], "backendRefs": refs}
            for i, refs in enumerate(rules)
        ],
    }
    if hostnames:
        spec["hostnames"] = list(hostnames)
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def inference_pool(namespace: str, name: str, app: str) -> dict[str, Any]:
    return {
        "apiVersion": "inference.networking.k8s.io/v1",
        "kind": "InferencePool",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "selector": {"matchLabels": {"app": app}},
            "targetPorts": [{"number": 8000}],
            "endpointPickerRef": {"name": f"{name}-epp", "port": {"number": 9002}},
        },
    }


def reference_grant(namespace: str, name: str, *, from_namespace: str, kind: str = "Service") -> dict[str, Any]:
    """A ReferenceGrant in ``namespace`` letting HTTPRoutes of ``from_namespace`` refer to its ``kind``."""
    group = INFERENCE_POOL_GROUP if kind == "InferencePool" else ""
    return {
        "apiVersion": "gateway.networking.k8s.io/v1beta1",
        "kind": "ReferenceGrant",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": from_namespace}],
            "to": [{"group": group, "kind": kind}],
        },
    }


def destination(host: str, *, subset: str | None = None, weight: int | None = None) -> dict[str, Any]:
    """One weighted destination of a VirtualService HTTP route."""
    dest: dict[str, Any] = {"host": host}
    if subset is not None:
        dest["subset"] = subset
    route: dict[str, Any] = {"destination": dest}
    if weight is not None:
        route["weight"] = weight
    return route


def virtual_service(namespace: str, name: str, routes: list[list[dict[str, Any]]]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "hosts": [f"{name}.{namespace}.svc.cluster.local"],
            "http": [{"name": f"route-{i}", "route": route} for i, route in enumerate(routes)],
        },
    }
