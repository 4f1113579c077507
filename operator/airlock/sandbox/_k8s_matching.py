"""What admission is told about a write, and which policies and webhooks it concerns.

The API server hands every admission step the same description of a request (the
``admission.Attributes`` of ``k8s.io/apiserver``): operation, resource, names, the new and
old object, the caller, dry-run. :class:`Attributes` is that description here.

Both ValidatingAdmissionPolicies and webhook configurations then decide whether a write
concerns them with the same predicates (``k8s.io/apiserver/.../webhook/predicates``):
resource rules (groups, versions, resources and subresources, operations, scope, resource
names), ``matchPolicy: Equivalent`` (a rule for one version also catches the same resource
served under another), ``namespaceSelector`` and ``objectSelector``. They are implemented
once, here, together with the ``request`` object CEL expressions see.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from airlock.sandbox import _k8s_cel as cel
from airlock.sandbox import _k8s_errors as errors
from airlock.sandbox._k8s_identity import UserInfo
from airlock.sandbox._k8s_objects import JSONObject
from airlock.sandbox._k8s_selectors import LabelSelector, Requirement

# The admission configuration itself is never subject to policies or webhooks (it could lock
# everyone out); the API server exempts these kinds.
EXEMPT_GROUP = "admissionregistration.k8s.io"
EXEMPT_KINDS = frozenset(
    {
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "MutatingAdmissionPolicy",
        "MutatingAdmissionPolicyBinding",
    }
)
_OPTIONS_KIND = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions", "DELETE": "DeleteOptions"}


@dataclass(frozen=True)
class ResourceRef:
    """What an admission hook is told about the resource being written."""

    group: str
    version: str
    resource: str
    subresource: str
    kind: str
    namespace: str | None
    name: str

    def __str__(self) -> str:
        qualified = f"{self.resource}.{self.group}" if self.group else self.resource
        return f"{qualified}/{self.subresource}" if self.subresource else qualified

    @property
    def qualified(self) -> str:
        return f"{self.resource}.{self.group}" if self.group else self.resource


@dataclass(frozen=True)
class Equivalent:
    """The same resource served under another version (``matchPolicy: Equivalent``)."""

    group: str
    version: str
    resource: str
    kind: str


class WriteCache:
    """What one write's admission computes once and reuses across policies, params and webhooks.

    The CEL inputs (``object``, ``oldObject``, ``request``) per object version and matched
    resource, and the result of each match condition that does not read ``params``: the
    shipped policies and webhooks share their conditions' text, and a policy with params
    would otherwise evaluate the same condition once per param.
    """

    # The variable, not a field that happens to be called so (object.spec.params).
    _PARAMS = re.compile(r"(?<![.\w])params\b")

    def __init__(self) -> None:
        self._inputs: dict[tuple[int, int, Match], dict[str, Any]] = {}
        self._conditions: dict[tuple[str, int, int, Match], bool | str] = {}
        self._pinned: list[Any] = []  # the objects keyed by id() stay alive, so no id is reused

    def inputs(self, attributes: Attributes, match: Match) -> dict[str, Any]:
        key = (id(attributes.obj), id(attributes.old), match)
        if key not in self._inputs:
            self._pinned.append((attributes.obj, attributes.old))
            self._inputs[key] = {
                "object": cel.to_cel(view(attributes.obj, match)),
                "oldObject": cel.to_cel(view(attributes.old, match)),
                "request": cel.to_cel(request_object(attributes, match), escaped=False),
            }
        return self._inputs[key]

    def condition(
        self, program: cel.Program, attributes: Attributes, match: Match, activation: Mapping[str, Any]
    ) -> bool:
        """``program.evaluate_bool(activation)``, remembered unless it reads params; CelError as it would raise."""
        if self._PARAMS.search(program.source):
            return program.evaluate_bool(activation)
        key = (program.source, id(attributes.obj), id(attributes.old), match)
        if key not in self._conditions:
            self._pinned.append((attributes.obj, attributes.old))
            try:
                self._conditions[key] = program.evaluate_bool(activation)
            except cel.CelError as error:
                self._conditions[key] = error.message
        found = self._conditions[key]
        if isinstance(found, str):
            raise cel.CelError(found)
        return found


@dataclass(frozen=True)
class Attributes:
    """One write as every admission step sees it."""

    operation: str  # CREATE, UPDATE, DELETE
    ref: ResourceRef
    obj: JSONObject | None
    old: JSONObject | None
    user: UserInfo
    namespaced: bool = True
    dry_run: bool = False
    options: JSONObject = field(default_factory=dict)
    # Other versions the same resource is served under (for matchPolicy Equivalent).
    equivalents: tuple[Equivalent, ...] = ()
    # Shared by every step of the write (with_object and replace keep it).
    cache: WriteCache = field(default_factory=WriteCache, compare=False, repr=False)

    def with_object(self, obj: JSONObject | None) -> Attributes:
        return replace(self, obj=obj)

    @property
    def namespace(self) -> str:
        return self.ref.namespace or ""

    @property
    def exempt(self) -> bool:
        return self.ref.group == EXEMPT_GROUP and self.ref.kind in EXEMPT_KINDS

    def options_object(self) -> JSONObject:
        kind = _OPTIONS_KIND.get(self.operation, "CreateOptions")
        return {"apiVersion": "meta.k8s.io/v1", "kind": kind, **copy.deepcopy(self.options)}


@dataclass(frozen=True)
class Match:
    """A match: the resource and kind the policy or webhook sees the write as (Equivalent may convert)."""

    group: str
    version: str
    resource: str
    kind: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


def as_requested(attributes: Attributes) -> Match:
    ref = attributes.ref
    return Match(ref.group, ref.version, ref.resource, ref.kind)


def view(obj: JSONObject | None, match: Match) -> JSONObject | None:
    """The object as served in the matched version (the sandbox converts by apiVersion only)."""
    if obj is None or obj.get("apiVersion") == match.api_version:
        return obj
    return {**obj, "apiVersion": match.api_version}


# -- selectors ----------------------------------------------------------------------------------


class SelectorError(ValueError):
    pass


def label_selector(selector: Mapping[str, Any] | None) -> LabelSelector:
    """A ``metav1.LabelSelector`` (matchLabels, matchExpressions); an empty one selects everything."""
    if not selector:
        return LabelSelector()
    requirements: list[Requirement] = []
    for key, value in sorted((selector.get("matchLabels") or {}).items()):
        requirements.append(Requirement(str(key), "in", frozenset({str(value)})))
    for expression in selector.get("matchExpressions") or []:
        key, operator = str(expression.get("key", "")), expression.get("operator")
        values = frozenset(str(v) for v in expression.get("values") or [])
        if operator in ("In", "NotIn"):
            if not values:
                raise SelectorError(
                    f"values: Required value: for 'in', 'notin' operators, values set can't be empty ({key})"
                )
            requirements.append(Requirement(key, operator.lower(), values))
        elif operator in ("Exists", "DoesNotExist"):
            if values:
                raise SelectorError(
                    f"values: Invalid value: values set must be empty for exists and does not exist ({key})"
                )
            requirements.append(Requirement(key, "exists" if operator == "Exists" else "!exists"))
        else:
            raise SelectorError(f"{operator!r} is not a valid label selector operator")
    return LabelSelector(tuple(requirements))


def _labels(obj: Mapping[str, Any] | None) -> Mapping[str, str] | None:
    if obj is None:
        return None
    return (obj.get("metadata") or {}).get("labels") or {}


def object_selected(selector: Mapping[str, Any] | None, attributes: Attributes) -> bool:
    """``objectSelector``: the new or the old object's labels match."""
    parsed = label_selector(selector)
    if not parsed.requirements:
        return True
    return any(
        labels is not None and parsed.matches(labels) for labels in (_labels(attributes.obj), _labels(attributes.old))
    )


def namespace_selected(
    selector: Mapping[str, Any] | None,
    attributes: Attributes,
    namespace_object: Callable[[str], JSONObject | None],
) -> bool:
    """``namespaceSelector``: the labels of the write's namespace (or of the Namespace being written).

    Cluster-scoped objects other than Namespaces are never exempted. A namespaced write into a
    namespace that does not exist is a 404, as on a real server.
    """
    ref = attributes.ref
    is_namespace = (ref.group, ref.resource) == ("", "namespaces")
    if not attributes.namespace and not is_namespace:
        return True
    parsed = label_selector(selector)
    if not parsed.requirements:
        return True
    if is_namespace and not ref.subresource and attributes.operation in ("CREATE", "UPDATE"):
        return parsed.matches(_labels(attributes.obj))
    name = ref.name if is_namespace else attributes.namespace
    namespace = namespace_object(name)
    if namespace is None:
        raise errors.not_found("", "namespaces", name)
    return parsed.matches(_labels(namespace))


# -- rules --------------------------------------------------------------------------------------


def _exact_or_wildcard(items: Iterable[str] | None, requested: str) -> bool:
    return any(item in ("*", requested) for item in items or ())


def _scope_matches(scope: str | None, ref: ResourceRef, namespace: str) -> bool:
    if scope in (None, "*"):
        return True
    is_namespace = (ref.group, ref.version, ref.resource) == ("", "v1", "namespaces")
    if scope == "Namespaced":
        return not is_namespace and bool(namespace)
    if scope == "Cluster":
        return is_namespace or not namespace
    return False


def _resource_matches(resources: Iterable[str] | None, resource: str, subresource: str) -> bool:
    for entry in resources or ():
        res, _, sub = entry.partition("/")
        if res in ("*", resource) and sub in ("*", subresource):
            return True
    return False


def rule_matches(
    rule: Mapping[str, Any], operation: str, group: str, version: str, resource: str, ref: ResourceRef, namespace: str
) -> bool:
    """One ``RuleWithOperations`` against a request (as ``rules.Matcher`` decides)."""
    operations = rule.get("operations") or ()
    return (
        _scope_matches(rule.get("scope"), replace(ref, group=group, version=version, resource=resource), namespace)
        and ("*" in operations or operation in operations)
        and _exact_or_wildcard(rule.get("apiGroups"), group)
        and _exact_or_wildcard(rule.get("apiVersions"), version)
        and _resource_matches(rule.get("resources"), resource, ref.subresource)
    )


def _named(rule: Mapping[str, Any], name: str) -> bool:
    names = rule.get("resourceNames") or ()
    return not names or name in names


def rules_match(rules: Sequence[Mapping[str, Any]], match_policy: str | None, attributes: Attributes) -> Match | None:
    """The first rule matching the write, exactly or (``Equivalent``) through another served version."""
    ref = attributes.ref
    for rule in rules:
        requested = (attributes.operation, ref.group, ref.version, ref.resource, ref, attributes.namespace)
        if rule_matches(rule, *requested) and _named(rule, ref.name):
            return as_requested(attributes)
    if match_policy == "Exact":
        return None
    for rule in rules:
        for other in attributes.equivalents:
            if (other.group, other.version) == (ref.group, ref.version):
                continue
            if rule_matches(
                rule, attributes.operation, other.group, other.version, other.resource, ref, attributes.namespace
            ) and _named(rule, ref.name):
                return Match(other.group, other.version, other.resource, other.kind)
    return None


# -- what CEL sees ------------------------------------------------------------------------------


def user_info(user: UserInfo) -> JSONObject:
    """``userInfo`` with every field present (CEL sees the typed object's zero values)."""
    return {
        "username": user.username,
        "uid": user.uid,
        "groups": list(user.groups),
        "extra": {key: list(values) for key, values in user.extra.items()},
    }


def request_object(attributes: Attributes, match: Match, uid: str = "") -> JSONObject:
    """The ``request`` variable of admission CEL (an ``admission.k8s.io/v1`` AdmissionRequest)."""
    ref = attributes.ref
    return {
        "uid": uid,
        "kind": {"group": match.group, "version": match.version, "kind": match.kind},
        "resource": {"group": match.group, "version": match.version, "resource": match.resource},
        "subResource": ref.subresource,
        "requestKind": {"group": ref.group, "version": ref.version, "kind": ref.kind},
        "requestResource": {"group": ref.group, "version": ref.version, "resource": ref.resource},
        "requestSubResource": ref.subresource,
        "name": ref.name,
        "namespace": attributes.namespace,
        "operation": attributes.operation,
        "userInfo": user_info(attributes.user),
        "dryRun": attributes.dry_run,
        "options": attributes.options_object(),
    }


def namespace_view(namespace: JSONObject | None) -> JSONObject | None:
    """``namespaceObject``: the Namespace's metadata (without managedFields), spec and status."""
    if namespace is None:
        return None
    metadata = {k: v for k, v in (namespace.get("metadata") or {}).items() if k != "managedFields"}
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": metadata,
        "spec": namespace.get("spec") or {},
        "status": namespace.get("status") or {},
    }
