"""Reroute through an HTTPRoute or a VirtualService: where the fallback is, the weights, the exact restore.

The patches are applied with the sandbox's RFC 6902 implementation (the same code the
sandbox API server runs), so "restored exactly" is checked on the resulting object.
"""

from __future__ import annotations

import copy
import datetime
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from airlock.api import annotations as keys
from airlock.api.aisystem import Containment, Fallback, TargetKind
from airlock.api.common import Action
from airlock.domain import containment, routes, transitions
from airlock.sandbox import serving
from airlock.sandbox._k8s_patches import PatchError, json_patch

NS = "ml-prod"


def fallback(**backend: Any) -> routes.Matcher:
    spec = Fallback.model_validate(
        {"httpRoute": {"name": "chatbot", "backend": {"name": "chatbot-fallback", **backend}}}
    )
    found = routes.matcher(spec, NS)
    assert found is not None
    return found


def istio_fallback(host: str = "chatbot-fallback", subset: str | None = None) -> routes.Matcher:
    dest: dict[str, Any] = {"host": host}
    if subset:
        dest["subset"] = subset
    found = routes.matcher(Fallback.model_validate({"virtualService": {"name": "chatbot", "destination": dest}}), NS)
    assert found is not None
    return found


def route(*rules: list[dict[str, Any]]) -> dict[str, Any]:
    body = serving.http_route(NS, "chatbot", list(rules))
    body["metadata"]["resourceVersion"] = "7"
    return body


def located(
    body: dict[str, Any], matcher: routes.Matcher | None = None, shape: routes.Shape = routes.HTTP_ROUTE
) -> routes.Located:
    found = routes.locate(shape, body, matcher or fallback())
    assert isinstance(found, routes.Located), found
    return found


def weights(body: dict[str, Any], shape: routes.Shape = routes.HTTP_ROUTE) -> list[list[int | None]]:
    return [[w for _, w in rule] for rule in routes.weights(routes.view(shape, body))]


def reroute(
    body: dict[str, Any], matcher: routes.Matcher | None = None, shape: routes.Shape = routes.HTTP_ROUTE
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(rerouted body, saved weights)."""
    found = located(body, matcher, shape)
    saved = routes.saved_state(found, None)
    return json_patch(body, routes.reroute_patch(found, "support-chatbot")), saved


def restore(body: dict[str, Any], saved: dict[str, Any], shape: routes.Shape = routes.HTTP_ROUTE) -> dict[str, Any]:
    planned = routes.restore_patch(routes.view(shape, body), saved)
    assert planned.missing == []
    return json_patch(body, planned.patch)


# --- reroute and restore -------------------------------------------------------------


def test_all_weight_to_the_fallback_and_back_exactly() -> None:
    before = route(
        [serving.service_backend("chatbot-v7", weight=90), serving.service_backend("chatbot-v8", weight=10),
         serving.service_backend("chatbot-fallback", weight=0)],
    )  # fmt: skip
    after, saved = reroute(before)

    assert weights(after) == [[0, 0, 1]]
    assert after["metadata"]["annotations"] == {keys.CONTAINED_BY: "support-chatbot"}
    assert routes.rerouted(located(after))
    assert restore(after, saved) == before


def test_absent_weights_come_back_absent_not_as_an_explicit_one() -> None:
    before = route([serving.service_backend("chatbot-v7"), serving.service_backend("chatbot-fallback")])
    after, saved = reroute(before)

    assert weights(after) == [[0, 1]]
    assert saved["rules"] == [
        {
            "rule": 0,
            "backends": [["Service/ml-prod/chatbot-v7:80", None], ["Service/ml-prod/chatbot-fallback:80", None]],
        }
    ]
    restored = restore(after, saved)
    assert restored == before
    assert all("weight" not in ref for ref in restored["spec"]["rules"][0]["backendRefs"])


def test_zero_weights_everywhere_are_restored_as_zeros() -> None:
    # A route switched off by hand (every weight 0, the gateway answers 500): reroute still moves traffic.
    before = route(
        [serving.service_backend("chatbot-v7", weight=0), serving.service_backend("chatbot-fallback", weight=0)]
    )
    after, saved = reroute(before)
    assert weights(after) == [[0, 1]]
    assert restore(after, saved) == before


def test_every_rule_naming_the_fallback_is_rerouted_and_the_others_are_left_alone() -> None:
    before = route(
        [serving.service_backend("chatbot-v7", weight=3), serving.service_backend("chatbot-fallback", weight=0)],
        [serving.service_backend("chatbot-v7")],  # e.g. /v1/models: no fallback in it
        [serving.service_backend("chatbot-fallback"), serving.service_backend("chatbot-v7")],
    )
    after, saved = reroute(before)

    assert weights(after) == [[0, 1], [None], [1, 0]]
    assert [entry["rule"] for entry in saved["rules"]] == [0, 2]
    assert restore(after, saved) == before


def test_inference_pool_backends_are_matched_by_group_and_kind() -> None:
    before = route([serving.pool_backend("llama-pool", weight=100), serving.pool_backend("chatbot-fallback", weight=0)])
    pool = fallback(group="inference.networking.k8s.io", kind="InferencePool")
    after, saved = reroute(before, pool)
    assert weights(after) == [[0, 1]]
    assert restore(after, saved) == before
    # The same name as a Service is another backend: not the fallback.
    assert isinstance(routes.locate(routes.HTTP_ROUTE, before, fallback()), str)


def test_a_service_and_a_pool_of_the_same_name_are_told_apart() -> None:
    before = route(
        [serving.service_backend("chatbot-fallback", weight=5), serving.pool_backend("chatbot-fallback", weight=5)]
    )
    after, _ = reroute(before, fallback(group="inference.networking.k8s.io", kind="InferencePool"))
    assert weights(after) == [[0, 1]]


def test_a_fallback_in_another_namespace_is_matched_by_namespace() -> None:
    before = route(
        [
            serving.service_backend("chatbot-v7"),
            {**serving.service_backend("chatbot-fallback"), "namespace": "fallbacks"},
        ]
    )
    assert isinstance(routes.locate(routes.HTTP_ROUTE, before, fallback()), str)  # not the one in ml-prod
    after, _ = reroute(before, fallback(namespace="fallbacks"))
    assert weights(after) == [[0, 1]]


def test_an_explicit_namespace_equal_to_the_routes_is_the_same_backend() -> None:
    before = route(
        [serving.service_backend("chatbot-v7"), {**serving.service_backend("chatbot-fallback"), "namespace": NS}]
    )
    after, _ = reroute(before)
    assert weights(after) == [[0, 1]]


def test_reroute_is_idempotent() -> None:
    after, _ = reroute(route([serving.service_backend("chatbot-v7"), serving.service_backend("chatbot-fallback")]))
    assert routes.reroute_patch(located(after), "support-chatbot") == []


def test_existing_annotations_are_kept_and_the_marker_removed_on_restore() -> None:
    before = route([serving.service_backend("chatbot-v7"), serving.service_backend("chatbot-fallback")])
    before["metadata"]["annotations"] = {
        "argocd.argoproj.io/tracking-id": "chatbot:gateway.networking.k8s.io/HTTPRoute:ml-prod/chatbot"
    }
    after, saved = reroute(before)
    assert after["metadata"]["annotations"][keys.CONTAINED_BY] == "support-chatbot"
    assert restore(after, saved) == before


# --- what reroute refuses -------------------------------------------------------------


def test_a_route_without_the_fallback_is_refused_naming_it_and_the_routes_backends() -> None:
    problem = routes.locate(routes.HTTP_ROUTE, route([serving.service_backend("chatbot-v7")]), fallback())
    assert isinstance(problem, str)
    assert "fallback Service chatbot-fallback is not a backend of HTTPRoute chatbot" in problem
    assert "Service/ml-prod/chatbot-v7:80" in problem


def test_a_fallback_named_twice_in_one_rule_needs_its_port() -> None:
    body = route(
        [serving.service_backend("chatbot-fallback", port=80), serving.service_backend("chatbot-fallback", port=8080)]
    )
    problem = routes.locate(routes.HTTP_ROUTE, body, fallback())
    assert isinstance(problem, str)
    assert "appears 2 times" in problem
    after, _ = reroute(body, fallback(port=8080))
    assert weights(after) == [[0, 1]]


def test_a_route_reshaped_after_the_read_is_refused_by_the_patch_test() -> None:
    before = route(
        [serving.service_backend("chatbot-v7", weight=1), serving.service_backend("chatbot-fallback", weight=0)]
    )
    patch = routes.reroute_patch(located(before), "support-chatbot")
    reshaped = copy.deepcopy(before)
    reshaped["spec"]["rules"][0]["backendRefs"].reverse()  # GitOps reordered the backends meanwhile
    with pytest.raises(PatchError):
        json_patch(reshaped, patch)


# --- revert detection and the saved state ---------------------------------------------


def test_a_route_put_back_by_gitops_is_seen_as_reverted() -> None:
    before = route(
        [serving.service_backend("chatbot-v7", weight=1), serving.service_backend("chatbot-fallback", weight=0)]
    )
    after, _ = reroute(before)
    assert routes.rerouted(located(after))
    assert not routes.rerouted(located(before))
    # Weights dropped (a manifest without them): the API default 1 sends traffic to the model again.
    stripped = copy.deepcopy(after)
    for ref in stripped["spec"]["rules"][0]["backendRefs"]:
        ref.pop("weight")
    assert not routes.rerouted(located(stripped))


def test_the_saved_weights_are_never_overwritten_but_new_backends_are_added() -> None:
    before = route(
        [serving.service_backend("chatbot-v7", weight=9), serving.service_backend("chatbot-fallback", weight=1)]
    )
    after, saved = reroute(before)
    # While contained, GitOps adds a canary with weight 5 and resets the fallback's weight.
    edited = copy.deepcopy(after)
    edited["spec"]["rules"][0]["backendRefs"].append(serving.service_backend("chatbot-v9", weight=5))
    edited["spec"]["rules"][0]["backendRefs"][1]["weight"] = 1
    resaved = routes.saved_state(located(edited), saved)
    assert resaved["rules"][0]["backends"] == [
        ["Service/ml-prod/chatbot-v7:80", 9],
        ["Service/ml-prod/chatbot-fallback:80", 1],
        ["Service/ml-prod/chatbot-v9:80", 5],
    ]
    assert saved["rules"][0]["backends"][0] == ["Service/ml-prod/chatbot-v7:80", 9]  # the input is not mutated
    reapplied = json_patch(edited, routes.reroute_patch(located(edited), "support-chatbot"))
    assert weights(reapplied) == [[0, 1, 0]]
    restored = restore(reapplied, resaved)
    assert weights(restored) == [[9, 1, 5]]


def test_restore_reports_backends_the_route_lost() -> None:
    before = route(
        [serving.service_backend("chatbot-v7", weight=2), serving.service_backend("chatbot-fallback", weight=0)]
    )
    after, saved = reroute(before)
    del after["spec"]["rules"][0]["backendRefs"][0]
    planned = routes.restore_patch(routes.view(routes.HTTP_ROUTE, after), saved)
    assert planned.missing == ["rule 0 backend Service/ml-prod/chatbot-v7:80"]
    assert weights(json_patch(after, planned.patch)) == [[0]]


def test_restore_finds_a_backend_moved_within_its_rule() -> None:
    before = route(
        [serving.service_backend("chatbot-v7", weight=2), serving.service_backend("chatbot-fallback", weight=0)]
    )
    after, saved = reroute(before)
    after["spec"]["rules"][0]["backendRefs"].reverse()
    assert weights(restore(after, saved)) == [[0, 2]]


# --- Istio VirtualService ---------------------------------------------------------------


def test_virtual_service_weights_move_to_100_and_back() -> None:
    before = serving.virtual_service(
        NS,
        "chatbot",
        [[serving.destination("chatbot-v7", weight=80), serving.destination("chatbot-v7", subset="canary", weight=20),
          serving.destination("chatbot-fallback", weight=0)]],
    )  # fmt: skip
    after, saved = reroute(before, istio_fallback(), routes.VIRTUAL_SERVICE)
    assert weights(after, routes.VIRTUAL_SERVICE) == [[0, 0, 100]]
    assert sum(w or 0 for w in weights(after, routes.VIRTUAL_SERVICE)[0]) == 100  # Istio wants 100 in total
    assert routes.rerouted(located(after, istio_fallback(), routes.VIRTUAL_SERVICE))
    assert restore(after, saved, routes.VIRTUAL_SERVICE) == before


def test_virtual_service_subsets_are_distinct_destinations() -> None:
    before = serving.virtual_service(
        NS,
        "chatbot",
        [[serving.destination("chatbot", subset="v7"), serving.destination("chatbot", subset="fallback")]],
    )
    after, saved = reroute(before, istio_fallback("chatbot", "fallback"), routes.VIRTUAL_SERVICE)
    assert weights(after, routes.VIRTUAL_SERVICE) == [[0, 100]]
    assert restore(after, saved, routes.VIRTUAL_SERVICE) == before


def test_a_lone_istio_destination_without_weight_takes_everything() -> None:
    alone = serving.virtual_service(NS, "chatbot", [[serving.destination("chatbot-fallback")]])
    assert routes.rerouted(located(alone, istio_fallback(), routes.VIRTUAL_SERVICE))


# --- ReferenceGrant ------------------------------------------------------------------------


def test_a_backend_in_another_namespace_needs_a_matching_reference_grant() -> None:
    other = fallback(namespace="fallbacks")
    assert routes.needs_grant(other, NS)
    assert not routes.needs_grant(fallback(), NS)
    grant = serving.reference_grant("fallbacks", "allow-ml-prod", from_namespace=NS)
    assert routes.granted([grant], other, NS)
    assert not routes.granted([serving.reference_grant("fallbacks", "g", from_namespace="other")], other, NS)
    assert not routes.granted(
        [serving.reference_grant("fallbacks", "g", from_namespace=NS, kind="InferencePool")], other, NS
    )
    named = copy.deepcopy(grant)
    named["spec"]["to"][0]["name"] = "something-else"
    assert not routes.granted([named], other, NS)
    problem = routes.grant_problem(other, "chatbot", NS)
    assert "no ReferenceGrant in fallbacks" in problem
    assert "reroute was not applied" in problem


# --- property: reroute then restore is the identity ---------------------------------------

_backend = st.fixed_dictionaries(
    {"name": st.sampled_from(["chatbot-v7", "chatbot-v8", "chatbot-fallback", "other"])},
    optional={"weight": st.integers(min_value=0, max_value=1000)},
).map(lambda ref: {**ref, "port": 80})


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(_backend, min_size=1, max_size=4), min_size=1, max_size=4))
def test_reroute_then_restore_is_exact_for_any_route(rules: list[list[dict[str, Any]]]) -> None:
    body = route(*rules)
    found = routes.locate(routes.HTTP_ROUTE, body, fallback())
    if isinstance(found, str):
        return  # no fallback, or twice in a rule: refused (tested above)
    saved = routes.saved_state(found, None)
    after = json_patch(body, routes.reroute_patch(found, "support-chatbot"))
    assert routes.rerouted(located(after))
    for r, rule in enumerate(after["spec"]["rules"]):
        if r in found.at:
            assert sum(ref.get("weight", 1) for ref in rule["backendRefs"]) == 1
        else:
            assert rule == body["spec"]["rules"][r]
    assert restore(after, saved) == body


# --- through the containment transitions ----------------------------------------------------


def test_a_reverted_route_is_rewritten_and_its_new_backend_saved() -> None:
    before = route(
        [serving.service_backend("chatbot-v7", weight=9), serving.service_backend("chatbot-fallback", weight=1)]
    )
    saved = {"route": routes.saved_state(located(before), None)}
    edited = copy.deepcopy(before)  # Argo CD re-applied the manifest, which now has a canary too
    edited["spec"]["rules"][0]["backendRefs"].append(serving.service_backend("chatbot-v9", weight=5))
    observed = containment.Observed(
        kind=TargetKind.INFERENCE_SERVICE,
        name="chatbot",
        replicas=None,
        paused=False,
        partition=None,
        update_strategy=None,
        pod_labels={},
        stop="true",
        route=located(edited),
    )
    current = Containment(active=True, actions=[Action.REROUTE, Action.SCALE_TO_ZERO], saved=saved)
    intent = transitions.Intent(system="support-chatbot", desired=(Action.REROUTE,), reason="monitor fairness")
    now = datetime.datetime(2026, 11, 26, tzinfo=datetime.UTC)

    step = transitions.plan_step(intent, current, observed, (None, None), now)

    assert step.undone == (Action.REROUTE,)
    assert step.saved["route"]["rules"][0]["backends"][-1] == ["Service/ml-prod/chatbot-v9:80", 5]
    assert step.saved["route"]["rules"][0]["backends"][0] == ["Service/ml-prod/chatbot-v7:80", 9]
    assert transitions.actions_from_saved({"route": {}, "stop": {"absent": True}}) == [
        Action.REROUTE,
        Action.SCALE_TO_ZERO,
    ]
