"""The models: defaults, cross-field rules, helpers, wire format and error wording."""

from __future__ import annotations

import datetime
from typing import Any

import pydantic
import pytest

from airlock.api import errors
from airlock.api.aisystem import AISystem, AISystemSpec, AISystemStatus, Mode, ProviderErrorPolicy, TargetRef
from airlock.api.common import Condition, Severity
from airlock.api.incident import AIIncident, AIIncidentStatus
from airlock.api.matrix import Monitor, NoDataPolicy, SeverityPolicy, Subject, Threshold
from airlock.api.policy import ContainmentPolicy, ContainmentPolicySpec


def system(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "target": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "chatbot"},
        "params": {"app": "chatbot"},
        "monitors": [
            {
                "name": "pii-leak",
                "failureMode": "privacy",
                "query": 'sum(rate(pii_detections_total{app="{{ params.app }}"}[1m]))',
                "thresholds": [{"severity": "SEV1", "op": ">", "value": 0.5}],
            }
        ],
        "severities": {"SEV1": {"response": "contain", "actions": ["scaleToZero"]}},
    }
    base.update(spec)
    return {"apiVersion": "airlock.dev/v1alpha1", "kind": "AISystem", "metadata": {"name": "x"}, "spec": base}


def rejection(model: type[pydantic.BaseModel], data: Any) -> list[str]:
    with pytest.raises(pydantic.ValidationError) as info:
        model.model_validate(data)
    return errors.describe(info.value)


def test_defaults() -> None:
    spec = AISystem.model_validate(system()).spec
    assert spec.mode is Mode.ENFORCE
    assert spec.on_provider_error is ProviderErrorPolicy.HOLD
    assert spec.fail_closed_after.seconds == 300
    monitor = spec.monitors[0]
    assert monitor.interval == "15s"
    assert monitor.interval.seconds == 15
    assert monitor.no_data is NoDataPolicy.GAP
    assert monitor.thresholds[0].for_.seconds == 0
    assert spec.severities[Severity.SEV1].release_approvals == 1


def test_dump_round_trips() -> None:
    model = AISystem.model_validate(system())
    dumped = model.dump()
    assert dumped["spec"]["monitors"][0]["thresholds"][0]["for"] == "0s"
    assert "fallback" not in dumped["spec"]  # unset optional fields stay unset
    assert AISystem.model_validate(dumped) == model
    assert AISystem.model_validate(dumped).dump() == dumped


def test_unknown_fields_are_rejected_in_specs() -> None:
    assert rejection(AISystem, system(monitor=[])) == ["spec.monitor: Extra inputs are not permitted"]


def test_unknown_fields_are_tolerated_in_status() -> None:
    status = AISystemStatus.model_validate({"phase": "Healthy", "addedByANewerOperator": 1})
    assert status.phase == "Healthy"
    incident_status = AIIncidentStatus.model_validate({"phase": "Open", "somethingNew": True})
    assert incident_status.phase == "Open"


def test_target_api_version_must_match_kind() -> None:
    TargetRef.model_validate({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "m"})
    TargetRef.model_validate({"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "m"})
    assert rejection(TargetRef, {"apiVersion": "apps/v1", "kind": "Rollout", "name": "m"}) == [
        "apiVersion: a Rollout target is argoproj.io/v1alpha1, not apps/v1"
    ]


def test_threshold_severity_is_checked_only_without_a_policy() -> None:
    with_sev2 = system()
    with_sev2["spec"]["monitors"][0]["thresholds"].append({"severity": "SEV2", "op": ">", "value": 0.1})
    assert rejection(AISystem, with_sev2) == [
        "spec.monitors[0].thresholds[1].severity: SEV2 is not defined in spec.severities"
    ]
    with_sev2["spec"]["policyRef"] = {"name": "llm-chatbot"}
    AISystem.model_validate(with_sev2)  # the policy may define SEV2: checked at merge


def test_reroute_needs_a_fallback() -> None:
    data = system(severities={"SEV1": {"response": "shutdown", "actions": ["reroute"]}})
    assert rejection(AISystem, data) == ["spec.severities.SEV1.actions: reroute needs spec.fallback"]
    data["spec"]["fallback"] = {"service": "chatbot", "selector": {"app": "fallback"}}
    AISystem.model_validate(data)


def test_template_variables_are_checked_against_params() -> None:
    data = system(params={})
    assert rejection(AISystem, data) == [
        "spec.monitors[0].query: unknown variable {{ params.app }}: params has no key 'app' (none)"
    ]


def test_match_variables_name_the_label() -> None:
    monitor = {
        "name": "shared",
        "failureMode": "safety",
        "query": "sum by (namespace, app) (rate(harmful_output_total[5m]))",
        "match": {"namespace": "{{ namespace }}", "app": "{{ params.application }}"},
        "thresholds": [{"severity": "SEV1", "op": ">", "value": 1}],
    }
    assert rejection(AISystem, system(monitors=[monitor])) == [
        "spec.monitors[0].match[app]: unknown variable {{ params.application }}: params has no key 'application' (app)"
    ]
    monitor["match"] = {"app": "{{ params.app }"}
    assert rejection(Monitor, monitor)[0].startswith("match[app]: malformed template")


def test_policies_accept_any_params_but_not_unknown_builtins() -> None:
    monitor = {
        "name": "m",
        "failureMode": "cost",
        "query": "x{a='{{ params.whatever }}'}",
        "thresholds": [{"severity": "SEV3", "op": ">", "value": 1}],
    }
    spec = {"monitors": [monitor], "severities": {"SEV3": {"response": "investigate"}}}
    ContainmentPolicySpec.model_validate(spec)
    monitor["query"] = "x{a='{{ cluster }}'}"
    assert rejection(ContainmentPolicySpec, spec)[0].startswith("monitors[0].query: unknown variable {{ cluster }}")


@pytest.mark.parametrize(
    ("policy", "error"),
    [
        ({"response": "observe", "actions": ["isolate"]}, "actions: response observe never touches the workload"),
        ({"response": "investigate", "actions": ["isolate"]}, "actions: response investigate never touches"),
        ({"response": "observe", "ackWithin": "5m"}, "ackWithin: not allowed with response observe"),
        ({"response": "contain", "actions": ["isolate", "isolate"]}, "actions: must not repeat"),
        (
            {"response": "contain", "releaseApprovals": 0},
            "releaseApprovals: Input should be greater than or equal to 1",
        ),
        ({"response": "contain", "releaseApprovals": 6}, "releaseApprovals: Input should be less than or equal to 5"),
    ],
)
def test_severity_policy_rules(policy: dict[str, Any], error: str) -> None:
    found = rejection(SeverityPolicy, policy)
    assert any(line.startswith(error) for line in found), found


def test_severity_policy_contains() -> None:
    assert SeverityPolicy.model_validate({"response": "contain", "actions": ["isolate"]}).contains()
    assert SeverityPolicy.model_validate({"response": "shutdown", "actions": ["scaleToZero"]}).contains()
    with pytest.raises(pydantic.ValidationError, match="list at least one action"):
        SeverityPolicy.model_validate({"response": "shutdown"})
    assert not SeverityPolicy.model_validate({"response": "escalate", "actions": ["reroute"]}).contains()


def test_severity_order() -> None:
    assert Severity.SEV1.rank == 1
    assert Severity.SEV1.worse_than(Severity.SEV2)
    assert not Severity.SEV3.worse_than(Severity.SEV2)
    assert Severity.SEV4.worse_than(None)
    assert Severity.SEV3.next_higher() is Severity.SEV2
    assert Severity.SEV1.next_higher() is None


def test_threshold_values_are_finite() -> None:
    for value in (float("nan"), float("inf"), "-inf"):
        assert rejection(Threshold, {"severity": "SEV1", "op": ">", "value": value})[0].startswith("value:")
    assert Threshold.model_validate({"severity": "SEV1", "op": ">=", "value": 0.5}).condition() == ">= 0.5"


def test_interval_and_baseline_must_be_positive() -> None:
    monitor = {
        "name": "m",
        "failureMode": "drift",
        "query": "x",
        "thresholds": [{"severity": "SEV1", "op": "<", "value": 0}],
    }
    assert rejection(Monitor, {**monitor, "interval": "0ms"}) == ["interval: interval must be greater than zero"]
    assert rejection(Monitor, {**monitor, "baseline": {"offset": "0d", "window": "1d"}}) == [
        "baseline.offset: offset must be greater than zero"
    ]
    assert Monitor.model_validate({**monitor, "interval": "500ms"}).interval.seconds == 0.5


def test_subjects() -> None:
    user = Subject.model_validate({"kind": "User", "name": "alice@example.com"})
    group = Subject.model_validate({"kind": "Group", "name": "oncall"})
    bot = Subject.model_validate({"kind": "ServiceAccount", "namespace": "ops", "name": "pager-bot"})
    assert user.username() == "alice@example.com"
    assert group.username() is None
    assert bot.username() == "system:serviceaccount:ops:pager-bot"
    assert rejection(Subject, {"kind": "ServiceAccount", "name": "bot"}) == [
        "namespace: a ServiceAccount subject needs a namespace"
    ]
    assert rejection(Subject, {"kind": "ServiceAccount", "name": "bot", "namespace": ""})[0].startswith("namespace:")


def test_duplicate_names_are_reported_by_index() -> None:
    responder = {"name": "oncall", "subjects": [{"kind": "Group", "name": "g"}], "may": ["acknowledge"]}
    assert rejection(ContainmentPolicySpec, {"responders": [responder, responder]}) == [
        "responders[1].name: duplicate name 'oncall'"
    ]


def test_timestamps_are_written_with_z() -> None:
    condition = Condition.model_validate(
        {
            "type": "Ready",
            "status": "True",
            "reason": "Healthy",
            "lastTransitionTime": datetime.datetime(2026, 11, 26, 13, 30, 12, tzinfo=datetime.UTC),
        }
    )
    assert condition.dump()["lastTransitionTime"] == "2026-11-26T13:30:12Z"
    naive = condition.model_copy(update={"last_transition_time": datetime.datetime(2026, 1, 1, 0, 0, 0, 500)})
    assert naive.dump()["lastTransitionTime"] == "2026-01-01T00:00:00.000500Z"


def test_incident_and_policy_documents() -> None:
    incident = AIIncident.model_validate(
        {
            "apiVersion": "airlock.dev/v1alpha1",
            "kind": "AIIncident",
            "metadata": {"name": "chatbot-20261126-133012", "namespace": "ml-prod"},
            "spec": {"system": "chatbot", "failureMode": "privacy", "severity": "SEV1", "trigger": {"type": "drill"}},
        }
    )
    assert incident.spec.drill is False
    policy = ContainmentPolicy.model_validate(
        {"apiVersion": "airlock.dev/v1alpha1", "kind": "ContainmentPolicy", "metadata": {"name": "p"}, "spec": {}}
    )
    assert policy.spec.monitors == []
    assert rejection(ContainmentPolicy, {"kind": "AISystem", "spec": {}})[0].startswith("kind: Input should be")


def test_cel_rules_ride_along_in_the_json_schema() -> None:
    schema = AISystemSpec.model_json_schema(by_alias=True)
    assert schema["x-kubernetes-validations"] == AISystemSpec.cel_rules
    assert schema["$defs"]["Subject"]["x-kubernetes-validations"] == Subject.cel_rules
    assert "x-kubernetes-validations" not in schema["$defs"]["Threshold"]


def test_describe_formats_paths_like_the_api_server() -> None:
    assert errors.field_path(("spec", "monitors", 0, "thresholds", 2, "for")) == "spec.monitors[0].thresholds[2].for"
    assert errors.field_path(("spec", "severities", "SEV5", "[key]")) == "spec.severities.SEV5[key]"
    assert errors.field_path(()) == ""
    found = rejection(AISystem, {"spec": {"target": {}}})
    assert "spec.target.apiVersion: Field required" in found
    assert "spec.target.kind: Field required" in found
