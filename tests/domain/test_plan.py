"""The effective plan: an AISystem merged over its ContainmentPolicy, or a SpecError naming the field."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from airlock.api.aisystem import AISystemSpec
from airlock.api.common import Action, Audience, Response, Severity
from airlock.api.policy import ContainmentPolicySpec
from airlock.domain.errors import SpecError
from airlock.domain.plan import build_plan
from tests.domain.builders import ANSWER_DRIFT, PII_LEAK, RESPONDERS, SEVERITIES, build, policy_spec, system_spec

POLICY_NAME = "llm-chatbot"


def policy_body() -> dict[str, Any]:
    toxicity = {
        "name": "toxicity",
        "failureMode": "safety",
        "query": 'avg(toxicity_score{app="{{ params.app }}"})',
        "thresholds": [{"severity": "SEV2", "op": ">", "value": 0.3, "for": "5m"}],
    }
    return {
        "monitors": [copy.deepcopy(PII_LEAK), toxicity],
        "severities": copy.deepcopy(SEVERITIES),
        "responders": [
            *copy.deepcopy(RESPONDERS),
            {"name": "security", "subjects": [{"kind": "Group", "name": "secops"}], "may": ["shutdown"]},
        ],
        "templates": {
            "internal": {"subject": "policy internal", "body": "policy body"},
            "users": {"body": "policy users body"},
        },
    }


def system_using_policy(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "policyRef": {"name": POLICY_NAME},
        "monitors": [],
        "severities": {},
        "responders": [],
    }
    fields.update(overrides)
    return fields


def test_system_without_policy_resolves_its_own_queries() -> None:
    plan = build()
    assert plan.policy is None
    assert [m.name for m in plan.monitors] == ["pii-leak", "answer-quality-drift"]
    pii, drift = plan.monitors
    assert pii.query == 'sum(rate(pii_detections_total{namespace="ml-prod",app="chatbot"}[1m]))'
    assert pii.match is None
    assert pii.baseline_query is None
    assert drift.query == 'avg(rate(answer_helpful_total{app="chatbot"}[1h]))'
    assert (
        drift.baseline_query == 'avg_over_time((avg(rate(answer_helpful_total{app="chatbot"}[1h])))[1d:1m] offset 7d)'
    )


def test_params_values_are_escaped_in_the_resolved_query() -> None:
    plan = build(params={"app": 'x"} or vector(1) #'})
    assert plan.monitors[0].query == (
        'sum(rate(pii_detections_total{namespace="ml-prod",app="x\\"} or vector(1) #"}[1m]))'
    )


def test_policy_alone_supplies_the_whole_matrix() -> None:
    plan = build(system_spec(**system_using_policy()), policy_spec(policy_body()))
    assert plan.policy == POLICY_NAME
    assert [m.name for m in plan.monitors] == ["pii-leak", "toxicity"]
    assert plan.monitors[1].query == 'avg(toxicity_score{app="chatbot"})'
    assert set(plan.severities) == {Severity.SEV1, Severity.SEV2, Severity.SEV3, Severity.SEV4}
    assert [r.name for r in plan.responders] == ["ml-oncall", "security"]


def test_inline_monitor_replaces_the_policys_by_name_and_new_ones_are_added() -> None:
    stricter = copy.deepcopy(PII_LEAK)
    stricter["thresholds"] = [{"severity": "SEV1", "op": ">", "value": 0.1}]
    spec = system_spec(**system_using_policy(monitors=[stricter, copy.deepcopy(ANSWER_DRIFT)]))

    plan = build(spec, policy_spec(policy_body()))

    assert [m.name for m in plan.monitors] == ["pii-leak", "toxicity", "answer-quality-drift"]
    pii = plan.monitors[0].monitor
    assert [(t.severity, t.value) for t in pii.thresholds] == [(Severity.SEV1, 0.1)]


def test_severities_merge_by_key_inline_wins() -> None:
    spec = system_spec(
        **system_using_policy(
            severities={
                "SEV2": {"response": "contain", "actions": ["isolate"]},
                "SEV4": {"response": "investigate"},
            }
        )
    )
    plan = build(spec, policy_spec(policy_body()))

    assert plan.severities[Severity.SEV1].response is Response.SHUTDOWN, "kept from the policy"
    assert plan.severities[Severity.SEV2].response is Response.CONTAIN
    assert plan.severities[Severity.SEV2].actions == [Action.ISOLATE]
    assert plan.severities[Severity.SEV3].response is Response.INVESTIGATE
    assert plan.severities[Severity.SEV4].response is Response.INVESTIGATE
    assert plan.containing_severities() == [Severity.SEV1, Severity.SEV2]


def test_responders_merge_by_name_inline_wins() -> None:
    spec = system_spec(
        **system_using_policy(
            responders=[
                {"name": "security", "subjects": [{"kind": "User", "name": "ciso@example.com"}], "may": ["release"]},
                {"name": "sre", "subjects": [{"kind": "Group", "name": "sre"}], "may": ["acknowledge"]},
            ]
        )
    )
    plan = build(spec, policy_spec(policy_body()))

    by_name = {r.name: r for r in plan.responders}
    assert list(by_name) == ["ml-oncall", "security", "sre"]
    assert [s.name for s in by_name["security"].subjects] == ["ciso@example.com"]
    assert [v.value for v in by_name["security"].may] == ["release"]


def test_templates_merge_by_audience_inline_wins() -> None:
    spec = system_spec(**system_using_policy(templates={"internal": {"body": "system body"}}))
    plan = build(spec, policy_spec(policy_body()))
    assert plan.templates[Audience.INTERNAL].body == "system body"
    assert plan.templates[Audience.USERS].body == "policy users body"


def test_policy_ref_to_a_missing_policy_names_the_field() -> None:
    spec = system_spec(**system_using_policy())
    with pytest.raises(SpecError) as caught:
        build(spec, None)
    assert caught.value.field == "spec.policyRef.name"
    assert "llm-chatbot" in caught.value.message
    assert str(caught.value).startswith("spec.policyRef.name: ")


def test_threshold_severity_undefined_after_merge_names_the_field() -> None:
    # With a policyRef the model cannot check severities; the merge must.
    policy = policy_body()
    del policy["severities"]["SEV4"]
    watch = {
        "name": "latency",
        "failureMode": "sudden",
        "query": "up",
        "thresholds": [
            {"severity": "SEV3", "op": ">", "value": 1},
            {"severity": "SEV4", "op": ">", "value": 0.5},
        ],
    }
    spec = system_spec(**system_using_policy(monitors=[copy.deepcopy(ANSWER_DRIFT), watch]))

    with pytest.raises(SpecError) as caught:
        build(spec, policy_spec(policy))

    assert caught.value.field == "spec.monitors[1].thresholds[1].severity"
    assert "SEV4" in caught.value.message
    assert "latency" in caught.value.message


def test_inline_severity_satisfies_a_policy_threshold_after_merge() -> None:
    spec = system_spec(**system_using_policy(severities={"SEV4": {"response": "observe"}}))
    policy = policy_body()
    del policy["severities"]["SEV4"]
    plan = build(spec, policy_spec(policy))
    assert Severity.SEV4 in plan.severities


def test_reroute_from_the_policy_without_fallback_names_spec_fallback() -> None:
    spec = system_spec(**system_using_policy(fallback=None))
    with pytest.raises(SpecError) as caught:
        build(spec, policy_spec(policy_body()))
    assert caught.value.field == "spec.fallback"
    assert "reroute" in caught.value.message
    assert "SEV1" in caught.value.message


def test_no_reroute_no_fallback_needed() -> None:
    policy = policy_body()
    policy["severities"]["SEV1"]["actions"] = ["scaleToZero"]
    policy["severities"]["SEV2"]["actions"] = ["pauseRollout"]
    plan = build(system_spec(**system_using_policy(fallback=None)), policy_spec(policy))
    assert plan.spec.fallback is None


def test_unknown_params_variable_in_the_policy_names_the_monitor() -> None:
    spec = system_spec(**system_using_policy(params={"team": "support"}))
    with pytest.raises(SpecError) as caught:
        build(spec, policy_spec(policy_body()))
    assert caught.value.field == "ContainmentPolicy llm-chatbot monitors[0].query"
    assert "params.app" in caught.value.message
    assert "pii-leak" in caught.value.message


def test_unknown_params_variable_in_a_shared_match_names_the_label() -> None:
    policy = policy_body()
    policy["monitors"] = [
        {
            "name": "pii-leak",
            "failureMode": "privacy",
            "query": "sum by (namespace, app) (rate(pii_detections_total[1m]))",
            "match": {"namespace": "{{ namespace }}", "app": "{{ params.app }}"},
            "thresholds": [{"severity": "SEV1", "op": ">", "value": 0.5}],
        }
    ]
    spec = system_spec(**system_using_policy(params={}))
    with pytest.raises(SpecError) as caught:
        build(spec, policy_spec(policy))
    assert caught.value.field == "ContainmentPolicy llm-chatbot monitors[0].match[app]"
    assert "'app'" in caught.value.message


def test_shared_monitor_keeps_the_vector_query_and_resolves_its_match() -> None:
    shared = {
        "name": "pii-leak",
        "failureMode": "privacy",
        "query": "sum by (namespace, app) (rate(pii_detections_total[1m]))",
        "match": {"namespace": "{{ namespace }}", "app": "{{ params.app }}", "system": "{{ name }}"},
        "thresholds": [{"severity": "SEV1", "op": ">", "value": 0.5}],
    }
    plan = build(monitors=[shared], params={"app": 'chat"bot'})

    (resolved,) = plan.monitors
    assert resolved.query == "sum by (namespace, app) (rate(pii_detections_total[1m]))"
    assert resolved.match == {"namespace": "ml-prod", "app": 'chat"bot', "system": "support-chatbot"}


def test_two_systems_sharing_a_policy_share_the_vector_query() -> None:
    policy = policy_body()
    policy["monitors"] = [
        {
            "name": "pii-leak",
            "failureMode": "privacy",
            "query": "sum by (namespace, app) (rate(pii_detections_total[1m]))",
            "match": {"app": "{{ params.app }}"},
            "thresholds": [{"severity": "SEV1", "op": ">", "value": 0.5}],
        }
    ]
    one = build(system_spec(**system_using_policy(params={"app": "a"})), policy_spec(policy))
    two = build(system_spec(**system_using_policy(params={"app": "b"})), policy_spec(policy))
    assert one.monitors[0].query == two.monitors[0].query
    assert (one.monitors[0].match, two.monitors[0].match) == ({"app": "a"}, {"app": "b"})


def test_dry_run_and_severity_lookup() -> None:
    assert build(mode="dryRun").dry_run is True
    plan = build()
    assert plan.dry_run is False
    assert plan.severity_policy(Severity.SEV2) is not None
    assert plan.severity_policy(Severity.SEV2).ack_within == "15m"  # type: ignore[union-attr]
    assert build(severities={"SEV1": SEVERITIES["SEV1"]}, monitors=[]).severity_policy(Severity.SEV2) is None


def test_a_policy_severity_with_pause_rollout_is_refused_for_an_inference_service() -> None:
    policy = ContainmentPolicySpec.model_validate(
        {"severities": {"SEV2": {"response": "contain", "actions": ["pauseRollout"]}, "SEV3": {"response": "observe"}}}
    )
    body: dict[str, Any] = {
        "policyRef": {"name": "llm-chatbot"},
        "target": {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "name": "chatbot"},
    }
    with pytest.raises(SpecError) as info:
        build_plan("ml-prod", "support-chatbot", AISystemSpec.model_validate(body), policy)
    assert info.value.field == "ContainmentPolicy llm-chatbot severities.SEV2.actions"
    assert "pauseRollout does not apply to an InferenceService target" in info.value.message
    # Overriding that severity inline is the way out.
    body["severities"] = {"SEV2": {"response": "contain", "actions": ["scaleToZero"]}}
    fixed = build_plan("ml-prod", "support-chatbot", AISystemSpec.model_validate(body), policy)
    assert fixed.severities[Severity.SEV2].actions == [Action.SCALE_TO_ZERO]
