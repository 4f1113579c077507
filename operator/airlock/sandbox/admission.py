"""airlock's admission inside the sandbox API server (SPEC §4), three ways.

* :class:`AuthorityHook` (``install(cluster)``): a Python hook calling the same pure
  functions as the Kopf webhook (``authority.mutate`` stamps ``airlock.dev/requested-by``,
  ``authority.admit`` decides), with responders read from the sandbox's own store. Fast,
  no operator needed; a refusal is a 403 whose message says who may::

      cluster = SandboxCluster()
      admission.install(cluster)                       # or ClusterThread(cluster)

* :func:`shipped_policies`: the ValidatingAdmissionPolicies of
  ``policies/admission/validating-admission-policy.yaml`` as the Helm chart renders them
  (admin groups, the operator's username), for the sandbox to evaluate like a real API server.

* :func:`shipped_webhooks`: ``policies/admission/webhook.yaml`` as the chart renders it,
  with ``clientConfig.url`` pointing at a running operator (``airlock run --webhook-port``)
  and its CA as ``caBundle``: the sandbox then calls the real webhook over HTTPS.

The last two start from the text :mod:`airlock.api.admission` generates (the same as the
files under ``policies/admission/``, held to them by ``make crds-check``).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from airlock.api import admission as manifests
from airlock.api.matrix import Responder
from airlock.domain import authority
from airlock.sandbox.cluster import AdmissionDenied, ResourceRef, SandboxCluster, UserInfo

GROUP = "airlock.dev"
_KINDS = {kind.value: kind for kind in authority.Kind}


@dataclass
class AuthorityHook:
    """A ``SandboxCluster.admission`` hook: the mutating then the validating webhook, for airlock's kinds."""

    cluster: SandboxCluster
    settings: authority.AdmissionSettings = field(default_factory=authority.AdmissionSettings)

    def __call__(
        self,
        operation: str,
        resource: ResourceRef,
        old: dict[str, Any] | None,
        new: dict[str, Any] | None,
        user: UserInfo,
    ) -> dict[str, Any] | None:
        kind = _KINDS.get(resource.kind)
        if resource.group != GROUP or resource.subresource or kind is None:
            return None
        caller = authority.Caller(user.username, tuple(user.groups))
        request = authority.AdmissionRequest(operation=operation, kind=kind, old=old, new=new, caller=caller)
        changes = authority.mutate(request, self.settings)
        if changes and new is not None:
            new = authority.with_annotations(new, changes)
            request = authority.AdmissionRequest(operation=operation, kind=kind, old=old, new=new, caller=caller)
        needed = authority.needs_responders(request, self.settings)
        responders = self._responders(request, resource.namespace) if needed else []
        verdict = authority.admit(request, responders, self.settings)
        if not verdict.allowed:
            # As the API server words a webhook's refusal (the names of policies/admission/webhook.yaml).
            webhook = f"{resource.resource}.authority.airlock.dev"
            raise AdmissionDenied(f'admission webhook "{webhook}" denied the request: {verdict.reason}')
        return new if changes else None

    def _responders(self, request: authority.AdmissionRequest, namespace: str | None) -> Sequence[Responder]:
        basis = authority.authority_basis(request.old, request.new)
        if request.kind is authority.Kind.CONTAINMENT_POLICY:
            return authority.inline_responders(request.old)
        if request.kind is authority.Kind.AIINCIDENT:
            name = authority.incident_system(basis)
            basis = self.cluster.get_object("aisystems.airlock.dev", namespace, name) if name else None
        return self._system_responders(basis) if basis is not None else []

    def _system_responders(self, system: Mapping[str, Any]) -> list[Responder]:
        name = authority.policy_name(system)
        policy = self.cluster.get_object("containmentpolicies.airlock.dev", None, name) if name else None
        return authority.effective_responders(authority.inline_responders(system), authority.inline_responders(policy))


def install(
    cluster: SandboxCluster,
    *,
    admin_groups: Sequence[str] = authority.DEFAULT_ADMIN_GROUPS,
    operator: str = authority.DEFAULT_OPERATOR,
) -> AuthorityHook:
    """Enforce airlock's authority rules on ``cluster`` (call before requests arrive); returns the hook."""
    hook = AuthorityHook(cluster, authority.AdmissionSettings(admin_groups=tuple(admin_groups), operator=operator))
    cluster.admission.append(hook)
    return hook


# -- the shipped manifests, rendered as charts/airlock/templates/*.yaml render them ---------------

_PLACEHOLDER_OPERATOR = f"'{manifests.DEFAULT_OPERATOR}'"


def _cel_list(items: Sequence[str]) -> str:
    return "[" + ", ".join(f"'{item}'" for item in items) + "]"


_PLACEHOLDER_ADMINS = f'expression: "{_cel_list(manifests.DEFAULT_ADMIN_GROUPS)}"'


def _shipped(name: str) -> str:
    # The chart drops the comment lines first.
    return re.sub(r"(?m)^#.*\n", "", manifests.FILES[name]())


def _documents(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def shipped_policies(
    *,
    admin_groups: Sequence[str] = authority.DEFAULT_ADMIN_GROUPS,
    operator: str = authority.DEFAULT_OPERATOR,
    fullname: str = "airlock",
) -> list[dict[str, Any]]:
    """The ValidatingAdmissionPolicies and bindings, as ``templates/admission-policy.yaml`` renders them."""
    text = _shipped("validating-admission-policy.yaml")
    text = text.replace("name: airlock-", f"name: {fullname}-").replace(
        "policyName: airlock-", f"policyName: {fullname}-"
    )
    text = text.replace(_PLACEHOLDER_ADMINS, f'expression: "{_cel_list(admin_groups)}"')
    return _documents(text.replace(_PLACEHOLDER_OPERATOR, f"'{operator}'"))


def shipped_webhooks(
    url: str,
    ca_pem: bytes,
    *,
    operator: str = authority.DEFAULT_OPERATOR,
    fullname: str = "airlock",
) -> list[dict[str, Any]]:
    """The webhook configurations of ``templates/webhook.yaml``, calling ``url`` + each webhook's path.

    ``clientConfig.service`` becomes ``clientConfig.url`` (the sandbox has no cluster network)
    and ``ca_pem`` (``airlock run --webhook-ca-dump``) the ``caBundle``.
    """
    text = _shipped("webhook.yaml")
    for suffix in ("requested-by", "authority"):
        text = text.replace(f"\n  name: airlock-{suffix}\n", f"\n  name: {fullname}-{suffix}\n")
    documents = _documents(text.replace(_PLACEHOLDER_OPERATOR, f"'{operator}'"))
    bundle = base64.b64encode(ca_pem).decode()
    for document in documents:
        for hook in document.get("webhooks") or []:
            path = (hook["clientConfig"].get("service") or {}).get("path", "/")
            hook["clientConfig"] = {"url": url.rstrip("/") + path, "caBundle": bundle}
    return documents
