"""The API server's static cost estimate of CRD validation rules (``x-kubernetes-validations``).

A real API server refuses a CRD whose rules *might* be too expensive, before any object
exists: every rule's worst-case cost is estimated from the schema, and must stay under
**10,000,000** per expression, and the sum over the CRD (each rule's cost times how many
times it can run: the product of the ``maxItems``/``maxProperties`` of the lists and maps
above it) under **100,000,000**. Where a list, map or string has no declared bound, the
server assumes the largest one a 3 MiB request could hold — so a rule iterating an
unbounded list, or running ``matches`` over an unbounded string, is refused.

This is that estimate, following cel-go's cost model (``checker/cost.go``) and the
Kubernetes size rules (``apiserver/pkg/cel/common``) for the parts CRD rules use:
identifiers and field selections cost 1, literals 0, a list literal 10, a map literal 30;
comprehensions (``all``, ``exists``, ``exists_one``, ``map``, ``filter``) cost the range's
size times the body; string traversals 0.1 per character (``==``, ``startsWith``,
``lowerAscii``, ...), ``contains`` and ``matches`` the product of both sizes (the regex at
0.25 per character); ``in`` a list its size. It is an estimate of an estimate — close
enough to catch what the real server refuses (an unbounded iteration costs millions),
and :attr:`RuleCost.unbounded` names every unbounded list, map or string a rule's cost
depends on, which is stricter than the server and what airlock's own CRDs are held to.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from lark import Token, Tree

from airlock.sandbox import _k8s_cel as cel

__all__ = ["PER_CRD_LIMIT", "PER_EXPRESSION_LIMIT", "RuleCost", "SchemaCost", "estimate_rule", "estimate_schema"]

PER_EXPRESSION_LIMIT = 10_000_000
PER_CRD_LIMIT = 100_000_000
MAX_REQUEST_BYTES = 3 * 1024 * 1024
_DATE_TIME_SIZE = 64
_DURATION_SIZE = 32
_DATE_SIZE = 12
_STRING_FACTOR = 0.1
_REGEX_FACTOR = 0.25
_MACROS = {"all": 3, "exists": 3, "exists_one": 3, "map": 12, "filter": 13}
_TRAVERSALS = {"lowerAscii", "upperAscii", "trim", "split", "join", "replace", "indexOf", "lastIndexOf"}

Schema = Mapping[str, Any]


def _ceil(value: float) -> int:
    return math.ceil(value - 1e-9)


def min_size(schema: Schema | None) -> int:
    """The smallest JSON encoding of a value of this schema (apiserver's estimateMinSizeJSON)."""
    if not schema:
        return 0
    kind = schema.get("type")
    if kind == "boolean":
        return 4
    if kind in ("number", "integer"):
        return 1
    if kind == "string":
        return 2 + int(schema.get("minLength", 0))
    if kind == "array":
        return 2
    if kind == "object":
        size = 2
        properties = schema.get("properties") or {}
        for name in schema.get("required") or []:
            prop = properties.get(name)
            if prop is not None and "default" not in prop:
                size += len(name) + min_size(prop) + 4
        return size
    return 1 if schema.get("x-kubernetes-int-or-string") else 0


def max_size(schema: Schema | None) -> tuple[int, bool]:
    """(the largest size, whether the schema declares it) of a string, list or map; 1 for scalars."""
    if not schema:
        return MAX_REQUEST_BYTES, False
    kind = schema.get("type")
    if kind == "string" or schema.get("x-kubernetes-int-or-string"):
        if "maxLength" in schema:
            return int(schema["maxLength"]), True
        fixed = {"date-time": _DATE_TIME_SIZE, "duration": _DURATION_SIZE, "date": _DATE_SIZE}.get(
            str(schema.get("format"))
        )
        if fixed is not None:
            return fixed, True
        return MAX_REQUEST_BYTES - 2, False
    if kind == "array":
        if "maxItems" in schema:
            return int(schema["maxItems"]), True
        return (MAX_REQUEST_BYTES - 2) // (min_size(schema.get("items")) + 1), False
    if kind == "object":
        extra = schema.get("additionalProperties")
        if isinstance(extra, Mapping) or schema.get("x-kubernetes-preserve-unknown-fields"):
            if "maxProperties" in schema:
                return int(schema["maxProperties"]), True
            value = extra if isinstance(extra, Mapping) else None
            return (MAX_REQUEST_BYTES - 2) // (4 + min_size(value) + 1), False
        return max(len(schema.get("properties") or {}), 1), True
    return 1, True


@dataclass(frozen=True)
class _Value:
    """What the estimator knows about a sub-expression's value."""

    schema: Schema | None = None
    size: int = 1
    bounded: bool = True
    name: str = ""  # the schema path, for reports

    @property
    def is_map(self) -> bool:
        return bool(self.schema and isinstance(self.schema.get("additionalProperties"), Mapping))


_SCALAR = _Value()


@dataclass
class RuleCost:
    path: str
    index: int
    rule: str
    cost: int
    cardinality: int
    unbounded: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.cost * self.cardinality


@dataclass
class SchemaCost:
    rules: list[RuleCost]

    @property
    def total(self) -> int:
        return sum(rule.total for rule in self.rules)


class _Estimator:
    def __init__(self, self_value: _Value) -> None:
        self.variables: dict[str, list[_Value]] = {"self": [self_value], "oldSelf": [self_value]}
        self.unbounded: list[str] = []

    # -- helpers
    def _sized(self, value: _Value) -> int:
        if not value.bounded and value.name not in self.unbounded:
            self.unbounded.append(value.name)
        return value.size

    @staticmethod
    def _of(schema: Schema | None, name: str) -> _Value:
        if schema is None:
            return _Value(None, MAX_REQUEST_BYTES, False, name)
        size, bounded = max_size(schema)
        return _Value(schema, size, bounded, name)

    # -- the walk: returns (cost, value)
    def cost(self, node: Any) -> tuple[int, _Value]:
        if isinstance(node, Token):
            return 0, _SCALAR
        children = list(node.children)
        rule = node.data
        handler = getattr(self, f"_{rule}", None)
        if handler is not None:
            result: tuple[int, _Value] = handler(children)
            return result
        if len(children) == 1:
            return self.cost(children[0])
        total = 0
        for child in children:
            total += self.cost(child)[0]
        return total + 1, _SCALAR

    def _expr(self, children: list[Any]) -> tuple[int, _Value]:
        if len(children) == 3:  # condition ? a : b
            condition = self.cost(children[0])[0]
            left, left_value = self.cost(children[1])
            right, right_value = self.cost(children[2])
            return condition + max(left, right), left_value if left_value.size >= right_value.size else right_value
        return self.cost(children[0])

    def _conditionalor(self, children: list[Any]) -> tuple[int, _Value]:
        if len(children) == 1:
            return self.cost(children[0])
        return sum(self.cost(child)[0] for child in children), _SCALAR

    _conditionaland = _conditionalor

    def _relation(self, children: list[Any]) -> tuple[int, _Value]:
        if len(children) == 1 and isinstance(children[0], Tree) and children[0].data.startswith("relation_"):
            operator = children[0]
            left_cost, left = self.cost(operator.children[0])
            right_cost, right = self.cost(operator.children[1])
            if operator.data == "relation_in":
                size = 1 if right.is_map else self._sized(right)
                return left_cost + right_cost + size, _SCALAR
            smallest = min(left, right, key=lambda value: value.size)
            size = self._sized(smallest)
            return left_cost + right_cost + max(_ceil(size * _STRING_FACTOR), 1), _SCALAR
        return self.cost(children[0])

    def _addition(self, children: list[Any]) -> tuple[int, _Value]:
        if len(children) == 1 and isinstance(children[0], Tree) and children[0].data.startswith("addition_"):
            left_cost, left = self.cost(children[0].children[0])
            right_cost, right = self.cost(children[0].children[1])
            size = left.size + right.size
            kind = (left.schema or {}).get("type")
            extra = _ceil(size * _STRING_FACTOR) if kind == "string" else 1
            return left_cost + right_cost + extra, _Value(left.schema, size, left.bounded and right.bounded, left.name)
        return self.cost(children[0])

    def _unary(self, children: list[Any]) -> tuple[int, _Value]:
        if len(children) == 2:
            cost, _ = self.cost(children[1])
            return cost + 1, _SCALAR
        return self.cost(children[0])

    def _literal(self, children: list[Any]) -> tuple[int, _Value]:
        text = str(children[0])
        if text[:1] in ("'", '"') or text[:2].lower() in ("r'", 'r"'):
            body = text.strip("rR")[1:-1]
            return 0, _Value({"type": "string"}, len(body), True, "literal")
        return 0, _SCALAR

    def _list_lit(self, children: list[Any]) -> tuple[int, _Value]:
        items = list(children[0].children) if children else []
        cost = sum(self.cost(item)[0] for item in items)
        return cost + 10, _Value({"type": "array", "items": {}}, len(items), True, "literal")

    def _map_lit(self, children: list[Any]) -> tuple[int, _Value]:
        entries = list(children[0].children) if children else []
        cost = sum(self.cost(item)[0] for item in entries)
        return cost + 30, _Value({"type": "object", "additionalProperties": {}}, len(entries) // 2, True, "literal")

    def _ident(self, children: list[Any]) -> tuple[int, _Value]:
        name = str(children[0])
        stack = self.variables.get(name)
        return 1, stack[-1] if stack else _Value(None, MAX_REQUEST_BYTES, False, name)

    def _member_dot(self, children: list[Any]) -> tuple[int, _Value]:
        cost, target = self.cost(children[0])
        name = str(children[1])
        schema = target.schema or {}
        properties = schema.get("properties") or {}
        declared = {cel.escape_property(key): key for key in properties}
        extra = schema.get("additionalProperties")
        if name in declared:
            sub = properties[declared[name]]
            return cost + 1, self._of(sub, f"{target.name}.{declared[name]}")
        if isinstance(extra, Mapping):
            return cost + 1, self._of(extra, f"{target.name}[*]")
        return cost + 1, _Value(None, MAX_REQUEST_BYTES, False, f"{target.name}.{name}")

    def _member_index(self, children: list[Any]) -> tuple[int, _Value]:
        cost, target = self.cost(children[0])
        index_cost, _ = self.cost(children[1])
        schema = target.schema or {}
        sub = schema.get("items") if schema.get("type") == "array" else schema.get("additionalProperties")
        name = f"{target.name}[]" if schema.get("type") == "array" else f"{target.name}[*]"
        return cost + index_cost + 1, self._of(sub if isinstance(sub, Mapping) else None, name)

    def _ident_arg(self, children: list[Any]) -> tuple[int, _Value]:
        name = str(children[0])
        args = list(children[1].children) if len(children) > 1 else []
        if name == "has" and args:
            # A presence test costs 1 plus the operand, without the selection itself.
            inner = self._unwrap(args[0])
            if isinstance(inner, Tree) and inner.data == "member_dot":
                return self.cost(inner.children[0])[0] + 1, _SCALAR
            return self.cost(args[0])[0] + 1, _SCALAR
        return self._call(name, None, args)

    def _member_dot_arg(self, children: list[Any]) -> tuple[int, _Value]:
        target_node, name = children[0], str(children[1])
        args = list(children[2].children) if len(children) > 2 else []
        if name in _MACROS and len(args) in (2, 3):
            return self._comprehension(name, target_node, args)
        return self._call(name, target_node, args)

    @staticmethod
    def _unwrap(node: Any) -> Any:
        while isinstance(node, Tree) and len(node.children) == 1 and isinstance(node.children[0], Tree):
            if node.data in ("member_dot", "member_index", "member_dot_arg", "ident_arg", "list_lit", "map_lit"):
                break
            node = node.children[0]
        return node

    def _comprehension(self, macro: str, target_node: Any, args: list[Any]) -> tuple[int, _Value]:
        range_cost, target = self.cost(target_node)
        variable = str(self._unwrap(args[0]).children[0]) if isinstance(self._unwrap(args[0]), Tree) else "x"
        schema = target.schema or {}
        if schema.get("type") == "array":
            element = self._of(
                schema.get("items") if isinstance(schema.get("items"), Mapping) else None, f"{target.name}[]"
            )
        else:  # maps iterate over their keys
            element = _Value({"type": "string"}, MAX_REQUEST_BYTES - 2, False, f"{target.name} (keys)")
        count = self._sized(target)
        self.variables.setdefault(variable, []).append(element)
        try:
            body = sum(self.cost(arg)[0] for arg in args[1:])
        finally:
            self.variables[variable].pop()
        result = target if macro in ("map", "filter") else _SCALAR
        return range_cost + count * (body + _MACROS[macro]) + 1, result

    def _call(self, name: str, target_node: Any, args: list[Any]) -> tuple[int, _Value]:
        cost = 0
        target = _SCALAR
        if target_node is not None:
            cost, target = self.cost(target_node)
        values = []
        for arg in args:
            arg_cost, value = self.cost(arg)
            cost += arg_cost
            values.append(value)
        subject = target if target_node is not None else (values[0] if values else _SCALAR)
        others = values if target_node is not None else values[1:]
        if name == "matches" and others:
            text = self._sized(subject)
            regex = self._sized(others[0])
            return cost + _ceil((text + 1) * _STRING_FACTOR) * _ceil(regex * _REGEX_FACTOR), _SCALAR
        if name == "contains" and others:
            text, sub = self._sized(subject), self._sized(others[0])
            return cost + _ceil(text * _STRING_FACTOR) * _ceil(sub * _STRING_FACTOR), _SCALAR
        if name in ("startsWith", "endsWith") and others:
            return cost + max(_ceil(self._sized(others[0]) * _STRING_FACTOR), 1), _SCALAR
        if name in _TRAVERSALS:
            result = subject if name in ("lowerAscii", "upperAscii", "trim", "replace") else _SCALAR
            return cost + max(_ceil(self._sized(subject) * _STRING_FACTOR), 1), result
        if name in ("isSorted", "sum", "min", "max"):
            return cost + self._sized(subject), _SCALAR
        if name == "dyn" and values:
            return cost + 1, values[0]
        return cost + 1, _SCALAR


def estimate_rule(rule: str, schema: Schema, name: str = "self") -> tuple[int, list[str]]:
    """The estimated worst-case cost of ``rule`` with ``self`` of ``schema``, and what was unbounded."""
    program = cel.compile_expression(rule)
    size, bounded = max_size(schema)
    estimator = _Estimator(_Value(schema, size, bounded, name))
    cost, _ = estimator.cost(program.ast)
    return cost, estimator.unbounded


def _walk(schema: Schema, path: str, cardinality: int) -> Iterator[tuple[str, Schema, int]]:
    yield path, schema, cardinality
    for name, sub in (schema.get("properties") or {}).items():
        if isinstance(sub, Mapping):
            yield from _walk(sub, f"{path}.{name}" if path else name, cardinality)
    items = schema.get("items")
    if isinstance(items, Mapping):
        yield from _walk(items, f"{path}[]", cardinality * max_size(schema)[0])
    extra = schema.get("additionalProperties")
    if isinstance(extra, Mapping):
        yield from _walk(extra, f"{path}[*]", cardinality * max_size(schema)[0])


def estimate_schema(schema: Schema) -> SchemaCost:
    """Every rule of an ``openAPIV3Schema`` with its estimated cost and how often it can run."""
    found: list[RuleCost] = []
    for path, node, cardinality in _walk(schema, "", 1):
        for index, rule in enumerate(node.get("x-kubernetes-validations") or []):
            source = str(rule.get("rule", "")) if isinstance(rule, Mapping) else ""
            try:
                cost, unbounded = estimate_rule(source, node, path or "self")
            except cel.CelError:
                continue  # reported as a compilation problem elsewhere
            found.append(RuleCost(path, index, source, cost, cardinality, unbounded))
    return SchemaCost(found)
