"""Evaluating the shipped admission CEL (``policies/admission/``) the way the API server would, with celpy.

What is emulated of Kubernetes:

* the bindings: ``object``, ``oldObject`` (null on CREATE), ``request`` (operation,
  kind, userInfo), and for a ValidatingAdmissionPolicy ``variables`` (evaluated in
  order; an error stays an error until an expression uses it);
* property-name escaping: an object property named like a CEL reserved word is
  ``__word__`` (``subject.__namespace__``); keys of map-typed fields (annotations,
  labels) are left alone;
* ``matchConstraints`` (resource, operation), ``matchConditions`` (all must hold; an
  error fails closed, as ``failurePolicy: Fail`` does), then every validation;
* ``string.split(sep)`` and ``list.join(sep)`` from the Kubernetes CEL strings library,
  which standard CEL (and so celpy) lacks: to read a comma-separated annotation and to
  name who may in a refusal;
* params (``paramKind`` + the binding's ``paramRef``): with a selector every param is
  evaluated and any failure denies; none found and ``parameterNotFoundAction: Allow``
  admits.
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any

import celpy
import yaml
from celpy import celtypes

ROOT = pathlib.Path(__file__).resolve().parents[2]
ADMISSION = ROOT / "policies" / "admission"

RESERVED = {
    "as", "break", "const", "continue", "else", "for", "function", "if", "import", "let", "loop",
    "package", "namespace", "return", "var", "void", "while", "in", "true", "false", "null",
}  # fmt: skip
MAP_FIELDS = {"annotations", "labels", "params", "selector", "match", "matchLabels", "data"}
PLURALS = {"AISystem": "aisystems", "AIIncident": "aiincidents", "ContainmentPolicy": "containmentpolicies"}


def _split(text: celtypes.StringType, separator: celtypes.StringType) -> celtypes.ListType:
    return celtypes.ListType([celtypes.StringType(part) for part in str(text).split(str(separator))])


def _join(items: celtypes.ListType, separator: celtypes.StringType) -> celtypes.StringType:
    return celtypes.StringType(str(separator).join(str(item) for item in items))


FUNCTIONS: dict[str, Any] = {"split": _split, "join": _join}
_ENV = celpy.Environment()


def escape(value: Any, *, in_map: bool = False) -> Any:
    """Rename object properties as Kubernetes exposes them to CEL."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = key if in_map or key not in RESERVED else f"__{key}__"
            out[name] = escape(item, in_map=key in MAP_FIELDS)
        return out
    if isinstance(value, list):
        return [escape(item) for item in value]
    return value


def to_cel(value: Any) -> Any:
    return None if value is None else celpy.json_to_cel(escape(value))


class CelError(Exception):
    pass


@dataclasses.dataclass(frozen=True)
class Expression:
    source: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "_program", _ENV.program(_ENV.compile(self.source), functions=FUNCTIONS))

    def evaluate(self, activation: dict[str, Any]) -> Any:
        try:
            result = self._program.evaluate(activation)  # type: ignore[attr-defined]
        except celpy.CELEvalError as exc:
            raise CelError(f"{self.source!r}: {exc.args[0] if exc.args else exc}") from None
        if isinstance(result, celpy.CELEvalError):
            raise CelError(f"{self.source!r}: {result.args[0] if result.args else result}")
        return result


def request(operation: str, kind: str, username: str, groups: tuple[str, ...]) -> dict[str, Any]:
    return {
        "operation": operation,
        "kind": {"group": "airlock.dev", "version": "v1alpha1", "kind": kind},
        "resource": {"group": "airlock.dev", "version": "v1alpha1", "resource": PLURALS[kind]},
        "userInfo": {"username": username, "groups": list(groups)},
    }


def _activation(req: dict[str, Any], obj: Any, old: Any, params: Any = None) -> dict[str, Any]:
    return {"request": to_cel(req), "object": to_cel(obj), "oldObject": to_cel(old), "params": to_cel(params)}


def _matches_rules(rules: list[dict[str, Any]], operation: str, kind: str) -> bool:
    return any(
        "airlock.dev" in rule["apiGroups"]
        and PLURALS[kind] in rule["resources"]
        and (operation in rule["operations"] or "*" in rule["operations"])
        for rule in rules
    )


def _conditions_hold(conditions: list[Expression], activation: dict[str, Any]) -> bool:
    """All matchConditions true; an error raises (failurePolicy Fail rejects the write)."""
    return all(bool(condition.evaluate(activation)) for condition in conditions)


@dataclasses.dataclass(frozen=True)
class Outcome:
    matched: bool
    failed: tuple[int, ...] = ()  # indexes of the validations that did not hold
    messages: tuple[str, ...] = ()

    @property
    def denied(self) -> bool:
        return bool(self.failed)


class Policy:
    """One ValidatingAdmissionPolicy."""

    def __init__(self, document: dict[str, Any]) -> None:
        spec = document["spec"]
        self.name: str = document["metadata"]["name"]
        self.failure_policy = spec.get("failurePolicy")
        self.param_kind: dict[str, str] | None = spec.get("paramKind")
        self.rules = spec["matchConstraints"]["resourceRules"]
        self.conditions = [Expression(c["expression"]) for c in spec.get("matchConditions", [])]
        self.variables = [(v["name"], Expression(v["expression"])) for v in spec.get("variables", [])]
        self.validations = [
            (
                Expression(v["expression"]),
                v.get("message"),
                Expression(v["messageExpression"]) if "messageExpression" in v else None,
            )
            for v in spec["validations"]
        ]

    def evaluate(
        self,
        operation: str,
        kind: str,
        username: str,
        groups: tuple[str, ...],
        obj: Any,
        old: Any,
        params: list[dict[str, Any]] | None = None,
    ) -> Outcome:
        """One write; a policy with a paramKind is evaluated once per param (any failure denies)."""
        if self.param_kind is None:
            return self._evaluate_one(operation, kind, username, groups, obj, old, None)
        outcomes = [self._evaluate_one(operation, kind, username, groups, obj, old, p) for p in params or []]
        if not outcomes:  # parameterNotFoundAction: Allow (the shipped bindings)
            return Outcome(matched=False)
        failed = tuple(sorted({i for o in outcomes for i in o.failed}))
        messages = tuple(dict.fromkeys(m for o in outcomes for m in o.messages))
        return Outcome(matched=any(o.matched for o in outcomes), failed=failed, messages=messages)

    def _evaluate_one(
        self, operation: str, kind: str, username: str, groups: tuple[str, ...], obj: Any, old: Any, params: Any
    ) -> Outcome:
        if not _matches_rules(self.rules, operation, kind):
            return Outcome(matched=False)
        activation = _activation(request(operation, kind, username, groups), obj, old, params)
        if not _conditions_hold(self.conditions, activation):
            return Outcome(matched=False)
        values: dict[str, Any] = {}
        for name, expression in self.variables:
            activation["variables"] = celtypes.MapType(values)
            try:
                values[celtypes.StringType(name)] = expression.evaluate(activation)
            except CelError as exc:
                values[celtypes.StringType(name)] = celpy.CELEvalError(str(exc))
        activation["variables"] = celtypes.MapType(values)
        failed: list[int] = []
        messages: list[str] = []
        for index, (expression, message, message_expression) in enumerate(self.validations):
            if bool(expression.evaluate(activation)):
                continue
            failed.append(index)
            messages.append(str(message_expression.evaluate(activation)) if message_expression else str(message))
        return Outcome(matched=True, failed=tuple(failed), messages=tuple(messages))


@dataclasses.dataclass(frozen=True)
class Webhook:
    """One webhook of a (Validating|Mutating)WebhookConfiguration: does a write reach it?"""

    name: str
    path: str
    rules: list[dict[str, Any]]
    conditions: list[Expression]
    document: dict[str, Any]

    def reached(self, operation: str, kind: str, username: str, groups: tuple[str, ...], obj: Any, old: Any) -> bool:
        if not _matches_rules(self.rules, operation, kind):
            return False
        return _conditions_hold(self.conditions, _activation(request(operation, kind, username, groups), obj, old))


def documents(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((ADMISSION / name).read_text(encoding="utf-8")) if d]


def policies() -> dict[str, Policy]:
    return {
        d["metadata"]["name"]: Policy(d)
        for d in documents("validating-admission-policy.yaml")
        if d["kind"] == "ValidatingAdmissionPolicy"
    }


def webhooks(kind: str) -> list[Webhook]:
    """Every webhook of ``webhook.yaml`` of that configuration kind."""
    found: list[Webhook] = []
    for document in documents("webhook.yaml"):
        if document["kind"] != kind:
            continue
        for hook in document["webhooks"]:
            found.append(
                Webhook(
                    name=hook["name"],
                    path=hook["clientConfig"]["service"]["path"],
                    rules=hook["rules"],
                    conditions=[Expression(c["expression"]) for c in hook.get("matchConditions", [])],
                    document=hook,
                )
            )
    return found
