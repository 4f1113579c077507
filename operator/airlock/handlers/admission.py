"""Admission webhooks (SPEC §4): who may change control annotations and responders.

Kubernetes RBAC cannot restrict single annotation keys, so the API server asks
airlock before it stores such a change.  These handlers only translate: the
AdmissionReview becomes an ``authority.AdmissionRequest``, the responders in
force are looked up (the engine's caches first, the API server otherwise), and
``authority.admit`` / ``authority.mutate`` decide.

Importing this module registers the handlers.  Kopf refuses to start with
admission handlers and no webhook server, so ``airlock run`` imports it only
with ``--webhook-port``.  Handler ids are the URL paths the static webhook
configurations in ``policies/admission/webhook.yaml`` call.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import kopf
import structlog

from airlock.adapters import kube
from airlock.api.matrix import Responder
from airlock.api.policy import ContainmentPolicySpec
from airlock.domain import authority
from airlock.engine.core import Engine
from airlock.handlers.operator import GROUP, VERSION, OperatorConfig

log = structlog.get_logger("airlock.admission")

Body = Mapping[str, Any]


class _RefusalsAreNotErrors(logging.Filter):
    """Kopf logs a refused write as a handler that "failed permanently"; it is airlock working as
    intended, logged once as ``admission.denied``."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("Webhook '") and " failed permanently: " in message)


logging.getLogger("kopf.objects").addFilter(_RefusalsAreNotErrors())


def _settings(memo: kopf.Memo) -> authority.AdmissionSettings:
    config: OperatorConfig | None = memo.get("config")
    return config.admission() if config is not None else authority.AdmissionSettings()


def _caller(userinfo: Mapping[str, Any]) -> authority.Caller:
    return authority.Caller(str(userinfo.get("username") or ""), tuple(userinfo.get("groups") or ()))


def _plain(body: kopf.Body | None) -> dict[str, Any] | None:
    return dict(body) if body is not None else None


async def _get(memo: kopf.Memo, resource: kube.Resource, namespace: str | None, name: str) -> dict[str, Any] | None:
    client: kube.KubeClient | None = memo.get("client")
    if client is None:
        raise kopf.AdmissionError("airlock is starting: try again in a moment", code=503)
    try:
        return await client.get_or_none(resource, namespace, name)
    except kube.ApiError as exc:
        # Fail closed: without the responders nobody can be shown to hold authority.
        raise kopf.AdmissionError(f"cannot read {resource.kind} {name} to check authority: {exc}", code=503) from exc


async def policy_responders(memo: kopf.Memo, name: str) -> list[Responder]:
    """The responders of a ContainmentPolicy: the engine's cache, else the API server."""
    engine: Engine | None = memo.get("engine")
    cached = engine.policies.get(name) if engine is not None else None
    if isinstance(cached, ContainmentPolicySpec):
        return list(cached.responders)
    body = await _get(memo, kube.POLICIES, None, name)
    return authority.inline_responders(body)


async def system_responders(memo: kopf.Memo, system: Body) -> list[Responder]:
    """An AISystem's inline responders merged over its policy's."""
    name = authority.policy_name(system)
    policy = await policy_responders(memo, name) if name else []
    return authority.effective_responders(authority.inline_responders(system), policy)


async def incident_responders(memo: kopf.Memo, namespace: str, incident: Body | None) -> list[Responder]:
    """The responders of the AISystem an AIIncident belongs to (none if it is gone)."""
    name = authority.incident_system(incident)
    if name is None:
        return []
    engine: Engine | None = memo.get("engine")
    entry = engine.systems.get((namespace, name)) if engine is not None else None
    if entry is not None and entry.plan is not None:
        return list(entry.plan.responders)
    body = entry.body if entry is not None else await _get(memo, kube.AISYSTEMS, namespace, name)
    return await system_responders(memo, body) if body is not None else []


async def responders_in_force(memo: kopf.Memo, request: authority.AdmissionRequest, namespace: str) -> list[Responder]:
    basis = authority.authority_basis(request.old, request.new)
    if request.kind is authority.Kind.AISYSTEM and basis is not None:
        return await system_responders(memo, basis)
    if request.kind is authority.Kind.AIINCIDENT:
        return await incident_responders(memo, namespace, basis)
    # A ContainmentPolicy: its own stored responders (a new one has none: admins only).
    return authority.inline_responders(request.old)


def _request(
    kind: authority.Kind,
    operation: str | None,
    old: kopf.Body | None,
    new: kopf.Body | None,
    userinfo: Mapping[str, Any],
) -> authority.AdmissionRequest:
    return authority.AdmissionRequest(
        operation=operation or "", kind=kind, old=_plain(old), new=_plain(new), caller=_caller(userinfo)
    )


async def _validate(
    kind: authority.Kind,
    operation: str | None,
    old: kopf.Body | None,
    new: kopf.Body | None,
    userinfo: Mapping[str, Any],
    namespace: str | None,
    name: str | None,
    memo: kopf.Memo,
) -> None:
    request = _request(kind, operation, old, new, userinfo)
    responders: list[Responder] = []  # the admin and identity rules need none: no lookups then
    settings = _settings(memo)
    if authority.needs_responders(request, settings):
        responders = await responders_in_force(memo, request, namespace or "")
    verdict = authority.admit(request, responders, settings)
    if not verdict.allowed:
        log.warning(
            "admission.denied",
            kind=kind.value,
            namespace=namespace,
            name=name,
            user=request.caller.username,
            operation=operation,
            reason=verdict.reason,
        )
        raise kopf.AdmissionError(verdict.reason, code=403)
    log.info("admission.allowed", kind=kind.value, namespace=namespace, name=name, user=request.caller.username)


def _mutate(
    kind: authority.Kind,
    operation: str | None,
    old: kopf.Body | None,
    new: kopf.Body | None,
    userinfo: Mapping[str, Any],
    patch: kopf.Patch,
    memo: kopf.Memo,
) -> None:
    changes = authority.mutate(_request(kind, operation, old, new, userinfo), _settings(memo))
    for key, value in changes.items():
        patch.meta.annotations[key] = value


@kopf.on.validate(GROUP, VERSION, "aisystems", id="validate-aisystem", operations=["CREATE", "UPDATE"])
async def validate_aisystem(
    *,
    userinfo: kopf.UserInfo,
    namespace: str | None,
    name: str | None,
    memo: kopf.Memo,
    operation: str | None = None,
    old: kopf.Body | None = None,
    new: kopf.Body | None = None,
    **_: Any,
) -> None:
    await _validate(authority.Kind.AISYSTEM, operation, old, new, userinfo, namespace, name, memo)


@kopf.on.validate(GROUP, VERSION, "aiincidents", id="validate-aiincident", operations=["CREATE", "UPDATE"])
async def validate_aiincident(
    *,
    userinfo: kopf.UserInfo,
    namespace: str | None,
    name: str | None,
    memo: kopf.Memo,
    operation: str | None = None,
    old: kopf.Body | None = None,
    new: kopf.Body | None = None,
    **_: Any,
) -> None:
    await _validate(authority.Kind.AIINCIDENT, operation, old, new, userinfo, namespace, name, memo)


@kopf.on.validate(
    GROUP, VERSION, "containmentpolicies", id="validate-containmentpolicy", operations=["CREATE", "UPDATE", "DELETE"]
)
async def validate_containmentpolicy(
    *,
    userinfo: kopf.UserInfo,
    name: str | None,
    memo: kopf.Memo,
    operation: str | None = None,
    old: kopf.Body | None = None,
    new: kopf.Body | None = None,
    **_: Any,
) -> None:
    await _validate(authority.Kind.CONTAINMENT_POLICY, operation, old, new, userinfo, None, name, memo)


# A ContainmentPolicy carries no control annotation: nothing to stamp on it.
@kopf.on.mutate(GROUP, VERSION, "aisystems", id="stamp-aisystem", operations=["CREATE", "UPDATE"])
def stamp_aisystem(
    *,
    userinfo: kopf.UserInfo,
    patch: kopf.Patch,
    memo: kopf.Memo,
    operation: str | None = None,
    old: kopf.Body | None = None,
    new: kopf.Body | None = None,
    **_: Any,
) -> None:
    _mutate(authority.Kind.AISYSTEM, operation, old, new, userinfo, patch, memo)


@kopf.on.mutate(GROUP, VERSION, "aiincidents", id="stamp-aiincident", operations=["CREATE", "UPDATE"])
def stamp_aiincident(
    *,
    userinfo: kopf.UserInfo,
    patch: kopf.Patch,
    memo: kopf.Memo,
    operation: str | None = None,
    old: kopf.Body | None = None,
    new: kopf.Body | None = None,
    **_: Any,
) -> None:
    _mutate(authority.Kind.AIINCIDENT, operation, old, new, userinfo, patch, memo)
