"""CEL as the Kubernetes API server evaluates it, on top of cel-python.

CRD validation rules (``x-kubernetes-validations``) and admission expressions are
standard CEL plus a few Kubernetes conventions that a plain CEL library does not know:

* property names that collide with CEL reserved words, or contain ``.``, ``-``, ``/``
  or ``__``, are visible under an escaped name (``namespace`` → ``__namespace__``,
  ``a-b`` → ``a__dash__b``); keys of map-typed fields (``additionalProperties``,
  labels, annotations) are left alone;
* the Kubernetes string library (``split``, ``lowerAscii``, ``upperAscii``, ``trim``,
  ``join``, ``replace``, ``indexOf``, ``lastIndexOf``) on top of the standard
  ``matches``/``contains``/``startsWith``/``endsWith``.

This module is the one CEL evaluator of the sandbox: the CRD schema code
(:mod:`._k8s_schema`) uses it, and admission code can use it too. Programs are compiled
once per expression and cached. NOT emulated: runtime cost limits (a rule is never
stopped half-way), optional types (``?.``), the ``quantity``, ``url``, ``ip``/``cidr``
and ``format`` libraries; such a rule fails to compile or evaluate and says so.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import celpy
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError

__all__ = ["RESERVED", "CelError", "Program", "escape", "from_json", "program"]

# apiextensions-apiserver's escaping (schema/cel/model): reserved words get __word__.
RESERVED = frozenset(
    {
        *("true", "false", "null", "in", "as", "break", "const", "continue", "else", "for", "function"),
        *("if", "import", "let", "loop", "package", "namespace", "return", "var", "void", "while"),
    }
)


class CelError(Exception):
    """A CEL expression failed to compile or to evaluate; the message says which and why."""


def escape(name: str) -> str:
    """The name under which a declared object property is visible in CEL."""
    if name in RESERVED:
        return f"__{name}__"
    return (
        name.replace("__", "__underscores__").replace(".", "__dot__").replace("-", "__dash__").replace("/", "__slash__")
    )


def _split(text: Any, separator: Any, limit: Any = None) -> celtypes.ListType:
    parts = str(text).split(str(separator)) if limit is None else str(text).split(str(separator), int(limit) - 1)
    return celtypes.ListType([celtypes.StringType(part) for part in parts])


def _join(items: Any, separator: Any = "") -> celtypes.StringType:
    return celtypes.StringType(str(separator).join(str(item) for item in items))


def _replace(text: Any, old: Any, new: Any, limit: Any = None) -> celtypes.StringType:
    count = -1 if limit is None else int(limit)
    return celtypes.StringType(str(text).replace(str(old), str(new), count))


def _index_of(text: Any, sub: Any, start: Any = 0) -> celtypes.IntType:
    return celtypes.IntType(str(text).find(str(sub), int(start)))


def _last_index_of(text: Any, sub: Any) -> celtypes.IntType:
    return celtypes.IntType(str(text).rfind(str(sub)))


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "split": _split,
    "lowerAscii": lambda text: celtypes.StringType(str(text).lower()),
    "upperAscii": lambda text: celtypes.StringType(str(text).upper()),
    "trim": lambda text: celtypes.StringType(str(text).strip()),
    "join": _join,
    "replace": _replace,
    "indexOf": _index_of,
    "lastIndexOf": _last_index_of,
}

_ENV = celpy.Environment()


class Program:
    """One compiled expression."""

    def __init__(self, source: str) -> None:
        self.source = source
        try:
            self.ast = _ENV.compile(source)
        except CELParseError as error:
            raise CelError(f"compilation failed: {error}") from None
        self._runner = _ENV.program(self.ast, functions=FUNCTIONS)

    def evaluate(self, activation: Mapping[str, Any]) -> Any:
        """The value (a celpy type); CelError when evaluation fails (no such key, type error, ...)."""
        try:
            result = self._runner.evaluate(dict(activation))
        except CELEvalError as error:
            raise CelError(_describe(error)) from None
        except (TypeError, ValueError, KeyError, ZeroDivisionError) as error:
            raise CelError(f"{type(error).__name__}: {error}") from None
        if isinstance(result, CELEvalError):
            raise CelError(_describe(result))
        return result

    def holds(self, activation: Mapping[str, Any]) -> bool:
        """Evaluate a rule that must be a boolean; CelError for anything else."""
        result = self.evaluate(activation)
        if not isinstance(result, celtypes.BoolType | bool):
            raise CelError(f"expected a boolean, got {type(result).__name__}")
        return bool(result)


def _describe(error: CELEvalError) -> str:
    if error.args and isinstance(error.args[0], str):
        return error.args[0]
    return str(error)


@functools.lru_cache(maxsize=2048)
def program(source: str) -> Program:
    """The compiled program of ``source`` (cached: rules are compiled once, evaluated often)."""
    return Program(source)


def from_json(value: Any, schema: Mapping[str, Any] | None = None) -> Any:
    """A JSON value as CEL sees it under a structural ``schema`` (declared properties escaped).

    Without a schema (or under ``x-kubernetes-preserve-unknown-fields``) object keys are kept
    as they are, which is what the API server does for untyped data.
    """
    if value is None:
        return None
    return json_to_cel(_escaped(value, schema))


def _escaped(value: Any, schema: Mapping[str, Any] | None) -> Any:
    if isinstance(value, dict):
        properties = (schema or {}).get("properties")
        extra = (schema or {}).get("additionalProperties")
        if properties is not None:
            return {
                escape(key) if key in properties else key: _escaped(item, properties.get(key))
                for key, item in value.items()
            }
        if isinstance(extra, Mapping):
            return {key: _escaped(item, extra) for key, item in value.items()}
        return value
    if isinstance(value, list):
        items = (schema or {}).get("items")
        return [_escaped(item, items) for item in value]
    return value
