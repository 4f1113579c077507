"""Server-side printing: ``meta.k8s.io/v1`` Tables for ``kubectl get``.

Since kubectl left the main repository it has no printers for built-in kinds; it asks the
server for a Table (``Accept: application/json;as=Table;v=v1;g=meta.k8s.io``) and prints
the cells. Without this, ``kubectl get deploy`` in the demo shows only NAME and AGE. The
columns here follow the upstream printers for the kinds airlock touches; CRDs use their
``additionalPrinterColumns`` (a JSONPath subset: fields, indexes, ``[*]`` and
``[?(@.k=="v")]`` filters); everything else gets NAME and AGE.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from airlock.sandbox._k8s_objects import JSONObject, get_path
from airlock.sandbox._k8s_registry import PrinterColumn, ResourceType
from airlock.sandbox._k8s_selectors import format_label_selector

Cell = Callable[[Mapping[str, Any]], Any]
_NAME_COLUMN = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "description": "Name must be unique within a namespace.",
    "priority": 0,
}


def wants_table(accept: str) -> bool:
    return "as=Table" in accept and "g=meta.k8s.io" in accept


def human_duration(seconds: float) -> str:
    """apimachinery's ``duration.HumanDuration``, the format of every AGE column."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m" if s % 60 == 0 else f"{minutes}m{s % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 192:
        return f"{hours // 24}d" if hours % 24 == 0 else f"{hours // 24}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    years, days = hours // (24 * 365), (hours // 24) % 365
    if hours < 24 * 365 * 8:
        return f"{years}y" if days == 0 else f"{years}y{days}d"
    return f"{years}y"


def _age(timestamp: Any) -> str:
    if not isinstance(timestamp, str) or not timestamp:
        return "<unknown>"
    try:
        then = datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return "<invalid>"
    return human_duration((datetime.datetime.now(datetime.UTC) - then).total_seconds())


def _created(obj: Mapping[str, Any]) -> str:
    return _age((obj.get("metadata") or {}).get("creationTimestamp"))


def _containers(obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return get_path(obj, ".spec.template.spec.containers") or []


def _join(values: list[Any]) -> str:
    return ",".join(str(v) for v in values) or "<none>"


def _col(name: str, kind: str, cell: Cell, priority: int = 0) -> tuple[dict[str, Any], Cell]:
    return {"name": name, "type": kind, "format": "", "description": "", "priority": priority}, cell


_AGE = _col("Age", "string", _created)
_WORKLOAD_WIDE = [
    _col("Containers", "string", lambda o: _join([c.get("name") for c in _containers(o)]), 1),
    _col("Images", "string", lambda o: _join([c.get("image") for c in _containers(o)]), 1),
    _col("Selector", "string", lambda o: format_label_selector(get_path(o, ".spec.selector")) or "<none>", 1),
]


def _int(path: str) -> Cell:
    return lambda o: get_path(o, path) or 0


def _ports(obj: Mapping[str, Any]) -> str:
    ports = get_path(obj, ".spec.ports") or []
    return _join([f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in ports])


def _pod_ready(obj: Mapping[str, Any]) -> str:
    statuses = get_path(obj, ".status.containerStatuses") or []
    total = len(get_path(obj, ".spec.containers") or [])
    return f"{sum(1 for s in statuses if s.get('ready'))}/{total}"


def _event_object(obj: Mapping[str, Any]) -> str:
    involved = obj.get("involvedObject") or obj.get("regarding") or {}
    return f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}"


_BUILTIN: dict[tuple[str, str], list[tuple[dict[str, Any], Cell]]] = {
    ("apps", "deployments"): [
        _col(
            "Ready",
            "string",
            lambda o: f"{get_path(o, '.status.readyReplicas') or 0}/{get_path(o, '.spec.replicas') or 0}",
        ),
        _col("Up-to-date", "integer", _int(".status.updatedReplicas")),
        _col("Available", "integer", _int(".status.availableReplicas")),
        _AGE,
        *_WORKLOAD_WIDE,
    ],
    ("apps", "statefulsets"): [
        _col(
            "Ready",
            "string",
            lambda o: f"{get_path(o, '.status.readyReplicas') or 0}/{get_path(o, '.spec.replicas') or 0}",
        ),
        _AGE,
        *_WORKLOAD_WIDE[:2],
    ],
    ("apps", "replicasets"): [
        _col("Desired", "integer", _int(".spec.replicas")),
        _col("Current", "integer", _int(".status.replicas")),
        _col("Ready", "integer", _int(".status.readyReplicas")),
        _AGE,
        *_WORKLOAD_WIDE,
    ],
    ("", "pods"): [
        _col("Ready", "string", _pod_ready),
        _col("Status", "string", lambda o: get_path(o, ".status.phase") or "Pending"),
        _col(
            "Restarts",
            "string",
            lambda o: str(sum(s.get("restartCount", 0) for s in get_path(o, ".status.containerStatuses") or [])),
        ),
        _AGE,
        _col("IP", "string", lambda o: get_path(o, ".status.podIP") or "<none>", 1),
        _col("Node", "string", lambda o: get_path(o, ".spec.nodeName") or "<none>", 1),
    ],
    ("", "services"): [
        _col("Type", "string", lambda o: get_path(o, ".spec.type") or "ClusterIP"),
        _col("Cluster-IP", "string", lambda o: get_path(o, ".spec.clusterIP") or "<none>"),
        _col("External-IP", "string", lambda o: _join(get_path(o, ".spec.externalIPs") or [])),
        _col("Port(s)", "string", _ports),
        _AGE,
        _col(
            "Selector",
            "string",
            lambda o: (
                ",".join(f"{k}={v}" for k, v in sorted((get_path(o, ".spec.selector") or {}).items())) or "<none>"
            ),
            1,
        ),
    ],
    ("", "configmaps"): [
        _col("Data", "integer", lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {})),
        _AGE,
    ],
    ("", "secrets"): [
        _col("Type", "string", lambda o: o.get("type") or "Opaque"),
        _col("Data", "integer", lambda o: len(o.get("data") or {}) + len(o.get("stringData") or {})),
        _AGE,
    ],
    ("", "namespaces"): [_col("Status", "string", lambda o: get_path(o, ".status.phase") or "Active"), _AGE],
    ("", "serviceaccounts"): [_col("Secrets", "integer", lambda o: len(o.get("secrets") or [])), _AGE],
    ("", "events"): [
        _col("Last Seen", "string", lambda o: _age(o.get("lastTimestamp") or o.get("eventTime"))),
        _col("Type", "string", lambda o: o.get("type", "")),
        _col("Reason", "string", lambda o: o.get("reason", "")),
        _col("Object", "string", _event_object),
        _col("Message", "string", lambda o: o.get("message", "")),
    ],
    ("events.k8s.io", "events"): [
        _col("Last Seen", "string", lambda o: _age(o.get("eventTime") or o.get("deprecatedLastTimestamp"))),
        _col("Type", "string", lambda o: o.get("type", "")),
        _col("Reason", "string", lambda o: o.get("reason", "")),
        _col("Object", "string", _event_object),
        _col("Message", "string", lambda o: o.get("note", "")),
    ],
    ("networking.k8s.io", "networkpolicies"): [
        _col("Pod-Selector", "string", lambda o: format_label_selector(get_path(o, ".spec.podSelector")) or "<none>"),
        _AGE,
    ],
    ("coordination.k8s.io", "leases"): [
        _col("Holder", "string", lambda o: get_path(o, ".spec.holderIdentity") or ""),
        _AGE,
    ],
    ("autoscaling", "horizontalpodautoscalers"): [
        _col(
            "Reference",
            "string",
            lambda o: f"{get_path(o, '.spec.scaleTargetRef.kind')}/{get_path(o, '.spec.scaleTargetRef.name')}",
        ),
        _col("MinPods", "integer", lambda o: get_path(o, ".spec.minReplicas") or 1),
        _col("MaxPods", "integer", _int(".spec.maxReplicas")),
        _col("Replicas", "integer", _int(".status.currentReplicas")),
        _AGE,
    ],
    ("apiextensions.k8s.io", "customresourcedefinitions"): [
        _col("Created At", "date", lambda o: (o.get("metadata") or {}).get("creationTimestamp", "")),
    ],
}


_TOKEN = re.compile(r"\.([A-Za-z0-9_\-]+)|\[(\d+|\*)\]|\[\?\(@\.([A-Za-z0-9_.\-]+)\s*==\s*[\"']([^\"']*)[\"']\)\]")


def jsonpath(obj: Any, path: str) -> list[Any]:
    """Evaluate the JSONPath subset CRD printer columns use; returns all matches."""
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    path = path.lstrip("$")
    nodes = [obj]
    position = 0
    while position < len(path):
        match = _TOKEN.match(path, position)
        if not match:
            return []
        position = match.end()
        field, index, filter_key, filter_value = match.groups()
        next_nodes: list[Any] = []
        for node in nodes:
            if field is not None and isinstance(node, Mapping) and field in node:
                next_nodes.append(node[field])
            elif index == "*" and isinstance(node, list):
                next_nodes.extend(node)
            elif index is not None and index != "*" and isinstance(node, list) and int(index) < len(node):
                next_nodes.append(node[int(index)])
            elif filter_key is not None and isinstance(node, list):
                next_nodes.extend(item for item in node if str(get_path(item, filter_key)) == filter_value)
        nodes = next_nodes
    return nodes


def _custom_cell(obj: Mapping[str, Any], column: PrinterColumn) -> Any:
    values = jsonpath(obj, column.json_path)
    if not values:
        return None
    value = values[0] if len(values) == 1 else values
    if column.type == "date" and isinstance(value, str):
        return _age(value)
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return value


def _columns(rt: ResourceType) -> list[tuple[dict[str, Any], Cell]]:
    if rt.custom:
        if not rt.printer_columns:
            return [_AGE]
        return [
            (
                {
                    "name": c.name,
                    # Date cells are rendered as ages, so kubectl must print them as strings.
                    "type": "string" if c.type == "date" else c.type,
                    "format": c.format,
                    "description": c.description,
                    "priority": c.priority,
                },
                lambda o, c=c: _custom_cell(o, c),  # type: ignore[misc]
            )
            for c in rt.printer_columns
        ]
    return _BUILTIN.get((rt.group, rt.plural), [_AGE])


def _row_object(obj: JSONObject, include: str) -> JSONObject | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata", {})}


def table(
    rt: ResourceType,
    objects: list[JSONObject],
    *,
    include_object: str = "PartialObjectMetadata",
    list_metadata: JSONObject | None = None,
) -> JSONObject:
    columns = _columns(rt)
    rows = []
    for obj in objects:
        row: JSONObject = {"cells": [(obj.get("metadata") or {}).get("name", "")] + [cell(obj) for _, cell in columns]}
        row_object = _row_object(obj, include_object)
        if row_object is not None:
            row["object"] = row_object
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_metadata or {},
        "columnDefinitions": [_NAME_COLUMN] + [definition for definition, _ in columns],
        "rows": rows,
    }
