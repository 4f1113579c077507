"""The admission manifests of SPEC §4 and §7, generated from the API: the CEL policies and the webhooks.

Kubernetes RBAC cannot restrict single annotation keys or spec fields, so who may
set a control annotation and who may change the plan is decided at admission.
Two forms ship under ``policies/admission/`` (and, identical, in the Helm chart):

* ``validating-admission-policy.yaml`` — ValidatingAdmissionPolicies (CEL in the
  API server, no operator needed);
* ``webhook.yaml`` — the operator's mutating (stamps ``airlock.dev/requested-by``)
  and validating webhooks, scoped by ``matchConditions`` to exactly the writes the
  CEL policies judge, so an operator outage blocks nothing else.

They are generated here, from the same lists the operator's pure decision uses
(:mod:`airlock.domain.authority` judges the same writes; ``tests/admission``
holds the two to one corpus), so a field added to the AISystem spec is part of the
protected plan the moment it exists.  ``make crds`` writes them and ``make
crds-check`` fails on drift.

Pure text generation: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from airlock.api import annotations as keys
from airlock.api.aisystem import AISystemSpec
from airlock.api.common import GROUP, VERSION

# Who administers the plan: the platform team's group (GitOps controllers belong in it) and
# the cluster's superusers (system:masters bypasses authorization and can remove these
# admission manifests anyway: refusing it would protect nothing and break bootstrap).
DEFAULT_ADMIN_GROUPS = ("airlock-admins", "system:masters")
DEFAULT_OPERATOR = "system:serviceaccount:airlock-system:airlock"

# The fields of an AISystem's spec that only describe it; every other field is the plan (SPEC §7).
DESCRIPTIVE = ("description", "owner")

SYSTEM_VERBS = {keys.SHUTDOWN: "shutdown", keys.RELEASE: "release", keys.DRILL: "drill"}
INCIDENT_CONTROL = keys.INCIDENT_CONTROL


def plan_fields() -> list[str]:
    """The AISystem spec fields (wire names) that make up the plan, in the model's order."""
    names = [field.alias or name for name, field in AISystemSpec.model_fields.items()]
    return [name for name in names if name not in DESCRIPTIVE]


# ----------------------------------------------------------------- CEL pieces


def _quoted(items: Iterable[str]) -> str:
    return "[" + ", ".join(f"'{item}'" for item in items) + "]"


def _annotation(obj: str, key: str, *, old: bool) -> str:
    """``[value]`` or ``[]``: an annotation as a list, so present-but-empty differs from absent."""
    guard = "request.operation == 'UPDATE' && " if old else ""
    return (
        f"({guard}has({obj}.metadata.annotations) && {key} in {obj}.metadata.annotations\n"
        f"    ? [{obj}.metadata.annotations[{key}]] : [])"
    )


def _changed_annotations(annotation_keys: Sequence[str], *, verb: str) -> str:
    """``keys.filter(k, new(k) != old(k))`` (or ``exists`` with ``verb='exists'``)."""
    return (
        f"{_quoted(annotation_keys)}.{verb}(k,\n"
        f"  {_annotation('object', 'k', old=False)}\n"
        f"  != {_annotation('oldObject', 'k', old=True)})"
    )


def _field(obj: str, name: str) -> str:
    return f"(has({obj}.spec.{name}) ? [{obj}.spec.{name}] : [])"


def _plan_changed() -> str:
    """The list of ``spec.X`` paths an UPDATE changes (list concatenation: CEL objects are typed)."""
    terms = [
        f"({_field('object', name)} != {_field('oldObject', name)} ? ['spec.{name}'] : [])" for name in plan_fields()
    ]
    return "request.operation != 'UPDATE' ? [] : (\n  " + "\n  + ".join(terms) + ")"


def _subjects(responder: str) -> str:
    """A responder's subjects as ``group x, user y, serviceaccount ns/z``."""
    return (
        f"{responder}.subjects.map(s, s.kind == 'Group' ? 'group ' + s.name\n"
        "    : (s.kind == 'ServiceAccount' ? 'serviceaccount ' + (has(s.__namespace__) ? s.__namespace__ : '') + '/' + s.name\n"
        "    : 'user ' + s.name)).join(', ')"
    )


def _lists_caller(responder: str) -> str:
    return (
        f"{responder}.subjects.exists(s,\n"
        "  (s.kind == 'User' && s.name == request.userInfo.username)\n"
        "  || (s.kind == 'Group' && s.name in request.userInfo.groups)\n"
        "  || (s.kind == 'ServiceAccount' && has(s.__namespace__)\n"
        "      && 'system:serviceaccount:' + s.__namespace__ + ':' + s.name == request.userInfo.username))"
    )


def _indent(text: str, spaces: int) -> str:
    pad = " " * spaces
    return "\n".join(pad + line if line else line for line in text.splitlines())


def _expr(key: str, text: str, indent: int) -> str:
    """``key: >-`` with the expression folded below it (YAML folds single newlines into spaces)."""
    # A folded scalar turns single newlines into spaces; more-indented lines keep theirs, which is harmless in CEL.
    inner = indent + (4 if key.startswith("- ") else 2)
    return f"{' ' * indent}{key}: >-\n{_indent(text, inner)}"


def _variable(name: str, text: str, comment: str | None = None) -> str:
    lines = []
    if comment:
        lines.append(f"    # {comment}")
    lines.append(f"    - name: {name}")
    lines.append(_expr("expression", text, 6))
    return "\n".join(lines)


def _validation(expression: str, message: str, *, reason: str = "Forbidden", comment: str | None = None) -> str:
    lines = []
    if comment:
        lines.append(f"    # {comment}")
    lines.append(_expr("- expression", expression, 4))
    lines.append(f"      reason: {reason}")
    lines.append(_expr("messageExpression", message, 6))
    return "\n".join(lines)


def _condition(name: str, text: str, indent: int = 4) -> str:
    return f"{' ' * indent}- name: {name}\n" + _expr("expression", text, indent + 2)


def _admin_groups() -> str:
    # One quoted line, exactly as the Helm chart replaces it with the adminGroups value.
    return f'    - name: adminGroups\n      expression: "{_quoted(DEFAULT_ADMIN_GROUPS)}"'


NOT_THE_OPERATOR = f"request.userInfo.username != '{DEFAULT_OPERATOR}'"


def _system_relevant() -> str:
    """A write the AISystem rules judge: a control or identity annotation, or the plan (UPDATE)."""
    annotations = _changed_annotations([*SYSTEM_VERBS, *keys.IDENTITY], verb="exists")
    return f"{annotations}\n|| size({_plan_changed()}) > 0"


def _basis() -> str:
    return "request.operation == 'UPDATE' ? oldObject : object"


# --------------------------------------------------------------- the policies


def _system_variables(*, with_params: bool) -> list[str]:
    out = [
        _admin_groups(),
        _variable(
            "changed",
            _changed_annotations(list(SYSTEM_VERBS), verb="filter"),
            "The control annotations this write sets, changes or removes.",
        ),
        _variable("plan", _plan_changed(), "The parts of the plan (spec, except description and owner) it changes."),
        _variable(
            "basis",
            _basis(),
            "Nobody grants themselves authority in the write that uses it: the stored object's responders decide.",
        ),
        _variable("viaPolicy", "has(variables.basis.spec.policyRef)"),
        _variable("inline", "has(variables.basis.spec.responders) ? variables.basis.spec.responders : []"),
        _variable(
            "mine",
            f"variables.inline.filter(r, {_lists_caller('r')})",
            "The system's own responders that list the caller (a ServiceAccount is system:serviceaccount:NS:NAME).",
        ),
        _variable("admin", "request.userInfo.groups.exists(g, g in variables.adminGroups)"),
        _variable("verbs", "{" + ", ".join(f"'{k}': '{v}'" for k, v in SYSTEM_VERBS.items()) + "}"),
    ]
    if with_params:
        out += [
            _variable(
                "ours",
                "variables.viaPolicy && params.metadata.name == variables.basis.spec.policyRef.name",
                "Every ContainmentPolicy is a param; only the one the system refers to decides.",
            ),
            _variable(
                "fromPolicy",
                "has(params.spec.responders) ? params.spec.responders.filter(r,\n"
                "  !variables.inline.exists(i, i.name == r.name)) : []",
                "The policy's responders the system does not replace by name (as the operator merges them).",
            ),
            _variable("minePolicy", f"variables.fromPolicy.filter(r, {_lists_caller('r')})"),
            _variable(
                "denied",
                "variables.changed.filter(k, !variables.mine.exists(r, variables.verbs[k] in r.may)\n"
                "  && !variables.minePolicy.exists(r, variables.verbs[k] in r.may))",
            ),
            _variable(
                "configures",
                "variables.admin || variables.mine.exists(r, 'configure' in r.may)\n"
                "|| variables.minePolicy.exists(r, 'configure' in r.may)",
            ),
            _variable("who", _who_merged("variables.verbs[variables.denied[0]]")),
            _variable("whoConfigures", _who_configures(merged=True)),
        ]
    else:
        out += [
            _variable("denied", "variables.changed.filter(k, !variables.mine.exists(r, variables.verbs[k] in r.may))"),
            _variable("configures", "variables.admin || variables.mine.exists(r, 'configure' in r.may)"),
            _variable("who", _who_inline("variables.verbs[variables.denied[0]]")),
            _variable("whoConfigures", _who_configures(merged=False)),
        ]
    return out


def _who_inline(verb: str) -> str:
    return f"variables.inline.filter(r, {verb} in r.may).map(r, {_subjects('r')})"


def _who_merged(verb: str) -> str:
    return (
        f"variables.inline.filter(r, {verb} in r.may).map(r, {_subjects('r')})\n"
        f"+ variables.fromPolicy.filter(r, {verb} in r.may).map(r, {_subjects('r')})"
    )


def _who_configures(*, merged: bool) -> str:
    parts = [
        "variables.adminGroups.map(g, 'group ' + g)",
        f"variables.inline.filter(r, 'configure' in r.may).map(r, {_subjects('r')} + ' (configure)')",
    ]
    if merged:
        parts.append(f"variables.fromPolicy.filter(r, 'configure' in r.may).map(r, {_subjects('r')} + ' (configure)')")
    return "\n+ ".join(parts)


def _joined(variable: str) -> str:
    return f"(size({variable}) > 0 ? {variable}.join(', ') : 'nobody')"


VERB_MESSAGE = (
    "'setting, changing or removing ' + variables.denied[0] + ': ' + request.userInfo.username\n"
    "+ ' may not ' + variables.verbs[variables.denied[0]] + ' AISystem ' + object.metadata.name\n"
    "+ '; allowed: ' + " + _joined("variables.who")
)
PLAN_MESSAGE = (
    "request.userInfo.username + ' may not change ' + variables.plan.join(', ') + ' of AISystem '\n"
    "+ object.metadata.name + ' (the plan decides when and how the model is contained); allowed: '\n"
    "+ " + _joined("variables.whoConfigures")
)


def _identity_validations(control: Sequence[str]) -> list[str]:
    listed = ", ".join(control)
    return [
        _validation(
            "size(variables.changed) > 0 || !variables.identityChanged",
            "'airlock.dev/requested-by and airlock.dev/requested-by-groups record who set a control annotation "
            f"({listed}): they change only together with one'",
        ),
        _validation(
            "size(variables.changed) == 0 || variables.requestedBy == [request.userInfo.username]",
            "'airlock.dev/requested-by must name the caller (' + request.userInfo.username + ') when '\n"
            "+ variables.changed[0] + ' changes'",
        ),
        _validation(
            "size(variables.changed) == 0\n|| variables.claimedGroups.all(g, g == '' || g in request.userInfo.groups)",
            "'airlock.dev/requested-by-groups claims '\n"
            "+ variables.claimedGroups.filter(g, g != '' && !(g in request.userInfo.groups))[0]\n"
            "+ ', which ' + request.userInfo.username + ' is not a member of'",
        ),
    ]


def _identity_variables() -> list[str]:
    return [
        _variable("identityChanged", _changed_annotations(list(keys.IDENTITY), verb="exists")),
        _variable(
            "requestedBy",
            "has(object.metadata.annotations) && 'airlock.dev/requested-by' in object.metadata.annotations\n"
            "  ? [object.metadata.annotations['airlock.dev/requested-by']] : []",
        ),
        _variable(
            "claimedGroups",
            "has(object.metadata.annotations) && 'airlock.dev/requested-by-groups' in object.metadata.annotations\n"
            "  ? object.metadata.annotations['airlock.dev/requested-by-groups'].split(',') : []",
        ),
    ]


def _policy_document(
    name: str,
    *,
    resources: str,
    operations: Sequence[str],
    conditions: Sequence[str],
    variables: Sequence[str],
    validations: Sequence[str],
    params: bool = False,
) -> str:
    lines = [
        "apiVersion: admissionregistration.k8s.io/v1",
        "kind: ValidatingAdmissionPolicy",
        "metadata:",
        f"  name: {name}",
        "  labels: {app.kubernetes.io/name: airlock, app.kubernetes.io/component: admission}",
        "spec:",
        "  failurePolicy: Fail",
    ]
    if params:
        lines.append(f"  paramKind: {{apiVersion: {GROUP}/{VERSION}, kind: ContainmentPolicy}}")
    lines += [
        "  matchConstraints:",
        "    resourceRules:",
        f'      - {{apiGroups: [{GROUP}], apiVersions: ["*"], operations: [{", ".join(operations)}], resources: [{resources}]}}',
        "  matchConditions:",
        *conditions,
        "  variables:",
        *variables,
        "  validations:",
        *validations,
        "---",
        "apiVersion: admissionregistration.k8s.io/v1",
        "kind: ValidatingAdmissionPolicyBinding",
        "metadata:",
        f"  name: {name}",
        "  labels: {app.kubernetes.io/name: airlock, app.kubernetes.io/component: admission}",
        "spec:",
        f"  policyName: {name}",
        "  validationActions: [Deny]",
    ]
    if params:
        lines += [
            "  # Every ContainmentPolicy is evaluated as a param (only the system's own decides);",
            "  # with none at all there is nothing a policy could grant: the first policy covers the rest.",
            "  paramRef: {selector: {}, parameterNotFoundAction: Allow}",
        ]
    return "\n".join(lines)


VAP_HEADER = f"""\
# generated by `make crds` from operator/airlock/api/admission.py — do not edit
#
# airlock's authority rules (SPEC §4, §7) as ValidatingAdmissionPolicies: CEL in the API
# server, no operator needed — for clusters that prefer no webhook, or as a second line
# behind it (Kubernetes >= 1.30, admissionregistration.k8s.io/v1).
#
# Who may do what:
#   - control annotations on an AISystem (airlock.dev/shutdown, /release, /drill — setting,
#     changing or removing them: lifting a shutdown is acting) only a subject of the system's
#     responders with that verb; the responders of its ContainmentPolicy count too (the policy
#     is read as a param: airlock-aisystem-policy-authority);
#   - the plan — an AISystem's spec except description and owner (mode, monitors, severities,
#     target, fallback, policyRef, responders, params, notifications, ...) and any
#     ContainmentPolicy (create, change, delete) — only the admin group(s) (GitOps controllers
#     belong there) or a responder with the verb `configure`;
#   - the stored object's responders decide: nobody grants themselves authority in the write
#     that uses it, and a new ContainmentPolicy is the admins' alone.
#
# Without the mutating webhook nobody stamps airlock.dev/requested-by, so the client sets it
# in the same write: it must equal the caller's username, and airlock.dev/requested-by-groups
# (comma-separated, optional) may only name the caller's real groups, e.g.
#   kubectl annotate ais chatbot airlock.dev/shutdown="pii leak" \\
#     airlock.dev/requested-by="$(kubectl auth whoami -o jsonpath='{{.status.userInfo.username}}')"
#
# What CEL cannot see, and who covers it: an AIIncident's AISystem (an incident write cannot
# read its system): the incident rules check requested-by only; the verbs (acknowledge,
# approve; postmortem needs acknowledge; harm and report-submitted need report) are enforced
# by the webhook and re-checked by the operator before it acts.  A system whose policyRef names
# a ContainmentPolicy that does not exist has no param to judge it by: the webhook refuses
# there, the operator treats such a system as Invalid (it acts on nothing) and judges every
# control annotation again once the policy exists.
#
# Placeholders to adapt (the Helm chart renders them): the admin groups {", ".join(DEFAULT_ADMIN_GROUPS)}
# (variables.adminGroups) and the operator's username {DEFAULT_OPERATOR}
# (exempt: matchConditions).  Only writes that change a control annotation, requested-by, or
# the plan are evaluated at all.
"""


def validating_admission_policies() -> str:
    """``policies/admission/validating-admission-policy.yaml``."""
    system_conditions = [
        _condition("not-the-operator", NOT_THE_OPERATOR),
        _condition("authority-or-plan-changed", _system_relevant()),
    ]
    system = _policy_document(
        "airlock-aisystem-authority",
        resources="aisystems",
        operations=["CREATE", "UPDATE"],
        conditions=system_conditions,
        variables=[*_system_variables(with_params=False), *_identity_variables()],
        validations=[
            *_identity_validations(list(SYSTEM_VERBS)),
            _validation(
                "variables.viaPolicy || size(variables.denied) == 0",
                VERB_MESSAGE,
                comment="A system with a policyRef is judged with its policy's responders below.",
            ),
            _validation("variables.viaPolicy || size(variables.plan) == 0 || variables.configures", PLAN_MESSAGE),
        ],
    )
    with_policy = _policy_document(
        "airlock-aisystem-policy-authority",
        resources="aisystems",
        operations=["CREATE", "UPDATE"],
        conditions=[
            *system_conditions,
            _condition(
                "has-a-policy",
                "request.operation == 'UPDATE' ? has(oldObject.spec.policyRef) : has(object.spec.policyRef)",
            ),
        ],
        variables=_system_variables(with_params=True),
        validations=[
            _validation("!variables.ours || size(variables.denied) == 0", VERB_MESSAGE),
            _validation("!variables.ours || size(variables.plan) == 0 || variables.configures", PLAN_MESSAGE),
        ],
        params=True,
    )
    incident = _policy_document(
        "airlock-aiincident-authority",
        resources="aiincidents",
        operations=["CREATE", "UPDATE"],
        conditions=[
            _condition("not-the-operator", NOT_THE_OPERATOR),
            _condition(
                "control-or-identity-changed",
                _changed_annotations([*INCIDENT_CONTROL, *keys.IDENTITY], verb="exists"),
            ),
        ],
        variables=[
            _variable("changed", _changed_annotations(list(INCIDENT_CONTROL), verb="filter")),
            *_identity_variables(),
        ],
        validations=[
            "    # No verb rule: the responders are the AISystem's, which CEL cannot read from an incident write.",
            *_identity_validations(list(INCIDENT_CONTROL)),
        ],
    )
    containment_policy = _policy_document(
        "airlock-containmentpolicy-authority",
        resources="containmentpolicies",
        operations=["CREATE", "UPDATE", "DELETE"],
        conditions=[
            _condition("not-the-operator", NOT_THE_OPERATOR),
            _condition("policy-changed", _policy_changed()),
        ],
        variables=[
            _admin_groups(),
            _variable("admin", "request.userInfo.groups.exists(g, g in variables.adminGroups)"),
            _variable(
                "stored",
                "request.operation != 'CREATE' && has(oldObject.spec.responders) ? oldObject.spec.responders : []",
                "A policy's own stored responders decide; a new policy has none (admins only).",
            ),
            _variable("mine", f"variables.stored.filter(r, {_lists_caller('r')})"),
            _variable(
                "whoConfigures",
                "variables.adminGroups.map(g, 'group ' + g)\n"
                f"+ variables.stored.filter(r, 'configure' in r.may).map(r, {_subjects('r')} + ' (configure)')",
            ),
        ],
        validations=[
            _validation(
                "variables.admin || variables.mine.exists(r, 'configure' in r.may)",
                "request.userInfo.username + ' may not ' + (request.operation == 'CREATE' ? 'create'\n"
                "  : request.operation == 'DELETE' ? 'delete' : 'change') + ' ContainmentPolicy '\n"
                "+ (request.operation == 'DELETE' ? oldObject.metadata.name : object.metadata.name)\n"
                "+ ' (the plan decides when and how models are contained); allowed: '\n"
                "+ " + _joined("variables.whoConfigures"),
            ),
        ],
    )
    documents = [system, with_policy, incident, containment_policy]
    return VAP_HEADER + "\n---\n".join(documents) + "\n"


def _policy_changed() -> str:
    return "request.operation != 'UPDATE' || object.spec != oldObject.spec"


# ----------------------------------------------------------------- the webhooks

WEBHOOK_HEADER = f"""\
# generated by `make crds` from operator/airlock/api/admission.py — do not edit
#
# airlock's admission webhooks (SPEC §4, §7): served by `airlock run --webhook-port 9443`.
#
# Kubernetes RBAC cannot restrict single annotation keys or spec fields, so the API server
# asks the operator before it stores:
#   - a change (set, new value, removal) of a control annotation: on an AISystem
#     airlock.dev/shutdown, /release, /drill; on an AIIncident airlock.dev/acknowledge,
#     /approve, /postmortem, /harm, /report-submitted — allowed only to a subject of the
#     responders in force with the matching verb (postmortem: acknowledge; harm and
#     report-submitted: report);
#   - a change of the plan: an AISystem's spec except description and owner, and any
#     ContainmentPolicy (create, change, delete) — allowed only to the admin group
#     (`airlock run --admin-group`, default {" and ".join(DEFAULT_ADMIN_GROUPS)}) or a responder with `configure`.
# The mutating webhook stamps airlock.dev/requested-by and airlock.dev/requested-by-groups
# from the request's userInfo whenever a control annotation changes; a client's value is
# overwritten, and an edit of those two on their own is undone.
#
# Scope: the matchConditions send the API server here ONLY for writes that change one of
# those annotations or the plan. failurePolicy is Fail for them (an operator outage blocks
# exactly those writes: fail closed), and every other write — status, labels, other kinds —
# never depends on the operator being up. The operator's own identity is not sent here at
# all (it is the enforcement itself, and must never wait for its own webhook).
#
# Placeholders to adapt (the Helm chart renders them):
#   - service airlock-webhook.airlock-system (port 443 -> the operator's --webhook-port);
#   - caBundle: the CA of the serving certificate (`--webhook-ca-dump`, or cert-manager's
#     cainjector with the annotation below);
#   - the operator's username {DEFAULT_OPERATOR}.
# The paths are the Kopf handler ids in airlock/handlers/admission.py.
"""


def _webhook(
    name: str,
    path: str,
    resources: str,
    operations: Sequence[str],
    scope: str,
    condition: tuple[str, str],
    *,
    mutating: bool,
) -> str:
    lines = [
        f"  - name: {name}",
        "    admissionReviewVersions: [v1]",
        "    sideEffects: None",
        "    failurePolicy: Fail",
        "    matchPolicy: Equivalent",
    ]
    if mutating:
        lines.append("    reinvocationPolicy: IfNeeded")
    lines += [
        "    timeoutSeconds: 10",
        "    clientConfig:",
        f"      service: {{namespace: airlock-system, name: airlock-webhook, path: {path}, port: 443}}",
        "    rules:",
        f"      - {{apiGroups: [{GROUP}], apiVersions: [{VERSION}], operations: [{', '.join(operations)}], "
        f"resources: [{resources}], scope: {scope}}}",
        "    matchConditions:",
        _condition("not-the-operator", NOT_THE_OPERATOR, 6),
        _condition(condition[0], condition[1], 6),
    ]
    return "\n".join(lines)


def _configuration(kind: str, name: str, hooks: Sequence[str]) -> str:
    return "\n".join(
        [
            "apiVersion: admissionregistration.k8s.io/v1",
            f"kind: {kind}",
            "metadata:",
            f"  name: {name}",
            "  labels: {app.kubernetes.io/name: airlock, app.kubernetes.io/component: admission}",
            "  annotations:",
            "    cert-manager.io/inject-ca-from: airlock-system/airlock-webhook",
            "webhooks:",
            *hooks,
        ]
    )


def webhooks() -> str:
    """``policies/admission/webhook.yaml``."""
    system_annotations = (
        "control-or-identity-annotation-changed",
        _changed_annotations([*SYSTEM_VERBS, *keys.IDENTITY], verb="exists"),
    )
    incident_annotations = (
        "control-or-identity-annotation-changed",
        _changed_annotations([*INCIDENT_CONTROL, *keys.IDENTITY], verb="exists"),
    )
    mutating = _configuration(
        "MutatingWebhookConfiguration",
        "airlock-requested-by",
        [
            _webhook(
                "aisystems.requested-by.airlock.dev",
                "/stamp-aisystem",
                "aisystems",
                ["CREATE", "UPDATE"],
                "Namespaced",
                system_annotations,
                mutating=True,
            ),
            _webhook(
                "aiincidents.requested-by.airlock.dev",
                "/stamp-aiincident",
                "aiincidents",
                ["CREATE", "UPDATE"],
                "Namespaced",
                incident_annotations,
                mutating=True,
            ),
        ],
    )
    validating = _configuration(
        "ValidatingWebhookConfiguration",
        "airlock-authority",
        [
            _webhook(
                "aisystems.authority.airlock.dev",
                "/validate-aisystem",
                "aisystems",
                ["CREATE", "UPDATE"],
                "Namespaced",
                ("authority-or-plan-changed", _system_relevant()),
                mutating=False,
            ),
            _webhook(
                "aiincidents.authority.airlock.dev",
                "/validate-aiincident",
                "aiincidents",
                ["CREATE", "UPDATE"],
                "Namespaced",
                incident_annotations,
                mutating=False,
            ),
            _webhook(
                "containmentpolicies.authority.airlock.dev",
                "/validate-containmentpolicy",
                "containmentpolicies",
                ["CREATE", "UPDATE", "DELETE"],
                "Cluster",
                ("policy-changed", _policy_changed()),
                mutating=False,
            ),
        ],
    )
    return WEBHOOK_HEADER + mutating + "\n---\n" + validating + "\n"


FILES = {
    "validating-admission-policy.yaml": validating_admission_policies,
    "webhook.yaml": webhooks,
}
