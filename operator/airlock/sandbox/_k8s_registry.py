"""Which API resources the sandbox serves, and how their names resolve.

Discovery drives everything a client does: kubectl maps ``deploy`` or ``airlock`` to
resources through it, Kopf picks the ``/status`` subresource for status patches only if
discovery lists it, and client-go's scale client reads the group/version of ``Scale`` from
the ``deployments/scale`` entry. So each resource is described once, here, with the same
facts a real API server publishes (kind, singular, short names, categories, verbs,
namespaced, subresources), and both discovery and the request router use this registry.

Custom resources enter the registry when a CustomResourceDefinition is written (see
:func:`types_from_crd`) and leave it when the CRD is deleted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

STANDARD_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
_VERSION = re.compile(r"^v(?P<major>\d+)(?:(?P<stage>alpha|beta)(?P<minor>\d+))?$")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key (descending) that mirrors Kubernetes: GA > beta > alpha, then by number."""
    match = _VERSION.match(version)
    if not match:
        return (0, 0, 0, version)
    stage = {None: 3, "beta": 2, "alpha": 1}[match["stage"]]
    return (stage, int(match["major"]), int(match["minor"] or 0), "")


def sort_versions(versions: Iterable[str]) -> list[str]:
    unique = set(versions)
    known = sorted((v for v in unique if _VERSION.match(v)), key=version_priority, reverse=True)
    return known + sorted(v for v in unique if not _VERSION.match(v))


@dataclass(frozen=True)
class ScaleSubresource:
    spec_replicas_path: str = ".spec.replicas"
    status_replicas_path: str = ".status.replicas"
    # None for the built-in workloads: their selector is rendered from `.spec.selector`.
    label_selector_path: str | None = None


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    type: str
    json_path: str
    description: str = ""
    priority: int = 0
    format: str = ""


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    list_kind: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = STANDARD_VERBS
    status: bool = False
    scale: ScaleSubresource | None = None
    extra_subresources: tuple[str, ...] = ()
    # CRD-backed resources keep objects under one storage version, served under all versions.
    storage_version: str = ""
    custom: bool = False
    printer_columns: tuple[PrinterColumn, ...] = ()
    # Not persisted (e.g. SelfSubjectReview): writes are answered, never stored.
    virtual: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def effective_list_kind(self) -> str:
        return self.list_kind or f"{self.kind}List"

    @property
    def effective_singular(self) -> str:
        return self.singular or self.kind.lower()

    @property
    def effective_storage_version(self) -> str:
        return self.storage_version or self.version

    @property
    def subresources(self) -> tuple[str, ...]:
        names = (("status",) if self.status else ()) + (("scale",) if self.scale else ())
        return names + self.extra_subresources


def _builtin(
    group: str,
    version: str,
    plural: str,
    kind: str,
    *,
    namespaced: bool = True,
    short: tuple[str, ...] = (),
    categories: tuple[str, ...] = (),
    status: bool = False,
    scale: bool = False,
    verbs: tuple[str, ...] = STANDARD_VERBS,
    extra: tuple[str, ...] = (),
    virtual: bool = False,
) -> ResourceType:
    return ResourceType(
        group=group,
        version=version,
        plural=plural,
        kind=kind,
        namespaced=namespaced,
        singular=kind.lower(),
        short_names=short,
        categories=categories,
        verbs=verbs,
        status=status,
        scale=ScaleSubresource() if scale else None,
        extra_subresources=extra,
        virtual=virtual,
    )


_NO_COLLECTION_DELETE = tuple(v for v in STANDARD_VERBS if v != "deletecollection")
_EXT = ("api-extensions",)

BUILTIN_TYPES: tuple[ResourceType, ...] = (
    _builtin(
        "", "v1", "namespaces", "Namespace", namespaced=False, short=("ns",), status=True,
        verbs=_NO_COLLECTION_DELETE, extra=("finalize",),
    ),
    _builtin("", "v1", "pods", "Pod", short=("po",), categories=("all",), status=True),
    _builtin("", "v1", "services", "Service", short=("svc",), categories=("all",), status=True,
             verbs=_NO_COLLECTION_DELETE),
    _builtin("", "v1", "configmaps", "ConfigMap", short=("cm",)),
    _builtin("", "v1", "secrets", "Secret"),
    _builtin("", "v1", "events", "Event", short=("ev",)),
    _builtin("", "v1", "serviceaccounts", "ServiceAccount", short=("sa",)),
    _builtin("", "v1", "endpoints", "Endpoints", short=("ep",)),
    _builtin("apps", "v1", "deployments", "Deployment", short=("deploy",), categories=("all",),
             status=True, scale=True),
    _builtin("apps", "v1", "statefulsets", "StatefulSet", short=("sts",), categories=("all",),
             status=True, scale=True),
    _builtin("apps", "v1", "replicasets", "ReplicaSet", short=("rs",), categories=("all",),
             status=True, scale=True),
    _builtin("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", short=("netpol",)),
    _builtin("events.k8s.io", "v1", "events", "Event", short=("ev",)),
    _builtin("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", short=("hpa",),
             categories=("all",), status=True),
    _builtin("coordination.k8s.io", "v1", "leases", "Lease"),
    _builtin("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition",
             namespaced=False, short=("crd", "crds"), categories=_EXT, status=True),
    _builtin("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations",
             "ValidatingWebhookConfiguration", namespaced=False, categories=_EXT),
    _builtin("admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations",
             "MutatingWebhookConfiguration", namespaced=False, categories=_EXT),
    _builtin("admissionregistration.k8s.io", "v1", "validatingadmissionpolicies",
             "ValidatingAdmissionPolicy", namespaced=False, categories=_EXT, status=True),
    _builtin("admissionregistration.k8s.io", "v1", "validatingadmissionpolicybindings",
             "ValidatingAdmissionPolicyBinding", namespaced=False, categories=_EXT),
    _builtin("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    _builtin("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    _builtin("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced=False),
    _builtin("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False),
    _builtin("authentication.k8s.io", "v1", "selfsubjectreviews", "SelfSubjectReview", namespaced=False,
             verbs=("create",), virtual=True),
)  # fmt: skip


@dataclass
class Registry:
    """All served resources, keyed by (group, version, plural)."""

    _types: dict[tuple[str, str, str], ResourceType] = field(default_factory=dict)
    # Bumped on every change, so that discovery caches and open watches can notice.
    revision: int = 0

    def register(self, resource: ResourceType) -> None:
        self._types[resource.group, resource.version, resource.plural] = resource
        self.revision += 1

    def unregister(self, group: str, plural: str) -> list[ResourceType]:
        gone = [rt for key, rt in self._types.items() if key[0] == group and key[2] == plural]
        for rt in gone:
            del self._types[rt.group, rt.version, rt.plural]
        self.revision += 1
        return gone

    def get(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._types.get((group, version, plural))

    def all(self) -> list[ResourceType]:
        return list(self._types.values())

    def versions(self, group: str) -> list[str]:
        """Served versions of a group, the preferred one first."""
        return sort_versions(rt.version for rt in self._types.values() if rt.group == group)

    def groups(self) -> list[str]:
        seen: dict[str, None] = {}
        for rt in self._types.values():
            seen.setdefault(rt.group, None)
        return list(seen)

    def preferred(self, group: str, plural: str) -> ResourceType | None:
        for version in self.versions(group):
            if rt := self.get(group, version, plural):
                return rt
        return None

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        for rt in self._types.values():
            if rt.group == group and rt.version == version and rt.kind == kind:
                return rt
        return None

    def resolve(self, name: str) -> ResourceType:
        """Find a resource by any name a human would type (as kubectl does).

        Accepts ``group/version/plural``, ``v1/pods``, ``plural.group``,
        ``plural.version.group``, or a bare plural, singular, short name or kind.
        The core group wins ties (``events`` is the core Event), then the preferred version.
        """
        candidates: list[ResourceType]
        if "/" in name:
            parts = name.split("/")
            if len(parts) == 2:
                parts = ["", *parts]
            group, version, plural = parts[-3], parts[-2], parts[-1]
            candidates = [
                rt for rt in self._types.values() if (rt.group, rt.version, rt.plural) == (group, version, plural)
            ]
        elif "." in name:
            plural, rest = name.split(".", 1)
            version, _, group = rest.partition(".")
            if not _VERSION.match(version):
                version, group = "", rest
            candidates = [
                rt
                for rt in self._types.values()
                if rt.plural == plural and rt.group == group and (not version or rt.version == version)
            ]
        else:
            lowered = name.lower()
            candidates = [
                rt
                for rt in self._types.values()
                if lowered in (rt.plural, rt.effective_singular, rt.kind.lower(), *rt.short_names)
            ]
        if not candidates:
            raise LookupError(f"the sandbox serves no resource named {name!r}")

        def rank(rt: ResourceType) -> tuple[bool, str, int]:
            return (rt.group != "", rt.group, self.versions(rt.group).index(rt.version))

        return min(candidates, key=rank)


def _crd_invalid(message: str) -> ValueError:
    return ValueError(message)


def _parse_printer_columns(columns: Any) -> tuple[PrinterColumn, ...]:
    result: list[PrinterColumn] = []
    for column in columns or []:
        if not isinstance(column, Mapping) or "name" not in column or "jsonPath" not in column:
            continue
        result.append(
            PrinterColumn(
                name=str(column["name"]),
                type=str(column.get("type", "string")),
                json_path=str(column["jsonPath"]),
                description=str(column.get("description", "")),
                priority=int(column.get("priority", 0)),
                format=str(column.get("format", "")),
            )
        )
    return tuple(result)


def types_from_crd(crd: Mapping[str, Any]) -> list[ResourceType]:
    """The resources a CRD declares, one per served version; ValueError if it is malformed."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group")
    plural = names.get("plural")
    kind = names.get("kind")
    if not group or not plural or not kind:
        raise _crd_invalid("spec.group, spec.names.plural and spec.names.kind are required")
    expected_name = f"{plural}.{group}"
    if (crd.get("metadata") or {}).get("name") != expected_name:
        raise _crd_invalid(f'metadata.name must be spec.names.plural+"."+spec.group: {expected_name!r}')
    scope = spec.get("scope", "Namespaced")
    if scope not in ("Namespaced", "Cluster"):
        raise _crd_invalid("spec.scope must be Namespaced or Cluster")
    versions = [v for v in spec.get("versions") or [] if isinstance(v, Mapping) and v.get("name")]
    if not versions:
        raise _crd_invalid("spec.versions must declare at least one version")
    storage = [v["name"] for v in versions if v.get("storage")]
    if len(storage) != 1:
        raise _crd_invalid("exactly one of spec.versions must have storage=true")
    result: list[ResourceType] = []
    for version in versions:
        if not version.get("served", True):
            continue
        subresources = version.get("subresources") or {}
        scale_spec = subresources.get("scale")
        scale = (
            ScaleSubresource(
                spec_replicas_path=scale_spec.get("specReplicasPath", ".spec.replicas"),
                status_replicas_path=scale_spec.get("statusReplicasPath", ".status.replicas"),
                label_selector_path=scale_spec.get("labelSelectorPath"),
            )
            if isinstance(scale_spec, Mapping)
            else None
        )
        result.append(
            ResourceType(
                group=group,
                version=version["name"],
                plural=plural,
                kind=kind,
                namespaced=scope == "Namespaced",
                singular=names.get("singular") or kind.lower(),
                list_kind=names.get("listKind") or f"{kind}List",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                status="status" in subresources,
                scale=scale,
                storage_version=storage[0],
                custom=True,
                printer_columns=_parse_printer_columns(version.get("additionalPrinterColumns")),
            )
        )
    return result
