"""The four PATCH flavours of the Kubernetes API, applied to plain JSON values.

Kopf merge-patches bodies and JSON-patches finalizers behind a ``test`` of the
resourceVersion; kubectl strategic-merge-patches built-in kinds (``apply``, ``annotate``,
``rollout pause``) and merge-patches custom resources; ``--server-side`` sends apply
patches. Each flavour has its own list and ``null`` semantics, and code under test can be
right with one and wrong with another, so each is implemented as specified:

* JSON merge patch: RFC 7386 (``null`` deletes a key, lists are replaced whole).
* Strategic merge patch: merge-patch semantics, plus lists of known keyed items
  (containers, ports, volumes, env, conditions, …) merged item-by-item by their key,
  ``metadata.finalizers`` merged as a set, and the directives ``$patch: replace|delete``,
  ``$deleteFromPrimitiveList/<field>`` honoured. ``$setElementOrder/<field>`` and
  ``$retainKeys`` are accepted and ignored: the order of merged lists follows the
  original, and keys are never pruned by ``$retainKeys``.
* JSON patch: RFC 6902 (add, remove, replace, move, copy, test; ``~0``/``~1``; ``-``).

All functions return new values and never mutate their inputs.
"""

from __future__ import annotations

import copy
from typing import Any


class PatchError(Exception):
    """The patch is malformed or cannot be applied; the server answers 422 Invalid."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# Merge keys of the list fields that the built-in types declare as `patchStrategy: merge`.
# The field name alone is enough to pick the key for every kind the sandbox serves.
_MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "env": "name",
    "imagePullSecrets": "name",
    "conditions": "type",
    "ownerReferences": "uid",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
}
# Primitive lists with `patchStrategy: merge`: patched lists are unions, not replacements.
_MERGED_PRIMITIVE_LISTS = {"finalizers"}


def _merge_key(field: str, items: list[Any]) -> str | None:
    if field == "ports":
        # Container ports are keyed by containerPort, Service ports by port.
        keyed = [item for item in items if isinstance(item, dict)]
        return "containerPort" if any("containerPort" in item for item in keyed) else "port"
    return _MERGE_KEYS.get(field)


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """Strategic merge patch, within the limits described in the module docstring."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    deletions: dict[str, list[Any]] = {}
    for key, value in patch.items():
        if key.startswith("$deleteFromPrimitiveList/"):
            if not isinstance(value, list):
                raise PatchError(f"{key} must be a list")
            deletions[key.split("/", 1)[1]] = value
        elif key.startswith("$setElementOrder/") or key in ("$retainKeys", "$patch"):
            continue
        elif value is None:
            result.pop(key, None)
        elif isinstance(value, list):
            result[key] = _strategic_list(key, result.get(key), value)
        elif isinstance(value, dict):
            merged = strategic_merge_patch(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = copy.deepcopy(value)
    for key, removed in deletions.items():
        if isinstance(result.get(key), list):
            result[key] = [item for item in result[key] if item not in removed]
    return result


def _strategic_list(field: str, original: Any, patch: list[Any]) -> list[Any]:
    if not isinstance(original, list):
        original = []
    if field in _MERGED_PRIMITIVE_LISTS and all(not isinstance(item, dict) for item in patch):
        union: list[Any] = copy.deepcopy(original)
        return union + [item for item in patch if item not in original]
    key = _merge_key(field, original + patch)
    if key is None or not all(isinstance(item, dict) for item in patch):
        if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
            return [copy.deepcopy(item) for item in patch if item.get("$patch") != "replace"]
        return copy.deepcopy(patch)
    if any(item.get("$patch") == "replace" for item in patch):
        return [copy.deepcopy(item) for item in patch if item.get("$patch") != "replace"]
    result: list[Any] = copy.deepcopy(original)
    for item in patch:
        if key not in item:
            raise PatchError(f"map in list {field!r} does not contain the merge key {key!r}")
        index = next((i for i, old in enumerate(result) if isinstance(old, dict) and old.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if index is not None:
                del result[index]
        elif index is None:
            result.append(strategic_merge_patch({}, item))
        else:
            result[index] = strategic_merge_patch(result[index], item)
    return result


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise PatchError(f"invalid JSON pointer: {path!r}")
    return [_unescape(token) for token in path.split("/")[1:]] if path else []


def _index(container: list[Any], token: str, *, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise PatchError(f"invalid array index: {token!r}")
    index = int(token)
    if index > len(container) or (index == len(container) and not allow_end):
        raise PatchError(f"array index out of range: {index}")
    return index


def _parent(document: Any, tokens: list[str]) -> Any:
    node = document
    for token in tokens[:-1]:
        if isinstance(node, dict):
            if token not in node:
                raise PatchError(f"path not found: /{'/'.join(tokens)}")
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, allow_end=False)]
        else:
            raise PatchError(f"path not found: /{'/'.join(tokens)}")
    return node


def _get(document: Any, tokens: list[str]) -> Any:
    if not tokens:
        return document
    parent = _parent(document, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"path not found: /{'/'.join(tokens)}")
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, allow_end=False)]
    raise PatchError(f"path not found: /{'/'.join(tokens)}")


def _add(document: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent = _parent(document, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, allow_end=True), value)
    else:
        raise PatchError(f"cannot add to a scalar at /{'/'.join(tokens)}")
    return document


def _remove(document: Any, tokens: list[str]) -> Any:
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent = _parent(document, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"path not found: /{'/'.join(tokens)}")
        del parent[last]
    elif isinstance(parent, list):
        del parent[_index(parent, last, allow_end=False)]
    else:
        raise PatchError(f"path not found: /{'/'.join(tokens)}")
    return document


def _json_equal(a: Any, b: Any) -> bool:
    # Python's True == 1 would let a JSON `test` of `true` pass against `1`.
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and bool(a == b)


def json_patch(target: Any, operations: Any) -> Any:
    """RFC 6902 JSON patch; any failure (including a failed ``test``) raises :class:`PatchError`."""
    if not isinstance(operations, list):
        raise PatchError("a JSON patch must be a list of operations")
    document = copy.deepcopy(target)
    for operation in operations:
        if not isinstance(operation, dict) or "op" not in operation or "path" not in operation:
            raise PatchError(f"invalid operation: {operation!r}")
        op, tokens = operation["op"], _pointer(operation["path"])
        if op in ("add", "replace", "test") and "value" not in operation:
            raise PatchError(f"operation {op!r} requires a value")
        if op == "add":
            document = _add(document, tokens, copy.deepcopy(operation["value"]))
        elif op == "remove":
            document = _remove(document, tokens)
        elif op == "replace":
            value = copy.deepcopy(operation["value"])
            document = _add(_remove(document, tokens), tokens, value) if tokens else value
        elif op in ("move", "copy"):
            source = _pointer(operation.get("from"))
            if op == "move" and tokens[: len(source)] == source and tokens != source:
                raise PatchError("cannot move a value into one of its children")
            value = copy.deepcopy(_get(document, source))
            if op == "move":
                document = _remove(document, source)
            document = _add(document, tokens, value)
        elif op == "test":
            actual = _get(document, tokens)
            if not _json_equal(actual, operation["value"]):
                raise PatchError(
                    f"testing value {operation['path']} failed: expected {operation['value']!r}, got {actual!r}"
                )
        else:
            raise PatchError(f"unknown operation {op!r}")
    return document
