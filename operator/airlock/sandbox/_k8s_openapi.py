"""The OpenAPI v3 documents (``/openapi/v3``) kubectl reads before it writes.

``kubectl apply``/``create`` validate by default (``--validate=strict``). kubectl first
asks the server's OpenAPI v3 document of the object's group-version whether the PATCH
operation of that kind takes the ``fieldValidation`` query parameter; if it does, kubectl
sends ``fieldValidation=Strict`` and leaves validation to the server (which the sandbox
does for custom resources: :mod:`._k8s_schema`). Without these documents kubectl stops
with "failed to download openapi" unless told ``--validate=false``.

So every served group-version gets a document: its paths with the verbs the registry
allows, each operation tagged with ``x-kubernetes-group-version-kind`` and the query
parameters a real server declares, and — for custom resources — the CRD's schema under
``components.schemas`` (named like the real server's, ``dev.airlock.v1alpha1.AISystem``),
which also makes ``kubectl explain`` work for them. Built-in kinds get paths but no
schemas: kubectl then computes strategic merge patches from its own compiled-in types, as
it always did against the sandbox. ``/openapi/v2`` is not served (404): kubectl 1.27+ needs
only v3.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from airlock.sandbox._k8s_registry import Registry, ResourceType

OBJECT_META_REF = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_OBJECT_META: dict[str, Any] = {
    "description": "ObjectMeta is metadata that all persisted resources must have.",
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "Name must be unique within a namespace."},
        "generateName": {"type": "string", "description": "A prefix for a server-generated name."},
        "namespace": {"type": "string", "description": "The namespace of a namespaced object."},
        "uid": {"type": "string", "description": "The unique in time and space value for this object."},
        "resourceVersion": {"type": "string", "description": "The version of this object, for concurrency control."},
        "generation": {"type": "integer", "format": "int64", "description": "The generation of the desired state."},
        "creationTimestamp": {"type": "string", "format": "date-time", "description": "When the object was created."},
        "deletionTimestamp": {"type": "string", "format": "date-time", "description": "When deletion was asked for."},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Labels."},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Annotations."},
        "finalizers": {"type": "array", "items": {"type": "string"}, "description": "Finalizers."},
        "ownerReferences": {"type": "array", "items": {"type": "object"}, "description": "Owners of the object."},
    },
}


def _query(name: str, description: str, kind: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": {"type": kind}}


_WRITE_PARAMETERS = [
    _query("dryRun", "When present, indicates that modifications should not be persisted (All)."),
    _query("fieldManager", "A name associated with the actor or entity that is making these changes."),
    _query("fieldValidation", "How the server handles unknown or duplicate fields: Ignore, Warn or Strict."),
    _query("pretty", "If 'true', then the output is pretty printed."),
]
_PATCH_PARAMETERS = [*_WRITE_PARAMETERS, _query("force", "Force is going to force Apply requests.", "boolean")]
_READ_PARAMETERS = [_query("pretty", "If 'true', then the output is pretty printed.")]
_LIST_PARAMETERS = [
    *_READ_PARAMETERS,
    _query("labelSelector", "A selector to restrict the list of returned objects by their labels."),
    _query("fieldSelector", "A selector to restrict the list of returned objects by their fields."),
    _query("limit", "The maximum number of responses to return for a list call.", "integer"),
    _query("continue", "The continue option should be set when retrieving more results from the server."),
    _query("resourceVersion", "Which resource versions the request may be served from."),
    _query("watch", "Watch for changes to the described resources.", "boolean"),
    _query("allowWatchBookmarks", "Request watch events with type BOOKMARK.", "boolean"),
    _query("timeoutSeconds", "Timeout for the list/watch call.", "integer"),
]


def schema_name(rt: ResourceType, kind: str | None = None) -> str:
    """``dev.airlock.v1alpha1.AISystem`` for airlock.dev/v1alpha1 AISystem (reversed group, as the server does)."""
    group = ".".join(reversed(rt.group.split("."))) if rt.group else "io.k8s.api.core"
    return f"{group}.{rt.version}.{kind or rt.kind}"


def _gvk(rt: ResourceType, kind: str | None = None) -> dict[str, str]:
    return {"group": rt.group, "version": rt.version, "kind": kind or rt.kind}


def _operation(
    rt: ResourceType, action: str, verb_name: str, parameters: list[dict[str, Any]], ref: str | None
) -> dict[str, Any]:
    content: dict[str, Any] = {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}} if ref else {}
    response: dict[str, Any] = {"description": "OK"}
    if content:
        response["content"] = content
    operation: dict[str, Any] = {
        "tags": [f"{rt.group or 'core'}_{rt.version}"],
        "description": f"{verb_name} {rt.kind}",
        "operationId": f"{verb_name}{rt.kind}",
        "parameters": copy.deepcopy(parameters),
        "responses": {"200": response, "401": {"description": "Unauthorized"}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": _gvk(rt),
    }
    if action in ("post", "put", "patch"):
        operation["requestBody"] = (
            {"content": {"*/*": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}} if ref else {}
        )
    return operation


def _paths(rt: ResourceType, ref: str | None, list_ref: str | None) -> dict[str, Any]:
    base = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
    collection = f"{base}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced else f"{base}/{rt.plural}"
    item = f"{collection}/{{name}}"
    verbs = set(rt.verbs)
    paths: dict[str, Any] = {}
    ops: dict[str, Any] = {}
    if "list" in verbs:
        ops["get"] = _operation(rt, "list", "list", _LIST_PARAMETERS, list_ref)
    if "create" in verbs:
        ops["post"] = _operation(rt, "post", "create", _WRITE_PARAMETERS, ref)
    if "deletecollection" in verbs:
        ops["delete"] = _operation(rt, "deletecollection", "deletecollection", _WRITE_PARAMETERS, None)
    if ops:
        paths[collection] = ops
    ops = {}
    if "get" in verbs:
        ops["get"] = _operation(rt, "get", "read", _READ_PARAMETERS, ref)
    if "update" in verbs:
        ops["put"] = _operation(rt, "put", "replace", _WRITE_PARAMETERS, ref)
    if "patch" in verbs:
        ops["patch"] = _operation(rt, "patch", "patch", _PATCH_PARAMETERS, ref)
    if "delete" in verbs:
        ops["delete"] = _operation(rt, "delete", "delete", _WRITE_PARAMETERS, None)
    if ops:
        paths[item] = ops
    for sub in rt.subresources:
        sub_ref = ref if sub == "status" else None
        paths[f"{item}/{sub}"] = {
            "get": _operation(rt, "get", f"read{sub.capitalize()}", _READ_PARAMETERS, sub_ref),
            "put": _operation(rt, "put", f"replace{sub.capitalize()}", _WRITE_PARAMETERS, sub_ref),
            "patch": _operation(rt, "patch", f"patch{sub.capitalize()}", _PATCH_PARAMETERS, sub_ref),
        }
    return paths


def _with_object_meta(schema: Mapping[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(dict(schema))
    properties = result.setdefault("properties", {})
    properties["metadata"] = {
        "description": "Standard object's metadata.",
        "allOf": [{"$ref": f"#/components/schemas/{OBJECT_META_REF}"}],
    }
    return result


def group_version_document(
    registry: Registry, schemas: Mapping[tuple[str, str, str], Any], group: str, version: str
) -> dict[str, Any] | None:
    """The OpenAPI v3 document of one group-version, or None if it is not served.

    ``schemas`` maps (group, version, plural) to the version's ``openAPIV3Schema`` (custom resources only).
    """
    types = [rt for rt in registry.all() if (rt.group, rt.version) == (group, version)]
    if not types:
        return None
    paths: dict[str, Any] = {}
    components: dict[str, Any] = {}
    for rt in sorted(types, key=lambda rt: rt.plural):
        schema = schemas.get((rt.group, rt.version, rt.plural))
        ref = list_ref = None
        if schema is not None:
            ref, list_ref = schema_name(rt), schema_name(rt, rt.effective_list_kind)
            components[ref] = {**_with_object_meta(schema), "x-kubernetes-group-version-kind": [_gvk(rt)]}
            components[list_ref] = {
                "description": f"{rt.effective_list_kind} is a list of {rt.kind}",
                "type": "object",
                "required": ["items"],
                "properties": {
                    "apiVersion": {"type": "string", "description": "APIVersion of the list."},
                    "kind": {"type": "string", "description": "Kind of the list."},
                    "items": {"type": "array", "items": {"$ref": f"#/components/schemas/{ref}"}},
                    "metadata": {"type": "object", "description": "Standard list metadata."},
                },
                "x-kubernetes-group-version-kind": [_gvk(rt, rt.effective_list_kind)],
            }
            components[OBJECT_META_REF] = _OBJECT_META
        paths.update(_paths(rt, ref, list_ref))
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.36.0"},
        "paths": paths,
        "components": {"schemas": components},
    }


def _key(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def index(registry: Registry, schemas: Mapping[tuple[str, str, str], Any]) -> dict[str, Any]:
    """``/openapi/v3``: one entry per served group-version, with a hash that changes with the document."""
    paths: dict[str, Any] = {}
    for group in registry.groups():
        for version in registry.versions(group):
            document = group_version_document(registry, schemas, group, version)
            if document is None:
                continue
            digest = hashlib.sha512(json.dumps(document, sort_keys=True).encode()).hexdigest()[:32].upper()
            key = _key(group, version)
            paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={digest}"}
    return {"paths": paths}


def document_for_path(
    registry: Registry, schemas: Mapping[tuple[str, str, str], Any], path: str
) -> dict[str, Any] | None:
    """The document of ``/openapi/v3/api/v1`` or ``/openapi/v3/apis/<group>/<version>``, or None."""
    parts = path.strip("/").split("/")[2:]
    if len(parts) == 2 and parts[0] == "api":
        return group_version_document(registry, schemas, "", parts[1])
    if len(parts) == 3 and parts[0] == "apis":
        return group_version_document(registry, schemas, parts[1], parts[2])
    return None
