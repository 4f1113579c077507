"""The emulator's pure building blocks: patches, selectors, routes, registry, tables."""

from __future__ import annotations

from typing import Any

import pytest

from airlock.sandbox._k8s_errors import ApiError
from airlock.sandbox._k8s_http import Route, parse_route
from airlock.sandbox._k8s_patches import PatchError, json_patch, merge_patch, strategic_merge_patch
from airlock.sandbox._k8s_registry import BUILTIN_TYPES, Registry, sort_versions
from airlock.sandbox._k8s_selectors import format_label_selector, parse_field_selector, parse_label_selector
from airlock.sandbox._k8s_tables import human_duration, jsonpath
from airlock.sandbox.cluster import kubeconfig


@pytest.mark.parametrize(
    ("target", "patch", "expected"),
    [  # RFC 7386, appendix A (a selection)
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_merge_patch_rfc7386(target: Any, patch: Any, expected: Any) -> None:
    assert merge_patch(target, patch) == expected


def test_merge_patch_does_not_mutate_inputs() -> None:
    target = {"a": {"b": 1}}
    merge_patch(target, {"a": {"b": 2}})
    assert target == {"a": {"b": 1}}


def test_json_patch_pointer_escaping_and_append() -> None:
    doc = {"a/b": {"c~d": [1]}}
    result = json_patch(
        doc,
        [
            {"op": "add", "path": "/a~1b/c~0d/-", "value": 2},
            {"op": "add", "path": "/a~1b/c~0d/0", "value": 0},
            {"op": "replace", "path": "", "value": {"whole": True}},
        ],
    )
    assert result == {"whole": True}
    assert json_patch(doc, [{"op": "add", "path": "/a~1b/c~0d/-", "value": 2}]) == {"a/b": {"c~d": [1, 2]}}
    assert doc == {"a/b": {"c~d": [1]}}


@pytest.mark.parametrize(
    "operations",
    [
        [{"op": "test", "path": "/n", "value": True}],  # 1 is not true in JSON
        [{"op": "test", "path": "/n", "value": "1"}],
        [{"op": "remove", "path": "/missing"}],
        [{"op": "replace", "path": "/list/5", "value": 0}],
        [{"op": "add", "path": "/list/01", "value": 0}],
        [{"op": "move", "from": "/obj", "path": "/obj/inner"}],
        [{"op": "copy", "from": "/nowhere", "path": "/x"}],
        [{"op": "add", "path": "no-slash", "value": 1}],
        [{"op": "nope", "path": "/n"}],
        {"op": "add", "path": "/n", "value": 1},
    ],
)
def test_json_patch_failures(operations: Any) -> None:
    with pytest.raises(PatchError):
        json_patch({"n": 1, "list": [0], "obj": {}}, operations)


def test_strategic_merge_patch_directives() -> None:
    original = {
        "metadata": {"finalizers": ["a", "b"]},
        "spec": {
            "ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}],
            "containers": [{"name": "app", "ports": [{"containerPort": 8080, "name": "web"}]}],
            "tolerations": [{"key": "x"}],
            "selector": {"a": "1", "b": "2"},
        },
    }
    patch = {
        "metadata": {"finalizers": ["c"], "$deleteFromPrimitiveList/finalizers": ["a"]},
        "spec": {
            "ports": [{"port": 443, "name": "tls"}],
            "containers": [{"name": "app", "ports": [{"containerPort": 9090}]}],
            "tolerations": [{"key": "y"}],
            "selector": {"$patch": "replace", "c": "3"},
            "$setElementOrder/ports": [{"port": 80}, {"port": 443}],
            "$retainKeys": ["ports"],
        },
    }
    result = strategic_merge_patch(original, patch)
    assert result["metadata"]["finalizers"] == ["b", "c"]
    assert result["spec"]["ports"] == [{"port": 80, "name": "http"}, {"port": 443, "name": "tls"}]
    assert result["spec"]["containers"][0]["ports"] == [{"containerPort": 8080, "name": "web"}, {"containerPort": 9090}]
    assert result["spec"]["tolerations"] == [{"key": "y"}]  # no merge key: replaced
    assert result["spec"]["selector"] == {"c": "3"}
    with pytest.raises(PatchError):
        strategic_merge_patch(original, {"spec": {"containers": [{"image": "no-name"}]}})


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("a=b", {"a": "b"}, True),
        ("a==b", {"a": "c"}, False),
        ("a!=b", {}, True),
        ("a in (b, c)", {"a": "c"}, True),
        ("a notin (b,c)", {"a": "c"}, False),
        ("a notin (b,c)", {}, True),
        ("a", {"a": ""}, True),
        ("!a", {"a": ""}, False),
        ("a>5", {"a": "7"}, True),
        ("a<5", {"a": "x"}, False),
        ("app=web, tier in (front), !canary", {"app": "web", "tier": "front"}, True),
        ("example.com/team=ml", {"example.com/team": "ml"}, True),
        ("", {"anything": "x"}, True),
    ],
)
def test_label_selectors(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_label_selector(selector).matches(labels) is expected


@pytest.mark.parametrize("selector", ["a in b", "a=b c", "=b", "a>x", "-a=b", "a=-b"])
def test_invalid_label_selectors_are_400(selector: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_label_selector(selector)
    assert caught.value.code == 400


def test_field_selectors() -> None:
    obj = {"metadata": {"name": "n", "namespace": "ns"}, "spec": {"on": True}}
    assert parse_field_selector("metadata.name=n,metadata.namespace==ns").matches(obj)
    assert not parse_field_selector("metadata.namespace!=ns").matches(obj)
    assert parse_field_selector("spec.on=true").matches(obj)
    assert parse_field_selector("metadata.name=n").names() == {"n"}
    with pytest.raises(ApiError):
        parse_field_selector("metadata.name")


def test_format_label_selector() -> None:
    selector = {
        "matchLabels": {"b": "2", "a": "1"},
        "matchExpressions": [
            {"key": "t", "operator": "In", "values": ["y", "x"]},
            {"key": "u", "operator": "NotIn", "values": ["z"]},
            {"key": "v", "operator": "Exists"},
            {"key": "w", "operator": "DoesNotExist"},
        ],
    }
    assert format_label_selector(selector) == "a=1,b=2,t in (x,y),u notin (z),v,!w"


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/api/v1/namespaces", Route("", "v1", None, "namespaces")),
        ("/api/v1/namespaces/team", Route("", "v1", None, "namespaces", "team")),
        ("/api/v1/namespaces/team/status", Route("", "v1", None, "namespaces", "team", "status")),
        ("/api/v1/namespaces/team/pods", Route("", "v1", "team", "pods")),
        ("/apis/apps/v1/namespaces/x/deployments/web/scale", Route("apps", "v1", "x", "deployments", "web", "scale")),
        ("/apis/apps/v1/deployments", Route("apps", "v1", None, "deployments")),
        ("/api/v1/watch/namespaces/x/pods", Route("", "v1", "x", "pods", legacy_watch=True)),
        ("/apis/apps", None),  # a group document: served as a non-resource path
        ("/version", None),
    ],
)
def test_routes(path: str, route: Route | None) -> None:
    assert parse_route(path) == route


def test_version_priority() -> None:
    assert sort_versions(["v1alpha1", "v2", "v1beta2", "v1", "foo", "v1beta1", "v10"]) == [
        "v10",
        "v2",
        "v1",
        "v1beta2",
        "v1beta1",
        "v1alpha1",
        "foo",
    ]


def test_registry_resolves_kubectl_style_names() -> None:
    registry = Registry()
    for rt in BUILTIN_TYPES:
        registry.register(rt)
    assert registry.resolve("deploy").qualified == "deployments.apps"
    assert registry.resolve("Deployment").qualified == "deployments.apps"
    assert registry.resolve("events").group == ""
    assert registry.resolve("events.events.k8s.io").group == "events.k8s.io"
    assert registry.resolve("deployments.v1.apps").version == "v1"
    assert registry.resolve("v1/pods").plural == "pods"
    assert registry.resolve("rbac.authorization.k8s.io/v1/roles").kind == "Role"
    with pytest.raises(LookupError):
        registry.resolve("nothing")


def test_human_duration_and_jsonpath() -> None:
    assert [human_duration(s) for s in (5, 119, 150, 600, 3700, 8 * 3600, 3 * 86400 + 7200)] == [
        "5s",
        "119s",
        "2m30s",
        "10m",
        "61m",
        "8h",
        "3d2h",
    ]
    obj = {"status": {"conditions": [{"type": "A", "status": "False"}, {"type": "Ready", "status": "True"}]}}
    assert jsonpath(obj, '.status.conditions[?(@.type=="Ready")].status') == ["True"]
    assert jsonpath(obj, ".status.conditions[0].type") == ["A"]
    assert jsonpath(obj, "{.status.conditions[*].type}") == ["A", "Ready"]
    assert jsonpath(obj, ".spec.missing") == []


def test_kubeconfig_mirrors_user_tokens_into_impersonation() -> None:
    user = kubeconfig("http://127.0.0.1:1", "user:bob:sre,ops")["users"][0]["user"]
    assert user == {"token": "user:bob:sre,ops", "as": "bob", "as-groups": ["sre", "ops"]}
    assert kubeconfig("http://127.0.0.1:1")["users"][0]["user"] == {}
    assert kubeconfig("http://127.0.0.1:1")["contexts"][0]["context"]["namespace"] == "default"
