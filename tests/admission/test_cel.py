"""The shipped CEL agrees with the webhook's pure function on the whole corpus, wherever CEL can see.

A ValidatingAdmissionPolicy reads no other object per request except its params:
every ContainmentPolicy is a param of ``airlock-aisystem-policy-authority``, so an
AISystem's policy responders are in sight; an AIIncident's system is not, so the
incident policy checks requested-by only and the operator re-checks the verb.
Everywhere else the verdict must be the same, rule by rule.  The webhook
configurations' match conditions must send every write that matters to the
webhook — and nothing else.
"""

from __future__ import annotations

from typing import Any

import pytest

from airlock.api import admission
from airlock.domain import authority
from airlock.domain.authority import Kind, Rule
from tests.admission import cases, cel
from tests.admission.cases import CASES, Case

POLICIES = cel.policies()
POLICIES_OF = {
    Kind.AISYSTEM: ["airlock-aisystem-authority", "airlock-aisystem-policy-authority"],
    Kind.AIINCIDENT: ["airlock-aiincident-authority"],
    Kind.CONTAINMENT_POLICY: ["airlock-containmentpolicy-authority"],
}
# Which rule each validation of a policy enforces, in order.
VALIDATIONS = {
    "airlock-aisystem-authority": [Rule.IDENTITY, Rule.REQUESTED_BY, Rule.GROUPS, Rule.VERB, Rule.PLAN],
    "airlock-aisystem-policy-authority": [Rule.VERB, Rule.PLAN],
    "airlock-aiincident-authority": [Rule.IDENTITY, Rule.REQUESTED_BY, Rule.GROUPS],
    "airlock-containmentpolicy-authority": [Rule.PLAN],
}
PARAMS = cases.policy_objects()
IN_CEL = [case for case in CASES if case.not_in_cel is None]
VALIDATING = cel.webhooks("ValidatingWebhookConfiguration")
MUTATING = cel.webhooks("MutatingWebhookConfiguration")


def blind_to_the_verb(case: Case) -> bool:
    return case.kind is Kind.AIINCIDENT


def visible(found: frozenset[Rule] | set[Rule], case: Case) -> set[Rule]:
    return set(found) - ({Rule.VERB} if blind_to_the_verb(case) else set())


def evaluate(case: Case, new: dict[str, Any] | None = None) -> tuple[cel.Outcome, set[Rule]]:
    """Every policy that may match the write, as the API server runs them (all must admit)."""
    failed: set[Rule] = set()
    outcomes: list[cel.Outcome] = []
    for name in POLICIES_OF[case.kind]:
        policy = POLICIES[name]
        outcome = policy.evaluate(
            case.operation,
            case.kind.value,
            case.user,
            case.groups,
            case.new if new is None else new,
            case.old,
            params=PARAMS,
        )
        outcomes.append(outcome)
        failed |= {VALIDATIONS[name][index] for index in outcome.failed}
    combined = cel.Outcome(
        matched=any(o.matched for o in outcomes),
        failed=tuple(i for o in outcomes for i in o.failed),
        messages=tuple(m for o in outcomes for m in o.messages),
    )
    return combined, failed


def test_every_policy_is_mapped_and_bound() -> None:
    assert set(POLICIES) == set(VALIDATIONS)
    for name, policy in POLICIES.items():
        assert len(policy.validations) == len(VALIDATIONS[name])
        assert policy.failure_policy == "Fail"
    bindings = [d for d in cel.documents("validating-admission-policy.yaml") if d["kind"].endswith("Binding")]
    assert {b["spec"]["policyName"] for b in bindings} == set(POLICIES)
    assert all(b["spec"]["validationActions"] == ["Deny"] for b in bindings)


@pytest.mark.parametrize("case", IN_CEL, ids=[c.id for c in IN_CEL])
def test_the_policy_alone_decides_as_the_pure_function(case: Case) -> None:
    """A cluster with only the ValidatingAdmissionPolicy: nothing stamped, the write as sent."""
    verdict = cases.raw_verdict(case)
    outcome, failed = evaluate(case)
    assert failed == visible({d.rule for d in verdict.denials}, case), (outcome.messages, verdict.reason)


@pytest.mark.parametrize("case", IN_CEL, ids=[c.id for c in IN_CEL])
def test_the_policy_behind_the_mutating_webhook_agrees_too(case: Case) -> None:
    changes, verdict = cases.webhook_pipeline(case)
    new = authority.with_annotations(case.new, changes) if changes and case.new is not None else case.new
    _, failed = evaluate(case, new)
    assert failed == visible({d.rule for d in verdict.denials}, case)


def test_blind_spots_are_only_the_documented_ones() -> None:
    """Where CEL cannot see the responders it lets the verb through, and nothing else."""
    differing = [c.id for c in IN_CEL if not cases.raw_verdict(c).allowed and not evaluate(c)[0].denied]
    assert differing == [
        "support-may-not-approve",
        "postmortem-by-a-stranger",
        "support-may-not-classify-harm",
        "submission-by-a-stranger",
        "incident-of-a-system-with-a-policy",
        "incident-of-a-system-that-is-gone",
        "incident-moved-to-another-system-in-the-same-write",
        "incident-created-acknowledged-by-a-stranger",
    ]


@pytest.mark.parametrize(
    ("case_id", "message"),
    [
        (
            "responder-without-the-verb-sets-shutdown",
            f"setting, changing or removing airlock.dev/shutdown: {cases.BOB} may not shutdown AISystem chatbot; "
            "allowed: group oncall-ml, user alice@example.com, serviceaccount ops/pager-bot",
        ),
        (
            "stranger-on-a-system-with-a-policy",
            f"{cases.MALLORY} may not shutdown AISystem chatbot; allowed: group oncall-ml, user alice@example.com, "
            "serviceaccount ops/pager-bot, group secops",
        ),
        (
            "mode-set-to-dryrun-by-a-responder",
            f"{cases.ALICE} may not change spec.mode of AISystem chatbot (the plan decides when and how the model "
            "is contained); allowed: group airlock-admins, group system:masters, group ml-leads (configure)",
        ),
        (
            "plan-changed-by-a-stranger-on-a-system-with-a-policy",
            "allowed: group airlock-admins, group system:masters, group ml-leads (configure), group platform (configure)",
        ),
        ("policy-deleted-by-a-stranger", f"{cases.MALLORY} may not delete ContainmentPolicy llm-chatbot"),
        (
            "missing-requested-by",
            f"airlock.dev/requested-by must name the caller ({cases.ALICE}) when airlock.dev/shutdown changes",
        ),
        (
            "spoofed-groups",
            f"airlock.dev/requested-by-groups claims oncall-ml, which {cases.MALLORY} is not a member of",
        ),
        (
            "responders-edited-by-a-non-admin",
            "allowed: group airlock-admins, group system:masters, group ml-leads (configure)",
        ),
        (
            "policy-responders-edited-by-a-non-admin",
            "allowed: group airlock-admins, group system:masters, group platform (configure)",
        ),
        ("requested-by-changed-alone", "they change only together with one"),
    ],
)
def test_the_policy_says_why(case_id: str, message: str) -> None:
    (case,) = [c for c in CASES if c.id == case_id]
    outcome, _ = evaluate(case)
    assert any(message in m for m in outcome.messages), outcome.messages


def _reaches(hooks: list[cel.Webhook], case: Case, new: dict[str, Any] | None) -> bool:
    return any(hook.reached(case.operation, case.kind.value, case.user, case.groups, new, case.old) for hook in hooks)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_write_that_skips_the_webhooks_loses_nothing(case: Case) -> None:
    """If a match condition keeps a write away from a webhook, that webhook would have had nothing to do."""
    changes, verdict = cases.webhook_pipeline(case)
    if not _reaches(MUTATING, case, case.new):
        assert changes == {}
    mutated = authority.with_annotations(case.new, changes) if changes and case.new is not None else case.new
    if not _reaches(VALIDATING, case, mutated):
        assert verdict.allowed


UNRELATED = [
    "spec-edit-by-anyone",
    "spec-edit-of-a-shut-down-system",
    "description-and-owner-by-anyone",
    "delete-is-rbacs-call",
    "created-with-responders-by-anyone",
    "operator-edits-responders-and-annotations",
    "incident-opened-by-the-operator",
    "policy-responders-edited-by-the-operator",
]


@pytest.mark.parametrize("case_id", UNRELATED)
def test_other_writes_never_wait_for_the_operator(case_id: str) -> None:
    (case,) = [c for c in CASES if c.id == case_id]
    assert not _reaches(MUTATING, case, case.new)
    assert not _reaches(VALIDATING, case, case.new)
    assert not evaluate(case)[0].matched


def test_webhook_configurations_fail_closed_on_v1_reviews_at_the_handlers() -> None:
    paths = {hook.path for hook in VALIDATING + MUTATING}
    assert paths == {
        "/validate-aisystem",
        "/validate-aiincident",
        "/validate-containmentpolicy",
        "/stamp-aisystem",
        "/stamp-aiincident",
    }
    for hook in VALIDATING + MUTATING:
        assert hook.document["admissionReviewVersions"] == ["v1"]
        assert hook.document["sideEffects"] == "None"
        assert hook.document["failurePolicy"] == "Fail"
        service = hook.document["clientConfig"]["service"]
        assert (service["namespace"], service["name"]) == ("airlock-system", "airlock-webhook")
        assert {c.source.split()[0] for c in hook.conditions}, "scoped by matchConditions"
        assert [r["apiGroups"] for r in hook.rules] == [["airlock.dev"]]
        # Deleting a ContainmentPolicy disables its systems: judged; deleting anything else is RBAC's call.
        deletes = [r["resources"] for r in hook.rules if "DELETE" in r["operations"]]
        assert deletes == ([["containmentpolicies"]] if hook.path == "/validate-containmentpolicy" else [])


def test_the_shipped_corpus_tests_skip_the_admission_manifests() -> None:
    from tests.api import manifests

    shipped = manifests.shipped_documents()
    assert not [where for where, _ in shipped if where.startswith("policies/admission/")]
    for name in ("webhook.yaml", "validating-admission-policy.yaml"):
        for document in cel.documents(name):
            assert document["apiVersion"] == "admissionregistration.k8s.io/v1"
            assert not manifests.is_ours(document)


@pytest.mark.parametrize("field", admission.plan_fields())
def test_every_plan_field_is_guarded_by_the_policy_and_the_webhook(field: str) -> None:
    """A field added to the AISystem spec is part of the plan at once (the manifests are generated)."""
    old = cases.system()
    new = cases.system()
    # Removing a field the system has, or adding one it lacks: a change of the right CEL type either way.
    if field in new["spec"]:
        del new["spec"][field]
    else:
        new["spec"][field] = {"changed": True}
    case = Case(f"{field}-changed-by-a-stranger", Kind.AISYSTEM, "UPDATE", old, new, cases.MALLORY)
    verdict = cases.raw_verdict(case)
    assert [d.rule for d in verdict.denials] == [Rule.PLAN]
    assert f"may not change spec.{field} of AISystem chatbot" in verdict.reason
    outcome, failed = evaluate(case)
    assert failed == {Rule.PLAN}
    assert any(f"spec.{field}" in message for message in outcome.messages)
    assert _reaches(VALIDATING, case, new)


@pytest.mark.parametrize("field", admission.DESCRIPTIVE)
def test_descriptive_fields_are_not_the_plan(field: str) -> None:
    new = cases.system()
    new["spec"][field] = "something else"
    case = Case(f"{field}-changed", Kind.AISYSTEM, "UPDATE", cases.system(), new, cases.MALLORY)
    assert cases.raw_verdict(case).allowed
    assert not evaluate(case)[0].matched
    assert not _reaches(VALIDATING, case, new)


def test_the_shipped_files_are_the_generated_ones() -> None:
    for name, make in admission.FILES.items():
        assert (cel.ADMISSION / name).read_text(encoding="utf-8") == make(), f"run `make crds` ({name})"
