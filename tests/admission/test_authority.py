"""The pure admission decision (``authority.admit`` / ``authority.mutate``) over the shared corpus."""

from __future__ import annotations

import pytest

from airlock.api import annotations as keys
from airlock.api.common import Verb
from airlock.api.matrix import Responder
from airlock.domain import authority
from airlock.domain.authority import Kind, Rule
from tests.admission import cases
from tests.admission.cases import ALICE, BOB, CASES, IDS, MALLORY, Case


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_as_sent(case: Case) -> None:
    """Without the mutating webhook (a ValidatingAdmissionPolicy-only cluster): the client's annotations."""
    verdict = cases.raw_verdict(case)
    assert {d.rule for d in verdict.denials} == case.raw, verdict.reason
    assert verdict.allowed is not case.raw


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_through_the_webhooks(case: Case) -> None:
    """Mutating webhook, then validating webhook: the refusal says who may."""
    changes, verdict = cases.webhook_pipeline(case)
    assert {d.rule for d in verdict.denials} == case.webhook, verdict.reason
    for fragment in case.says:
        assert fragment in verdict.reason
    if changes and case.new is not None:
        stamped = authority.annotations_of(authority.with_annotations(case.new, changes))
        if authority.control_changes(case.kind, case.old if case.operation == "UPDATE" else None, case.new):
            # Whoever changed a control annotation is on record, whatever the client wrote.
            assert stamped[keys.REQUESTED_BY] == case.user
            assert stamped[keys.REQUESTED_BY_GROUPS] == ",".join(case.groups)
        else:
            # Any other write keeps the stored record.
            before = authority.annotations_of(case.old)
            for key in keys.IDENTITY:
                assert stamped.get(key) == before.get(key)


def test_a_spoofed_requested_by_is_overwritten() -> None:
    request = authority.AdmissionRequest(
        "UPDATE",
        Kind.AISYSTEM,
        cases.system(),
        cases.system({keys.SHUTDOWN: "x", keys.REQUESTED_BY: ALICE, keys.REQUESTED_BY_GROUPS: "oncall-ml"}),
        authority.Caller(BOB, ("support", "system:authenticated")),
    )
    assert authority.mutate(request, cases.SETTINGS) == {
        keys.REQUESTED_BY: BOB,
        keys.REQUESTED_BY_GROUPS: "support,system:authenticated",
    }


def test_a_matching_requested_by_needs_no_change() -> None:
    caller = authority.Caller(ALICE, ("system:authenticated",))
    new = cases.system({keys.SHUTDOWN: "x", keys.REQUESTED_BY: ALICE, keys.REQUESTED_BY_GROUPS: "system:authenticated"})
    request = authority.AdmissionRequest("UPDATE", Kind.AISYSTEM, cases.system(), new, caller)
    assert authority.mutate(request, cases.SETTINGS) == {}


def test_an_identity_edit_alone_is_undone() -> None:
    old = cases.system(cases.STORED_SHUTDOWN)
    new = cases.system({**cases.STORED_SHUTDOWN, keys.REQUESTED_BY: MALLORY})
    new["metadata"]["annotations"].pop(keys.REQUESTED_BY_GROUPS)
    request = authority.AdmissionRequest("UPDATE", Kind.AISYSTEM, old, new, authority.Caller(MALLORY))
    assert authority.mutate(request, cases.SETTINGS) == {
        keys.REQUESTED_BY: ALICE,
        keys.REQUESTED_BY_GROUPS: "system:authenticated",
    }


def test_a_stray_identity_on_create_is_dropped() -> None:
    new = cases.system({keys.REQUESTED_BY: ALICE})
    request = authority.AdmissionRequest("CREATE", Kind.AISYSTEM, None, new, authority.Caller(MALLORY))
    changes = authority.mutate(request, cases.SETTINGS)
    assert changes == {keys.REQUESTED_BY: None}
    assert keys.REQUESTED_BY not in authority.annotations_of(authority.with_annotations(new, changes))


def test_stamp_overwrites_whatever_the_client_wrote() -> None:
    stamped = authority.stamp(
        {keys.SHUTDOWN: "x", keys.REQUESTED_BY: "someone", keys.REQUESTED_BY_GROUPS: "admins", "other": "kept"},
        authority.Caller("bob", ("a", "b")),
    )
    assert stamped == {keys.SHUTDOWN: "x", keys.REQUESTED_BY: "bob", keys.REQUESTED_BY_GROUPS: "a,b", "other": "kept"}


def test_the_operator_is_never_stamped_nor_refused() -> None:
    caller = authority.Caller(authority.DEFAULT_OPERATOR)
    request = authority.AdmissionRequest(
        "UPDATE", Kind.AISYSTEM, cases.system(), cases.system({keys.DRILL: "x"}), caller
    )
    assert authority.mutate(request, cases.SETTINGS) == {}
    assert authority.admit(request, [], cases.SETTINGS).allowed


def test_another_operator_identity_and_admin_group_are_settings() -> None:
    settings = authority.AdmissionSettings(admin_groups=("platform",), operator="system:serviceaccount:x:op")
    old, new = cases.system(), cases.system(responders=[cases.ONCALL])
    as_default_admin = authority.AdmissionRequest(
        "UPDATE", Kind.AISYSTEM, old, new, authority.Caller("d", ("airlock-admins",))
    )
    verdict = authority.admit(as_default_admin, [], settings)
    assert verdict.reason.endswith("allowed: group platform")
    as_platform = authority.AdmissionRequest("UPDATE", Kind.AISYSTEM, old, new, authority.Caller("d", ("platform",)))
    assert authority.admit(as_platform, [], settings).allowed
    as_operator = authority.AdmissionRequest(
        "UPDATE", Kind.AISYSTEM, old, new, authority.Caller("system:serviceaccount:x:op")
    )
    assert authority.admit(as_operator, [], settings).allowed
    default_operator = authority.AdmissionRequest(
        "UPDATE", Kind.AISYSTEM, old, new, authority.Caller(authority.DEFAULT_OPERATOR)
    )
    assert not authority.admit(default_operator, [], settings).allowed


@pytest.mark.parametrize(
    ("kind", "key", "verb"),
    [
        (Kind.AISYSTEM, keys.SHUTDOWN, Verb.SHUTDOWN),
        (Kind.AISYSTEM, keys.RELEASE, Verb.RELEASE),
        (Kind.AISYSTEM, keys.DRILL, Verb.DRILL),
        (Kind.AIINCIDENT, keys.ACKNOWLEDGE, Verb.ACKNOWLEDGE),
        (Kind.AIINCIDENT, keys.APPROVE, Verb.APPROVE),
        # Closing an incident with its post-mortem is the incident owner's paperwork, not a workload decision.
        (Kind.AIINCIDENT, keys.POSTMORTEM, Verb.ACKNOWLEDGE),
    ],
)
def test_each_control_annotation_needs_its_verb(kind: Kind, key: str, verb: Verb) -> None:
    assert authority.CONTROL[kind][key] is verb
    only = [Responder.model_validate({"name": "r", "subjects": [{"kind": "User", "name": "u"}], "may": [verb.value]})]
    body = cases.system if kind is Kind.AISYSTEM else cases.incident
    request = authority.AdmissionRequest(
        "UPDATE", kind, body(), body({key: "v", keys.REQUESTED_BY: "u"}), authority.Caller("u")
    )
    assert authority.admit(request, only, cases.SETTINGS).allowed
    others = [v for v in Verb if v is not verb]
    not_enough = [
        Responder.model_validate(
            {"name": "r", "subjects": [{"kind": "User", "name": "u"}], "may": [v.value for v in others]}
        )
    ]
    verdict = authority.admit(request, not_enough, cases.SETTINGS)
    assert [d.rule for d in verdict.denials] == [Rule.VERB]
    assert f"u may not {verb.value}; allowed: nobody" in verdict.reason


def test_control_keys_cover_the_binding_annotations() -> None:
    assert tuple(authority.CONTROL[Kind.AISYSTEM]) == keys.SYSTEM_CONTROL
    assert tuple(authority.CONTROL[Kind.AIINCIDENT]) == keys.INCIDENT_CONTROL
    assert authority.CONTROL[Kind.CONTAINMENT_POLICY] == {}


def test_several_refusals_are_all_reported() -> None:
    (case,) = [c for c in CASES if c.id == "stranger-grants-herself-and-uses-it"]
    verdict = cases.raw_verdict(case)
    assert [d.rule for d in verdict.denials] == [Rule.PLAN, Rule.VERB]
    assert verdict.reason == "; ".join(d.message for d in verdict.denials)


def test_effective_responders_merge_inline_over_policy_by_name() -> None:
    inline = authority.inline_responders(cases.system())
    policy = authority.inline_responders(cases.policy(cases.POLICIES["llm-chatbot"]))
    merged = authority.effective_responders(inline, policy)
    assert [r.name for r in merged] == ["security", "ml-oncall", "platform", "support", "leads"]
    assert merged[1] == inline[0]


def test_a_malformed_responder_grants_nothing() -> None:
    body = cases.system(responders=[{"name": "bad", "subjects": [], "may": ["shutdown"]}, cases.SUPPORT])
    assert [r.name for r in authority.inline_responders(body)] == ["support"]


def test_needs_responders_only_when_a_control_annotation_or_the_plan_changes() -> None:
    for case in CASES:
        request = case.request()
        old = case.old if case.operation in ("UPDATE", "DELETE") else None
        controls = case.operation in ("CREATE", "UPDATE") and bool(authority.control_changes(case.kind, old, case.new))
        plan = bool(authority.plan_changes(case.kind, case.operation, old, case.new))
        admin = any(g in cases.SETTINGS.admin_groups for g in case.groups)
        assert authority.needs_responders(request, cases.SETTINGS) is (controls or (plan and not admin)), case.id


def test_bob_is_refused_naming_who_may() -> None:
    request = authority.AdmissionRequest(
        "UPDATE",
        Kind.AISYSTEM,
        cases.system(),
        cases.system({keys.SHUTDOWN: "now", keys.REQUESTED_BY: BOB}),
        authority.Caller(BOB),
    )
    verdict = authority.admit(request, authority.inline_responders(cases.system()), cases.SETTINGS)
    assert verdict.reason == f"setting airlock.dev/shutdown: {BOB} may not shutdown; {cases.WHO_MAY_SHUTDOWN}"
