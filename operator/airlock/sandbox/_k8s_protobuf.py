"""Decoding of the protobuf request bodies that kubectl's typed clients send.

kubectl 1.37 writes some built-in objects as ``application/vnd.kubernetes.protobuf``
(``kubectl create namespace|configmap|secret|serviceaccount|deployment|service``), and
client-go has no fallback to JSON when a server refuses protobuf. The sandbox speaks JSON,
so it decodes just these kinds, with hand-written schemas (field numbers from
``k8s.io/api``'s ``generated.proto``) covering the fields those generators fill in.

Go's protobuf encoder writes every non-pointer field, so empty strings, zeros and empty
messages are dropped, as JSON's ``omitempty`` would (a few pointer fields such as
``spec.replicas`` keep their zero). A non-empty field the schema does not know makes the
request fail with 415 instead of being lost silently.
"""

from __future__ import annotations

import base64
from typing import Any

from airlock.sandbox._k8s_errors import ApiError, unsupported_media_type

MAGIC = b"k8s\x00"

# message -> field number -> (JSON name, type). Types: string, bytes, int, bool, strings
# (repeated string), map (string->string), bytesmap (string->bytes), intorstring,
# msg:<Message>, msgs:<Message> (repeated), skip (server-owned: ignored whatever it holds).
_SCHEMAS: dict[str, dict[int, tuple[str, str]]] = {
    "Unknown": {1: ("typeMeta", "msg:TypeMeta"), 2: ("raw", "bytes"), 3: ("contentEncoding", "string"),
                4: ("contentType", "string")},
    "TypeMeta": {1: ("apiVersion", "string"), 2: ("kind", "string")},
    "ObjectMeta": {
        1: ("name", "string"), 2: ("generateName", "string"), 3: ("namespace", "string"), 4: ("selfLink", "skip"),
        5: ("uid", "skip"), 6: ("resourceVersion", "string"), 7: ("generation", "skip"),
        8: ("creationTimestamp", "skip"), 9: ("deletionTimestamp", "skip"),
        10: ("deletionGracePeriodSeconds", "skip"), 11: ("labels", "map"), 12: ("annotations", "map"),
        13: ("ownerReferences", "msgs:OwnerReference"), 14: ("finalizers", "strings"), 17: ("managedFields", "skip"),
    },
    "OwnerReference": {1: ("kind", "string"), 3: ("name", "string"), 4: ("uid", "string"),
                       5: ("apiVersion", "string"), 6: ("controller", "bool"), 7: ("blockOwnerDeletion", "bool")},
    "Namespace": {1: ("metadata", "msg:ObjectMeta"), 2: ("spec", "msg:NamespaceSpec"), 3: ("status", "skip")},
    "NamespaceSpec": {1: ("finalizers", "strings")},
    "ConfigMap": {1: ("metadata", "msg:ObjectMeta"), 2: ("data", "map"), 3: ("binaryData", "bytesmap"),
                  4: ("immutable", "bool")},
    "Secret": {1: ("metadata", "msg:ObjectMeta"), 2: ("data", "bytesmap"), 3: ("type", "string"),
               4: ("stringData", "map"), 5: ("immutable", "bool")},
    "ServiceAccount": {1: ("metadata", "msg:ObjectMeta"), 2: ("secrets", "msgs:ObjectReference"),
                       3: ("imagePullSecrets", "msgs:LocalObjectReference"),
                       4: ("automountServiceAccountToken", "bool")},
    "ObjectReference": {1: ("kind", "string"), 2: ("namespace", "string"), 3: ("name", "string"),
                        4: ("uid", "string"), 5: ("apiVersion", "string")},
    "LocalObjectReference": {1: ("name", "string")},
    "Deployment": {1: ("metadata", "msg:ObjectMeta"), 2: ("spec", "msg:DeploymentSpec"), 3: ("status", "skip")},
    "DeploymentSpec": {1: ("replicas", "int"), 2: ("selector", "msg:LabelSelector"),
                       3: ("template", "msg:PodTemplateSpec"), 4: ("strategy", "msg:DeploymentStrategy"),
                       5: ("minReadySeconds", "int"), 6: ("revisionHistoryLimit", "int"), 7: ("paused", "bool"),
                       9: ("progressDeadlineSeconds", "int")},
    "DeploymentStrategy": {1: ("type", "string")},
    "LabelSelector": {1: ("matchLabels", "map"), 2: ("matchExpressions", "msgs:LabelSelectorRequirement")},
    "LabelSelectorRequirement": {1: ("key", "string"), 2: ("operator", "string"), 3: ("values", "strings")},
    "PodTemplateSpec": {1: ("metadata", "msg:ObjectMeta"), 2: ("spec", "msg:PodSpec")},
    "PodSpec": {2: ("containers", "msgs:Container"), 3: ("restartPolicy", "string"),
                6: ("dnsPolicy", "string"), 8: ("serviceAccountName", "string"), 10: ("nodeName", "string"),
                19: ("schedulerName", "string")},
    "Container": {1: ("name", "string"), 2: ("image", "string"), 3: ("command", "strings"), 4: ("args", "strings"),
                  5: ("workingDir", "string"), 6: ("ports", "msgs:ContainerPort"), 7: ("env", "msgs:EnvVar"),
                  14: ("imagePullPolicy", "string")},
    "ContainerPort": {1: ("name", "string"), 2: ("hostPort", "int"), 3: ("containerPort", "int"),
                      4: ("protocol", "string"), 5: ("hostIP", "string")},
    "EnvVar": {1: ("name", "string"), 2: ("value", "string")},
    "Service": {1: ("metadata", "msg:ObjectMeta"), 2: ("spec", "msg:ServiceSpec"), 3: ("status", "skip")},
    "ServiceSpec": {1: ("ports", "msgs:ServicePort"), 2: ("selector", "map"), 3: ("clusterIP", "string"),
                    4: ("type", "string"), 5: ("externalIPs", "strings"), 7: ("sessionAffinity", "string"),
                    10: ("externalName", "string")},
    "ServicePort": {1: ("name", "string"), 2: ("protocol", "string"), 3: ("port", "int"),
                    4: ("targetPort", "intorstring"), 5: ("nodePort", "int"), 6: ("appProtocol", "string")},
    "IntOrString": {1: ("type", "int"), 2: ("intVal", "int"), 3: ("strVal", "string")},
}  # fmt: skip

# Pointer fields: an explicit zero is meaningful (replicas: 0 is not "unset").
_KEEP_ZERO = {
    ("DeploymentSpec", "replicas"),
    ("DeploymentSpec", "revisionHistoryLimit"),
    ("ContainerPort", "containerPort"),
}

_KINDS = {
    ("v1", "Namespace"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "ServiceAccount"),
    ("v1", "Service"),
    ("apps/v1", "Deployment"),
}


class _Unsupported(Exception):
    pass


def _varint(data: bytes, index: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if index >= len(data):
            raise _Unsupported("truncated varint")
        byte = data[index]
        index += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, index


def _fields(data: bytes) -> list[tuple[int, int, Any]]:
    fields: list[tuple[int, int, Any]] = []
    index = 0
    while index < len(data):
        key, index = _varint(data, index)
        number, wire = key >> 3, key & 7
        value: Any
        if wire == 0:
            value, index = _varint(data, index)
        elif wire == 2:
            length, index = _varint(data, index)
            value, index = data[index : index + length], index + length
        elif wire == 1:
            value, index = data[index : index + 8], index + 8
        elif wire == 5:
            value, index = data[index : index + 4], index + 4
        else:
            raise _Unsupported(f"wire type {wire}")
        fields.append((number, wire, value))
    return fields


def _is_empty(value: Any) -> bool:
    return value in (0, b"", "", False, None) or value == {} or value == []


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _message(name: str, data: bytes) -> dict[str, Any]:
    schema = _SCHEMAS[name]
    result: dict[str, Any] = {}
    for number, wire, raw in _fields(data):
        spec = schema.get(number)
        if spec is None:
            if not _is_empty(raw):
                raise _Unsupported(f"{name} field #{number}")
            continue
        json_name, kind = spec
        if kind == "skip":
            continue
        if kind in ("string", "bytes", "strings", "map", "bytesmap") or kind.startswith(("msg", "intorstring")):
            if wire != 2:
                raise _Unsupported(f"{name}.{json_name}: unexpected wire type {wire}")
        elif wire != 0:
            raise _Unsupported(f"{name}.{json_name}: unexpected wire type {wire}")
        if kind == "string":
            result[json_name] = raw.decode("utf-8")
        elif kind == "bytes":
            result[json_name] = raw
        elif kind == "int":
            result[json_name] = _signed(raw)
        elif kind == "bool":
            result[json_name] = bool(raw)
        elif kind == "strings":
            result.setdefault(json_name, []).append(raw.decode("utf-8"))
        elif kind in ("map", "bytesmap"):
            entry = {n: v for n, _, v in _fields(raw)}
            value = entry.get(2, b"")
            rendered = base64.b64encode(value).decode() if kind == "bytesmap" else value.decode("utf-8")
            result.setdefault(json_name, {})[entry.get(1, b"").decode("utf-8")] = rendered
        elif kind == "intorstring":
            parts = _message("IntOrString", raw)
            result[json_name] = parts.get("strVal", "") if parts.get("type") == 1 else parts.get("intVal", 0)
        elif kind.startswith("msgs:"):
            result.setdefault(json_name, []).append(_message(kind[5:], raw))
        elif kind.startswith("msg:"):
            result[json_name] = _message(kind[4:], raw)
    return {key: value for key, value in result.items() if not _is_empty(value) or (name, key) in _KEEP_ZERO}


def decode(body: bytes) -> dict[str, Any]:
    """Turn a protobuf-encoded object into its JSON form; 415 if it is beyond this decoder."""
    if not body.startswith(MAGIC):
        raise unsupported_media_type("the protobuf body lacks the k8s envelope")
    try:
        envelope = _message("Unknown", body[len(MAGIC) :])
        type_meta = envelope.get("typeMeta") or {}
        api_version, kind = type_meta.get("apiVersion", ""), type_meta.get("kind", "")
        if (api_version, kind) not in _KINDS:
            raise _Unsupported(f"kind {api_version}/{kind}")
        obj = _message(kind, envelope.get("raw", b""))
    except (_Unsupported, UnicodeDecodeError, KeyError) as error:
        raise _refusal(str(error)) from None
    return {"apiVersion": api_version, "kind": kind, **obj}


def _refusal(what: str) -> ApiError:
    return unsupported_media_type(
        f"the sandbox decodes protobuf only for kubectl's create generators and cannot decode {what}; "
        "send JSON instead (e.g. kubectl apply -f / create -f)"
    )
