"""airlock's admission webhooks inside the sandbox API server (SPEC §4).

The sandbox evaluates no webhook configurations; this hook makes it behave
like a cluster with ``policies/admission/webhook.yaml`` installed: the same
pure functions as the Kopf webhook (``authority.mutate`` stamps
``airlock.dev/requested-by``, ``authority.admit`` decides), with responders
read from the sandbox's own store.  A refusal is a 403 whose message says who
may, as ``kubectl`` shows it::

    cluster = SandboxCluster()
    admission.install(cluster)                       # or ClusterThread(cluster)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

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
