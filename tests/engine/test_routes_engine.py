"""engine.routes against the sandbox API server: what only the cluster can tell, and a route reshaped under a patch.

The operator's own client talks to a fresh sandbox per test (no operator process): the
kind not served at all, the ReferenceGrant check, and the retry when the route changed
between airlock's read and its patch (the API server refuses the patch's ``test``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from airlock.adapters import kube, kubeconfig
from airlock.api.aisystem import AISystemSpec
from airlock.engine import routes as engine_routes
from airlock.sandbox import serving
from airlock.sandbox.cluster import ClusterThread
from airlock.sandbox.world import Api

NS = "ml-prod"


def spec(**backend: Any) -> AISystemSpec:
    return AISystemSpec.model_validate(
        {
            "target": {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "name": "chatbot"},
            "fallback": {"httpRoute": {"name": "chatbot", "backend": {"name": "chatbot-fallback", **backend}}},
        }
    )


def client(sandbox: ClusterThread, tmp_path: Path) -> kube.KubeClient:
    return kube.KubeClient(kubeconfig.load(str(sandbox.write_kubeconfig(tmp_path / "kubeconfig"))))


def weights(api: Api) -> list[list[int | None]]:
    route = api.get("HTTPRoute", NS, "chatbot") or {}
    return [[ref.get("weight") for ref in rule["backendRefs"]] for rule in route["spec"]["rules"]]


async def test_a_kind_not_installed_is_named_as_such(sandbox: ClusterThread, tmp_path: Path) -> None:
    async with client(sandbox, tmp_path) as api:
        found = await engine_routes.observe(api, NS, spec())
    assert found is not None
    assert found.located is None
    assert (
        found.problem
        == "HTTPRoute is not served by this cluster (httproutes.gateway.networking.k8s.io/v1 is not installed)"
    )


async def test_a_missing_route_is_named(sandbox: ClusterThread, tmp_path: Path) -> None:
    serving.install(Api(sandbox.url))
    async with client(sandbox, tmp_path) as api:
        found = await engine_routes.observe(api, NS, spec())
    assert found is not None
    assert found.problem == f"HTTPRoute {NS}/chatbot not found"


async def test_a_route_reshaped_after_the_read_is_read_again_and_patched_right(
    sandbox: ClusterThread, tmp_path: Path
) -> None:
    api = Api(sandbox.url)
    serving.install(api)
    api.create(
        serving.http_route(
            NS,
            "chatbot",
            [[serving.service_backend("chatbot-v7", weight=9), serving.service_backend("chatbot-fallback", weight=1)]],
        )
    )
    async with client(sandbox, tmp_path) as kube_api:
        seen = await engine_routes.observe(kube_api, NS, spec())
        assert seen is not None
        assert seen.located is not None
        # Meanwhile GitOps reorders the backends and adds one: the patch planned from the old read is stale.
        api.patch(
            "HTTPRoute",
            NS,
            "chatbot",
            {"spec": {"rules": [{"backendRefs": [
                serving.service_backend("chatbot-fallback", weight=1),
                serving.service_backend("chatbot-v9", weight=3),
                serving.service_backend("chatbot-v7", weight=9),
            ]}]}},
        )  # fmt: skip
        await engine_routes.reroute(kube_api, NS, "support-chatbot", spec(), seen.located)
    # By identity, not by the stale positions: the stale patch's tests failed (422), the route was read again.
    assert weights(api) == [[1, 0, 0]]


async def test_a_fallback_in_another_namespace_is_checked_against_reference_grants(
    sandbox: ClusterThread, tmp_path: Path
) -> None:
    api = Api(sandbox.url)
    serving.install(api)
    fallback = {**serving.service_backend("chatbot-fallback"), "namespace": "shared"}
    api.create(serving.http_route(NS, "chatbot", [[serving.service_backend("chatbot-v7"), fallback]]))
    async with client(sandbox, tmp_path) as kube_api:
        refused = await engine_routes.observe(kube_api, NS, spec(namespace="shared"))
        api.create(serving.reference_grant("shared", "allow-ml-prod", from_namespace=NS))
        granted = await engine_routes.observe(kube_api, NS, spec(namespace="shared"))
    assert refused is not None
    assert refused.located is None
    assert "no ReferenceGrant in shared" in (refused.problem or "")
    assert granted is not None
    assert granted.problem is None
    assert granted.located is not None
