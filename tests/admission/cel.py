"""The shipped admission CEL (``policies/admission/``), evaluated by the sandbox API server's own evaluator.

The sandbox evaluates ValidatingAdmissionPolicies and webhook ``matchConditions`` on every
write (``airlock.sandbox._k8s_vap``, ``_k8s_webhooks``, ``_k8s_cel``: celpy plus the
Kubernetes CEL libraries such as ``split`` and ``join``, property-name escaping, lazily
evaluated variables, params, failure policies). These helpers put one write of the
admission corpus through that same code, without a running server: one evaluator for the
corpus tests and the integration tests.
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any

import yaml

from airlock.sandbox import _k8s_cel, _k8s_vap, _k8s_webhooks
from airlock.sandbox._k8s_identity import UserInfo
from airlock.sandbox._k8s_matching import Attributes, ResourceRef

ROOT = pathlib.Path(__file__).resolve().parents[2]
ADMISSION = ROOT / "policies" / "admission"

PLURALS = {"AISystem": "aisystems", "AIIncident": "aiincidents", "ContainmentPolicy": "containmentpolicies"}
CelError = _k8s_cel.CelError


def _no_namespace(_: str) -> None:
    return None


def attributes(operation: str, kind: str, username: str, groups: tuple[str, ...], obj: Any, old: Any) -> Attributes:
    """One write of an airlock kind, as the API server hands it to admission."""
    meta = (obj or old or {}).get("metadata", {})
    ref = ResourceRef("airlock.dev", "v1alpha1", PLURALS[kind], "", kind, meta.get("namespace"), meta.get("name", ""))
    user = UserInfo(username, tuple(groups))
    return Attributes(operation, ref, obj, old, user, namespaced=kind != "ContainmentPolicy")


@dataclasses.dataclass(frozen=True)
class Outcome:
    matched: bool
    failed: tuple[int, ...] = ()  # indexes of the validations that did not hold (-1: a match condition erred)
    messages: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()  # evaluation errors among them (failurePolicy decides)

    @property
    def denied(self) -> bool:
        return bool(self.failed)


class Policy:
    """One ValidatingAdmissionPolicy of the shipped file, compiled by the sandbox."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.compiled = _k8s_vap.CompiledPolicy(document)
        assert self.compiled.error is None, self.compiled.error
        self.name = self.compiled.name
        self.failure_policy = document["spec"].get("failurePolicy")
        self.validations = self.compiled.validations

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
        """One write; a policy with a paramKind is evaluated once per param (any failure denies).

        ``params`` stands for what the binding's ``paramRef`` selects; none (with the shipped
        ``parameterNotFoundAction: Allow``) admits.
        """
        if self.compiled.param_kind is None:
            return self._evaluate_one(operation, kind, username, groups, obj, old, None)
        outcomes = [self._evaluate_one(operation, kind, username, groups, obj, old, p) for p in params or []]
        if not outcomes:
            return Outcome(matched=False)
        return Outcome(
            matched=any(o.matched for o in outcomes),
            failed=tuple(sorted({i for o in outcomes for i in o.failed})),
            messages=tuple(dict.fromkeys(m for o in outcomes for m in o.messages)),
            errors=tuple(dict.fromkeys(e for o in outcomes for e in o.errors)),
        )

    def _evaluate_one(
        self,
        operation: str,
        kind: str,
        username: str,
        groups: tuple[str, ...],
        obj: Any,
        old: Any,
        params: dict[str, Any] | None,
    ) -> Outcome:
        write = attributes(operation, kind, username, groups, obj, old)
        match = self.compiled.matches(write, _no_namespace)
        if match is None:
            return Outcome(matched=False)
        decisions = self.compiled.validate(write, match, params)
        if not decisions:  # a match condition is false
            return Outcome(matched=False)
        failed = [d for d in decisions if d.denied]
        return Outcome(
            matched=True,
            failed=tuple(d.index for d in failed),
            messages=tuple(d.message for d in failed),
            errors=tuple(d.message for d in failed if d.error),
        )


@dataclasses.dataclass(frozen=True)
class Webhook:
    """One webhook of a (Validating|Mutating)WebhookConfiguration: does a write reach it?"""

    name: str
    path: str
    rules: list[dict[str, Any]]
    conditions: list[_k8s_cel.Program]
    document: dict[str, Any]
    compiled: _k8s_webhooks.Webhook

    def reached(self, operation: str, kind: str, username: str, groups: tuple[str, ...], obj: Any, old: Any) -> bool:
        """Rules, selectors and match conditions as the sandbox API server decides (an error raises)."""
        write = attributes(operation, kind, username, groups, obj, old)
        match = _k8s_webhooks.webhook_match(self.compiled, write, _no_namespace)
        return match is not None and _k8s_webhooks.conditions_hold(self.compiled, write, match)


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
        for compiled in _k8s_webhooks.compile_configuration(document):
            hook = dict(compiled.document)
            found.append(
                Webhook(
                    name=compiled.name,
                    path=hook["clientConfig"]["service"]["path"],
                    rules=hook["rules"],
                    conditions=[program for _, program in compiled.conditions],
                    document=hook,
                    compiled=compiled,
                )
            )
    return found
