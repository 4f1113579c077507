"""The shipped CEL agrees with the webhook's pure function on the whole corpus, wherever CEL can see.

The ValidatingAdmissionPolicy cannot read another object per request, so it is
blind to the verb when the responders live elsewhere: an AISystem with a
policyRef (the policy's responders) and every AIIncident (its system's). There
it checks requested-by only and the operator re-checks; everywhere else the
verdict must be the same, rule by rule.  The webhook configurations' match
conditions must send every write that matters to the webhook — and nothing else.
"""

from __future__ import annotations

from typing import Any

import pytest

from airlock.domain import authority
from airlock.domain.authority import Kind, Rule
from tests.admission import cases, cel
from tests.admission.cases import CASES, Case

POLICIES = cel.policies()
POLICY_OF = {
    Kind.AISYSTEM: "airlock-aisystem-authority",
    Kind.AIINCIDENT: "airlock-aiincident-authority",
    Kind.CONTAINMENT_POLICY: "airlock-containmentpolicy-authority",
}
# Which rule each validation of a policy enforces, in order.
VALIDATIONS = {
    "airlock-aisystem-authority": [Rule.IDENTITY, Rule.REQUESTED_BY, Rule.GROUPS, Rule.VERB, Rule.ADMIN],
    "airlock-aiincident-authority": [Rule.IDENTITY, Rule.REQUESTED_BY, Rule.GROUPS],
    "airlock-containmentpolicy-authority": [Rule.ADMIN],
}
IN_CEL = [case for case in CASES if case.not_in_cel is None]
VALIDATING = cel.webhooks("ValidatingWebhookConfiguration")
MUTATING = cel.webhooks("MutatingWebhookConfiguration")


def blind_to_the_verb(case: Case) -> bool:
    if case.kind is Kind.AIINCIDENT:
        return True
    basis = authority.authority_basis(case.old, case.new)
    return case.kind is Kind.AISYSTEM and authority.policy_name(basis) is not None


def visible(found: frozenset[Rule] | set[Rule], case: Case) -> set[Rule]:
    return set(found) - ({Rule.VERB} if blind_to_the_verb(case) else set())


def evaluate(case: Case, new: dict[str, Any] | None = None) -> tuple[cel.Outcome, set[Rule]]:
    policy = POLICIES[POLICY_OF[case.kind]]
    outcome = policy.evaluate(
        case.operation, case.kind.value, case.user, case.groups, case.new if new is None else new, case.old
    )
    return outcome, {VALIDATIONS[policy.name][index] for index in outcome.failed}


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
        "stranger-on-a-system-with-a-policy",
        "inline-responder-replaces-the-policys-by-name",
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
            f"{cases.BOB} may not shutdown AISystem chatbot (airlock.dev/shutdown): only subjects of its "
            "spec.responders with the shutdown verb may",
        ),
        (
            "missing-requested-by",
            f"airlock.dev/requested-by must name the caller ({cases.ALICE}) when airlock.dev/shutdown changes",
        ),
        (
            "spoofed-groups",
            f"airlock.dev/requested-by-groups claims oncall-ml, which {cases.MALLORY} is not a member of",
        ),
        ("responders-edited-by-a-non-admin", "allowed: group airlock-admins"),
        ("policy-responders-edited-by-a-non-admin", "allowed: group airlock-admins"),
        ("requested-by-changed-alone", "they change only together with one"),
    ],
)
def test_the_policy_says_why(case_id: str, message: str) -> None:
    (case,) = [c for c in CASES if c.id == case_id]
    outcome, _ = evaluate(case)
    assert any(message in m for m in outcome.messages), outcome.messages


def _reaches(hooks: list[cel.Webhook], case: Case, new: dict[str, Any] | None) -> bool:
    return any(
        hook.reached(case.operation, case.kind.value, case.user, case.groups, new, case.old)
        for hook in hooks
        if case.operation != "DELETE"
    )


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
    "delete-is-rbacs-call",
    "created-with-responders-by-anyone",
    "operator-edits-responders-and-annotations",
    "incident-opened-by-the-operator",
    "policy-responders-edited-by-the-operator",
    "policy-description-edited",
    "policy-created-by-anyone",
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
        assert all("DELETE" not in r["operations"] for r in hook.rules)


def test_the_shipped_corpus_tests_skip_the_admission_manifests() -> None:
    from tests.api import manifests

    shipped = manifests.shipped_documents()
    assert not [where for where, _ in shipped if where.startswith("policies/admission/")]
    for name in ("webhook.yaml", "validating-admission-policy.yaml"):
        for document in cel.documents(name):
            assert document["apiVersion"] == "admissionregistration.k8s.io/v1"
            assert not manifests.is_ours(document)
