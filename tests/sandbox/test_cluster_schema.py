"""The sandbox applies a CRD's schema like a real API server: prune, default, validate (CEL too), dry-run, OpenAPI.

Everything here goes through HTTP (or the real kubectl) and asserts what a client sees:
status codes, the ``Status`` body with its field paths, ``Warning`` headers, stored objects.
"""

from __future__ import annotations

import copy
import json
import urllib.request
from typing import Any

import pytest
import yaml

from airlock.api import crd as crd_module
from airlock.sandbox.cluster import ClusterThread, ResourceRef
from airlock.sandbox.world import Api, load_crds
from tests.fixtures.cluster import Kubectl, SandboxApi

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
AIS = "/apis/airlock.dev/v1alpha1/namespaces/default/aisystems"
GADGETS = "/apis/sandbox.airlock.dev/v1/namespaces/default/gadgets"


def system(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "owner": "support-ml",
        "target": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "chatbot-v7"},
        "monitors": [
            {
                "name": "pii-leak",
                "failureMode": "privacy",
                "query": "sum(rate(pii_detections_total[1m]))",
                "thresholds": [{"severity": "SEV1", "op": ">", "value": 0.5}],
            }
        ],
        "severities": {"SEV1": {"response": "contain", "actions": ["scaleToZero"]}},
    }
    body.update(spec)
    return {"apiVersion": "airlock.dev/v1alpha1", "kind": "AISystem", "metadata": {"name": "chatbot"}, "spec": body}


@pytest.fixture
def airlock_api(sandbox: ClusterThread, sandbox_api: SandboxApi) -> SandboxApi:
    load_crds(Api(sandbox.url))
    return sandbox_api


def gadget_crd() -> dict[str, Any]:
    """A CRD using what airlock's own CRDs do not: a transition rule, int-or-string, a set, formats."""
    spec_schema = {
        "type": "object",
        "required": ["size"],
        "properties": {
            "size": {"type": "integer", "minimum": 1, "maximum": 10},
            "port": {"x-kubernetes-int-or-string": True},
            "owner": {
                "type": "string",
                "maxLength": 20,
                "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "owner is immutable"}],
            },
            "tags": {"type": "array", "maxItems": 3, "x-kubernetes-list-type": "set", "items": {"type": "string"}},
            "since": {"type": "string", "format": "date-time"},
            "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.sandbox.airlock.dev"},
        "spec": {
            "group": "sandbox.airlock.dev",
            "scope": "Namespaced",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": spec_schema,
                                "status": {
                                    "type": "object",
                                    "properties": {"phase": {"type": "string", "enum": ["Ready", "Failed"]}},
                                },
                            },
                        }
                    },
                }
            ],
        },
    }


@pytest.fixture
def gadgets(sandbox_api: SandboxApi) -> SandboxApi:
    sandbox_api.ok("POST", CRDS, gadget_crd())
    return sandbox_api


def gadget(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "sandbox.airlock.dev/v1", "kind": "Gadget", "metadata": {"name": "g"}, "spec": spec}


def causes(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(cause["field"], cause["message"]) for cause in body["details"]["causes"]]


# -- validation -------------------------------------------------------------------------------------


def test_an_invalid_custom_resource_is_refused_with_the_api_servers_field_paths(airlock_api: SandboxApi) -> None:
    body = system(mode="enforcing")
    body["spec"]["monitors"][0]["interval"] = "15 seconds"
    code, status = airlock_api.post(AIS, body)
    assert code == 422
    assert status["reason"] == "Invalid"
    assert status["details"]["kind"] == "AISystem"
    assert status["details"]["group"] == "airlock.dev"
    assert sorted(causes(status)) == [
        ("spec.mode", 'Unsupported value: "enforcing": supported values: "enforce", "dryRun"'),
        (
            "spec.monitors[0].interval",
            "Invalid value: \"15 seconds\": spec.monitors[0].interval in body should match '^([0-9]+(ms|s|m|h|d|w))+$'",
        ),
    ]
    assert status["message"].startswith('AISystem.airlock.dev "chatbot" is invalid: [')
    assert airlock_api.get(f"{AIS}/chatbot")[0] == 404


def test_required_fields_types_and_bounds(airlock_api: SandboxApi) -> None:
    body = system()
    del body["spec"]["target"]
    body["spec"]["monitors"][0]["thresholds"][0]["value"] = "high"
    body["spec"]["monitors"].append(copy.deepcopy(body["spec"]["monitors"][0]))
    code, status = airlock_api.post(AIS, body)
    assert code == 422
    assert sorted(causes(status)) == [
        ("spec.monitors[0].thresholds[0].value", _not_a_number(0)),
        ("spec.monitors[1]", 'Duplicate value: map[string]interface {}{"name":"pii-leak"}'),
        ("spec.monitors[1].thresholds[0].value", _not_a_number(1)),
        ("spec.target", "Required value"),
    ]
    many = system()
    monitor = many["spec"]["monitors"][0]
    many["spec"]["monitors"] = [{**monitor, "name": f"m{i}"} for i in range(65)]
    code, status = airlock_api.post(AIS, many)
    assert code == 422
    assert causes(status) == [("spec.monitors", "Too many: 65: must have at most 64 items")]


def _not_a_number(index: int) -> str:
    where = f"spec.monitors[{index}].thresholds[0].value"
    return f'Invalid value: "string": {where} in body must be of type number: "string"'


def test_cel_rules_are_evaluated(airlock_api: SandboxApi) -> None:
    body = system(severities={"SEV1": {"response": "shutdown", "actions": ["reroute"]}})
    code, status = airlock_api.post(AIS, body)
    assert code == 422
    rules = {
        r["rule"]: r["message"]
        for r in crd_module.all_crds()[0]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"][
            "x-kubernetes-validations"
        ]
    }
    reroute_message = next(message for rule, message in rules.items() if "reroute" in rule)
    # The rule's reason (FieldValueRequired) and fieldPath (.fallback) shape the error.
    assert causes(status) == [("spec.fallback", f"Required value: {reroute_message}")]
    # The same system with a fallback passes the rule.
    body["spec"]["fallback"] = {"service": "chatbot", "selector": {"app": "fallback"}}
    assert airlock_api.post(AIS, body)[0] == 201


def test_defaults_are_filled_in_and_stored(airlock_api: SandboxApi) -> None:
    created = airlock_api.ok("POST", AIS, system())
    assert created["spec"]["mode"] == "enforce"
    assert created["spec"]["onProviderError"] == "hold"
    assert created["spec"]["monitors"][0]["interval"] == "15s"
    assert created["spec"]["monitors"][0]["noData"] == "gap"
    assert airlock_api.ok("GET", f"{AIS}/chatbot")["spec"]["mode"] == "enforce"


def test_unknown_fields_are_pruned_with_a_warning_by_default(airlock_api: SandboxApi) -> None:
    body = system()
    body["spec"]["bogus"] = 1
    body["metadata"]["colour"] = "red"
    request = urllib.request.Request(airlock_api.url + AIS, data=json.dumps(body).encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        warnings = response.headers.get_all("Warning")
    assert sorted(warnings) == ['299 - "unknown field \\"metadata.colour\\""', '299 - "unknown field \\"spec.bogus\\""']
    stored = airlock_api.ok("GET", f"{AIS}/chatbot")
    assert "bogus" not in stored["spec"]
    assert "colour" not in stored["metadata"]


def test_strict_field_validation_refuses_unknown_fields(airlock_api: SandboxApi) -> None:
    body = system()
    body["spec"]["monitors"][0]["treshold"] = 3
    code, status = airlock_api.post(f"{AIS}?fieldValidation=Strict", body)
    assert code == 400
    assert status["message"] == (
        'AISystem in version "v1alpha1" cannot be handled as a AISystem: '
        'strict decoding error: unknown field "spec.monitors[0].treshold"'
    )
    airlock_api.ok("POST", f"{AIS}?fieldValidation=Ignore", body)
    code, status = airlock_api.patch(f"{AIS}/chatbot?fieldValidation=Strict", {"spec": {"colour": "red"}}, kind="merge")
    assert code == 400
    assert 'unknown field "spec.colour"' in status["message"]


def test_status_writes_are_validated_and_pruned(gadgets: SandboxApi) -> None:
    gadgets.ok("POST", GADGETS, gadget(size=2))
    code, status = gadgets.patch(f"{GADGETS}/g/status", {"status": {"phase": "Broken"}})
    assert code == 422
    assert causes(status) == [("status.phase", 'Unsupported value: "Broken": supported values: "Ready", "Failed"')]
    gadgets.ok("PATCH", f"{GADGETS}/g/status", {"status": {"phase": "Ready", "observedGeneration": 1}})
    assert gadgets.ok("GET", f"{GADGETS}/g")["status"] == {"phase": "Ready"}


def test_transition_rules_see_old_self(gadgets: SandboxApi) -> None:
    gadgets.ok("POST", GADGETS, gadget(size=2, owner="alice"))
    code, status = gadgets.patch(f"{GADGETS}/g", {"spec": {"owner": "mallory"}})
    assert code == 422
    assert causes(status) == [("spec.owner", 'Invalid value: "string": owner is immutable')]
    gadgets.ok("PATCH", f"{GADGETS}/g", {"spec": {"size": 3}})  # the owner unchanged: the rule holds


def test_int_or_string_sets_formats_and_preserved_fields(gadgets: SandboxApi) -> None:
    code, status = gadgets.post(
        GADGETS, gadget(size=0, port=True, tags=["a", "a"], since="yesterday", extra={"any": {"thing": 1}})
    )
    assert code == 422
    found = dict(causes(status))
    assert found["spec.size"] == "Invalid value: 0: spec.size in body should be greater than or equal to 1"
    assert found["spec.port"].startswith('Invalid value: "boolean": spec.port in body must be of type')
    assert found["spec.tags[1]"] == 'Duplicate value: "a"'
    assert (
        found["spec.since"] == 'Invalid value: "yesterday": spec.since in body must be of type date-time: "yesterday"'
    )
    created = gadgets.ok(
        "POST", GADGETS, gadget(size=1, port="http", since="2026-11-26T14:02:00Z", extra={"any": {"thing": 1}})
    )
    assert created["spec"]["extra"] == {"any": {"thing": 1}}


def test_unchanged_invalid_parts_are_not_revalidated(gadgets: SandboxApi) -> None:
    """Validation ratcheting: tightening a CRD does not block updates that leave the old values alone."""
    gadgets.ok("POST", GADGETS, gadget(size=8, owner="alice"))
    tighter = gadget_crd()
    tighter["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["size"][
        "maximum"
    ] = 5
    current = gadgets.ok("GET", f"{CRDS}/gadgets.sandbox.airlock.dev")
    tighter["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
    gadgets.ok("PUT", f"{CRDS}/gadgets.sandbox.airlock.dev", tighter)
    gadgets.ok("PATCH", f"{GADGETS}/g", {"spec": {"tags": ["x"]}})  # size 8 unchanged: accepted
    code, status = gadgets.patch(f"{GADGETS}/g", {"spec": {"size": 9}})
    assert code == 422
    assert causes(status) == [("spec.size", "Invalid value: 9: spec.size in body should be less than or equal to 5")]


def test_dry_run_validates_and_defaults_without_storing(airlock_api: SandboxApi) -> None:
    preview = airlock_api.ok("POST", f"{AIS}?dryRun=All", system())
    assert preview["spec"]["mode"] == "enforce"
    assert airlock_api.get(f"{AIS}/chatbot")[0] == 404
    code, _ = airlock_api.post(f"{AIS}?dryRun=All", system(mode="off"))
    assert code == 422
    airlock_api.ok("POST", AIS, system())
    assert airlock_api.patch(f"{AIS}/chatbot?dryRun=All", {"spec": {"mode": "off"}})[0] == 422
    preview = airlock_api.ok("PATCH", f"{AIS}/chatbot?dryRun=All", {"spec": {"mode": "dryRun"}})
    assert preview["spec"]["mode"] == "dryRun"
    assert airlock_api.ok("GET", f"{AIS}/chatbot")["spec"]["mode"] == "enforce"


# -- the order: mutating admission, schema, validating admission -----------------------------------

POLICIES = "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies"
BINDINGS = "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings"


def refuse_what_the_schema_would_not_store(api: SandboxApi, group: str, plural: str, *expressions: str) -> None:
    """A ValidatingAdmissionPolicy refusing (403) every write of ``plural`` where one of ``expressions`` is false."""
    rules = [{"apiGroups": [group], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"], "resources": [plural]}]
    validations = [{"expression": e, "reason": "Forbidden", "message": f"the policy saw: not {e}"} for e in expressions]
    api.ok(
        "POST",
        POLICIES,
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": "after-the-schema"},
            "spec": {"failurePolicy": "Fail", "matchConstraints": {"resourceRules": rules}, "validations": validations},
        },
    )
    api.ok(
        "POST",
        BINDINGS,
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": "after-the-schema"},
            "spec": {"policyName": "after-the-schema", "validationActions": ["Deny"]},
        },
    )


def test_a_mutation_is_pruned_and_validated_before_validating_admission(
    sandbox: ClusterThread, gadgets: SandboxApi
) -> None:
    def mutate(operation: str, ref: ResourceRef, old: Any, new: Any, user: Any) -> Any:
        if ref.resource != "gadgets" or new is None:
            return None
        new["spec"]["stray"] = "added by a mutation"  # not in the schema
        if new["metadata"]["name"] == "too-big":
            new["spec"]["size"] = 42  # over the schema's maximum
        return new

    sandbox.call(sandbox.cluster.admission.append, mutate)
    refuse_what_the_schema_would_not_store(gadgets, "sandbox.airlock.dev", "gadgets", "!has(object.spec.stray)")

    # What the mutation added outside the schema is pruned before the policy sees the object.
    assert "stray" not in gadgets.ok("POST", GADGETS, gadget(size=2))["spec"]
    assert "stray" not in gadgets.ok("GET", f"{GADGETS}/g")["spec"]
    # A mutation the schema refuses is a 422 with the schema's field path, not the policy's 403.
    too_big = {**gadget(size=2), "metadata": {"name": "too-big"}}
    for path in (GADGETS, f"{GADGETS}?dryRun=All"):
        code, status = gadgets.post(path, too_big)
        assert code == 422, status
        assert causes(status) == [
            ("spec.size", "Invalid value: 42: spec.size in body should be less than or equal to 10")
        ]
    assert gadgets.get(f"{GADGETS}/too-big")[0] == 404
    # The same on an update, dry run or not.
    preview = gadgets.ok("PATCH", f"{GADGETS}/g?dryRun=All", {"spec": {"size": 3}})
    assert (preview["spec"]["size"], "stray" in preview["spec"]) == (3, False)
    assert gadgets.ok("GET", f"{GADGETS}/g")["spec"]["size"] == 2


def test_what_a_mutation_removes_is_defaulted_again_before_validating_admission(
    sandbox: ClusterThread, airlock_api: SandboxApi
) -> None:
    def drop_the_mode(operation: str, ref: ResourceRef, old: Any, new: Any, user: Any) -> Any:
        if ref.resource != "aisystems" or new is None:
            return None
        new["spec"].pop("mode", None)
        return new

    sandbox.call(sandbox.cluster.admission.append, drop_the_mode)
    refuse_what_the_schema_would_not_store(airlock_api, "airlock.dev", "aisystems", "has(object.spec.mode)")
    assert airlock_api.ok("POST", AIS, system(mode="dryRun"))["spec"]["mode"] == "enforce"
    assert airlock_api.ok("GET", f"{AIS}/chatbot")["spec"]["mode"] == "enforce"


# -- the CRD itself ----------------------------------------------------------------------------------


def test_a_crd_a_real_server_refuses_is_refused(sandbox_api: SandboxApi) -> None:
    bad = gadget_crd()
    schema = bad["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    schema["properties"]["notes"] = {"type": "array", "items": {"type": "string"}}
    schema["x-kubernetes-validations"] = [{"rule": "self.notes.all(n, n.matches('^[a-z]+$'))", "message": "lower"}]
    schema["properties"]["untyped"] = {"description": "no type"}
    code, status = sandbox_api.post(CRDS, bad)
    assert code == 422
    messages = [f"{field}: {message}" for field, message in causes(status)]
    prefix = "spec.versions[0].schema.openAPIV3Schema.properties[spec]"
    assert (
        f"{prefix}.properties[untyped].type: Required value: must not be empty for specified object fields" in messages
    )
    del schema["properties"]["untyped"]
    code, status = sandbox_api.post(CRDS, bad)
    assert code == 422
    rule, total = causes(status)
    assert rule[0] == f"{prefix}.x-kubernetes-validations[0].rule"
    assert rule[1].startswith("Forbidden: estimated rule cost exceeds budget by factor of")
    assert total[1].startswith("Forbidden: x-kubernetes-validations estimated rule cost total for entire OpenAPIv3")
    schema["properties"]["notes"]["maxItems"] = 16
    schema["properties"]["notes"]["items"]["maxLength"] = 64
    sandbox_api.ok("POST", CRDS, bad)


# -- OpenAPI and kubectl ------------------------------------------------------------------------------


def test_openapi_v3_documents_declare_field_validation(airlock_api: SandboxApi) -> None:
    index = airlock_api.ok("GET", "/openapi/v3")["paths"]
    assert {"api/v1", "apis/apps/v1", "apis/airlock.dev/v1alpha1"} <= set(index)
    url = index["apis/airlock.dev/v1alpha1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/apis/airlock.dev/v1alpha1?hash=")
    document = airlock_api.ok("GET", url)
    item = document["paths"]["/apis/airlock.dev/v1alpha1/namespaces/{namespace}/aisystems/{name}"]
    assert item["patch"]["x-kubernetes-group-version-kind"] == {
        "group": "airlock.dev",
        "version": "v1alpha1",
        "kind": "AISystem",
    }
    assert "fieldValidation" in {p["name"] for p in item["patch"]["parameters"]}
    schema = document["components"]["schemas"]["dev.airlock.v1alpha1.AISystem"]
    assert schema["properties"]["spec"]["properties"]["mode"]["enum"] == ["enforce", "dryRun"]
    assert airlock_api.get("/openapi/v3/apis/nothing.example/v1")[0] == 404


@pytest.fixture
def with_crds(kubectl: Kubectl) -> Kubectl:
    kubectl("apply", "-f", "-", input=yaml.safe_dump_all(copy.deepcopy(crd_module.all_crds())))
    return kubectl


def test_kubectl_validates_against_the_sandbox_without_flags(with_crds: Kubectl) -> None:
    bad = system()
    bad["spec"]["bogus"] = True
    result = with_crds("apply", "-f", "-", input=yaml.safe_dump(bad), check=False)
    assert result.returncode == 1
    assert 'strict decoding error: unknown field "spec.bogus"' in result.stderr
    result = with_crds("apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(system(mode="x")), check=False)
    assert result.returncode == 1
    assert 'spec.mode: Unsupported value: "x": supported values: "enforce", "dryRun"' in result.stderr
    out = with_crds("apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(system())).stdout
    assert out.strip() == "aisystem.airlock.dev/chatbot created (server dry run)"
    assert "No resources found" in with_crds("get", "ais").stderr
    explained = with_crds("explain", "aisystem.spec.mode").stdout
    assert "enforce" in explained
    assert "dryRun" in explained
