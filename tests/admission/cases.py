"""The admission corpus: one table of writes, judged by the webhook's pure function and by the CEL policy.

Each case is a write as the API server reports it (operation, old and new
object, the caller's userInfo) and the rules it must break:

* ``raw`` — as sent, with nothing stamped: what a cluster with only the
  ValidatingAdmissionPolicy sees (and what ``authority.admit`` says alone);
* ``webhook`` — after the mutating webhook stamped ``requested-by``: what a
  cluster with the webhooks sees.

The responders in force come from the same lookups the handlers do: an
AISystem's (stored) inline responders merged over its ContainmentPolicy's in
``POLICIES``; an AIIncident's from its system in ``SYSTEMS``.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from airlock.api import annotations as keys
from airlock.api.matrix import Responder
from airlock.domain import authority
from airlock.domain.authority import Kind, Rule

ALICE = "alice@example.com"  # user responder with every verb
BOB = "bob@example.com"  # support: acknowledge only
CAROL = "carol@example.com"  # in group oncall-ml
DAVE = "dave@example.com"  # in group secops (a responder of the llm-chatbot policy only)
ERIN = "erin@example.com"  # listed by the policy's ml-oncall, which the inline ml-oncall replaces
DANA = "dana@example.com"  # an admin (group airlock-admins), no responder
LENA = "lena@example.com"  # in group ml-leads: configure on the system (inline)
PAT = "pat@example.com"  # in group platform: configure through the llm-chatbot policy
MALLORY = "mallory@example.com"  # nobody
PAGER = "system:serviceaccount:ops:pager-bot"
OPERATOR = authority.DEFAULT_OPERATOR
AUTHENTICATED = "system:authenticated"

SETTINGS = authority.AdmissionSettings()

ONCALL = {
    "name": "ml-oncall",
    "subjects": [
        {"kind": "Group", "name": "oncall-ml"},
        {"kind": "User", "name": ALICE},
        {"kind": "ServiceAccount", "namespace": "ops", "name": "pager-bot"},
    ],
    "may": ["acknowledge", "approve", "shutdown", "release", "drill", "report"],
}
SUPPORT = {"name": "support", "subjects": [{"kind": "User", "name": BOB}], "may": ["acknowledge"]}
LEADS = {"name": "leads", "subjects": [{"kind": "Group", "name": "ml-leads"}], "may": ["configure"]}
RESPONDERS = [ONCALL, SUPPORT, LEADS]
WHO_MAY_SHUTDOWN = "allowed: group oncall-ml, user alice@example.com, serviceaccount ops/pager-bot"

POLICIES: dict[str, list[dict[str, Any]]] = {
    "llm-chatbot": [
        {"name": "security", "subjects": [{"kind": "Group", "name": "secops"}], "may": ["shutdown"]},
        {"name": "ml-oncall", "subjects": [{"kind": "User", "name": ERIN}], "may": ["shutdown", "release"]},
        {"name": "platform", "subjects": [{"kind": "Group", "name": "platform"}], "may": ["configure"]},
    ],
    "mallorys": [{"name": "mine", "subjects": [{"kind": "User", "name": MALLORY}], "may": ["shutdown", "approve"]}],
}


def system(
    annotations: dict[str, str] | None = None,
    *,
    responders: list[dict[str, Any]] | None = None,
    policy: str | None = None,
    description: str = "Tier-one support chatbot",
    name: str = "chatbot",
    **plan: Any,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "description": description,
        "mode": "enforce",
        "target": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
        "params": {"app": "chatbot"},
        "monitors": [PII_MONITOR],
        "severities": {"SEV1": {"response": "shutdown", "actions": ["scaleToZero"]}},
        "responders": copy.deepcopy(RESPONDERS if responders is None else responders),
    }
    spec.update(copy.deepcopy(plan))
    if policy is not None:
        spec["policyRef"] = {"name": policy}
    metadata: dict[str, Any] = {"name": name, "namespace": "ml-prod", "uid": f"uid-{name}"}
    if annotations is not None:
        metadata["annotations"] = dict(annotations)
    return {"apiVersion": "airlock.dev/v1alpha1", "kind": "AISystem", "metadata": metadata, "spec": spec}


PII_MONITOR: dict[str, Any] = {
    "name": "pii-leak",
    "failureMode": "privacy",
    "query": "sum(rate(airlock_guard_detections_total{detector='cross-customer'}[1m]))",
    "thresholds": [{"severity": "SEV1", "op": ">", "value": 0.5, "for": "0s"}],
}
BLIND_MONITOR = {**PII_MONITOR, "thresholds": [{"severity": "SEV1", "op": ">", "value": 1e9, "for": "0s"}]}


def incident(annotations: dict[str, str] | None = None, *, of: str = "chatbot") -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": f"{of}-20261126-133012", "namespace": "ml-prod"}
    if annotations is not None:
        metadata["annotations"] = dict(annotations)
    return {
        "apiVersion": "airlock.dev/v1alpha1",
        "kind": "AIIncident",
        "metadata": metadata,
        "spec": {"system": of, "failureMode": "privacy", "severity": "SEV1", "trigger": {"type": "monitor"}},
    }


def policy(
    responders: list[dict[str, Any]],
    description: str = "LLM chatbots",
    *,
    name: str = "llm-chatbot",
    monitors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": "airlock.dev/v1alpha1",
        "kind": "ContainmentPolicy",
        "metadata": {"name": name},
        "spec": {
            "description": description,
            "monitors": copy.deepcopy([PII_MONITOR] if monitors is None else monitors),
            "severities": {"SEV1": {"response": "shutdown", "actions": ["scaleToZero"]}},
            "responders": copy.deepcopy(responders),
        },
    }


def policy_objects() -> list[dict[str, Any]]:
    """Every ContainmentPolicy of the corpus, as the API server holds them (the CEL policies' params)."""
    return [policy(responders, name=name) for name, responders in POLICIES.items()]


SYSTEMS = {
    "chatbot": system(),
    "fraud": system(responders=[], policy="llm-chatbot", name="fraud"),
    "mallorys": system(responders=POLICIES["mallorys"], name="mallorys"),
}


SHUTDOWN, RELEASE, DRILL = keys.SHUTDOWN, keys.RELEASE, keys.DRILL
ACK, APPROVE, POSTMORTEM = keys.ACKNOWLEDGE, keys.APPROVE, keys.POSTMORTEM
HARM, SUBMITTED = keys.HARM, keys.REPORT_SUBMITTED
REQ, GROUPS = keys.REQUESTED_BY, keys.REQUESTED_BY_GROUPS


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    kind: Kind
    operation: str
    old: dict[str, Any] | None
    new: dict[str, Any] | None
    user: str
    groups: tuple[str, ...] = (AUTHENTICATED,)
    raw: frozenset[Rule] = frozenset()
    webhook: frozenset[Rule] = frozenset()
    says: tuple[str, ...] = ()  # fragments of the webhook's refusal
    # Kubernetes semantics the CEL harness cannot emulate (say why), so the case is left out of the CEL check.
    not_in_cel: str | None = None

    @property
    def caller(self) -> authority.Caller:
        return authority.Caller(self.user, self.groups)

    def request(self, new: dict[str, Any] | None = None) -> authority.AdmissionRequest:
        return authority.AdmissionRequest(
            operation=self.operation,
            kind=self.kind,
            old=self.old,
            new=self.new if new is None else new,
            caller=self.caller,
        )


def rules(*found: Rule) -> frozenset[Rule]:
    return frozenset(found)


def responders_in_force(request: authority.AdmissionRequest) -> list[Responder]:
    """What the handlers look up: the stored system's responders merged over its policy's (a policy: its own)."""

    def of_system(body: dict[str, Any] | Any) -> list[Responder]:
        name = authority.policy_name(body)
        policy_responders = authority.inline_responders({"spec": {"responders": POLICIES.get(name or "", [])}})
        return authority.effective_responders(authority.inline_responders(body), policy_responders)

    basis = authority.authority_basis(request.old, request.new)
    if request.kind is Kind.CONTAINMENT_POLICY:
        return authority.inline_responders(request.old)
    if request.kind is Kind.AISYSTEM:
        return of_system(basis)
    if request.kind is Kind.AIINCIDENT:
        found = SYSTEMS.get(authority.incident_system(basis) or "")
        return of_system(found) if found is not None else []
    return []


def webhook_pipeline(case: Case) -> tuple[dict[str, str | None], authority.AdmissionVerdict]:
    """The mutating webhook, then the validating one, as the API server calls them."""
    changes = authority.mutate(case.request(), SETTINGS)
    new = authority.with_annotations(case.new, changes) if changes and case.new is not None else case.new
    request = case.request(new)
    return changes, authority.admit(request, responders_in_force(request), SETTINGS)


def raw_verdict(case: Case) -> authority.AdmissionVerdict:
    request = case.request()
    return authority.admit(request, responders_in_force(request), SETTINGS)


VERB, REQUESTED_BY, IDENTITY, PLAN = Rule.VERB, Rule.REQUESTED_BY, Rule.IDENTITY, Rule.PLAN
GROUPS_RULE = Rule.GROUPS
AIS, AII, CPOL = Kind.AISYSTEM, Kind.AIINCIDENT, Kind.CONTAINMENT_POLICY
SHUT = {SHUTDOWN: "pii leak"}
STORED_SHUTDOWN = {SHUTDOWN: "pii leak", REQ: ALICE, GROUPS: AUTHENTICATED}

# A table: one case per line or two, not one argument per line.
# fmt: off
CASES: list[Case] = [
    # --- AISystem control annotations: who ---------------------------------------------
    Case("user-responder-sets-shutdown", AIS, "UPDATE", system(), system({**SHUT, REQ: ALICE}), ALICE),
    Case(
        "responder-without-the-verb-sets-shutdown",
        AIS, "UPDATE", system(), system({**SHUT, REQ: BOB}), BOB,
        raw=rules(VERB), webhook=rules(VERB),
        says=(f"setting airlock.dev/shutdown: {BOB} may not shutdown; {WHO_MAY_SHUTDOWN}",),
    ),
    Case(
        "stranger-sets-shutdown", AIS, "UPDATE", system(), system({**SHUT, REQ: MALLORY}), MALLORY,
        raw=rules(VERB), webhook=rules(VERB), says=(WHO_MAY_SHUTDOWN,),
    ),
    Case(
        "group-member-sets-release",
        AIS, "UPDATE", system(), system({RELEASE: "r1", REQ: CAROL, GROUPS: "oncall-ml"}), CAROL,
        groups=("oncall-ml", AUTHENTICATED),
    ),
    Case(
        "group-member-without-a-groups-annotation",
        AIS, "UPDATE", system(), system({RELEASE: "r1", REQ: CAROL}), CAROL, groups=("oncall-ml", AUTHENTICATED),
    ),
    Case(
        "groups-annotation-as-the-runbook-writes-it",
        AIS, "UPDATE", system(), system({DRILL: "d1", REQ: CAROL, GROUPS: "oncall-ml,system:authenticated,"}), CAROL,
        groups=("oncall-ml", AUTHENTICATED),
    ),
    Case(
        "serviceaccount-responder-sets-drill",
        AIS, "UPDATE", system(), system({DRILL: "tabletop", REQ: PAGER}), PAGER,
        groups=("system:serviceaccounts", "system:serviceaccounts:ops", AUTHENTICATED),
    ),
    Case(
        "same-serviceaccount-name-in-another-namespace",
        AIS, "UPDATE", system(), system({**SHUT, REQ: "system:serviceaccount:default:pager-bot"}),
        "system:serviceaccount:default:pager-bot",
        groups=("system:serviceaccounts", "system:serviceaccounts:default", AUTHENTICATED),
        raw=rules(VERB), webhook=rules(VERB),
    ),
    Case(
        "anonymous-sets-shutdown", AIS, "UPDATE", system(), system({**SHUT, REQ: "system:anonymous"}),
        "system:anonymous", groups=("system:unauthenticated",), raw=rules(VERB), webhook=rules(VERB),
    ),
    # --- requested-by: stamped, never trusted --------------------------------------------
    Case(
        "missing-requested-by", AIS, "UPDATE", system(), system(SHUT), ALICE,
        raw=rules(REQUESTED_BY), webhook=rules(),
    ),
    Case(
        "spoofed-requested-by-names-a-responder",
        AIS, "UPDATE", system(), system({**SHUT, REQ: ALICE}), BOB,
        raw=rules(REQUESTED_BY, VERB), webhook=rules(VERB), says=(f"{BOB} may not shutdown",),
    ),
    Case(
        "responder-writes-someone-else-into-requested-by",
        AIS, "UPDATE", system(), system({**SHUT, REQ: MALLORY}), ALICE,
        raw=rules(REQUESTED_BY), webhook=rules(),
    ),
    Case(
        "spoofed-groups", AIS, "UPDATE", system(), system({**SHUT, REQ: MALLORY, GROUPS: "oncall-ml"}), MALLORY,
        raw=rules(GROUPS_RULE, VERB), webhook=rules(VERB),
    ),
    Case(
        "requested-by-changed-alone", AIS, "UPDATE", system(STORED_SHUTDOWN),
        system({**STORED_SHUTDOWN, REQ: MALLORY}), MALLORY,
        raw=rules(IDENTITY), webhook=rules(),
    ),
    Case(
        "requested-by-removed-alone", AIS, "UPDATE", system(STORED_SHUTDOWN), system(SHUT), MALLORY,
        raw=rules(IDENTITY), webhook=rules(),
    ),
    Case(
        "created-with-a-stray-requested-by", AIS, "CREATE", None, system({REQ: ALICE}), MALLORY,
        raw=rules(IDENTITY), webhook=rules(),
    ),
    # --- set, change, remove -------------------------------------------------------------
    Case(
        "responder-lifts-a-shutdown", AIS, "UPDATE", system(STORED_SHUTDOWN), system({REQ: ALICE, GROUPS: AUTHENTICATED}),
        ALICE,
    ),
    Case(
        "lifting-a-shutdown-needs-shutdown-authority",
        AIS, "UPDATE", system(STORED_SHUTDOWN), system({REQ: ALICE, GROUPS: AUTHENTICATED}), BOB,
        raw=rules(REQUESTED_BY, VERB), webhook=rules(VERB),
        says=(f"removing airlock.dev/shutdown: {BOB} may not shutdown", WHO_MAY_SHUTDOWN),
    ),
    Case(
        "new-release-value-by-a-responder", AIS, "UPDATE", system({RELEASE: "r1", REQ: ALICE}),
        system({RELEASE: "r2", REQ: ALICE}), ALICE,
    ),
    Case(
        "new-release-value-by-a-stranger", AIS, "UPDATE", system({RELEASE: "r1", REQ: ALICE}),
        system({RELEASE: "r2", REQ: MALLORY}), MALLORY,
        raw=rules(VERB), webhook=rules(VERB), says=("changing airlock.dev/release",),
    ),
    Case(
        "an-empty-value-is-a-value", AIS, "UPDATE", system(), system({SHUTDOWN: "", REQ: MALLORY}), MALLORY,
        raw=rules(VERB), webhook=rules(VERB),
    ),
    # --- unrelated writes never depend on authority ----------------------------------------
    Case("spec-edit-by-anyone", AIS, "UPDATE", system(), system(description="new words"), MALLORY),
    Case(
        "spec-edit-of-a-shut-down-system", AIS, "UPDATE", system(STORED_SHUTDOWN),
        system(STORED_SHUTDOWN, description="new words"), MALLORY,
    ),
    Case("delete-is-rbacs-call", AIS, "DELETE", system(STORED_SHUTDOWN), None, MALLORY),
    # --- create ----------------------------------------------------------------------------
    Case("created-with-a-shutdown-by-a-responder", AIS, "CREATE", None, system({**SHUT, REQ: ALICE}), ALICE),
    Case(
        "created-with-a-shutdown-by-a-stranger", AIS, "CREATE", None, system({**SHUT, REQ: MALLORY}), MALLORY,
        raw=rules(VERB), webhook=rules(VERB),
    ),
    Case("created-with-responders-by-anyone", AIS, "CREATE", None, system(), MALLORY),
    # --- the plan: admins or configure; the stored responders decide (SPEC §7) ---------------
    Case(
        "responders-edited-by-a-non-admin", AIS, "UPDATE", system(),
        system(responders=[*RESPONDERS, {**SUPPORT, "name": "more", "subjects": [{"kind": "User", "name": MALLORY}]}]),
        MALLORY, raw=rules(PLAN), webhook=rules(PLAN),
        says=(
            f"{MALLORY} may not change spec.responders of AISystem chatbot",
            "allowed: group airlock-admins, group system:masters, group ml-leads (configure)",
        ),
    ),
    Case(
        "responders-edited-by-a-responder", AIS, "UPDATE", system(), system(responders=[ONCALL]), ALICE,
        raw=rules(PLAN), webhook=rules(PLAN),
    ),
    Case(
        "responders-edited-by-an-admin", AIS, "UPDATE", system(), system(responders=[ONCALL]), DANA,
        groups=("airlock-admins", AUTHENTICATED),
    ),
    Case(
        "stranger-grants-herself-and-uses-it",
        AIS, "UPDATE", system(),
        system({**SHUT, REQ: MALLORY}, responders=[*RESPONDERS, {**ONCALL, "name": "me", "subjects": [
            {"kind": "User", "name": MALLORY}]}]),
        MALLORY, raw=rules(PLAN, VERB), webhook=rules(PLAN, VERB),
    ),
    Case(
        "admin-grants-herself-and-uses-it-in-the-same-write",
        AIS, "UPDATE", system(),
        system({**SHUT, REQ: DANA}, responders=[*RESPONDERS, {**ONCALL, "name": "admins", "subjects": [
            {"kind": "Group", "name": "airlock-admins"}]}]),
        DANA, groups=("airlock-admins", AUTHENTICATED), raw=rules(VERB), webhook=rules(VERB),
    ),
    Case(
        "responders-reordered", AIS, "UPDATE", system(), system(responders=[SUPPORT, LEADS, ONCALL]), MALLORY,
        not_in_cel="responders is a list-map: the API server's CEL compares it without order, celpy in order",
    ),
    Case(
        "policyref-set-by-a-non-admin", AIS, "UPDATE", system(), system(policy="mallorys"), MALLORY,
        raw=rules(PLAN), webhook=rules(PLAN), says=("spec.policyRef",),
    ),
    Case(
        "policyref-set-by-an-admin", AIS, "UPDATE", system(), system(policy="llm-chatbot"), DANA,
        groups=("airlock-admins",),
    ),
    Case(
        "policy-swapped-and-used-in-the-same-write",
        AIS, "UPDATE", system(responders=[]), system({**SHUT, REQ: MALLORY}, responders=[], policy="mallorys"),
        MALLORY, raw=rules(PLAN, VERB), webhook=rules(PLAN, VERB),
    ),
    Case(
        "mode-set-to-dryrun-by-a-responder", AIS, "UPDATE", system(), system(mode="dryRun"), ALICE,
        raw=rules(PLAN), webhook=rules(PLAN),
        says=(f"{ALICE} may not change spec.mode of AISystem chatbot", "(configure)"),
    ),
    Case(
        "threshold-raised-out-of-reach-by-an-oncall-member", AIS, "UPDATE", system(),
        system(monitors=[BLIND_MONITOR]), CAROL, groups=("oncall-ml", AUTHENTICATED),
        raw=rules(PLAN), webhook=rules(PLAN), says=("may not change spec.monitors",),
    ),
    Case(
        "monitor-dropped-by-a-stranger", AIS, "UPDATE", system(), system(monitors=[]), MALLORY,
        raw=rules(PLAN), webhook=rules(PLAN),
    ),
    Case(
        "target-pointed-elsewhere", AIS, "UPDATE", system(),
        system(target={"apiVersion": "apps/v1", "kind": "Deployment", "name": "decoy"}), MALLORY,
        raw=rules(PLAN), webhook=rules(PLAN), says=("spec.target",),
    ),
    Case(
        "params-point-the-queries-elsewhere", AIS, "UPDATE", system(), system(params={"app": "nothing"}), BOB,
        raw=rules(PLAN), webhook=rules(PLAN),
    ),
    Case(
        "several-plan-fields-at-once", AIS, "UPDATE", system(), system(mode="dryRun", monitors=[]), MALLORY,
        raw=rules(PLAN), webhook=rules(PLAN), says=("may not change spec.mode, spec.monitors of AISystem",),
    ),
    Case(
        "mode-set-by-a-configure-responder", AIS, "UPDATE", system(), system(mode="dryRun"), LENA,
        groups=("ml-leads", AUTHENTICATED),
    ),
    Case(
        "threshold-changed-by-an-admin", AIS, "UPDATE", system(), system(monitors=[BLIND_MONITOR]), DANA,
        groups=("airlock-admins", AUTHENTICATED),
    ),
    Case(
        "description-and-owner-by-anyone", AIS, "UPDATE", system(), system(description="new", owner="ml-team"),
        MALLORY,
    ),
    Case(
        "configure-is-not-shutdown", AIS, "UPDATE", system(), system({**SHUT, REQ: LENA}), LENA,
        groups=("ml-leads", AUTHENTICATED), raw=rules(VERB), webhook=rules(VERB),
    ),
    Case(
        "plan-changed-by-the-policys-configure-responder",
        AIS, "UPDATE", system(policy="llm-chatbot"), system(mode="dryRun", policy="llm-chatbot"), PAT,
        groups=("platform", AUTHENTICATED),
    ),
    Case(
        "plan-changed-by-a-stranger-on-a-system-with-a-policy",
        AIS, "UPDATE", system(policy="llm-chatbot"), system(mode="dryRun", policy="llm-chatbot"), MALLORY,
        raw=rules(PLAN), webhook=rules(PLAN), says=("group platform (configure)",),
    ),
    Case(
        "configure-on-another-policy-grants-nothing-here",
        AIS, "UPDATE", system(policy="mallorys"), system(mode="dryRun", policy="mallorys"), PAT,
        groups=("platform", AUTHENTICATED), raw=rules(PLAN), webhook=rules(PLAN),
    ),
    # --- the policy's responders (out of CEL's sight: blind to the verb) ---------------------
    Case(
        "policy-responder-sets-shutdown",
        AIS, "UPDATE", system(policy="llm-chatbot"), system({**SHUT, REQ: DAVE}, policy="llm-chatbot"), DAVE,
        groups=("secops", AUTHENTICATED),
    ),
    Case(
        "stranger-on-a-system-with-a-policy",
        AIS, "UPDATE", system(policy="llm-chatbot"), system({**SHUT, REQ: MALLORY}, policy="llm-chatbot"), MALLORY,
        raw=rules(VERB), webhook=rules(VERB), says=("group secops",),
    ),
    Case(
        "inline-responder-replaces-the-policys-by-name",
        AIS, "UPDATE", system(policy="llm-chatbot"), system({**SHUT, REQ: ERIN}, policy="llm-chatbot"), ERIN,
        raw=rules(VERB), webhook=rules(VERB),
    ),
    # --- the operator ----------------------------------------------------------------------
    Case(
        "operator-edits-responders-and-annotations", AIS, "UPDATE", system(),
        system(SHUT, responders=[ONCALL]), OPERATOR, groups=("system:serviceaccounts", AUTHENTICATED),
    ),
    # --- AIIncident: the responders are its system's ----------------------------------------
    Case("support-acknowledges", AII, "UPDATE", incident(), incident({ACK: "on it", REQ: BOB}), BOB),
    Case(
        "support-may-not-approve", AII, "UPDATE", incident(), incident({APPROVE: "go", REQ: BOB}), BOB,
        raw=rules(VERB), webhook=rules(VERB),
        says=(f"setting airlock.dev/approve: {BOB} may not approve; allowed: group oncall-ml",),
    ),
    Case(
        "oncall-group-approves", AII, "UPDATE", incident(), incident({APPROVE: "go", REQ: CAROL}), CAROL,
        groups=("oncall-ml",),
    ),
    Case(
        "postmortem-needs-acknowledge", AII, "UPDATE", incident({ACK: "on it", REQ: BOB}),
        incident({ACK: "on it", POSTMORTEM: "https://wiki/pm-42", REQ: BOB}), BOB,
    ),
    Case(
        "postmortem-by-a-stranger", AII, "UPDATE", incident(), incident({POSTMORTEM: "x", REQ: MALLORY}), MALLORY,
        raw=rules(VERB), webhook=rules(VERB), says=(f"{MALLORY} may not acknowledge",),
    ),
    Case("oncall-classifies-harm", AII, "UPDATE", incident(), incident({HARM: "c,widespread", REQ: ALICE}), ALICE),
    Case(
        "support-may-not-classify-harm", AII, "UPDATE", incident(), incident({HARM: "b", REQ: BOB}), BOB,
        raw=rules(VERB), webhook=rules(VERB), says=(f"{BOB} may not report",),
    ),
    Case(
        "oncall-group-records-a-submission", AII, "UPDATE", incident(),
        incident({SUBMITTED: "gdpr-art33=DPA-1142", REQ: CAROL}), CAROL, groups=("oncall-ml",),
    ),
    Case(
        "submission-by-a-stranger", AII, "UPDATE", incident(),
        incident({SUBMITTED: "gdpr-art33=x", REQ: MALLORY}), MALLORY, raw=rules(VERB), webhook=rules(VERB),
    ),
    Case(
        "incident-of-a-system-with-a-policy", AII, "UPDATE", incident(of="fraud"),
        incident({ACK: "x", REQ: DAVE}, of="fraud"), DAVE, groups=("secops",),
        raw=rules(VERB), webhook=rules(VERB), says=("allowed: nobody",),
    ),
    Case(
        "incident-of-a-system-that-is-gone", AII, "UPDATE", incident(of="gone"),
        incident({ACK: "x", REQ: ALICE}, of="gone"), ALICE, raw=rules(VERB), webhook=rules(VERB),
    ),
    Case(
        "incident-moved-to-another-system-in-the-same-write", AII, "UPDATE", incident(),
        incident({APPROVE: "go", REQ: MALLORY}, of="mallorys"), MALLORY, raw=rules(VERB), webhook=rules(VERB),
    ),
    Case(
        "acknowledge-with-a-spoofed-requested-by", AII, "UPDATE", incident(), incident({ACK: "x", REQ: ALICE}), BOB,
        raw=rules(REQUESTED_BY), webhook=rules(),
    ),
    Case(
        "incident-requested-by-changed-alone", AII, "UPDATE", incident({ACK: "x", REQ: BOB}),
        incident({ACK: "x", REQ: ALICE}), BOB, raw=rules(IDENTITY), webhook=rules(),
    ),
    Case("incident-opened-by-the-operator", AII, "CREATE", None, incident(), OPERATOR),
    Case(
        "incident-created-acknowledged-by-a-stranger", AII, "CREATE", None, incident({ACK: "x", REQ: MALLORY}),
        MALLORY, raw=rules(VERB), webhook=rules(VERB),
    ),
    # --- ContainmentPolicy ------------------------------------------------------------------
    Case(
        "policy-responders-edited-by-a-non-admin", CPOL, "UPDATE", policy(POLICIES["llm-chatbot"]),
        policy(POLICIES["mallorys"]), MALLORY, raw=rules(PLAN), webhook=rules(PLAN),
        says=(
            "may not change spec.responders of ContainmentPolicy llm-chatbot",
            "allowed: group airlock-admins, group system:masters, group platform (configure)",
        ),
    ),
    Case(
        "policy-responders-edited-by-an-admin", CPOL, "UPDATE", policy(POLICIES["llm-chatbot"]),
        policy(POLICIES["mallorys"]), DANA, groups=("airlock-admins",),
    ),
    Case(
        "policy-responders-edited-by-the-operator", CPOL, "UPDATE", policy(POLICIES["llm-chatbot"]),
        policy([]), OPERATOR,
    ),
    Case(
        "policy-description-edited", CPOL, "UPDATE", policy(POLICIES["llm-chatbot"]),
        policy(POLICIES["llm-chatbot"], description="new"), MALLORY, raw=rules(PLAN), webhook=rules(PLAN),
    ),
    Case(
        "policy-threshold-raised-by-a-stranger", CPOL, "UPDATE", policy(POLICIES["llm-chatbot"]),
        policy(POLICIES["llm-chatbot"], monitors=[BLIND_MONITOR]), MALLORY, raw=rules(PLAN), webhook=rules(PLAN),
        says=(f"{MALLORY} may not change spec.monitors of ContainmentPolicy llm-chatbot",),
    ),
    Case(
        "policy-changed-by-its-configure-responder", CPOL, "UPDATE", policy(POLICIES["llm-chatbot"]),
        policy(POLICIES["llm-chatbot"], monitors=[BLIND_MONITOR]), PAT, groups=("platform",),
    ),
    Case(
        "policy-created-by-anyone", CPOL, "CREATE", None, policy(POLICIES["mallorys"]), MALLORY,
        raw=rules(PLAN), webhook=rules(PLAN), says=("allowed: group airlock-admins",),
    ),
    Case(
        "policy-created-by-a-configure-responder", CPOL, "CREATE", None, policy(POLICIES["llm-chatbot"], name="new"),
        PAT, groups=("platform",), raw=rules(PLAN), webhook=rules(PLAN),
    ),
    Case("policy-created-by-an-admin", CPOL, "CREATE", None, policy([]), DANA, groups=("airlock-admins",)),
    Case(
        "policy-deleted-by-a-stranger", CPOL, "DELETE", policy(POLICIES["llm-chatbot"]), None, MALLORY,
        raw=rules(PLAN), webhook=rules(PLAN), says=(f"{MALLORY} may not delete ContainmentPolicy llm-chatbot", "group platform (configure)"),
    ),
    Case(
        "policy-deleted-by-its-configure-responder", CPOL, "DELETE", policy(POLICIES["llm-chatbot"]), None, PAT,
        groups=("platform",),
    ),
]

# fmt: on

IDS = [case.id for case in CASES]
assert len(IDS) == len(set(IDS)), "case ids are unique"
