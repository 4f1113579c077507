"""The sandbox API server's write and read contract, over raw HTTP."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from airlock.sandbox.cluster import AdmissionDenied, ClusterThread, ResourceRef, UserInfo, current_user, token_for
from tests.fixtures.cluster import SandboxApi

CM = "/api/v1/namespaces/default/configmaps"
DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
WIDGETS = "/apis/sandbox.airlock.dev/v1/namespaces/default/widgets"


def deployment(name: str = "web", replicas: int = 2, /, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name, **labels}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "nginx:1", "env": [{"name": "A", "value": "1"}]}]},
            },
        },
        "status": {"replicas": 7},
    }


def widget_crd(scale: bool = True) -> dict[str, Any]:
    subresources: dict[str, Any] = {"status": {}}
    if scale:
        subresources["scale"] = {
            "specReplicasPath": ".spec.size",
            "statusReplicasPath": ".status.size",
            "labelSelectorPath": ".status.selector",
        }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.sandbox.airlock.dev"},
        "spec": {
            "group": "sandbox.airlock.dev",
            "scope": "Namespaced",
            "names": {
                "plural": "widgets",
                "singular": "widget",
                "kind": "Widget",
                "shortNames": ["wdg"],
                "categories": ["airlock"],
            },
            "versions": [
                {"name": "v1", "served": True, "storage": True, "subresources": subresources},
                {"name": "v1beta1", "served": True, "storage": False},
            ],
        },
    }


def test_create_fills_server_metadata(sandbox_api: SandboxApi) -> None:
    first = sandbox_api.ok("POST", CM, {"metadata": {"name": "one", "uid": "forged"}, "data": {"a": "1"}})
    second = sandbox_api.ok("POST", CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "two"}})

    assert first["apiVersion"] == "v1"
    assert first["kind"] == "ConfigMap"
    assert first["metadata"]["uid"] not in ("", "forged")
    assert first["metadata"]["uid"] != second["metadata"]["uid"]
    assert first["metadata"]["creationTimestamp"].endswith("Z")
    assert first["metadata"]["generation"] == 1
    assert first["metadata"]["namespace"] == "default"
    assert int(second["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])


def test_generate_name_appends_a_random_suffix(sandbox_api: SandboxApi) -> None:
    names = {sandbox_api.ok("POST", CM, {"metadata": {"generateName": "job-"}})["metadata"]["name"] for _ in range(3)}
    assert len(names) == 3
    assert all(name.startswith("job-") and len(name) == len("job-") + 5 for name in names)


def test_create_conflicts_and_validation(sandbox_api: SandboxApi) -> None:
    sandbox_api.ok("POST", CM, {"metadata": {"name": "one"}})
    status, body = sandbox_api.post(CM, {"metadata": {"name": "one"}})
    assert (status, body["reason"], body["kind"]) == (409, "AlreadyExists", "Status")
    assert body["message"] == 'configmaps "one" already exists'
    status, body = sandbox_api.post(CM, {"metadata": {}})
    assert (status, body["reason"]) == (422, "Invalid")
    status, body = sandbox_api.post(CM, {"metadata": {"name": "Not_Valid"}})
    assert (status, body["reason"]) == (422, "Invalid")
    status, body = sandbox_api.post(CM, {"metadata": {"name": "x", "namespace": "other"}})
    assert (status, body["reason"]) == (400, "BadRequest")
    status, body = sandbox_api.post(CM, {"kind": "Secret", "metadata": {"name": "x"}})
    assert status == 400


def test_generation_counts_only_spec_changes(sandbox_api: SandboxApi) -> None:
    path = f"{DEPLOYS}/web"
    created = sandbox_api.ok("POST", DEPLOYS, deployment())
    assert created["metadata"]["generation"] == 1
    assert "status" not in created  # status is written only through /status

    relabelled = sandbox_api.ok(
        "PATCH", path, {"metadata": {"labels": {"x": "y"}}}, content_type="application/merge-patch+json"
    )
    assert relabelled["metadata"]["generation"] == 1
    statused = sandbox_api.ok(
        "PATCH", f"{path}/status", {"status": {"replicas": 2}}, content_type="application/merge-patch+json"
    )
    assert statused["metadata"]["generation"] == 1
    scaled = sandbox_api.ok("PATCH", path, {"spec": {"replicas": 3}}, content_type="application/merge-patch+json")
    assert scaled["metadata"]["generation"] == 2


def test_stale_resource_version_is_a_409_conflict(sandbox_api: SandboxApi) -> None:
    created = sandbox_api.ok("POST", CM, {"metadata": {"name": "c"}, "data": {"a": "1"}})
    stale = created["metadata"]["resourceVersion"]
    sandbox_api.ok("PATCH", f"{CM}/c", {"data": {"a": "2"}}, content_type="application/merge-patch+json")

    status, body = sandbox_api.patch(f"{CM}/c", {"metadata": {"resourceVersion": stale}, "data": {"a": "3"}})
    assert status == 409
    assert body["kind"] == "Status"
    assert body["status"] == "Failure"
    assert body["reason"] == "Conflict"
    assert body["code"] == 409
    assert body["details"] == {"name": "c", "kind": "configmaps"}
    assert "the object has been modified" in body["message"]

    replaced = copy.deepcopy(created)
    replaced["data"] = {"a": "4"}
    status, body = sandbox_api.put(f"{CM}/c", replaced)
    assert (status, body["reason"]) == (409, "Conflict")


def test_put_replaces_the_whole_object(sandbox_api: SandboxApi) -> None:
    created = sandbox_api.ok("POST", CM, {"metadata": {"name": "c", "labels": {"l": "1"}}, "data": {"a": "1"}})
    replacement = {
        "metadata": {"name": "c", "resourceVersion": created["metadata"]["resourceVersion"]},
        "data": {"b": "2"},
    }
    replaced = sandbox_api.ok("PUT", f"{CM}/c", replacement)
    assert replaced["data"] == {"b": "2"}
    assert "labels" not in replaced["metadata"]
    assert replaced["metadata"]["uid"] == created["metadata"]["uid"]
    assert int(replaced["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])

    assert sandbox_api.put(f"{CM}/missing", {"metadata": {"name": "missing"}})[0] == 404
    assert sandbox_api.put(f"{CM}/c", {"metadata": {"name": "other"}})[0] == 400


def test_noop_writes_keep_the_resource_version(sandbox_api: SandboxApi) -> None:
    created = sandbox_api.ok("POST", CM, {"metadata": {"name": "c"}, "data": {"a": "1"}})
    same = sandbox_api.ok("PATCH", f"{CM}/c", {"data": {"a": "1"}}, content_type="application/merge-patch+json")
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_failed_json_patch_is_422_invalid(sandbox_api: SandboxApi) -> None:
    created = sandbox_api.ok("POST", CM, {"metadata": {"name": "c"}, "data": {"a": "1"}})
    rv = created["metadata"]["resourceVersion"]

    status, body = sandbox_api.patch(f"{CM}/c", [{"op": "test", "path": "/data/a", "value": "2"}], kind="json")
    assert (status, body["reason"], body["kind"]) == (422, "Invalid", "Status")
    for bad in ([{"op": "explode", "path": "/data"}], [{"op": "remove", "path": "/data/nope"}], {"op": "add"}):
        status, body = sandbox_api.patch(f"{CM}/c", bad, kind="json")
        assert (status, body["reason"]) == (422, "Invalid"), bad
    assert sandbox_api.request("PATCH", f"{CM}/c", {}, content_type="application/json")[0] == 415

    # Kopf's optimistic-concurrency idiom: test the resourceVersion, then change.
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
        {"op": "add", "path": "/data/b", "value": "2"},
    ]
    assert sandbox_api.ok("PATCH", f"{CM}/c", ops, content_type="application/json-patch+json")["data"]["b"] == "2"
    assert sandbox_api.patch(f"{CM}/c", ops, kind="json")[0] == 422


def test_json_patch_operations(sandbox_api: SandboxApi) -> None:
    sandbox_api.ok("POST", CM, {"metadata": {"name": "c", "annotations": {"a/b": "1", "t~": "2"}}, "data": {"x": "1"}})
    body = {"metadata": {"name": "l"}, "data": {}, "binaryData": {}}
    sandbox_api.ok("POST", CM, body)
    ops = [
        {"op": "replace", "path": "/metadata/annotations/a~1b", "value": "10"},
        {"op": "remove", "path": "/metadata/annotations/t~0"},
        {"op": "copy", "from": "/data/x", "path": "/data/y"},
        {"op": "move", "from": "/data/x", "path": "/data/z"},
        {"op": "add", "path": "/metadata/finalizers", "value": ["a"]},
        {"op": "add", "path": "/metadata/finalizers/-", "value": "c"},
        {"op": "add", "path": "/metadata/finalizers/1", "value": "b"},
        {"op": "test", "path": "/metadata/finalizers", "value": ["a", "b", "c"]},
    ]
    patched = sandbox_api.ok("PATCH", f"{CM}/c", ops, content_type="application/json-patch+json")
    assert patched["metadata"]["annotations"] == {"a/b": "10"}
    assert patched["data"] == {"y": "1", "z": "1"}
    assert patched["metadata"]["finalizers"] == ["a", "b", "c"]


def test_merge_patch_null_deletes(sandbox_api: SandboxApi) -> None:
    sandbox_api.ok("POST", CM, {"metadata": {"name": "c", "labels": {"a": "1", "b": "2"}}, "data": {"k": "v"}})
    patched = sandbox_api.ok(
        "PATCH",
        f"{CM}/c",
        {"metadata": {"labels": {"a": None}}, "data": None},
        content_type="application/merge-patch+json",
    )
    assert patched["metadata"]["labels"] == {"b": "2"}
    assert "data" not in patched


def test_strategic_merge_patch_merges_keyed_lists(sandbox_api: SandboxApi) -> None:
    sandbox_api.ok("POST", DEPLOYS, deployment())
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "app", "image": "nginx:2", "env": [{"name": "B", "value": "2"}]},
                        {"name": "sidecar", "image": "envoy"},
                    ]
                }
            }
        }
    }
    patched = sandbox_api.ok("PATCH", f"{DEPLOYS}/web", patch, content_type="application/strategic-merge-patch+json")
    containers = patched["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["app", "sidecar"]
    assert containers[0]["image"] == "nginx:2"
    assert containers[0]["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]

    delete = {"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}}
    patched = sandbox_api.ok("PATCH", f"{DEPLOYS}/web", delete, content_type="application/strategic-merge-patch+json")
    assert [c["name"] for c in patched["spec"]["template"]["spec"]["containers"]] == ["app"]


def test_status_subresource_is_separate(sandbox_api: SandboxApi) -> None:
    path = f"{DEPLOYS}/web"
    sandbox_api.ok("POST", DEPLOYS, deployment())
    main = sandbox_api.ok(
        "PATCH",
        path,
        {"spec": {"replicas": 4}, "status": {"replicas": 99}},
        content_type="application/merge-patch+json",
    )
    assert main["spec"]["replicas"] == 4
    assert "status" not in main

    status = sandbox_api.ok(
        "PATCH",
        f"{path}/status",
        {"spec": {"replicas": 1}, "status": {"readyReplicas": 4}, "metadata": {"labels": {"sneaky": "1"}}},
        content_type="application/merge-patch+json",
    )
    assert status["spec"]["replicas"] == 4
    assert status["status"] == {"readyReplicas": 4}
    assert "sneaky" not in status["metadata"]["labels"]

    full = sandbox_api.ok("GET", f"{path}/status")
    full["status"]["replicas"] = 4
    full["spec"]["replicas"] = 9
    assert sandbox_api.ok("PUT", f"{path}/status", full)["spec"]["replicas"] == 4
    assert sandbox_api.ok("GET", path)["status"] == {"readyReplicas": 4, "replicas": 4}


def test_scale_subresource_of_deployments(sandbox_api: SandboxApi) -> None:
    path = f"{DEPLOYS}/web/scale"
    created = sandbox_api.ok("POST", DEPLOYS, deployment("web", 2))
    sandbox_api.ok(
        "PATCH", f"{DEPLOYS}/web/status", {"status": {"replicas": 2}}, content_type="application/merge-patch+json"
    )

    scale = sandbox_api.ok("GET", path)
    assert scale["kind"] == "Scale"
    assert scale["apiVersion"] == "autoscaling/v1"
    assert scale["metadata"]["name"] == "web"
    assert scale["metadata"]["uid"] == created["metadata"]["uid"]
    assert scale["spec"] == {"replicas": 2}
    assert scale["status"] == {"replicas": 2, "selector": "app=web"}

    scaled = sandbox_api.ok(
        "PATCH",
        path,
        {"spec": {"replicas": 0}, "status": {"replicas": 50}},
        content_type="application/merge-patch+json",
    )
    assert scaled["spec"]["replicas"] == 0
    assert scaled["status"]["replicas"] == 2
    obj = sandbox_api.ok("GET", f"{DEPLOYS}/web")
    assert obj["spec"]["replicas"] == 0
    assert obj["status"]["replicas"] == 2
    assert obj["metadata"]["generation"] == 2

    scale = sandbox_api.ok("GET", path)
    scale["spec"]["replicas"] = 5
    assert sandbox_api.ok("PUT", path, scale)["spec"]["replicas"] == 5
    assert sandbox_api.put(path, scale)[0] == 409  # the resourceVersion in the Scale is stale now
    assert sandbox_api.patch(path, {"spec": {"replicas": -1}})[0] == 422


@pytest.mark.parametrize(("plural", "kind"), [("statefulsets", "StatefulSet"), ("replicasets", "ReplicaSet")])
def test_scale_subresource_of_other_workloads(sandbox_api: SandboxApi, plural: str, kind: str) -> None:
    path = f"/apis/apps/v1/namespaces/default/{plural}"
    body = {**deployment("w"), "kind": kind}
    del body["spec"]["replicas"]
    assert sandbox_api.ok("POST", path, body)["spec"]["replicas"] == 1  # defaulted
    assert sandbox_api.ok("GET", f"{path}/w/scale")["status"]["selector"] == "app=w"
    assert sandbox_api.ok("PATCH", f"{path}/w/scale", {"spec": {"replicas": 0}})["spec"]["replicas"] == 0
    assert sandbox_api.ok("GET", f"{path}/w")["spec"]["replicas"] == 0


def test_crd_registration_and_scale(sandbox_api: SandboxApi) -> None:
    crd = sandbox_api.ok("POST", CRDS, widget_crd())
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions == {"Established": "True", "NamesAccepted": "True"}
    assert crd["status"]["acceptedNames"]["kind"] == "Widget"

    resources = sandbox_api.ok("GET", "/apis/sandbox.airlock.dev/v1")["resources"]
    by_name = {r["name"]: r for r in resources}
    assert by_name["widgets"]["shortNames"] == ["wdg"]
    assert by_name["widgets"]["categories"] == ["airlock"]
    assert set(by_name) == {"widgets", "widgets/status", "widgets/scale"}
    group = sandbox_api.ok("GET", "/apis/sandbox.airlock.dev")
    assert group["preferredVersion"]["version"] == "v1"
    assert [v["version"] for v in group["versions"]] == ["v1", "v1beta1"]

    body = {
        "apiVersion": "sandbox.airlock.dev/v1beta1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"size": 3},
        "status": {"selector": "app=w"},
    }
    created = sandbox_api.ok("POST", WIDGETS.replace("/v1/", "/v1beta1/"), body)
    assert created["apiVersion"] == "sandbox.airlock.dev/v1beta1"
    assert sandbox_api.ok("GET", f"{WIDGETS}/w")["apiVersion"] == "sandbox.airlock.dev/v1"
    sandbox_api.ok(
        "PATCH",
        f"{WIDGETS}/w/status",
        {"status": {"size": 3, "selector": "app=w"}},
        content_type="application/merge-patch+json",
    )
    assert sandbox_api.ok("GET", f"{WIDGETS}/w/scale")["status"] == {"replicas": 3, "selector": "app=w"}
    sandbox_api.ok(
        "PATCH", f"{WIDGETS}/w/scale", {"spec": {"replicas": 1}}, content_type="application/merge-patch+json"
    )
    assert sandbox_api.ok("GET", f"{WIDGETS}/w")["spec"] == {"size": 1}

    crd_path = f"{CRDS}/widgets.sandbox.airlock.dev"
    unchanged = sandbox_api.ok("PATCH", crd_path, {"spec": {"scope": "Namespaced"}})
    assert unchanged["metadata"]["resourceVersion"] == crd["metadata"]["resourceVersion"]
    sandbox_api.ok("PATCH", crd_path, {"spec": {"names": {"shortNames": ["wdg", "wd"]}}})
    resources = sandbox_api.ok("GET", "/apis/sandbox.airlock.dev/v1")["resources"]
    assert resources[0]["shortNames"] == ["wdg", "wd"]

    sandbox_api.ok("DELETE", crd_path)
    assert sandbox_api.get(f"{WIDGETS}/w")[0] == 404
    assert sandbox_api.get("/apis/sandbox.airlock.dev/v1")[0] == 404
    assert all(g["name"] != "sandbox.airlock.dev" for g in sandbox_api.ok("GET", "/apis")["groups"])


def test_invalid_crds_are_rejected(sandbox_api: SandboxApi) -> None:
    crd = widget_crd()
    crd["metadata"]["name"] = "wrong.name"
    status, body = sandbox_api.post(CRDS, crd)
    assert (status, body["reason"]) == (422, "Invalid")


def test_strategic_merge_patch_is_unsupported_for_custom_resources(sandbox_api: SandboxApi) -> None:
    sandbox_api.ok("POST", CRDS, widget_crd())
    sandbox_api.ok(
        "POST", WIDGETS, {"apiVersion": "sandbox.airlock.dev/v1", "kind": "Widget", "metadata": {"name": "w"}}
    )
    status, body = sandbox_api.patch(f"{WIDGETS}/w", {"spec": {"a": 1}}, kind="strategic")
    assert (status, body["reason"]) == (415, "UnsupportedMediaType")


def test_server_side_apply_creates_then_merges(sandbox_api: SandboxApi) -> None:
    manifest = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: '1'\n"
    status, body = sandbox_api.patch(f"{CM}/c?fieldManager=test", manifest, kind="apply")
    assert status == 201
    assert body["data"] == {"a": "1"}
    status, body = sandbox_api.patch(f"{CM}/c?fieldManager=test", manifest.replace(b"a: '1'", b"b: '2'"), kind="apply")
    assert status == 200
    assert body["data"] == {"a": "1", "b": "2"}


def test_typed_lists_and_selectors(sandbox_api: SandboxApi) -> None:
    labelled: list[tuple[str, dict[str, str]]] = [
        ("a", {"tier": "front", "env": "prod"}),
        ("b", {"tier": "back"}),
        ("c", {}),
    ]
    for name, labels in labelled:
        sandbox_api.ok("POST", DEPLOYS, deployment(name, **labels))
    sandbox_api.ok("POST", "/api/v1/namespaces", {"metadata": {"name": "other"}})
    sandbox_api.ok("POST", "/apis/apps/v1/namespaces/other/deployments", deployment("d", tier="front"))

    listed = sandbox_api.ok("GET", DEPLOYS)
    assert listed["kind"] == "DeploymentList"
    assert listed["apiVersion"] == "apps/v1"
    assert [i["metadata"]["name"] for i in listed["items"]] == ["a", "b", "c"]
    assert all(i["kind"] == "Deployment" and i["apiVersion"] == "apps/v1" for i in listed["items"])
    assert int(listed["metadata"]["resourceVersion"]) == max(
        int(i["metadata"]["resourceVersion"]) for i in sandbox_api.ok("GET", "/apis/apps/v1/deployments")["items"]
    )

    def names(selector: str, path: str = "/apis/apps/v1/deployments") -> list[str]:
        return [i["metadata"]["name"] for i in sandbox_api.ok("GET", f"{path}?{selector}")["items"]]

    assert names("labelSelector=tier=front") == ["a", "d"]
    assert names("labelSelector=tier==front,env=prod") == ["a"]
    assert names("labelSelector=tier!=front") == ["b", "c"]
    assert names("labelSelector=tier+in+(front,back)") == ["a", "b", "d"]
    assert names("labelSelector=tier+notin+(front)") == ["b", "c"]
    assert names("labelSelector=tier") == ["a", "b", "d"]
    assert names("labelSelector=!tier") == ["c"]
    assert names("fieldSelector=metadata.name=b") == ["b"]
    assert names("fieldSelector=metadata.namespace!=default") == ["d"]
    assert names("labelSelector=tier", DEPLOYS) == ["a", "b"]
    status, body = sandbox_api.get("/apis/apps/v1/deployments?labelSelector=a+in+b")
    assert (status, body["reason"]) == (400, "BadRequest")


def test_list_pagination(sandbox_api: SandboxApi) -> None:
    for index in range(5):
        sandbox_api.ok("POST", CM, {"metadata": {"name": f"c{index}"}})
    first = sandbox_api.ok("GET", f"{CM}?limit=2")
    assert [i["metadata"]["name"] for i in first["items"]] == ["c0", "c1"]
    assert first["metadata"]["remainingItemCount"] == 3
    rest = sandbox_api.ok("GET", f"{CM}?limit=10&continue={first['metadata']['continue']}")
    assert [i["metadata"]["name"] for i in rest["items"]] == ["c2", "c3", "c4"]
    assert "continue" not in rest["metadata"]


def test_finalizers_delay_deletion(sandbox_api: SandboxApi) -> None:
    sandbox_api.ok("POST", CM, {"metadata": {"name": "c", "finalizers": ["airlock.dev/hold"]}})
    status, marked = sandbox_api.delete(f"{CM}/c", {"propagationPolicy": "Foreground"})
    assert status == 202
    assert marked["metadata"]["deletionTimestamp"]
    still = sandbox_api.ok("GET", f"{CM}/c")
    assert still["metadata"]["deletionTimestamp"] == marked["metadata"]["deletionTimestamp"]
    status, body = sandbox_api.patch(f"{CM}/c", {"metadata": {"finalizers": ["airlock.dev/hold", "new"]}})
    assert (status, body["reason"]) == (422, "Invalid")

    sandbox_api.ok("PATCH", f"{CM}/c", {"metadata": {"finalizers": None}}, content_type="application/merge-patch+json")
    assert sandbox_api.get(f"{CM}/c")[0] == 404
    assert sandbox_api.delete(f"{CM}/c")[0] == 404


def test_delete_preconditions_and_collections(sandbox_api: SandboxApi) -> None:
    created = sandbox_api.ok("POST", CM, {"metadata": {"name": "c", "labels": {"x": "1"}}})
    status, body = sandbox_api.delete(f"{CM}/c", {"preconditions": {"uid": "other"}})
    assert (status, body["reason"]) == (409, "Conflict")
    sandbox_api.ok("POST", CM, {"metadata": {"name": "d", "labels": {"x": "1"}}})
    sandbox_api.ok("POST", CM, {"metadata": {"name": "e"}})
    deleted = sandbox_api.ok("DELETE", f"{CM}?labelSelector=x=1")
    assert [i["metadata"]["name"] for i in deleted["items"]] == ["c", "d"]
    assert [i["metadata"]["name"] for i in sandbox_api.ok("GET", CM)["items"]] == ["e"]
    assert created["metadata"]["uid"]


def test_namespaces_are_a_cluster_scoped_resource(sandbox_api: SandboxApi) -> None:
    listed = sandbox_api.ok("GET", "/api/v1/namespaces")
    assert listed["kind"] == "NamespaceList"
    assert {"default", "kube-system"} <= {n["metadata"]["name"] for n in listed["items"]}
    created = sandbox_api.ok("POST", "/api/v1/namespaces", {"metadata": {"name": "team-a"}})
    assert created["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team-a"}
    assert created["status"] == {"phase": "Active"}
    assert sandbox_api.ok("GET", "/api/v1/namespaces/team-a")["metadata"]["name"] == "team-a"
    sandbox_api.ok("POST", "/api/v1/namespaces/team-a/configmaps", {"metadata": {"name": "c"}})
    sandbox_api.ok("POST", "/api/v1/namespaces/nowhere/configmaps", {"metadata": {"name": "c"}})
    assert len(sandbox_api.ok("GET", "/api/v1/configmaps")["items"]) == 2
    assert sandbox_api.ok("DELETE", "/api/v1/namespaces/team-a")["metadata"]["name"] == "team-a"


def test_discovery_documents(sandbox_api: SandboxApi) -> None:
    assert sandbox_api.ok("GET", "/api")["versions"] == ["v1"]
    core = sandbox_api.ok("GET", "/api/v1")
    assert core["kind"] == "APIResourceList"
    assert core["groupVersion"] == "v1"
    names = {r["name"]: r for r in core["resources"]}
    assert {"namespaces", "pods", "services", "configmaps", "secrets", "events", "serviceaccounts", "endpoints"} <= set(
        names
    )
    assert names["namespaces"]["namespaced"] is False
    assert names["namespaces"]["shortNames"] == ["ns"]
    assert names["configmaps"]["shortNames"] == ["cm"]
    assert names["services"]["shortNames"] == ["svc"]

    apps = {r["name"]: r for r in sandbox_api.ok("GET", "/apis/apps/v1")["resources"]}
    deploy = apps["deployments"]
    assert deploy["kind"] == "Deployment"
    assert deploy["singularName"] == "deployment"
    assert deploy["shortNames"] == ["deploy"]
    assert deploy["categories"] == ["all"]
    assert deploy["namespaced"]
    assert {"get", "list", "watch", "create", "update", "patch", "delete"} <= set(deploy["verbs"])
    assert apps["deployments/status"]["verbs"] == ["get", "patch", "update"]
    assert apps["deployments/scale"]["group"] == "autoscaling"
    assert apps["deployments/scale"]["kind"] == "Scale"
    assert apps["statefulsets"]["shortNames"] == ["sts"]

    groups = {g["name"]: g for g in sandbox_api.ok("GET", "/apis")["groups"]}
    assert {
        "apps",
        "networking.k8s.io",
        "events.k8s.io",
        "autoscaling",
        "coordination.k8s.io",
        "apiextensions.k8s.io",
        "admissionregistration.k8s.io",
        "rbac.authorization.k8s.io",
        "authentication.k8s.io",
    } <= set(groups)
    assert groups["autoscaling"]["preferredVersion"]["groupVersion"] == "autoscaling/v2"
    netpol = sandbox_api.ok("GET", "/apis/networking.k8s.io/v1")["resources"][0]
    assert netpol["shortNames"] == ["netpol"]
    assert sandbox_api.ok("GET", "/version")["major"] == "1"
    assert sandbox_api.get("/openapi/v2")[0] == 404
    assert sandbox_api.get("/apis/nothing.example.com/v1")[0] == 404
    assert sandbox_api.get("/apis/apps/v1/nothings")[0] == 404
    assert sandbox_api.get("/apis/apps/v1/namespaces/default/deployments/x/nothing")[0] == 404


def test_tables_for_kubectl(sandbox_api: SandboxApi) -> None:
    sandbox_api.ok("POST", DEPLOYS, deployment())
    accept = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}
    table = sandbox_api.ok("GET", DEPLOYS, headers=accept)
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]][:5] == ["Name", "Ready", "Up-to-date", "Available", "Age"]
    assert table["rows"][0]["cells"][:2] == ["web", "0/2"]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"


def test_identity_from_tokens_and_impersonation(sandbox: ClusterThread) -> None:
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    path = "/apis/authentication.k8s.io/v1/selfsubjectreviews"

    def whoami(api: SandboxApi, **headers: str) -> Any:
        status, body = api.post(path, review, headers=headers)
        assert status == 201, body
        return body["status"]["userInfo"]

    assert whoami(SandboxApi(sandbox.url)) == {
        "username": "system:admin",
        "groups": ["system:masters", "system:authenticated"],
    }
    bob = SandboxApi(sandbox.url, token="user:bob:devs,ops")
    assert whoami(bob) == {"username": "bob", "groups": ["devs", "ops", "system:authenticated"]}
    assert whoami(SandboxApi(sandbox.url, token="user:carol")) == {
        "username": "carol",
        "groups": ["system:authenticated"],
    }
    assert whoami(bob, **{"Impersonate-User": "eve", "Impersonate-Group": "sre"}) == {
        "username": "eve",
        "groups": ["sre", "system:authenticated"],
    }
    status, body = SandboxApi(sandbox.url, token="garbage").get("/api/v1/namespaces")
    assert (status, body["reason"]) == (401, "Unauthorized")
    # Names with colons (service accounts) are percent-encoded in the token; token_for does it.
    operator = SandboxApi(sandbox.url, token=token_for("system:serviceaccount:ops:airlock", ["system:serviceaccounts"]))
    assert operator.token == "user:system%3Aserviceaccount%3Aops%3Aairlock:system%3Aserviceaccounts"
    assert whoami(operator) == {
        "username": "system:serviceaccount:ops:airlock",
        "groups": ["system:serviceaccounts", "system:authenticated"],
    }


def test_admission_hooks_see_the_caller_and_can_deny_or_mutate(sandbox: ClusterThread) -> None:
    seen: list[tuple[str, str, str]] = []

    def hook(operation: str, resource: ResourceRef, old: Any, new: Any, user: UserInfo) -> Any:
        seen.append((operation, str(resource), user.username))
        assert current_user() == user  # the identity is also available anywhere on the request path
        if operation == "CREATE" and new["metadata"]["name"] == "forbidden":
            raise AdmissionDenied("configmaps named forbidden are not allowed")
        if new is not None:
            new["metadata"].setdefault("labels", {})["admitted-by"] = "hook"
            new["metadata"]["uid"] = "hijack"  # identity fields cannot be changed by hooks
            return new
        return None

    sandbox.cluster.admission.append(hook)
    api = SandboxApi(sandbox.url, token="user:alice")
    created = api.ok("POST", CM, {"metadata": {"name": "c"}})
    assert created["metadata"]["labels"] == {"admitted-by": "hook"}
    assert created["metadata"]["uid"] != "hijack"
    status, body = api.post(CM, {"metadata": {"name": "forbidden"}})
    assert (status, body["reason"], body["message"]) == (403, "Forbidden", "configmaps named forbidden are not allowed")
    api.ok("POST", DEPLOYS, deployment())
    api.ok("PATCH", f"{DEPLOYS}/web/status", {"status": {"replicas": 1}}, content_type="application/merge-patch+json")
    api.ok("DELETE", f"{CM}/c")
    assert seen == [
        ("CREATE", "configmaps", "alice"),
        ("CREATE", "configmaps", "alice"),
        ("CREATE", "deployments.apps", "alice"),
        ("UPDATE", "deployments.apps/status", "alice"),
        ("DELETE", "configmaps", "alice"),
    ]


def test_history_and_preload(sandbox: ClusterThread, sandbox_api: SandboxApi) -> None:
    preloaded = sandbox.preload(deployment("pre"))[0]
    assert preloaded["status"] == {"replicas": 7}  # preload keeps status, unlike an API create
    assert preloaded["metadata"]["uid"]
    assert preloaded["metadata"]["namespace"] == "default"

    before = sandbox.resource_version
    sandbox_api.ok("PATCH", f"{DEPLOYS}/pre", {"spec": {"replicas": 3}}, content_type="application/merge-patch+json")
    sandbox_api.ok("PATCH", f"{DEPLOYS}/pre", {"spec": {"replicas": 0}}, content_type="application/merge-patch+json")
    history = sandbox.history("deploy", "default", "pre")
    assert [v["spec"]["replicas"] for v in history] == [2, 3, 0]
    assert [v["spec"]["replicas"] for v in sandbox.history("deployments.apps", "default", "pre", since=before)] == [
        3,
        0,
    ]
    assert sandbox.history("apps/v1/deployments", "default", "missing") == []
    assert sandbox.get_object("deployments", "default", "pre")["spec"]["replicas"] == 0  # type: ignore[index]

    sandbox_api.ok("DELETE", f"{DEPLOYS}/pre")
    sandbox_api.ok("POST", DEPLOYS, deployment("pre", 1))
    assert [v["spec"]["replicas"] for v in sandbox.history("deploy", "default", "pre")] == [2, 3, 0, 1]
    # kmock's own view of the same history still works.
    versions = sandbox.call(lambda: list(sandbox.cluster.objects["apps/v1/deployments", "default", "pre"].history))
    assert versions[-2] is None


def test_kmock_reactions_take_priority(sandbox: ClusterThread, sandbox_api: SandboxApi) -> None:
    sandbox.cluster["get /apis/apps/v1/namespaces/default/deployments/web"] << 503 << {"injected": True}
    assert sandbox_api.get(f"{DEPLOYS}/web") == (503, {"injected": True})
    assert sandbox_api.get(f"{DEPLOYS}/other")[0] == 404


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/livez"])
def test_health_endpoints(sandbox_api: SandboxApi, path: str) -> None:
    assert sandbox_api.get(path) == (200, "ok")
