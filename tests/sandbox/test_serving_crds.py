"""The sandbox's serving-stack CRDs hold the shapes they claim, independently of the sandbox server.

The sandbox API server validates no custom resource (``KNOWN_GAPS``), so these checks use
the same stand-in for the API server's CRD validation as the api tests (OpenAPI schema,
strict fields, defaults, CEL rules with cel-python): the builders' manifests are valid,
typical mistakes are refused as a real cluster would refuse them, and every object airlock
writes (a stopped InferenceService, a rerouted and a restored route) is still valid.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from airlock.api.aisystem import Fallback, TargetKind
from airlock.api.common import Action
from airlock.domain import containment, routes
from airlock.sandbox import serving
from airlock.sandbox._k8s_patches import json_patch, merge_patch
from airlock.sandbox.cluster import ClusterThread
from airlock.sandbox.world import Api
from tests.api import schema_check

NS = "ml-prod"
KINDS = {"InferenceService", "HTTPRoute", "ReferenceGrant", "InferencePool", "VirtualService"}


def errors(manifest: dict[str, Any]) -> list[str]:
    return schema_check.validate(serving.crd(manifest["kind"]), manifest)


def test_every_kind_has_one_crd_with_a_served_storage_version() -> None:
    definitions = serving.crds()
    assert {d["spec"]["names"]["kind"] for d in definitions} == KINDS
    for definition in definitions:
        names = definition["spec"]["names"]
        assert definition["metadata"]["name"] == f"{names['plural']}.{definition['spec']['group']}"
        (version,) = definition["spec"]["versions"]
        assert version["served"]
        assert version["storage"]
        assert version["schema"]["openAPIV3Schema"]["type"] == "object"


@pytest.mark.parametrize(
    "manifest",
    [
        serving.inference_service(NS, "chatbot"),
        serving.inference_service(NS, "chatbot", annotations={"serving.kserve.io/stop": "false"}),
        serving.http_route(
            NS, "chatbot", [[serving.service_backend("chatbot-v7", weight=90), serving.pool_backend("pool")]]
        ),
        serving.reference_grant("fallbacks", "allow", from_namespace=NS),
        serving.inference_pool(NS, "pool", "chatbot"),
        serving.virtual_service(NS, "chatbot", [[serving.destination("chatbot-v7", weight=100)]]),
    ],
    ids=lambda m: m["kind"],
)
def test_the_builders_write_valid_objects(manifest: dict[str, Any]) -> None:
    assert errors(manifest) == []


@pytest.mark.parametrize(
    ("manifest", "expected"),
    [
        (
            serving.http_route(NS, "r", [[serving.service_backend("a", weight=1_000_001)]]),
            "spec.rules[0].backendRefs[0].weight",
        ),
        (
            serving.http_route(NS, "r", [[serving.service_backend("a", weight=-1)]]),
            "spec.rules[0].backendRefs[0].weight",
        ),
        (serving.http_route(NS, "r", [[{"name": "a"}]]), "Must have port for Service reference"),
        (serving.http_route(NS, "r", [[{"port": 80}]]), "spec.rules[0].backendRefs[0].name: Required value"),
        (serving.virtual_service(NS, "v", [[serving.destination("a", weight=101)]]), "spec.http[0].route[0].weight"),
        (serving.virtual_service(NS, "v", [[{"weight": 100}]]), "spec.http[0].route[0].destination: Required value"),
        (
            {
                **serving.reference_grant("f", "g", from_namespace=NS),
                "spec": {"to": [{"group": "", "kind": "Service"}]},
            },
            "spec.from: Required value",
        ),
        ({**serving.inference_service(NS, "chatbot"), "spec": {}}, "spec.predictor: Required value"),
    ],
    ids=[
        "weight-too-big",
        "weight-negative",
        "service-without-port",
        "no-name",
        "istio-weight",
        "no-destination",
        "grant-without-from",
        "isvc-without-predictor",
    ],
)
def test_mistakes_are_refused_as_a_cluster_would(manifest: dict[str, Any], expected: str) -> None:
    found = errors(manifest)
    assert any(expected in line for line in found), found


def test_absent_weight_group_and_kind_default_as_in_gateway_api() -> None:
    schema = serving.crd("HTTPRoute")["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    route = serving.http_route(NS, "r", [[{"name": "a", "port": 80}]])
    schema_check.apply_defaults(schema, route)
    assert route["spec"]["rules"][0]["backendRefs"][0] == {
        "name": "a",
        "port": 80,
        "group": "",
        "kind": "Service",
        "weight": 1,
    }


def _located(body: dict[str, Any], fallback: dict[str, Any], shape: routes.Shape) -> routes.Located:
    matcher = routes.matcher(Fallback.model_validate(fallback), NS)
    assert matcher is not None
    found = routes.locate(shape, body, matcher)
    assert isinstance(found, routes.Located), found
    return found


@pytest.mark.parametrize(
    ("before", "fallback", "shape"),
    [
        (
            serving.http_route(
                NS,
                "chatbot",
                [
                    [serving.pool_backend("llama", weight=7), serving.service_backend("fb", weight=0)],
                    [serving.service_backend("fb")],
                ],
            ),
            {"httpRoute": {"name": "chatbot", "backend": {"name": "fb"}}},
            routes.HTTP_ROUTE,
        ),
        (
            serving.virtual_service(
                NS, "chatbot", [[serving.destination("llama", weight=100), serving.destination("fb", weight=0)]]
            ),
            {"virtualService": {"name": "chatbot", "destination": {"host": "fb"}}},
            routes.VIRTUAL_SERVICE,
        ),
    ],
    ids=["HTTPRoute", "VirtualService"],
)
def test_what_airlock_writes_to_a_route_stays_valid(
    before: dict[str, Any], fallback: dict[str, Any], shape: routes.Shape
) -> None:
    found = _located(before, fallback, shape)
    rerouted = json_patch(before, routes.reroute_patch(found, "support-chatbot"))
    assert errors(rerouted) == []
    saved = routes.saved_state(found, None)
    restored = json_patch(rerouted, routes.restore_patch(routes.view(shape, rerouted), saved).patch)
    assert errors(restored) == []
    assert restored == before


@pytest.mark.parametrize("before", [None, "false", "true"])
def test_what_airlock_writes_to_an_inference_service_stays_valid(before: str | None) -> None:
    isvc = serving.inference_service(NS, "chatbot", annotations={containment.KSERVE_STOP: before} if before else None)
    stopped = merge_patch(isvc, containment.stop_patch())
    assert errors(stopped) == []
    assert stopped["metadata"]["annotations"][containment.KSERVE_STOP] == "true"
    saved = containment.save([Action.SCALE_TO_ZERO], _observed(before), None)
    patch = containment.unstop_patch(saved)
    assert patch is not None
    restored = merge_patch(stopped, patch)
    assert errors(restored) == []
    # A merge patch removing the last annotation leaves `annotations: {}` (a real API server drops it).
    expected = copy.deepcopy(isvc)
    expected["metadata"].setdefault("annotations", {})
    assert restored == expected


def _observed(stop: str | None) -> containment.Observed:
    return containment.Observed(
        kind=TargetKind.INFERENCE_SERVICE,
        name="chatbot",
        replicas=None,
        paused=False,
        partition=None,
        update_strategy=None,
        pod_labels={},
        stop=stop,
    )


def test_the_sandbox_serves_the_kinds_once_installed() -> None:
    cluster = ClusterThread().start()
    try:
        api = Api(cluster.url)
        assert api.call("GET", "/apis/gateway.networking.k8s.io/v1") is None  # not installed: 404
        serving.install(api)
        for kind in sorted(KINDS):
            assert api.list(kind, NS) == []
        created = api.create(serving.http_route(NS, "chatbot", [[serving.service_backend("chatbot-v7")]]))
        assert created["spec"]["rules"][0]["backendRefs"] == [{"name": "chatbot-v7", "port": 80}]
    finally:
        cluster.stop()
