"""What a real API server does with a CRD's schema: structural checks, pruning, defaulting, validation.

A custom resource written to a real cluster goes through, in this order:

1. decoding with **pruning** (fields the structural schema does not declare are dropped,
   except under ``x-kubernetes-preserve-unknown-fields``; with ``fieldValidation=Strict``
   they are an error instead, with ``Warn`` — the default — a ``Warning`` header each) and
   **defaulting** from the schema's ``default``s (a non-nullable ``null`` counts as absent);
2. mutating admission;
3. **schema validation**: OpenAPI v3 (types, enums, patterns, bounds, formats, required),
   ``x-kubernetes-list-type`` uniqueness, then every ``x-kubernetes-validations`` CEL
   rule (transition rules see ``oldSelf`` on updates); unchanged parts of an updated
   object are not re-validated (validation ratcheting, GA since Kubernetes 1.33);
4. validating admission, then storage.

The sandbox does steps 1 and 3 here (:class:`ResourceSchema`), with the API server's field
paths and messages, so a test that writes what a real server would reject or prune sees
it fail the same way. :func:`crd_problems` is the other half: the checks a real server
makes on the CRD itself (structural schema, list types, defaults that validate, CEL that
compiles and stays within the cost budget), used both when a CRD is written to the
sandbox and by the tests of airlock's generated CRDs.

NOT emulated: formats other than date-time/date/int32/int64 are not checked; ``optionalOldSelf``
(transition rules run only on updates); CEL runtime cost limits; metadata schemas beyond
ObjectMeta's field names.
"""

from __future__ import annotations

import contextvars
import copy
import datetime
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from airlock.sandbox import _k8s_cel as cel
from airlock.sandbox import _k8s_celcost as celcost

Schema = Mapping[str, Any]

__all__ = [
    "FieldError",
    "FieldValidation",
    "ResourceSchema",
    "crd_problems",
    "field_validation",
    "request_warnings",
]

# ObjectMeta's fields: anything else under metadata is pruned, on every kind.
OBJECT_META = frozenset(
    {
        "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
        "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations",
        "ownerReferences", "finalizers", "managedFields",
    }
)  # fmt: skip
CEL_REASONS = {
    "FieldValueInvalid": "Invalid value",
    "FieldValueForbidden": "Forbidden",
    "FieldValueRequired": "Required value",
    "FieldValueDuplicate": "Duplicate value",
}
_TYPES = ("object", "array", "string", "integer", "number", "boolean")
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# -- request options: fieldValidation and the warnings a request collects ---------------------


@dataclass
class FieldValidation:
    """``?fieldValidation=`` of the request being served: Strict, Warn (the default) or Ignore."""

    mode: str = "Warn"
    warnings: list[str] = field(default_factory=list)


_request: contextvars.ContextVar[FieldValidation | None] = contextvars.ContextVar(
    "sandbox_field_validation", default=None
)


def field_validation(mode: str | None) -> contextvars.Token[FieldValidation | None]:
    """Start serving a request with this fieldValidation (reset the returned token afterwards)."""
    chosen = mode if mode in ("Strict", "Warn", "Ignore") else "Warn"
    return _request.set(FieldValidation(chosen))


def reset_field_validation(token: contextvars.Token[FieldValidation | None]) -> None:
    _request.reset(token)


def request_warnings() -> list[str]:
    """The warnings of the request being served (for ``Warning`` response headers)."""
    current = _request.get()
    return list(current.warnings) if current is not None else []


class StrictDecodingError(ValueError):
    """Unknown fields under ``fieldValidation=Strict`` (the API server answers 400)."""

    def __init__(self, unknown: list[str]) -> None:
        self.unknown = unknown
        super().__init__("strict decoding error: " + ", ".join(f'unknown field "{path}"' for path in unknown))


def report_unknown(unknown: list[str]) -> None:
    """Apply the request's fieldValidation to the fields pruning dropped."""
    if not unknown:
        return
    current = _request.get()
    mode = current.mode if current is not None else "Warn"
    if mode == "Strict":
        raise StrictDecodingError(unknown)
    if mode == "Warn" and current is not None:
        current.warnings.extend(f'unknown field "{path}"' for path in unknown)


# -- field errors --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldError:
    """One entry of a 422's ``details.causes``: ``spec.mode: Unsupported value: ...``."""

    field: str
    reason: str
    detail: str

    def __str__(self) -> str:
        return f"{self.field}: {self.detail}" if self.field else self.detail


def show(value: Any) -> str:
    """A value as Go's %#v shows it in field errors (strings quoted)."""
    if isinstance(value, str):
        return json.dumps(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        inner = ", ".join(f"{json.dumps(str(k))}:{show(v)}" for k, v in value.items())
        return "map[string]interface {}{" + inner + "}"
    if isinstance(value, list):
        return "[]interface {}{" + ", ".join(show(v) for v in value) + "}"
    return json.dumps(str(value))


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _has_type(value: Any, schema: Schema) -> bool:
    if schema.get("x-kubernetes-int-or-string"):
        return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))
    wanted = schema.get("type")
    if not wanted:
        return True
    actual = _type_of(value)
    if wanted == "number":
        return actual in ("integer", "number")
    if wanted == "integer" and isinstance(value, float) and value.is_integer():
        return True  # JSON has one number type; 3.0 decodes as an integer in Go
    return bool(actual == wanted)


def _join(path: str, part: str | int) -> str:
    if isinstance(part, int):
        return f"{path}[{part}]"
    return f"{path}.{part}" if path else part


# -- pruning and defaulting ---------------------------------------------------------------------


def _prune(value: Any, schema: Schema | None, path: str, unknown: list[str], *, root: bool = False) -> Any:
    """Drop undeclared fields in place; returns the (possibly replaced) value."""
    if schema is None:
        return value
    if isinstance(value, dict):
        embedded = root or bool(schema.get("x-kubernetes-embedded-resource"))
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields")) or extra is True
        for key in list(value):
            item = value[key]
            where = _join(path, key)
            if embedded and key in ("apiVersion", "kind") and not (properties and key in properties):
                continue
            if embedded and key == "metadata":
                _prune_metadata(item, where, unknown)
                continue
            sub: Schema | None
            if properties is not None and key in properties:
                sub = properties[key]
            elif isinstance(extra, Mapping):
                sub = extra
            elif preserve:
                continue
            else:
                unknown.append(where)
                del value[key]
                continue
            if item is None and not sub.get("nullable"):
                # A null where null is not allowed means "absent"; a default may fill it in.
                del value[key]
                continue
            value[key] = _prune(item, sub, where, unknown)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, Mapping):
            for index, item in enumerate(value):
                value[index] = _prune(item, items, _join(path, index), unknown)
    return value


def _prune_metadata(metadata: Any, path: str, unknown: list[str]) -> None:
    if not isinstance(metadata, dict):
        return
    for key in list(metadata):
        if key not in OBJECT_META:
            unknown.append(_join(path, key))
            del metadata[key]


def _default(value: Any, schema: Schema | None) -> None:
    if schema is None:
        return
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        for name, sub in properties.items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                _default(value[name], sub)
        extra = schema.get("additionalProperties")
        if isinstance(extra, Mapping):
            for key, item in value.items():
                if key not in properties:
                    _default(item, extra)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, Mapping):
            for item in value:
                _default(item, items)


# -- validation ----------------------------------------------------------------------------------

_ABSENT = object()


@dataclass
class _Validator:
    errors: list[FieldError] = field(default_factory=list)
    root: bool = True

    def error(self, path: str, reason: str, detail: str) -> None:
        self.errors.append(FieldError(_schema_style(path), reason, detail))

    def invalid(self, path: str, value: Any, detail: str) -> None:
        self.error(path, "FieldValueInvalid", f"Invalid value: {show(value)}: {detail}")

    def validate(self, value: Any, schema: Schema, path: str, old: Any = _ABSENT) -> None:
        if old is not _ABSENT and old == value:
            return  # ratcheting: an unchanged part of an update is not validated again
        before = len(self.errors)
        self._openapi(value, schema, path, old)
        if len(self.errors) == before:
            self._cel(value, schema, path, old)

    # OpenAPI v3 value validation, then the children.
    def _openapi(self, value: Any, schema: Schema, path: str, old: Any) -> None:
        shown = _schema_style(path) or "<root>"
        if value is None:
            if not schema.get("nullable") and (schema.get("type") or schema.get("x-kubernetes-int-or-string")):
                wanted = "string" if schema.get("x-kubernetes-int-or-string") else schema["type"]
                self.invalid(path, "null", f'{shown} in body must be of type {wanted}: "null"')
            return
        if not _has_type(value, schema):
            wanted = "integer-or-string" if schema.get("x-kubernetes-int-or-string") else schema.get("type")
            actual = _type_of(value)
            self.error(
                path,
                "FieldValueTypeInvalid",
                f'Invalid value: "{actual}": {shown} in body must be of type {wanted}: "{actual}"',
            )
            return
        if "enum" in schema and value not in schema["enum"]:
            supported = ", ".join(show(option) for option in schema["enum"])
            self.error(
                path, "FieldValueNotSupported", f"Unsupported value: {show(value)}: supported values: {supported}"
            )
        if isinstance(value, str):
            self._string(value, schema, path, shown)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            self._number(value, schema, path, shown)
        elif isinstance(value, list):
            self._array(value, schema, path, shown, old)
        elif isinstance(value, dict):
            self._object(value, schema, path, shown, old)
        for keyword in ("allOf", "anyOf", "oneOf", "not"):
            if keyword in schema:
                self._junctor(keyword, schema[keyword], value, path, shown)

    def _string(self, value: str, schema: Schema, path: str, shown: str) -> None:
        length = len(value)
        if "maxLength" in schema and length > schema["maxLength"]:
            self.error(path, "FieldValueTooLong", f"Too long: may not be more than {schema['maxLength']} bytes")
        if "minLength" in schema and length < schema["minLength"]:
            self.invalid(path, value, f"{shown} in body should be at least {schema['minLength']} chars long")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            self.invalid(path, value, f"{shown} in body should match '{schema['pattern']}'")
        fmt = schema.get("format")
        if fmt == "date-time" and not _valid_date_time(value):
            self.invalid(path, value, f'{shown} in body must be of type date-time: "{value}"')
        elif fmt == "date" and not _DATE.match(value):
            self.invalid(path, value, f'{shown} in body must be of type date: "{value}"')

    def _number(self, value: float, schema: Schema, path: str, shown: str) -> None:
        if "minimum" in schema:
            low = schema["minimum"]
            if schema.get("exclusiveMinimum") and not value > low:
                self.invalid(path, value, f"{shown} in body should be greater than {low}")
            elif value < low:
                self.invalid(path, value, f"{shown} in body should be greater than or equal to {low}")
        if "maximum" in schema:
            high = schema["maximum"]
            if schema.get("exclusiveMaximum") and not value < high:
                self.invalid(path, value, f"{shown} in body should be less than {high}")
            elif value > high:
                self.invalid(path, value, f"{shown} in body should be less than or equal to {high}")
        if schema.get("multipleOf") and (value / schema["multipleOf"]) % 1:
            self.invalid(path, value, f"{shown} in body should be a multiple of {schema['multipleOf']}")
        fmt = schema.get("format")
        bits = {"int32": 31, "int64": 63}.get(str(fmt))
        if bits is not None and isinstance(value, int) and not -(2**bits) <= value < 2**bits:
            self.invalid(path, value, f"{shown} in body must be of type {fmt}: {value}")

    def _array(self, value: list[Any], schema: Schema, path: str, shown: str, old: Any) -> None:
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            self.error(
                path, "FieldValueTooMany", f"Too many: {len(value)}: must have at most {schema['maxItems']} items"
            )
        if "minItems" in schema and len(value) < schema["minItems"]:
            self.invalid(path, len(value), f"{shown} in body should have at least {schema['minItems']} items")
        list_type = schema.get("x-kubernetes-list-type")
        keys = list(schema.get("x-kubernetes-list-map-keys") or [])
        if list_type in ("set", "map"):
            seen: set[str] = set()
            for index, item in enumerate(value):
                identity = (
                    {key: item.get(key) for key in keys if key in item}
                    if list_type == "map" and isinstance(item, dict)
                    else item
                )
                token = json.dumps(identity, sort_keys=True)
                if token in seen:
                    self.error(_join(path, index), "FieldValueDuplicate", f"Duplicate value: {show(identity)}")
                seen.add(token)
        items = schema.get("items")
        if not isinstance(items, Mapping):
            return
        # Items are correlated with the old list only where they have an identity (map lists, sets).
        correlated: dict[str, Any] = {}
        if isinstance(old, list) and list_type in ("map", "set"):
            for item in old:
                identity = {k: item.get(k) for k in keys} if list_type == "map" and isinstance(item, dict) else item
                correlated[json.dumps(identity, sort_keys=True)] = item
        for index, item in enumerate(value):
            previous: Any = _ABSENT
            if correlated:
                identity = {k: item.get(k) for k in keys} if list_type == "map" and isinstance(item, dict) else item
                previous = correlated.get(json.dumps(identity, sort_keys=True), _ABSENT)
            self.validate(item, items, _join(path, index), previous)

    def _object(self, value: dict[str, Any], schema: Schema, path: str, shown: str, old: Any) -> None:
        for name in schema.get("required") or []:
            if name not in value:
                self.error(_join(path, name), "FieldValueRequired", "Required value")
        if "maxProperties" in schema and len(value) > schema["maxProperties"]:
            self.error(
                path, "FieldValueTooMany", f"Too many: {len(value)}: must have at most {schema['maxProperties']} items"
            )
        if "minProperties" in schema and len(value) < schema["minProperties"]:
            self.invalid(path, len(value), f"{shown} in body should have at least {schema['minProperties']} properties")
        properties = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        previous = old if isinstance(old, dict) else {}
        for key, item in value.items():
            if self.root and path == "" and key in ("apiVersion", "kind", "metadata"):
                continue
            sub = properties.get(key)
            where = _join(path, key)
            if sub is None and isinstance(extra, Mapping):
                sub, where = extra, f"{path}{_KEY_OPEN}{key}{_KEY_CLOSE}"
            if sub is None:
                continue
            self.validate(item, sub, where, previous.get(key, _ABSENT) if isinstance(old, dict) else _ABSENT)

    def _junctor(self, keyword: str, option: Any, value: Any, path: str, shown: str) -> None:
        def passes(sub: Schema) -> bool:
            probe = _Validator(root=False)
            probe._openapi(value, sub, path, _ABSENT)
            return not probe.errors

        if keyword == "allOf":
            for sub in option:
                self._openapi(value, sub, path, _ABSENT)
        elif keyword == "anyOf" and not any(passes(sub) for sub in option):
            self.invalid(path, value, f"{shown} in body must match at least one schema in anyOf")
        elif keyword == "oneOf" and sum(passes(sub) for sub in option) != 1:
            self.invalid(path, value, f"{shown} in body must match exactly one schema in oneOf")
        elif keyword == "not" and passes(option):
            self.invalid(path, value, f"{shown} in body must not match the schema in not")

    # x-kubernetes-validations
    def _cel(self, value: Any, schema: Schema, path: str, old: Any) -> None:
        rules = schema.get("x-kubernetes-validations")
        if not rules:
            return
        activation: dict[str, Any] = {"self": cel.to_cel_typed(value, schema)}
        has_old = old is not _ABSENT
        if has_old:
            activation["oldSelf"] = cel.to_cel_typed(old, schema)
        for rule in rules:
            source = str(rule.get("rule", ""))
            if _uses_old_self(source) and not has_old:
                continue  # a transition rule: only on updates, where there is an old value
            rendered = _cel_style(path)
            where = rendered + rule.get("fieldPath", "") if rendered else str(rule.get("fieldPath", "")).lstrip(".")
            try:
                if cel.compile_expression(source).evaluate_bool(activation):
                    continue
                message = _message(rule, activation)
            except cel.CelError as error:
                self.invalid(where, schema.get("type", "object"), f"rule evaluation error: {error.detail}")
                continue
            reason = str(rule.get("reason") or "FieldValueInvalid")
            if reason == "FieldValueInvalid":
                self.invalid(where, schema.get("type", "object"), message)
            elif reason == "FieldValueDuplicate":
                self.error(where, reason, f"Duplicate value: {show(schema.get('type', 'object'))}: {message}")
            else:
                self.error(where, reason, f"{CEL_REASONS.get(reason, 'Invalid value')}: {message}")


_OLD_SELF = re.compile(r"\boldSelf\b")
# A map entry in a path being validated: schema errors show it as `.key`, CEL rule errors as `[key]`
# (the API server's OpenAPI validator and its CEL validator build their paths differently).
_KEY_OPEN, _KEY_CLOSE = "\x1f", "\x1e"
_KEY = re.compile(f"{_KEY_OPEN}(.*?){_KEY_CLOSE}")


def _schema_style(path: str) -> str:
    return _KEY.sub(lambda m: f".{m.group(1)}", path).lstrip(".")


def _cel_style(path: str) -> str:
    return _KEY.sub(lambda m: f"[{m.group(1)}]", path)


def _uses_old_self(rule: str) -> bool:
    return bool(_OLD_SELF.search(rule))


def _message(rule: Mapping[str, Any], activation: Mapping[str, Any]) -> str:
    if "messageExpression" in rule:
        try:
            text = str(cel.compile_expression(str(rule["messageExpression"])).evaluate(activation))
            if text.strip() and "\n" not in text:
                return text
        except cel.CelError:
            pass
    if rule.get("message"):
        return str(rule["message"])
    return f"failed rule: {rule.get('rule', '')}"


def _valid_date_time(value: str) -> bool:
    if not _DATE_TIME.match(value):
        return False
    try:
        datetime.datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00").replace("t", "T"))
    except ValueError:
        return False
    return True


class ResourceSchema:
    """The ``openAPIV3Schema`` of one served version of a CRD, applied like a real API server."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema

    def normalize(self, obj: dict[str, Any]) -> list[str]:
        """Prune and default ``obj`` in place (decoding); returns the paths of pruned unknown fields."""
        unknown: list[str] = []
        _prune(obj, self.schema, "", unknown, root=True)
        _default(obj, self.schema)
        return unknown

    def validate(self, obj: Mapping[str, Any], old: Mapping[str, Any] | None = None) -> list[FieldError]:
        """Every error the API server reports for ``obj`` (an update of ``old`` if given)."""
        validator = _Validator()
        validator.validate(dict(obj), self.schema, "", old if old is not None else _ABSENT)
        return validator.errors


def validate_value(value: Any, schema: Schema, path: str) -> list[FieldError]:
    """Validate one value against one schema node (e.g. a default), CEL rules included."""
    validator = _Validator(root=False)
    validator.validate(value, schema, path)
    return validator.errors


# -- the CRD itself ----------------------------------------------------------------------------------


def crd_problems(crd: Mapping[str, Any]) -> list[str]:
    """Why a real API server would refuse this CRD's schemas (empty if it would accept them)."""
    problems: list[str] = []
    spec = crd.get("spec") or {}
    for index, version in enumerate(spec.get("versions") or []):
        if not isinstance(version, Mapping):
            continue
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        where = f"spec.versions[{index}].schema.openAPIV3Schema"
        if schema is None:
            problems.append(f"{where}: Required value: schemas are required")
            continue
        problems.extend(schema_problems(schema, where))
    return problems


def schema_problems(schema: Schema, where: str = "openAPIV3Schema") -> list[str]:
    """Structural-schema, list-type, default and CEL problems of one ``openAPIV3Schema``."""
    problems = list(_structural(schema, where, root=True, correlatable=True))
    if not problems:
        costs = celcost.estimate_schema(schema)
        for rule_cost in costs.rules:
            if rule_cost.cost > celcost.PER_EXPRESSION_LIMIT:
                factor = rule_cost.cost / celcost.PER_EXPRESSION_LIMIT
                problems.append(
                    f"{where}{_schema_path(rule_cost.path)}.x-kubernetes-validations[{rule_cost.index}].rule: "
                    f"Forbidden: estimated rule cost exceeds budget by factor of {factor:.1f}x "
                    "(try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, "
                    "maps, and strings are declared)"
                )
        if costs.total > celcost.PER_CRD_LIMIT:
            problems.append(
                f"{where}: Forbidden: x-kubernetes-validations estimated rule cost total for entire "
                f"OpenAPIv3 schema exceeds budget by factor of {costs.total / celcost.PER_CRD_LIMIT:.1f}x"
            )
    return problems


def _schema_path(path: str) -> str:
    # spec.monitors[].name -> .properties[spec].properties[monitors].items.properties[name]
    out = ""
    for name, kind in re.findall(r"([^.\[\]]+)|(\[\*?\])", path):
        if name:
            out += f".properties[{name}]"
        elif kind == "[]":
            out += ".items"
        else:
            out += ".additionalProperties"
    return out


_NOT_STRUCTURAL = ("$ref", "definitions", "dependencies", "additionalItems", "patternProperties", "id", "$schema")
_JUNCTORS = ("allOf", "anyOf", "oneOf", "not")


def _structural(schema: Schema, where: str, *, root: bool = False, correlatable: bool) -> Iterator[str]:
    if not isinstance(schema, Mapping):
        yield f"{where}: Invalid value: must be an object"
        return
    for keyword in _NOT_STRUCTURAL:
        if keyword in schema:
            yield f"{where}.{keyword}: Forbidden: {keyword} is not supported in structural schemas"
    if schema.get("uniqueItems") is True:
        yield f"{where}.uniqueItems: Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes quadratic"
    kind = schema.get("type")
    preserve = schema.get("x-kubernetes-preserve-unknown-fields")
    int_or_string = schema.get("x-kubernetes-int-or-string")
    if preserve is not None and preserve is not True:
        yield f"{where}.x-kubernetes-preserve-unknown-fields: Invalid value: must be true or undefined"
    if kind is None and not preserve and not int_or_string:
        yield f"{where}.type: Required value: must not be empty for specified object fields"
    elif kind is not None and kind not in _TYPES:
        yield f"{where}.type: Unsupported value: {show(kind)}"
    if int_or_string and kind:
        yield f"{where}.type: Invalid value: must be empty with x-kubernetes-int-or-string"
    if "properties" in schema and "additionalProperties" in schema:
        yield f"{where}.additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive"
    if schema.get("additionalProperties") is False:
        yield f"{where}.additionalProperties: Forbidden: must not be false"
    if ("properties" in schema or "additionalProperties" in schema) and kind not in (None, "object"):
        yield f"{where}.type: Invalid value: must be object if properties or additionalProperties are specified"
    if "items" in schema and kind != "array":
        yield f"{where}.type: Invalid value: must be array if items are specified"
    if kind == "array" and not isinstance(schema.get("items"), Mapping):
        yield f"{where}.items: Required value: must be specified"
    if schema.get("x-kubernetes-embedded-resource") and kind != "object":
        yield f"{where}.type: Invalid value: must be object if x-kubernetes-embedded-resource is true"
    for keyword in _JUNCTORS:
        if keyword in schema:
            options = schema[keyword] if isinstance(schema[keyword], list) else [schema[keyword]]
            for position, option in enumerate(options):
                yield from _junctor_problems(option, f"{where}.{keyword}[{position}]")

    yield from _list_type_problems(schema, where)
    map_type = schema.get("x-kubernetes-map-type")
    if map_type is not None and (map_type not in ("granular", "atomic") or kind != "object"):
        yield f"{where}.x-kubernetes-map-type: Invalid value: {show(map_type)}: must be granular or atomic on objects"

    properties = schema.get("properties") or {}
    for name, sub in properties.items():
        child = f"{where}.properties[{name}]"
        if root and name == "metadata":
            yield from _metadata_problems(sub, child)
            continue
        yield from _structural(sub, child, correlatable=correlatable)
    extra = schema.get("additionalProperties")
    if isinstance(extra, Mapping):
        yield from _structural(extra, f"{where}.additionalProperties", correlatable=correlatable)
    items = schema.get("items")
    if isinstance(items, Mapping):
        list_type = schema.get("x-kubernetes-list-type", "atomic")
        yield from _structural(items, f"{where}.items", correlatable=correlatable and list_type == "map")

    if "default" in schema:
        yield from _default_problems(schema, where, root)
    yield from _rule_problems(schema, where, correlatable)


def _junctor_problems(option: Any, where: str) -> Iterator[str]:
    if not isinstance(option, Mapping):
        return
    for keyword in ("type", "default", "nullable", "additionalProperties", "x-kubernetes-preserve-unknown-fields"):
        if keyword in option:
            yield f"{where}.{keyword}: Forbidden: must not be used inside {where.rsplit('.', 1)[-1].split('[')[0]}"
    for name, sub in (option.get("properties") or {}).items():
        yield from _junctor_problems(sub, f"{where}.properties[{name}]")
    if isinstance(option.get("items"), Mapping):
        yield from _junctor_problems(option["items"], f"{where}.items")


def _list_type_problems(schema: Schema, where: str) -> Iterator[str]:
    list_type = schema.get("x-kubernetes-list-type")
    keys = schema.get("x-kubernetes-list-map-keys")
    if list_type is None:
        if keys is not None:
            yield f"{where}.x-kubernetes-list-map-keys: Forbidden: must be empty if x-kubernetes-list-type is not map"
        return
    if schema.get("type") != "array":
        yield f"{where}.x-kubernetes-list-type: Invalid value: must only be used if type is array"
        return
    if list_type not in ("atomic", "set", "map"):
        yield f'{where}.x-kubernetes-list-type: Unsupported value: {show(list_type)}: supported values: "atomic", "set", "map"'
        return
    items: Schema = schema["items"] if isinstance(schema.get("items"), Mapping) else {}
    if list_type == "set":
        if items.get("type") == "object" and items.get("x-kubernetes-map-type") != "atomic":
            yield f"{where}.items: Invalid value: must be a scalar or an atomic object in a list of type set"
        if items.get("type") == "array" and items.get("x-kubernetes-list-type", "atomic") != "atomic":
            yield f"{where}.items: Invalid value: must be atomic in a list of type set"
    if list_type == "map":
        if not keys:
            yield f"{where}.x-kubernetes-list-map-keys: Required value: must not be empty if x-kubernetes-list-type is map"
            return
        if items.get("type") != "object":
            yield f"{where}.items.type: Invalid value: must be object if x-kubernetes-list-type is map"
            return
        props = items.get("properties") or {}
        for key in keys:
            if key not in props:
                yield f"{where}.x-kubernetes-list-map-keys: Invalid value: {show(key)}: entries must all be names of item properties"
                continue
            if props[key].get("type") not in ("string", "integer", "number", "boolean"):
                yield f"{where}.items.properties[{key}].type: Invalid value: must be a scalar type if the field is a map key"
            if key not in (items.get("required") or []) and "default" not in props[key]:
                yield f"{where}.items.properties[{key}]: Required value: this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property"
            if props[key].get("nullable"):
                yield f"{where}.items.properties[{key}].nullable: Forbidden: this property is in x-kubernetes-list-map-keys, so it must not be nullable"


def _metadata_problems(schema: Any, where: str) -> Iterator[str]:
    if not isinstance(schema, Mapping):
        return
    if schema.get("type") not in (None, "object"):
        yield f"{where}.type: Invalid value: must be object"
    for name in schema.get("properties") or {}:
        if name not in ("name", "generateName"):
            yield f"{where}.properties[{name}]: Forbidden: only name and generateName may be restricted in metadata"
    if "default" in schema:
        yield f"{where}.default: Forbidden: must not be set for metadata"


def _default_problems(schema: Schema, where: str, root: bool) -> Iterator[str]:
    if root:
        yield f"{where}.default: Forbidden: must not be set at the root"
        return
    default = copy.deepcopy(schema["default"])
    if default is None and not schema.get("nullable"):
        yield f"{where}.default: Invalid value: null: must not be null"
        return
    unknown: list[str] = []
    pruned = _prune(copy.deepcopy(default), schema, "", unknown)
    if unknown:
        yield f"{where}.default: Invalid value: {show(default)}: must not have unknown fields ({', '.join(unknown)})"
    _default(pruned, schema)
    for problem in validate_value(pruned, schema, "default"):
        yield f"{where}.default: Invalid value: {show(default)}: {problem}"


def _rule_problems(schema: Schema, where: str, correlatable: bool) -> Iterator[str]:
    for index, rule in enumerate(schema.get("x-kubernetes-validations") or []):
        at = f"{where}.x-kubernetes-validations[{index}]"
        if not isinstance(rule, Mapping) or not rule.get("rule"):
            yield f"{at}.rule: Required value"
            continue
        source = str(rule["rule"])
        try:
            cel.compile_expression(source)
        except cel.CelError as error:
            yield f"{at}.rule: Invalid value: {show(source)}: {error}"
            continue
        if "messageExpression" in rule:
            try:
                cel.compile_expression(str(rule["messageExpression"]))
            except cel.CelError as error:
                yield f"{at}.messageExpression: Invalid value: {error}"
        message = rule.get("message")
        if message is not None and (not str(message).strip() or "\n" in str(message)):
            yield f"{at}.message: Invalid value: must be non-empty and may not contain line breaks"
        reason = rule.get("reason")
        if reason is not None and reason not in CEL_REASONS:
            supported = ", ".join(show(r) for r in CEL_REASONS)
            yield f"{at}.reason: Unsupported value: {show(reason)}: supported values: {supported}"
        if "fieldPath" in rule and resolve_field_path(schema, str(rule["fieldPath"])) is None:
            yield f"{at}.fieldPath: Invalid value: {show(rule['fieldPath'])}: fieldPath must be a valid path"
        if _uses_old_self(source) and not correlatable:
            yield (
                f"{at}.rule: Forbidden: oldSelf cannot be used on the uncorrelatable portion of the schema "
                "within a list (an atomic list or a set)"
            )


_FIELD_PATH = re.compile(r"^(\.[A-Za-z_][A-Za-z0-9_]*|\[[^\]]+\])+$")


def resolve_field_path(schema: Schema, field_path: str) -> Schema | None:
    """The sub-schema a rule's ``fieldPath`` (``.spec.x``, ``.items['key']``) names, or None."""
    if not _FIELD_PATH.match(field_path):
        return None
    node: Schema | None = schema
    for name, _key in re.findall(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[([^\]]+)\]", field_path):
        if node is None:
            return None
        if name:
            node = (node.get("properties") or {}).get(name)
        else:
            extra = node.get("additionalProperties")
            node = extra if isinstance(extra, Mapping) else node.get("items")
    return node
