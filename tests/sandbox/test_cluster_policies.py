"""ValidatingAdmissionPolicies on the sandbox API server, with small synthetic policies.

Each test installs a policy and a binding through the API, as ``kubectl apply`` would, and
asserts on what a client sees: the HTTP status, the Status body in the API server's words,
``Warning`` headers, and whether the object was stored.
"""

from __future__ import annotations

from typing import Any

import pytest

from airlock.sandbox.cluster import ClusterThread
from tests.fixtures.cluster import Kubectl, SandboxApi

REG = "/apis/admissionregistration.k8s.io/v1"
POLICIES = f"{REG}/validatingadmissionpolicies"
BINDINGS = f"{REG}/validatingadmissionpolicybindings"
CM = "/api/v1/namespaces/default/configmaps"
CONFIGMAP_RULES = [
    {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["configmaps"]}
]


def policy(name: str = "demo", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "failurePolicy": "Fail",
        "matchConstraints": {"resourceRules": CONFIGMAP_RULES},
        "validations": [{"expression": "!has(object.data) || !('forbidden' in object.data)", "reason": "Forbidden"}],
    }
    body.update(spec)
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": body,
    }


def binding(policy_name: str = "demo", name: str | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name or f"{policy_name}-binding"},
        "spec": {"policyName": policy_name, "validationActions": ["Deny"], **spec},
    }


def configmap(name: str, data: dict[str, str] | None = None, labels: dict[str, str] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if labels:
        metadata["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data or {}}


def install(api: SandboxApi, *objects: dict[str, Any]) -> None:
    for obj in objects:
        api.ok("POST", POLICIES if obj["kind"] == "ValidatingAdmissionPolicy" else BINDINGS, obj)


@pytest.fixture
def alice(sandbox: ClusterThread) -> SandboxApi:
    return SandboxApi(sandbox.url, token="user:alice:team-a")


def test_a_denial_is_worded_and_coded_as_the_api_server_does(sandbox_api: SandboxApi, alice: SandboxApi) -> None:
    install(sandbox_api, policy(), binding())
    status, body = alice.post(CM, configmap("c", {"forbidden": "x"}))
    assert status == 403
    assert body["reason"] == "Forbidden"
    inner = (
        "ValidatingAdmissionPolicy 'demo' with binding 'demo-binding' denied request: "
        "failed expression: !has(object.data) || !('forbidden' in object.data)"
    )
    assert body["message"] == f'configmaps "c" is forbidden: {inner}'
    assert body["details"] == {"name": "c", "kind": "configmaps", "causes": [{"message": inner}]}
    assert sandbox_api.get(f"{CM}/c")[0] == 404
    alice.ok("POST", CM, configmap("c", {"fine": "x"}))  # what the policy allows is stored


@pytest.mark.parametrize(
    ("reason", "code"),
    [(None, 422), ("Invalid", 422), ("Forbidden", 403), ("Unauthorized", 401), ("RequestEntityTooLarge", 413)],
)
def test_the_validation_reason_picks_the_code(sandbox_api: SandboxApi, reason: str | None, code: int) -> None:
    validation: dict[str, Any] = {"expression": "false", "message": "no"}
    if reason:
        validation["reason"] = reason
    install(sandbox_api, policy(validations=[validation]), binding())
    status, body = sandbox_api.post(CM, configmap("c"))
    assert (status, body["reason"]) == (code, reason or "Invalid")
    assert body["message"].endswith("denied request: no")


def test_message_expression_then_message_then_the_expression(sandbox_api: SandboxApi, alice: SandboxApi) -> None:
    install(
        sandbox_api,
        policy(
            validations=[
                {"expression": "object.metadata.name != 'a'", "messageExpression": "'no ' + object.metadata.name"},
                {"expression": "object.metadata.name != 'b'", "message": "fixed", "messageExpression": "1 + 1"},
                {"expression": "object.metadata.name != 'c'", "messageExpression": "'two\\nlines'"},
            ]
        ),
        binding(),
    )
    assert alice.post(CM, configmap("a"))[1]["message"].endswith("denied request: no a")
    assert alice.post(CM, configmap("b"))[1]["message"].endswith("denied request: fixed")  # not a string: fallback
    assert alice.post(CM, configmap("c"))[1]["message"].endswith(
        "denied request: failed expression: object.metadata.name != 'c'"
    )


def test_warn_adds_a_warning_header_and_audit_is_silent(sandbox_api: SandboxApi, alice: SandboxApi) -> None:
    install(
        sandbox_api,
        policy("warned", validations=[{"expression": "object.metadata.name != 'w'", "message": "w is discouraged"}]),
        binding("warned", validationActions=["Warn"]),
        policy("audited", validations=[{"expression": "false", "message": "audit only"}]),
        binding("audited", validationActions=["Audit"]),
    )
    status, _ = alice.post(CM, configmap("w"))
    assert status == 201
    assert alice.last_headers.get_all("Warning") == [
        "299 - \"Validation failed for ValidatingAdmissionPolicy 'warned' with binding 'warned-binding': "
        'w is discouraged"'
    ]
    alice.ok("POST", CM, configmap("quiet"))
    assert alice.last_headers.get_all("Warning") is None


def test_kubectl_shows_the_refusal_and_the_warning(sandbox_api: SandboxApi, kubectl: Kubectl) -> None:
    install(
        sandbox_api,
        policy(
            validations=[{"expression": "object.metadata.name != 'bad'", "message": "not bad", "reason": "Forbidden"}]
        ),
        binding(),
        policy("warned", validations=[{"expression": "false", "message": "think twice"}]),
        binding("warned", validationActions=["Warn"]),
    )
    manifest = '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "%s"}}'
    refused = kubectl("create", "--validate=false", "-f", "-", input=manifest % "bad", check=False)
    assert refused.returncode != 0
    assert "Error from server (Forbidden)" in refused.stderr
    assert (
        "configmaps \"bad\" is forbidden: ValidatingAdmissionPolicy 'demo' with binding 'demo-binding' denied request: not bad"
    ) in refused.stderr
    done = kubectl("create", "--validate=false", "-f", "-", input=manifest % "good")
    assert (
        "Warning: Validation failed for ValidatingAdmissionPolicy 'warned' with binding 'warned-binding': think twice"
        in (done.stderr)
    )


def test_match_conditions_skip_and_their_errors_obey_the_failure_policy(
    sandbox_api: SandboxApi, alice: SandboxApi
) -> None:
    install(
        sandbox_api,
        policy(
            matchConditions=[
                {"name": "only-alice", "expression": "request.userInfo.username == 'alice'"},
                {"name": "labelled", "expression": "object.metadata.labels.checked == 'yes'"},
            ],
            validations=[{"expression": "false", "message": "checked", "reason": "Forbidden"}],
        ),
        binding(),
    )
    assert sandbox_api.post(CM, configmap("by-admin", labels={"checked": "yes"}))[0] == 201  # a false condition wins
    assert alice.post(CM, configmap("a1", labels={"checked": "no"}))[0] == 201
    status, body = alice.post(CM, configmap("a2", labels={"checked": "yes"}))
    assert (status, body["message"].endswith("denied request: checked")) == (403, True)
    # The second condition errs (no labels): Fail denies, with the error as the message (reason Invalid).
    status, body = alice.post(CM, configmap("a3"))
    assert (status, body["reason"]) == (422, "Invalid")
    assert "expression 'object.metadata.labels.checked == 'yes'' resulted in error" in body["message"]

    sandbox_api.ok("PATCH", f"{POLICIES}/demo", {"spec": {"failurePolicy": "Ignore"}})
    assert alice.post(CM, configmap("a3"))[0] == 201


def test_variables_are_lazy_and_an_unused_error_is_harmless(sandbox_api: SandboxApi, alice: SandboxApi) -> None:
    install(
        sandbox_api,
        policy(
            variables=[
                {"name": "team", "expression": "request.userInfo.groups.filter(g, g.startsWith('team-'))"},
                {"name": "first", "expression": "variables.team[0].substring(5)"},
                {"name": "broken", "expression": "object.data.missing == 'x'"},
            ],
            validations=[
                {
                    "expression": "object.metadata.name.startsWith(variables.first)",
                    "messageExpression": "'names in team ' + variables.first + ' start with ' + variables.first",
                    "reason": "Forbidden",
                },
                {"expression": "object.metadata.name != 'a-use-broken' || variables.broken"},
            ],
        ),
        binding(),
    )
    alice.ok("POST", CM, configmap("a-cm"))
    status, body = alice.post(CM, configmap("b-cm"))
    assert (status, body["message"].endswith("denied request: names in team a start with a")) == (403, True)
    status, body = alice.post(CM, configmap("a-use-broken"))
    assert status == 422
    assert "object.data.missing" in body["message"]


def test_params_by_name_and_selector_each_param_must_hold(sandbox: ClusterThread, sandbox_api: SandboxApi) -> None:
    limits = {"paramKind": {"apiVersion": "v1", "kind": "ConfigMap"}}
    install(
        sandbox_api,
        policy(
            "max-keys",
            matchConstraints={"resourceRules": CONFIGMAP_RULES, "objectSelector": {"matchLabels": {"checked": "yes"}}},
            validations=[
                {
                    "expression": "size(object.data) <= int(params.data.maxKeys)",
                    "messageExpression": "params.metadata.name + ' allows ' + params.data.maxKeys + ' keys'",
                    "reason": "Forbidden",
                }
            ],
            **limits,
        ),
    )
    for name, max_keys, tier in (
        ("limit-small", "1", "strict"),
        ("limit-large", "3", "strict"),
        ("limit-other", "0", "x"),
    ):
        sandbox_api.ok("POST", "/api/v1/namespaces/kube-system/configmaps", {
            "metadata": {"name": name, "labels": {"tier": tier}}, "data": {"maxKeys": max_keys},
        })  # fmt: skip
    params_from = {"namespace": "kube-system", "parameterNotFoundAction": "Deny"}
    install(
        sandbox_api,
        binding("max-keys", "by-selector", paramRef={**params_from, "selector": {"matchLabels": {"tier": "strict"}}}),
    )
    two = configmap("two", {"a": "1", "b": "2"}, labels={"checked": "yes"})
    status, body = sandbox_api.post(CM, two)
    assert status == 403
    assert body["message"].endswith("with binding 'by-selector' denied request: limit-small allows 1 keys")
    sandbox_api.ok("POST", CM, configmap("one", {"a": "1"}, labels={"checked": "yes"}))  # holds for both params

    sandbox_api.ok("DELETE", f"{BINDINGS}/by-selector")
    install(sandbox_api, binding("max-keys", "by-name", paramRef={**params_from, "name": "limit-large"}))
    sandbox_api.ok("POST", CM, two)

    # No param found: Deny is a configuration error (422, failurePolicy Fail) ...
    sandbox_api.ok("PATCH", f"{BINDINGS}/by-name", {"spec": {"paramRef": {"name": "limit-gone"}}})
    status, body = sandbox_api.post(CM, configmap("three", {"a": "1"}, labels={"checked": "yes"}))
    assert (status, body["reason"]) == (422, "Invalid")
    assert body["message"].endswith(
        "with binding 'by-name' denied request: failed to configure binding: "
        "no params found for policy binding with `Deny` parameterNotFoundAction"
    )
    # ... and Allow lets the write through.
    sandbox_api.ok("PATCH", f"{BINDINGS}/by-name", {"spec": {"paramRef": {"parameterNotFoundAction": "Allow"}}})
    sandbox_api.ok("POST", CM, configmap("three", {"a": "1"}, labels={"checked": "yes"}))


def test_namespaced_params_default_to_the_namespace_of_the_write(sandbox_api: SandboxApi) -> None:
    install(
        sandbox_api,
        policy(
            paramKind={"apiVersion": "v1", "kind": "ConfigMap"},
            matchConstraints={"resourceRules": [{**CONFIGMAP_RULES[0], "resources": ["secrets"]}]},
            validations=[{"expression": "object.metadata.name.startsWith(params.data.prefix)", "reason": "Forbidden"}],
        ),
        binding(paramRef={"name": "naming", "parameterNotFoundAction": "Allow"}),
    )
    for namespace, prefix in (("default", "app-"), ("kube-public", "pub-")):
        sandbox_api.ok("POST", f"/api/v1/namespaces/{namespace}/configmaps", {
            "metadata": {"name": "naming"}, "data": {"prefix": prefix},
        })  # fmt: skip
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "app-db"}}
    sandbox_api.ok("POST", "/api/v1/namespaces/default/secrets", secret)
    assert sandbox_api.post("/api/v1/namespaces/kube-public/secrets", secret)[0] == 403
    sandbox_api.ok("POST", "/api/v1/namespaces/kube-node-lease/secrets", secret)  # no param there: Allow


def test_match_constraints_and_binding_match_resources(sandbox_api: SandboxApi) -> None:
    sandbox_api.ok("POST", "/api/v1/namespaces", {"metadata": {"name": "prod", "labels": {"env": "prod"}}})
    sandbox_api.ok("POST", "/api/v1/namespaces", {"metadata": {"name": "dev", "labels": {"env": "dev"}}})
    install(
        sandbox_api,
        policy(
            matchConstraints={
                "resourceRules": [{**CONFIGMAP_RULES[0], "operations": ["CREATE"]}],
                "excludeResourceRules": [{**CONFIGMAP_RULES[0], "resourceNames": ["exempt"]}],
            },
            validations=[{"expression": "false", "message": "refused", "reason": "Forbidden"}],
        ),
        binding(
            matchResources={
                "namespaceSelector": {"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}]}
            }
        ),
    )
    assert sandbox_api.post("/api/v1/namespaces/prod/configmaps", configmap("c"))[0] == 403
    assert sandbox_api.post("/api/v1/namespaces/dev/configmaps", configmap("c"))[0] == 201
    assert sandbox_api.post("/api/v1/namespaces/prod/configmaps", configmap("exempt"))[0] == 201
    sandbox_api.ok("PATCH", "/api/v1/namespaces/prod/configmaps/exempt", {"data": {"k": "v"}})  # UPDATE not matched


def test_what_expressions_see(sandbox_api: SandboxApi) -> None:
    sandbox_api.ok("POST", "/api/v1/namespaces", {"metadata": {"name": "team-a", "labels": {"owner": "alice"}}})
    seen = (
        "request.operation == 'UPDATE' && request.kind.kind == 'ConfigMap' && request.resource.resource == 'configmaps'"
        " && request.namespace == 'team-a' && request.name == 'c' && request.userInfo.username == 'alice'"
        " && 'system:authenticated' in request.userInfo.groups && request.dryRun"
        " && oldObject.data.v == '1' && object.data.v == '2' && namespaceObject.metadata.labels.owner == 'alice'"
        " && request.options.kind == 'UpdateOptions'"
    )
    install(
        sandbox_api,
        policy(
            matchConstraints={"resourceRules": [{**CONFIGMAP_RULES[0], "operations": ["*"]}]},
            validations=[
                {"expression": "request.operation != 'CREATE' || oldObject == null"},
                {
                    "expression": "request.operation != 'UPDATE' || !(" + seen + ")",
                    "message": "seen",
                    "reason": "Forbidden",
                },
            ],
        ),
        binding(),
    )
    alice = SandboxApi(sandbox_api.url, token="user:alice")
    path = "/api/v1/namespaces/team-a/configmaps"
    alice.ok("POST", path, configmap("c", {"v": "1"}))
    status, body = alice.patch(f"{path}/c?dryRun=All", {"data": {"v": "2"}})
    assert (status, body["message"].endswith("denied request: seen")) == (403, True)
    alice.ok("PATCH", f"{path}/c", {"data": {"v": "2"}})  # not a dry run: the policy's conjunction is false


def test_policies_follow_their_stored_generation(sandbox_api: SandboxApi) -> None:
    install(sandbox_api, policy(validations=[{"expression": "object.metadata.name != 'x'", "reason": "Forbidden"}]))
    sandbox_api.ok("POST", CM, configmap("x"))  # no binding: not evaluated
    install(sandbox_api, binding())
    assert sandbox_api.post(CM, configmap("x2"))[0] == 201
    assert sandbox_api.put(f"{CM}/x", configmap("x"))[0] == 403  # now bound: the update is judged
    sandbox_api.ok("PATCH", f"{POLICIES}/demo", {"spec": {"validations": [{"expression": "true"}]}})
    sandbox_api.ok("PUT", f"{CM}/x", configmap("x"))
    sandbox_api.ok("DELETE", f"{POLICIES}/demo")
    sandbox_api.ok("POST", CM, configmap("anything"))
    install(sandbox_api, binding("missing-policy"))  # a binding of no policy is ignored
    sandbox_api.ok("POST", CM, configmap("still-fine"))


def test_malformed_policies_are_refused_at_apply_and_broken_ones_fail_closed(
    sandbox: ClusterThread, sandbox_api: SandboxApi
) -> None:
    status, body = sandbox_api.post(POLICIES, policy(validations=[{"expression": "object.metadata.name =="}]))
    assert (status, body["reason"]) == (422, "Invalid")
    assert "spec.validations[0].expression" in body["message"]
    status, body = sandbox_api.post(BINDINGS, binding(validationActions=["Deny", "Warn"]))
    assert status == 422
    status, body = sandbox_api.post(BINDINGS, binding(validationActions=["Block"]))
    assert status == 422
    # One that got in anyway (preloaded past validation) denies everything it matches.
    sandbox.preload(policy(validations=[{"expression": "object.metadata.name =="}]))
    install(sandbox_api, binding())
    status, body = sandbox_api.post(CM, configmap("c"))
    assert status == 422
    assert "denied request: failed to configure policy: compilation failed" in body["message"]


def test_admission_configuration_is_exempt(sandbox_api: SandboxApi) -> None:
    everything = [{"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["*"], "resources": ["*"]}]
    install(
        sandbox_api,
        policy(matchConstraints={"resourceRules": everything}, validations=[{"expression": "false"}]),
        binding(),
    )
    assert sandbox_api.post(CM, configmap("c"))[0] == 422
    sandbox_api.ok("DELETE", f"{BINDINGS}/demo-binding")  # the lock-out can always be undone
    sandbox_api.ok("POST", CM, configmap("c"))


def test_match_policy_equivalent_catches_the_same_resource_under_another_version(sandbox_api: SandboxApi) -> None:
    schema = {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}
    sandbox_api.ok("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {"name": "v1", "served": True, "storage": True, "schema": schema},
                {"name": "v2", "served": True, "storage": False, "schema": schema},
            ],
        },
    })  # fmt: skip
    rules = [{"apiGroups": ["example.com"], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["widgets"]}]
    seen = (
        "request.resource.version == 'v1' && request.requestResource.version == 'v2'"
        " && object.apiVersion == 'example.com/v1' && request.kind.kind == 'Widget'"
    )
    install(
        sandbox_api,
        policy(
            matchConstraints={"resourceRules": rules},
            validations=[{"expression": f"!({seen})", "message": "seen as v1", "reason": "Forbidden"}],
        ),
        binding(),
    )

    def widget(name: str) -> dict[str, Any]:
        return {"apiVersion": "example.com/v2", "kind": "Widget", "metadata": {"name": name}}

    status, body = sandbox_api.post("/apis/example.com/v2/namespaces/default/widgets", widget("w1"))
    assert (status, body["message"].endswith("denied request: seen as v1")) == (403, True)
    sandbox_api.ok("PATCH", f"{POLICIES}/demo", {"spec": {"matchConstraints": {"matchPolicy": "Exact"}}})
    sandbox_api.ok("POST", "/apis/example.com/v2/namespaces/default/widgets", widget("w1"))


def test_a_match_condition_reading_params_is_evaluated_per_param(sandbox_api: SandboxApi) -> None:
    install(
        sandbox_api,
        policy(
            paramKind={"apiVersion": "v1", "kind": "ConfigMap"},
            matchConstraints={"resourceRules": [{**CONFIGMAP_RULES[0], "resources": ["secrets"]}]},
            matchConditions=[
                {"name": "not-admin", "expression": "request.userInfo.username != 'nobody'"},
                {"name": "active", "expression": "params.data.active == 'yes'"},
            ],
            validations=[{"expression": "false", "messageExpression": "params.metadata.name", "reason": "Forbidden"}],
        ),
        binding(paramRef={"namespace": "kube-system", "selector": {}, "parameterNotFoundAction": "Allow"}),
    )
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}
    sandbox_api.ok("POST", "/api/v1/namespaces/default/secrets", secret)  # no params yet: allowed
    for name, active in (("a-inactive", "no"), ("b-active", "yes")):
        sandbox_api.ok("POST", "/api/v1/namespaces/kube-system/configmaps", {
            "metadata": {"name": name}, "data": {"active": active},
        })  # fmt: skip
    status, body = sandbox_api.post("/api/v1/namespaces/default/secrets", {**secret, "metadata": {"name": "t"}})
    assert (status, body["message"].endswith("denied request: b-active")) == (403, True)
