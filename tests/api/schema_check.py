"""A small stand-in for the API server's CRD validation, so the api tests need no cluster.

What ``kubectl apply`` of a custom resource goes through, in order:
1. YAML → JSON (NaN and infinities are not JSON);
2. defaulting from the schema's ``default``s (before any validation);
3. strict field validation (kubectl's default ``--validate=strict``): an
   unknown field is an error, not silently pruned;
4. OpenAPI v3 validation (draft 4 semantics: type, enum, pattern, bounds …);
5. ``x-kubernetes-list-type: map``/``set`` uniqueness;
6. every ``x-kubernetes-validations`` CEL rule, evaluated with a real CEL
   implementation (cel-python) with ``self`` bound to the node, after the
   Kubernetes property-name escaping (``namespace`` → ``__namespace__``).

Errors are worded like the API server's: ``spec.monitors[0].interval: …``.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterator
from typing import Any

import celpy
import jsonschema

Schema = dict[str, Any]

# Kubernetes escapes property names that collide with CEL reserved words
# (apiextensions-apiserver, schema/cel/model/escaping.go).
CEL_RESERVED = frozenset(
    {
        *("true", "false", "null", "in", "as", "break", "const", "continue", "else", "for", "function"),
        *("if", "import", "let", "loop", "package", "namespace", "return", "var", "void", "while"),
    }
)
CEL_REASONS = frozenset({"FieldValueInvalid", "FieldValueForbidden", "FieldValueRequired", "FieldValueDuplicate"})
_ENV = celpy.Environment()


def escape(name: str) -> str:
    """The name Kubernetes gives a property inside CEL."""
    if name in CEL_RESERVED:
        return f"__{name}__"
    return (
        name.replace("__", "__underscores__").replace(".", "__dot__").replace("-", "__dash__").replace("/", "__slash__")
    )


@functools.cache
def compile_rule(rule: str) -> Any:
    """Compile a CEL rule once (raises celpy.CELParseError on a syntax error)."""
    return _ENV.program(_ENV.compile(rule))


def join(path: str, part: str | int) -> str:
    if isinstance(part, int):
        return f"{path}[{part}]"
    return f"{path}.{part}" if path else part


def _is_object(schema: Schema) -> bool:
    return schema.get("type") == "object"


def apply_defaults(schema: Schema, value: Any) -> None:
    """Fill in absent properties that have a default, in place (the API server does this first)."""
    if isinstance(value, dict) and _is_object(schema):
        for name, sub in schema.get("properties", {}).items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                apply_defaults(sub, value[name])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for item in value.values():
                apply_defaults(extra, item)
    elif isinstance(value, list) and "items" in schema:
        for item in value:
            apply_defaults(schema["items"], item)


def unknown_fields(schema: Schema, value: Any, path: str = "") -> Iterator[str]:
    """Strict field validation: fields the schema does not declare."""
    if isinstance(value, dict) and _is_object(schema):
        if schema.get("x-kubernetes-preserve-unknown-fields") or path == "metadata":
            return
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        for name, item in value.items():
            where = join(path, name)
            if properties is not None and name in properties:
                yield from unknown_fields(properties[name], item, where)
            elif isinstance(extra, dict):
                yield from unknown_fields(extra, item, where)
            elif properties is not None:
                yield f'{where}: unknown field "{where}"'
    elif isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            yield from unknown_fields(schema["items"], item, join(path, index))


def openapi_errors(schema: Schema, value: Any) -> Iterator[str]:
    """Draft-4 validation of the OpenAPI v3 schema (``x-`` keywords are ignored by jsonschema)."""
    validator = jsonschema.Draft4Validator(schema)
    for error in sorted(validator.iter_errors(value), key=lambda e: list(map(str, e.absolute_path))):
        where = ""
        for part in error.absolute_path:
            where = join(where, part)
        if error.validator == "required":
            for missing in error.validator_value:
                if missing not in error.instance:
                    yield f"{join(where, missing)}: Required value"
            continue
        message, instance = error.message, repr(error.instance)
        if len(instance) > 60:
            message = message.replace(instance, instance[:50] + "…")
        yield f"{where or '<root>'}: {message}"


def list_errors(schema: Schema, value: Any, path: str = "") -> Iterator[str]:
    """Uniqueness of ``x-kubernetes-list-type: map`` keys and of ``set`` items."""
    if isinstance(value, list):
        list_type = schema.get("x-kubernetes-list-type")
        seen: set[str] = set()
        for index, item in enumerate(value):
            if list_type == "map" and isinstance(item, dict):
                key = {k: item.get(k) for k in schema["x-kubernetes-list-map-keys"]}
            elif list_type == "set":
                key = item
            else:
                continue
            token = json.dumps(key, sort_keys=True)
            if token in seen:
                yield f"{join(path, index)}: Duplicate value: {token}"
            seen.add(token)
        for index, item in enumerate(value):
            yield from list_errors(schema.get("items", {}), item, join(path, index))
    elif isinstance(value, dict) and _is_object(schema):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for name, item in value.items():
            sub = properties.get(name, extra if isinstance(extra, dict) else None)
            if sub is not None:
                yield from list_errors(sub, item, join(path, name))


def to_cel(schema: Schema, value: Any) -> Any:
    """The value as CEL sees it: object properties escaped, map keys as they are."""
    if isinstance(value, dict) and _is_object(schema):
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        if properties is not None:
            return {escape(k): to_cel(properties.get(k, {}), v) for k, v in value.items()}
        if isinstance(extra, dict):
            return {k: to_cel(extra, v) for k, v in value.items()}
        return value
    if isinstance(value, list):
        return [to_cel(schema.get("items", {}), item) for item in value]
    return value


def cel_errors(schema: Schema, value: Any, path: str = "") -> Iterator[str]:
    """Evaluate every ``x-kubernetes-validations`` rule, deepest last, like the API server."""
    rules = schema.get("x-kubernetes-validations", [])
    if rules:
        bound = {"self": celpy.json_to_cel(to_cel(schema, value))}
        for rule in rules:
            where = path + rule.get("fieldPath", "") if path else rule.get("fieldPath", "").lstrip(".")
            try:
                result = compile_rule(rule["rule"]).evaluate(bound)
            except celpy.CELEvalError as exc:
                yield f"{where or '<root>'}: rule evaluation error: {rule['rule']}: {exc}"
                continue
            if isinstance(result, celpy.CELEvalError):
                yield f"{where or '<root>'}: rule evaluation error: {rule['rule']}: {result}"
            elif result is not True and not (isinstance(result, celpy.celtypes.BoolType) and bool(result)):
                yield f"{where or '<root>'}: Invalid value: {rule.get('message', 'failed rule: ' + rule['rule'])}"
    if isinstance(value, dict) and _is_object(schema):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for name, item in value.items():
            sub = properties.get(name, extra if isinstance(extra, dict) else None)
            if sub is not None:
                yield from cel_errors(sub, item, join(path, name))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from cel_errors(schema.get("items", {}), item, join(path, index))


def validate(crd: dict[str, Any], manifest: dict[str, Any]) -> list[str]:
    """Every error the API server (with kubectl's strict field validation) would report for ``manifest``."""
    schema: Schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    try:
        value = json.loads(json.dumps(manifest, allow_nan=False))
    except ValueError as exc:
        return [f"<root>: not valid JSON: {exc}"]
    apply_defaults(schema, value)
    errors = [*unknown_fields(schema, value), *openapi_errors(schema, value), *list_errors(schema, value)]
    if errors:
        # CEL rules assume the schema holds (the API server skips rules on ill-typed values).
        return errors
    return list(cel_errors(schema, value))


def crd_for(crds: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    for crd in crds:
        if crd["spec"]["names"]["kind"] == kind:
            return crd
    raise KeyError(kind)


def walk(schema: Schema, path: str = "") -> Iterator[tuple[str, Schema]]:
    """Every node of a schema with a readable path (``spec.monitors[].name``, ``spec.severities[*]``)."""
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from walk(sub, join(path, name))
    if "items" in schema:
        yield from walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from walk(schema["additionalProperties"], f"{path}[*]")
