"""The authority protocol (SPEC §4, §7): who may shut down, release, drill, acknowledge, approve, configure.

One pure function decides for every path — the admission webhook, the
sandbox's admission hook, the CEL policy's test corpus and the operator's own
re-check — so they cannot drift: :func:`authorize` for one verb, :func:`admit`
for a whole write as the API server sees it, :func:`mutate` for the identity
annotations a write must carry.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from airlock.api import admission as admission_manifests
from airlock.api import annotations as keys
from airlock.api.common import Verb
from airlock.api.matrix import Responder, SubjectKind
from airlock.domain import plan


@dataclass(frozen=True)
class Caller:
    """An authenticated identity as the API server reports it (``request.userInfo``)."""

    username: str
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str
    responder: str | None = None


def holders(responders: Iterable[Responder], verb: Verb) -> list[str]:
    """Human list of who may do ``verb``, for refusals and the runbook."""
    out: list[str] = []
    for responder in responders:
        if verb not in responder.may:
            continue
        for subject in responder.subjects:
            if subject.kind is SubjectKind.GROUP:
                out.append(f"group {subject.name}")
            elif subject.kind is SubjectKind.SERVICE_ACCOUNT:
                out.append(f"serviceaccount {subject.namespace}/{subject.name}")
            else:
                out.append(f"user {subject.name}")
    return out


def authorize(caller: Caller | None, verb: Verb, responders: Sequence[Responder]) -> Verdict:
    """Allow ``caller`` to ``verb`` only if a responder that ``may`` do it lists them."""
    if caller is None or not caller.username:
        return Verdict(False, f"{verb.value}: the request carries no identity (airlock.dev/requested-by missing)")
    for responder in responders:
        if verb not in responder.may:
            continue
        for subject in responder.subjects:
            if subject.kind is SubjectKind.GROUP:
                if subject.name in caller.groups:
                    return Verdict(
                        True, f"{caller.username} is in group {subject.name} ({responder.name})", responder.name
                    )
            elif subject.username() == caller.username:
                return Verdict(True, f"{caller.username} is a {responder.name} responder", responder.name)
    who = ", ".join(holders(responders, verb)) or "nobody (no responder has this verb)"
    return Verdict(False, f"{caller.username} may not {verb.value}; allowed: {who}")


# ---------------------------------------------------------------- admission
#
# Kubernetes RBAC cannot restrict single annotation keys, so the API server asks
# airlock (a webhook) or evaluates airlock's CEL (a ValidatingAdmissionPolicy)
# before it stores a change.  What follows decides such a request from the
# request alone plus the responders in force; the Kopf webhook, the sandbox's
# admission hook and the CEL policy's test corpus all call it.


class Kind(StrEnum):
    """The kinds whose writes are guarded."""

    AISYSTEM = "AISystem"
    AIINCIDENT = "AIIncident"
    CONTAINMENT_POLICY = "ContainmentPolicy"


# The verb each control annotation needs (SPEC §3–§4).  Setting, changing and
# removing all count: removing airlock.dev/shutdown lifts a shutdown, which is
# shutdown authority too.  airlock.dev/postmortem (it closes the incident) needs
# acknowledge: whoever may acknowledge owns the incident through to its close,
# and closing never touches the workload, which is what approve is kept for.
CONTROL: dict[Kind, dict[str, Verb]] = {
    Kind.AISYSTEM: {keys.SHUTDOWN: Verb.SHUTDOWN, keys.RELEASE: Verb.RELEASE, keys.DRILL: Verb.DRILL},
    Kind.AIINCIDENT: {
        keys.ACKNOWLEDGE: Verb.ACKNOWLEDGE,
        keys.APPROVE: Verb.APPROVE,
        keys.POSTMORTEM: Verb.ACKNOWLEDGE,
        keys.HARM: Verb.REPORT,
        keys.REPORT_SUBMITTED: Verb.REPORT,
    },
    Kind.CONTAINMENT_POLICY: {},
}

DEFAULT_ADMIN_GROUPS = admission_manifests.DEFAULT_ADMIN_GROUPS
DEFAULT_OPERATOR = "system:serviceaccount:airlock-system:airlock"

_GUARDED_OPERATIONS = ("CREATE", "UPDATE")

# The plan (SPEC §7): every field of an AISystem's spec decides when and how its model is
# contained — mode, monitors, severities, target, fallback, policyRef, responders, and
# also params (they fill the queries), notifications and the rest — except these two,
# which only describe it.  A ContainmentPolicy is all plan.
DESCRIPTIVE = admission_manifests.DESCRIPTIVE


@dataclass(frozen=True)
class AdmissionSettings:
    """Who administers authority, and who the operator is (exempt: it is the enforcement itself)."""

    admin_groups: tuple[str, ...] = DEFAULT_ADMIN_GROUPS
    operator: str = DEFAULT_OPERATOR


@dataclass(frozen=True)
class AdmissionRequest:
    """One write as the API server describes it: ``old`` is None on CREATE, ``new`` on DELETE."""

    operation: str
    kind: Kind
    old: Mapping[str, Any] | None
    new: Mapping[str, Any] | None
    caller: Caller


class Rule(StrEnum):
    """Which admission rule a denial comes from (the CEL policy can check some of them only)."""

    IDENTITY = "identity"  # requested-by(-groups) changed without a control annotation
    REQUESTED_BY = "requested-by"  # requested-by does not name the caller
    GROUPS = "groups"  # requested-by-groups claims a group the caller is not in
    VERB = "verb"  # the caller is no responder with the verb
    PLAN = "plan"  # the plan (spec, a ContainmentPolicy) changed by someone neither admin nor configure responder


@dataclass(frozen=True)
class Denial:
    rule: Rule
    message: str


@dataclass(frozen=True)
class AdmissionVerdict:
    reason: str
    denials: tuple[Denial, ...] = ()

    @property
    def allowed(self) -> bool:
        return not self.denials


def annotations_of(body: Mapping[str, Any] | None) -> dict[str, str]:
    meta = (body or {}).get("metadata") or {}
    return dict(meta.get("annotations") or {})


def _spec(body: Mapping[str, Any] | None) -> Mapping[str, Any]:
    spec = (body or {}).get("spec")
    return spec if isinstance(spec, Mapping) else {}


def _changed(watched: Iterable[str], before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    """Keys added, removed or given another value (an empty value is still a value)."""
    return [k for k in watched if (k in before, before.get(k)) != (k in after, after.get(k))]


def control_changes(kind: Kind, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> list[str]:
    """The control annotations this write sets, changes or removes."""
    return _changed(CONTROL[kind], annotations_of(old), annotations_of(new))


def _listmap(raw: Any) -> Any:
    # A list-map keyed by name (as the CRD declares responders, monitors): order is not a change.
    if not isinstance(raw, list):
        return raw
    names = [item.get("name") if isinstance(item, Mapping) else None for item in raw]
    if all(isinstance(n, str) for n in names) and len(set(names)) == len(names):
        return {n: item for n, item in zip(names, raw, strict=True)}
    return raw


def _field_value(spec: Mapping[str, Any], field: str) -> Any:
    value = spec.get(field)
    return _listmap(value) if field in ("responders", "monitors") else value


def plan_changes(kind: Kind, operation: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> list[str]:
    """The parts of the plan this write changes (SPEC §7), as field paths for a refusal.

    An AISystem's spec except its descriptive fields, on UPDATE (a new system has no
    containment to weaken; creating one needs RBAC create, which responders lack).
    A ContainmentPolicy whole: creating, changing (its spec) or deleting one.
    """
    if kind is Kind.AIINCIDENT:
        return []
    if kind is Kind.CONTAINMENT_POLICY and operation in ("CREATE", "DELETE"):
        return ["the whole policy"]
    if operation != "UPDATE" or old is None or new is None:
        return []
    before, after = _spec(old), _spec(new)
    exempt = DESCRIPTIVE if kind is Kind.AISYSTEM else ()
    fields = sorted((set(before) | set(after)) - set(exempt))
    return [f"spec.{f}" for f in fields if _field_value(before, f) != _field_value(after, f)]


def authority_basis(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The object whose responders decide: the stored one if there is one.

    Nobody grants themselves authority in the request that uses it: an UPDATE
    that edits responders and sets a control annotation is judged by the
    responders that were there before.  A CREATE has only the new object.
    """
    return old if old is not None else new


def policy_name(system: Mapping[str, Any] | None) -> str | None:
    """The ContainmentPolicy an AISystem refers to."""
    ref = _spec(system).get("policyRef")
    name = ref.get("name") if isinstance(ref, Mapping) else None
    return name if isinstance(name, str) and name else None


def incident_system(incident: Mapping[str, Any] | None) -> str | None:
    """The AISystem (same namespace) an AIIncident belongs to."""
    name = _spec(incident).get("system")
    return name if isinstance(name, str) and name else None


def inline_responders(body: Mapping[str, Any] | None) -> list[Responder]:
    """The ``spec.responders`` of an AISystem or ContainmentPolicy; a malformed entry grants nothing."""
    raw = _spec(body).get("responders") or []
    found: list[Responder] = []
    for item in raw if isinstance(raw, list) else []:
        try:
            found.append(Responder.model_validate(item))
        except ValidationError:
            continue
    return found


def effective_responders(inline: Sequence[Responder], policy: Sequence[Responder]) -> list[Responder]:
    """An AISystem's responders merged over its policy's, as the operator's plan merges them."""
    return plan.merge_responders(list(policy), list(inline))


def _name(body: Mapping[str, Any] | None) -> str:
    meta = (body or {}).get("metadata") or {}
    return str(meta.get("name") or "")


def _is_admin(caller: Caller, settings: AdmissionSettings) -> bool:
    return any(group in caller.groups for group in settings.admin_groups)


def _identity_denials(caller: Caller, annotations: Mapping[str, str]) -> list[Denial]:
    denials: list[Denial] = []
    requested_by = annotations.get(keys.REQUESTED_BY)
    if requested_by != caller.username:
        found = "is missing" if requested_by is None else f"says {requested_by!r}"
        denials.append(
            Denial(
                Rule.REQUESTED_BY,
                f"{keys.REQUESTED_BY} {found} but the request comes from {caller.username or 'nobody'}: it must "
                "name the caller (the airlock webhook stamps it; without the webhook, set it yourself)",
            )
        )
    claimed = [g for g in annotations.get(keys.REQUESTED_BY_GROUPS, "").split(",") if g]
    foreign = [g for g in claimed if g not in caller.groups]
    if foreign:
        denials.append(
            Denial(
                Rule.GROUPS,
                f"{keys.REQUESTED_BY_GROUPS} claims {', '.join(foreign)}, which {caller.username} is not a member of",
            )
        )
    return denials


def needs_responders(request: AdmissionRequest, settings: AdmissionSettings | None = None) -> bool:
    """Whether :func:`admit` will look at the responders (so the caller need not fetch them otherwise)."""
    if request.operation not in _GUARDED_OPERATIONS and not _guards_delete(request.kind, request.operation):
        return False
    old = request.old if request.operation in ("UPDATE", "DELETE") else None
    if request.operation in _GUARDED_OPERATIONS and control_changes(request.kind, old, request.new):
        return True
    admin = settings is not None and _is_admin(request.caller, settings)
    return not admin and bool(plan_changes(request.kind, request.operation, old, request.new))


def _guards_delete(kind: Kind, operation: str) -> bool:
    # Deleting a ContainmentPolicy disables every system that uses it; deleting an AISystem
    # never releases its model (RBAC delete, which responders lack, decides who may).
    return operation == "DELETE" and kind is Kind.CONTAINMENT_POLICY


def who_may_configure(responders: Sequence[Responder], settings: AdmissionSettings) -> str:
    """``group airlock-admins, group ml-leads (configure)``: admins first, then responders with configure."""
    admins = [f"group {g}" for g in settings.admin_groups]
    configurers = [f"{h} (configure)" for h in holders(responders, Verb.CONFIGURE)]
    return ", ".join(admins + configurers) or "nobody"


def admit(request: AdmissionRequest, responders: Sequence[Responder], settings: AdmissionSettings) -> AdmissionVerdict:
    """Decide one write to an AISystem, AIIncident or ContainmentPolicy (SPEC §4).

    ``responders`` are the ones in force before the request: for an AISystem
    those of :func:`authority_basis` merged over its policy's; for an
    AIIncident those of its system; for a ContainmentPolicy its own (stored)
    ones.  A refusal says who may.
    """
    kind, caller = request.kind, request.caller
    if request.operation not in _GUARDED_OPERATIONS and not _guards_delete(kind, request.operation):
        return AdmissionVerdict(f"{request.operation} is not guarded (RBAC decides)")
    if caller.username and caller.username == settings.operator:
        return AdmissionVerdict("the airlock operator is exempt")
    old = request.old if request.operation in ("UPDATE", "DELETE") else None
    new = request.new
    controls = control_changes(kind, old, new)
    denials: list[Denial] = []
    allowed: list[str] = []

    identity = _changed(keys.IDENTITY, annotations_of(old), annotations_of(new)) if CONTROL[kind] else []
    if identity and not controls:
        denials.append(
            Denial(
                Rule.IDENTITY,
                f"{' and '.join(identity)} record who set a control annotation "
                f"({', '.join(CONTROL[kind])}): they change only together with one",
            )
        )

    fields = plan_changes(kind, request.operation, old, new)
    if fields:
        if _is_admin(caller, settings):
            allowed.append(f"{caller.username} is an admin")
        elif (verdict := authorize(caller, Verb.CONFIGURE, responders)).allowed and request.operation != "CREATE":
            allowed.append(f"changing {', '.join(fields)}: {verdict.reason}")
        else:
            name = _name(new if new is not None else old)
            what = {"CREATE": "create", "DELETE": "delete"}.get(request.operation, f"change {', '.join(fields)} of")
            who = who_may_configure([] if request.operation == "CREATE" else responders, settings)
            denials.append(
                Denial(
                    Rule.PLAN,
                    f"{caller.username or 'nobody'} may not {what} {kind.value} {name} (the plan decides when "
                    f"and how the model is contained); allowed: {who}",
                )
            )

    if controls:
        denials.extend(_identity_denials(caller, annotations_of(new)))
        before, after = annotations_of(old), annotations_of(new)
        for key in controls:
            action = "setting" if key not in before else "removing" if key not in after else "changing"
            verdict = authorize(caller, CONTROL[kind][key], responders)
            if verdict.allowed:
                allowed.append(f"{action} {key}: {verdict.reason}")
            else:
                denials.append(Denial(Rule.VERB, f"{action} {key}: {verdict.reason}"))

    if denials:
        return AdmissionVerdict("; ".join(d.message for d in denials), tuple(denials))
    return AdmissionVerdict("; ".join(allowed) or "nothing that decides authority changed")


def stamp(annotations: Mapping[str, str], caller: Caller) -> dict[str, str]:
    """``annotations`` with who is asking, from the API server's userInfo: a client's value is overwritten."""
    stamped = dict(annotations)
    stamped[keys.REQUESTED_BY] = caller.username
    stamped[keys.REQUESTED_BY_GROUPS] = ",".join(caller.groups)
    return stamped


def mutate(request: AdmissionRequest, settings: AdmissionSettings) -> dict[str, str | None]:
    """The identity annotations to write (None: remove) so they tell the truth about this request.

    A write that changes a control annotation is stamped with the caller; any
    other write gets back the stored identity (or none): requested-by is never
    taken from a client.
    """
    kind, caller = request.kind, request.caller
    if request.operation not in _GUARDED_OPERATIONS or request.new is None or not CONTROL[kind]:
        return {}
    if caller.username and caller.username == settings.operator:
        return {}
    old = request.old if request.operation == "UPDATE" else None
    before, after = annotations_of(old), annotations_of(request.new)
    if control_changes(kind, old, request.new):
        wanted = stamp(after, caller)
    else:
        wanted = dict(after)
        for key in keys.IDENTITY:
            if key in before:
                wanted[key] = before[key]
            else:
                wanted.pop(key, None)
    return {key: wanted.get(key) for key in _changed(keys.IDENTITY, after, wanted)}


def with_annotations(body: Mapping[str, Any], changes: Mapping[str, str | None]) -> dict[str, Any]:
    """A copy of ``body`` with annotation ``changes`` applied (None removes a key)."""
    result = copy.deepcopy(dict(body))
    metadata = result.setdefault("metadata", {})
    annotations = dict(metadata.get("annotations") or {})
    for key, value in changes.items():
        if value is None:
            annotations.pop(key, None)
        else:
            annotations[key] = value
    metadata["annotations"] = annotations
    return result
