"""Small object-level rules of the API server: metadata, defaults, paths, Scale views.

These are the bits of behaviour that clients silently rely on and that a plain JSON
store lacks: server-set metadata (uid, creationTimestamp, generateName suffixes), the
``metadata.generation`` rule (bumped only by changes outside metadata and status), the
defaults that kubectl's printers and ``rollout`` commands read back (Deployment replicas,
Namespace phase and name label), and the ``autoscaling/v1`` Scale view of workloads.
"""

from __future__ import annotations

import copy
import datetime
import random
import re
from collections.abc import Mapping
from typing import Any

from airlock.sandbox._k8s_registry import ResourceType
from airlock.sandbox._k8s_selectors import format_label_selector

JSONObject = dict[str, Any]

# Characters of generateName suffixes: no vowels and no look-alikes, as in apimachinery.
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_random = random.Random()


def now() -> str:
    """The current time in the second-precision RFC 3339 form the API server uses."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def generated_name(prefix: str) -> str:
    return prefix + "".join(_random.choice(_SUFFIX_ALPHABET) for _ in range(5))


def name_problem(rt: ResourceType, name: str) -> str | None:
    """Why ``name`` is not a valid object name for this resource, or None if it is."""
    if rt.group == "rbac.authorization.k8s.io":
        # RBAC names are path segments (e.g. "system:controller:foo").
        bad = name in (".", "..") or "/" in name or "%" in name
        return "may not contain '/' or '%'" if bad else None
    if rt.plural == "namespaces":
        ok = len(name) <= 63 and _DNS_LABEL.match(name)
        return None if ok else "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'"
    if len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        return (
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
            "'-' or '.', and must start and end with an alphanumeric character"
        )
    return None


def _steps(path: str) -> list[str]:
    # Paths as CRDs declare them for scale subresources and printer columns: ".spec.replicas".
    return [step for step in path.strip().lstrip(".").split(".") if step]


def get_path(obj: Any, path: str) -> Any:
    value = obj
    for step in _steps(path):
        if isinstance(value, Mapping):
            value = value.get(step)
        elif isinstance(value, list) and step.isdigit() and int(step) < len(value):
            value = value[int(step)]
        else:
            return None
    return value


def set_path(obj: JSONObject, path: str, value: Any) -> None:
    steps = _steps(path)
    node = obj
    for step in steps[:-1]:
        child = node.get(step)
        if not isinstance(child, dict):
            child = node[step] = {}
        node = child
    node[steps[-1]] = value


def without_metadata_and_status(obj: Mapping[str, Any]) -> JSONObject:
    return {key: value for key, value in obj.items() if key not in ("metadata", "status")}


def meaningful(obj: Mapping[str, Any]) -> JSONObject:
    """The object without the fields every write changes, for detecting no-op writes."""
    result = dict(obj)
    metadata = dict(result.get("metadata") or {})
    metadata.pop("resourceVersion", None)
    metadata.pop("managedFields", None)
    result["metadata"] = metadata
    return result


def apply_defaults(rt: ResourceType, obj: JSONObject, *, creating: bool) -> None:
    """The API server's defaulting for the few fields that clients read back."""
    metadata = obj.setdefault("metadata", {})
    if (rt.group, rt.plural) == ("", "namespaces"):
        # Set by the API server since 1.21; NetworkPolicy namespaceSelectors rely on it.
        metadata.setdefault("labels", {})["kubernetes.io/metadata.name"] = metadata.get("name")
        if creating:
            obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
            obj.setdefault("status", {}).setdefault("phase", "Active")
    elif (rt.group, rt.plural) in (("apps", "deployments"), ("apps", "statefulsets"), ("apps", "replicasets")):
        spec = obj.setdefault("spec", {})
        if spec.get("replicas") is None:
            spec["replicas"] = 1
    elif (rt.group, rt.plural) == ("", "services"):
        obj.setdefault("spec", {}).setdefault("type", "ClusterIP")


def scale_view(rt: ResourceType, obj: Mapping[str, Any]) -> JSONObject:
    """The ``autoscaling/v1`` Scale that ``GET <resource>/<name>/scale`` returns."""
    assert rt.scale is not None
    metadata = obj.get("metadata") or {}
    if rt.scale.label_selector_path is not None:
        selector = get_path(obj, rt.scale.label_selector_path) or ""
    else:
        selector = format_label_selector(get_path(obj, ".spec.selector"))
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            key: metadata[key]
            for key in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if key in metadata
        },
        "spec": {"replicas": get_path(obj, rt.scale.spec_replicas_path) or 0},
        "status": {"replicas": get_path(obj, rt.scale.status_replicas_path) or 0, "selector": selector},
    }


def crd_status(crd: Mapping[str, Any], previous: Mapping[str, Any] | None = None) -> JSONObject:
    """What the CRD controllers would write: names accepted, established, stored versions.

    Conditions keep their ``lastTransitionTime`` from ``previous`` (the old status), so that
    re-applying an unchanged CRD is a no-op write.
    """
    spec = crd.get("spec") or {}
    names = copy.deepcopy(spec.get("names") or {})
    names.setdefault("singular", str(names.get("kind", "")).lower())
    names.setdefault("listKind", f"{names.get('kind', '')}List")
    timestamp = now()
    stored = [v["name"] for v in spec.get("versions") or [] if isinstance(v, Mapping) and v.get("storage")]
    since = {
        (c.get("type"), c.get("status")): c.get("lastTransitionTime")
        for c in (previous or {}).get("conditions") or []
        if isinstance(c, Mapping)
    }
    stored = sorted(set(stored) | set((previous or {}).get("storedVersions") or []))
    return {
        "acceptedNames": names,
        "conditions": [
            {
                "type": "NamesAccepted",
                "status": "True",
                "reason": "NoConflicts",
                "message": "no conflicts found",
                "lastTransitionTime": since.get(("NamesAccepted", "True")) or timestamp,
            },
            {
                "type": "Established",
                "status": "True",
                "reason": "InitialNamesAccepted",
                "message": "the initial names have been accepted",
                "lastTransitionTime": since.get(("Established", "True")) or timestamp,
            },
        ],
        "storedVersions": stored,
    }


def present(rt: ResourceType, obj: JSONObject) -> JSONObject:
    """The stored object as seen through ``rt``'s version (CRDs serve one storage under all)."""
    if obj.get("apiVersion") == rt.api_version:
        return obj
    return {**obj, "apiVersion": rt.api_version}
