"""API discovery documents (``/api``, ``/apis``, ``/apis/<group>[/<version>]``).

kmock 0.8 reports the core group as ``/v1`` and omits verbs, short names, categories and
subresources; kubectl then cannot resolve ``deploy`` or ``airlock`` and Kopf cannot find
``/status``. These renderers publish the legacy (non-aggregated) discovery format from
the :class:`~airlock.sandbox._k8s_registry.Registry`. Clients that ask for aggregated
discovery (``apidiscovery.k8s.io/v2``) get this format too and fall back to it, as they do
with older servers.
"""

from __future__ import annotations

from typing import Any

from airlock.sandbox._k8s_registry import Registry, ResourceType

_SUBRESOURCE_VERBS = ["get", "patch", "update"]


def core_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _group(registry: Registry, group: str) -> dict[str, Any]:
    versions = [{"groupVersion": f"{group}/{version}", "version": version} for version in registry.versions(group)]
    return {"name": group, "versions": versions, "preferredVersion": versions[0]}


def group_list(registry: Registry) -> dict[str, Any]:
    groups = [_group(registry, group) for group in registry.groups() if group]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def group(registry: Registry, name: str) -> dict[str, Any] | None:
    if not name or not registry.versions(name):
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(registry, name)}


def _entries(rt: ResourceType) -> list[dict[str, Any]]:
    main: dict[str, Any] = {
        "name": rt.plural,
        "singularName": rt.effective_singular,
        "namespaced": rt.namespaced,
        "kind": rt.kind,
        "verbs": list(rt.verbs),
    }
    if rt.short_names:
        main["shortNames"] = list(rt.short_names)
    if rt.categories:
        main["categories"] = list(rt.categories)
    entries = [main]
    base = {"singularName": "", "namespaced": rt.namespaced}
    if rt.status:
        entries.append({"name": f"{rt.plural}/status", **base, "kind": rt.kind, "verbs": _SUBRESOURCE_VERBS})
    if rt.scale:
        # client-go's scale client reads the Scale kind's group/version from this entry.
        entries.append(
            {
                "name": f"{rt.plural}/scale",
                **base,
                "group": "autoscaling",
                "version": "v1",
                "kind": "Scale",
                "verbs": _SUBRESOURCE_VERBS,
            }
        )
    for extra in rt.extra_subresources:
        entries.append({"name": f"{rt.plural}/{extra}", **base, "kind": rt.kind, "verbs": ["update"]})
    return entries


def resource_list(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    types = [rt for rt in registry.all() if rt.group == group and rt.version == version]
    if not types:
        return None
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": [entry for rt in types for entry in _entries(rt)],
    }


def root_paths(registry: Registry) -> dict[str, Any]:
    paths = {"/api", "/api/v1", "/apis", "/version", "/healthz", "/livez", "/readyz"}
    for group_name in registry.groups():
        if group_name:
            paths.add(f"/apis/{group_name}")
            paths.update(f"/apis/{group_name}/{version}" for version in registry.versions(group_name))
    return {"paths": sorted(paths)}
