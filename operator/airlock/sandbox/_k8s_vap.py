"""ValidatingAdmissionPolicies and their bindings (admissionregistration.k8s.io/v1), evaluated.

What the API server's ``validating`` policy plugin does, step by step
(``k8s.io/apiserver/pkg/admission/plugin/policy/validating``):

1. a policy concerns a write if its ``matchConstraints`` match (namespace and object
   selectors, resource rules minus ``excludeResourceRules``, ``matchPolicy``);
2. each binding naming it, whose ``matchResources`` also match, selects its params
   (``paramKind`` + ``paramRef``: one by name, or every match of a selector; none found ->
   allowed, or with ``parameterNotFoundAction: Deny`` a configuration error);
3. per param: the ``matchConditions`` (any false -> skip; an error -> ``failurePolicy``),
   then every validation, with ``variables`` evaluated lazily; a false validation is a
   denial with its ``reason`` (default Invalid) and message (``messageExpression``, else
   ``message``, else ``failed expression: ...``); an error obeys ``failurePolicy``;
4. a denial acts per the binding's ``validationActions``: Deny refuses the write, Warn adds
   a ``Warning`` header, Audit is ignored here (no audit log).

The first denial is the answer, worded as the API server words it::

    aisystems.airlock.dev "chatbot" is forbidden: ValidatingAdmissionPolicy 'p' with binding 'b' denied request: ...

with the reason and code of the validation (Forbidden 403, Invalid 422, Unauthorized 401,
RequestEntityTooLarge 413). Configuration problems (a param that cannot be found, an
expression that does not compile) obey ``failurePolicy`` too.

A :class:`CompiledPolicy` is built once per stored generation of a policy (its
resourceVersion); expressions are compiled once per text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from airlock.sandbox import _k8s_cel as cel
from airlock.sandbox import _k8s_errors as errors
from airlock.sandbox._k8s_errors import ApiError
from airlock.sandbox._k8s_matching import (
    Attributes,
    Match,
    SelectorError,
    as_requested,
    label_selector,
    namespace_selected,
    namespace_view,
    object_selected,
    rules_match,
)
from airlock.sandbox._k8s_objects import JSONObject

REASON_CODES = {"Forbidden": 403, "Invalid": 422, "Unauthorized": 401, "RequestEntityTooLarge": 413}
ACTIONS = ("Deny", "Warn", "Audit")


def reason_code(reason: str) -> int:
    return REASON_CODES.get(reason, 422)


@dataclass(frozen=True)
class Decision:
    """The outcome of one validation (or of a failure that stands for the whole policy)."""

    index: int  # the validation's position; -1 for match-condition and configuration failures
    denied: bool
    message: str = ""
    reason: str = ""
    error: bool = False  # an evaluation or configuration error, not a false validation


@dataclass(frozen=True)
class Validation:
    program: cel.Program
    message: str
    message_program: cel.Program | None
    reason: str


class ParamSource(Protocol):
    """Where params come from (the sandbox's store)."""

    def param_scope(self, api_version: str, kind: str) -> bool | None:
        """True if the kind is namespaced, False if cluster-scoped, None if the cluster serves no such kind."""

    def param_objects(self, api_version: str, kind: str, namespace: str | None) -> list[JSONObject]:
        """Every object of the kind (in ``namespace`` if given), in a stable order."""


class ConfigurationError(Exception):
    pass


def _criteria_match(
    criteria: Mapping[str, Any] | None,
    attributes: Attributes,
    namespace_object: Callable[[str], JSONObject | None],
) -> Match | None:
    """``matchConstraints`` / ``matchResources``: None if the write is not concerned.

    Raises :class:`ConfigurationError` for a bad selector, or the 404 of a missing namespace
    when the rules do match (the API server reports selector problems only then).
    """
    criteria = criteria or {}
    deferred: ApiError | None = None
    try:
        if not namespace_selected(criteria.get("namespaceSelector"), attributes, namespace_object):
            return None
        if not object_selected(criteria.get("objectSelector"), attributes):
            return None
    except ApiError as error:
        deferred = error
    except SelectorError as error:
        raise ConfigurationError(str(error)) from None
    match_policy = criteria.get("matchPolicy") or "Equivalent"
    if rules_match(criteria.get("excludeResourceRules") or [], match_policy, attributes):
        return None
    rules = criteria.get("resourceRules") or []
    match = rules_match(rules, match_policy, attributes) if rules else as_requested(attributes)
    if match is not None and deferred is not None:
        raise deferred
    return match


class CompiledPolicy:
    """One ValidatingAdmissionPolicy, ready to evaluate; a broken one records why in ``error``."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        metadata = document.get("metadata") or {}
        spec = document.get("spec") or {}
        self.document = document
        self.name: str = str(metadata.get("name", ""))
        self.resource_version: str = str(metadata.get("resourceVersion", ""))
        self.failure_policy: str = spec.get("failurePolicy") or "Fail"
        self.match_constraints: Mapping[str, Any] = spec.get("matchConstraints") or {}
        self.param_kind: Mapping[str, Any] | None = spec.get("paramKind")
        self.error: str | None = None
        self.conditions: list[tuple[str, cel.Program]] = []
        self.variables: dict[str, cel.Program] = {}
        self.validations: list[Validation] = []
        try:
            for condition in spec.get("matchConditions") or []:
                self.conditions.append((str(condition.get("name", "")), _compile(condition.get("expression"))))
            for variable in spec.get("variables") or []:
                self.variables[str(variable.get("name", ""))] = _compile(variable.get("expression"))
            for validation in spec.get("validations") or []:
                message_expression = validation.get("messageExpression")
                self.validations.append(
                    Validation(
                        program=_compile(validation.get("expression")),
                        message=str(validation.get("message") or ""),
                        message_program=_compile(message_expression) if message_expression else None,
                        reason=str(validation.get("reason") or ""),
                    )
                )
        except cel.CelError as error:
            self.error = error.message

    # -- the steps ----------------------------------------------------------------------------

    def matches(self, attributes: Attributes, namespace_object: Callable[[str], JSONObject | None]) -> Match | None:
        return _criteria_match(self.match_constraints, attributes, namespace_object)

    def _on_error(self, message: str, index: int = -1) -> Decision:
        return Decision(index, denied=self.failure_policy != "Ignore", message=message, error=True)

    def validate(
        self,
        attributes: Attributes,
        match: Match,
        params: JSONObject | None = None,
        namespace: JSONObject | None = None,
    ) -> list[Decision]:
        """The decisions of one evaluation (with one param): empty if a match condition is false."""
        base = {**attributes.cache.inputs(attributes, match), "params": cel.to_cel(params)}
        failures: list[str] = []
        for _, program in self.conditions:
            try:
                if not attributes.cache.condition(program, attributes, match, base):
                    return []
            except cel.CelError as error:
                failures.append(error.message)
        if failures:
            return [self._on_error(failures[0] if len(failures) == 1 else f"[{', '.join(failures)}]")]
        activation = cel.activation_with_variables(
            {**base, "namespaceObject": cel.to_cel(namespace_view(namespace))}, self.variables
        )
        decisions: list[Decision] = []
        for index, validation in enumerate(self.validations):
            try:
                holds = validation.program.evaluate_bool(activation)
            except cel.CelError as error:
                decisions.append(self._on_error(error.message, index))
                continue
            if holds:
                decisions.append(Decision(index, denied=False))
                continue
            decisions.append(
                Decision(index, denied=True, message=self._message(validation, activation), reason=validation.reason)
            )
        return decisions

    def _message(self, validation: Validation, activation: Mapping[str, Any]) -> str:
        message = ""
        if validation.message_program is not None:
            try:
                value = validation.message_program.evaluate(activation)
            except cel.CelError:
                value = None
            if isinstance(value, str):
                message = str(value).strip()
                if "\n" in message or len(message) > 5 * 1024:
                    message = ""
        if not message:
            message = validation.message.strip()
        if not message:
            message = f"failed expression: {validation.program.source.strip()}"
        return message


def _compile(source: Any) -> cel.Program:
    if not isinstance(source, str) or not source.strip():
        raise cel.CelError("compilation failed: an expression is required")
    return cel.compile_expression(source)


@dataclass
class PolicyOutcome:
    """What the policies made of one write: the first denial (if any) and the warnings."""

    denial: ApiError | None = None
    warnings: list[str] = field(default_factory=list)


def collect_params(
    policy: CompiledPolicy, binding: Mapping[str, Any], attributes: Attributes, source: ParamSource
) -> list[JSONObject | None]:
    """The params to evaluate ``policy`` with under ``binding`` (``generic.CollectParams``)."""
    param_kind = policy.param_kind
    param_ref = (binding.get("spec") or {}).get("paramRef")
    if not param_kind or not param_ref:
        return [None]
    api_version, kind = str(param_kind.get("apiVersion", "")), str(param_kind.get("kind", ""))
    namespaced = source.param_scope(api_version, kind)
    if namespaced is None:
        raise ConfigurationError(f"paramKind kind `{api_version}, Kind={kind}` not known")
    ref_namespace = str(param_ref.get("namespace") or "")
    namespace: str | None = None
    if namespaced:
        namespace = ref_namespace or attributes.namespace
        if not namespace:
            raise ConfigurationError(
                "cannot use namespaced paramRef in policy binding that matches cluster-scoped resources"
            )
    elif ref_namespace:
        raise ConfigurationError("paramRef.namespace must not be provided for a cluster-scoped `paramKind`")
    name, selector = param_ref.get("name"), param_ref.get("selector")
    if name and selector is not None:
        raise ConfigurationError("paramRef.name and paramRef.selector are mutually exclusive")
    candidates = source.param_objects(api_version, kind, namespace)
    if name:
        params = [p for p in candidates if (p.get("metadata") or {}).get("name") == name]
    elif selector is not None:
        try:
            parsed = label_selector(selector)
        except SelectorError as error:
            raise ConfigurationError(str(error)) from None
        params = [p for p in candidates if parsed.matches((p.get("metadata") or {}).get("labels"))]
    else:
        raise ConfigurationError("one of name or selector must be provided")
    if not params and param_ref.get("parameterNotFoundAction") == "Deny":
        raise ConfigurationError("no params found for policy binding with `Deny` parameterNotFoundAction")
    return list(params)


def _denial(attributes: Attributes, policy: str, binding: str | None, decision: Decision) -> ApiError:
    if binding is None:
        inner = f"ValidatingAdmissionPolicy '{policy}' denied request: {decision.message}"
    else:
        inner = f"ValidatingAdmissionPolicy '{policy}' with binding '{binding}' denied request: {decision.message}"
    ref = attributes.ref
    name = ref.name or ((attributes.obj or attributes.old or {}).get("metadata") or {}).get("name", "")
    prefix = f'{ref.qualified} "{name}" is forbidden' if name else f"{ref.qualified} is forbidden"
    reason = decision.reason or "Invalid"
    details: JSONObject = {"kind": ref.resource, "causes": [{"message": inner}]}
    if name:
        details["name"] = name
    if ref.group:
        details["group"] = ref.group
    return errors.ApiError(reason_code(reason), reason, f"{prefix}: {inner}", details)


def evaluate(
    policies: Sequence[tuple[CompiledPolicy, Sequence[Mapping[str, Any]]]],
    attributes: Attributes,
    source: ParamSource,
    namespace_object: Callable[[str], JSONObject | None],
) -> PolicyOutcome:
    """Every policy (with its bindings) against one write, as the API server's dispatcher does."""
    outcome = PolicyOutcome()
    if attributes.exempt:
        return outcome
    denials: list[tuple[str, str | None, Decision]] = []

    def configuration_error(policy: CompiledPolicy, binding: str | None, message: str) -> None:
        if policy.failure_policy == "Ignore":
            return
        what = "policy" if binding is None else "binding"
        denials.append((policy.name, binding, Decision(-1, True, f"failed to configure {what}: {message}", error=True)))

    for policy, bindings in policies:
        try:
            match = policy.matches(attributes, namespace_object)
        except ConfigurationError as error:
            configuration_error(policy, None, str(error))
            continue
        except ApiError as error:  # the namespace of the write does not exist
            configuration_error(policy, None, error.message)
            continue
        if match is None:
            continue
        if policy.error is not None:
            configuration_error(policy, None, policy.error)
            continue
        for binding in bindings:
            binding_name = str((binding.get("metadata") or {}).get("name", ""))
            spec = binding.get("spec") or {}
            try:
                if _criteria_match(spec.get("matchResources"), attributes, namespace_object) is None:
                    continue
                params = collect_params(policy, binding, attributes, source)
            except ConfigurationError as error:
                configuration_error(policy, binding_name, str(error))
                continue
            except ApiError as error:
                configuration_error(policy, binding_name, error.message)
                continue
            namespace = (
                namespace_object(attributes.namespace)
                if attributes.namespace and not _is_namespace(attributes)
                else None
            )
            actions = [a for a in spec.get("validationActions") or [] if a in ACTIONS]
            for param in params:
                for decision in policy.validate(attributes, match, param, namespace):
                    if not decision.denied:
                        continue
                    if "Deny" in actions:
                        denials.append((policy.name, binding_name, decision))
                    if "Warn" in actions:
                        outcome.warnings.append(
                            f"Validation failed for ValidatingAdmissionPolicy '{policy.name}' "
                            f"with binding '{binding_name}': {decision.message}"
                        )
    if denials:
        outcome.denial = _denial(attributes, *denials[0])
    return outcome


def _is_namespace(attributes: Attributes) -> bool:
    ref = attributes.ref
    return (ref.group, ref.resource) == ("", "namespaces")


# -- checking the configuration objects when they are written ---------------------------------


def configuration_problem(kind: str, obj: Mapping[str, Any]) -> tuple[str, str] | None:
    """A (field, problem) that makes a policy or binding invalid, as the API server refuses it at apply time."""
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        return "spec", "Required value"
    if kind == "ValidatingAdmissionPolicyBinding":
        if not spec.get("policyName"):
            return "spec.policyName", "Required value"
        actions = spec.get("validationActions")
        if not actions:
            return "spec.validationActions", "Required value: at least one validation action is required"
        for index, action in enumerate(actions):
            if action not in ACTIONS:
                return (
                    f"spec.validationActions[{index}]",
                    f'Unsupported value: "{action}": supported values: "Audit", "Deny", "Warn"',
                )
        if "Deny" in actions and "Warn" in actions:
            return "spec.validationActions", "Invalid value: Deny and Warn may not be used together"
        param_ref = spec.get("paramRef")
        if param_ref is not None:
            if bool(param_ref.get("name")) == (param_ref.get("selector") is not None):
                return "spec.paramRef", "Invalid value: one of name or selector must be set"
            if param_ref.get("parameterNotFoundAction") not in ("Allow", "Deny"):
                return "spec.paramRef.parameterNotFoundAction", 'Required value: "Allow" or "Deny"'
        return None
    if spec.get("failurePolicy") not in (None, "Fail", "Ignore"):
        return (
            "spec.failurePolicy",
            f'Unsupported value: "{spec.get("failurePolicy")}": supported values: "Fail", "Ignore"',
        )
    if not (spec.get("matchConstraints") or {}).get("resourceRules"):
        return "spec.matchConstraints.resourceRules", "Required value"
    if not spec.get("validations") and not spec.get("auditAnnotations"):
        return "spec.validations", "Required value: validations or auditAnnotations must contain at least one item"
    for section in ("matchConditions", "variables", "validations"):
        for index, entry in enumerate(spec.get(section) or []):
            for key in ("expression", "messageExpression"):
                source = entry.get(key)
                if key == "expression" or source is not None:
                    try:
                        _compile(source)
                    except cel.CelError as error:
                        return f"spec.{section}[{index}].{key}", f"Invalid value: {source!r}: {error.message}"
            if section == "validations" and entry.get("reason") not in (None, *REASON_CODES):
                return (
                    f"spec.validations[{index}].reason",
                    f'Unsupported value: "{entry.get("reason")}": supported values: '
                    '"Forbidden", "Invalid", "RequestEntityTooLarge", "Unauthorized"',
                )
    return None
