"""CEL as the Kubernetes API server evaluates it in admission, with cel-python (celpy).

ValidatingAdmissionPolicies and the ``matchConditions`` of policies and webhooks are CEL.
celpy implements the language and its standard library; this module adds what the API
server adds on top, so that the same expressions give the same answers here:

* property-name escaping: an object property named like a CEL reserved word is reached as
  ``__word__`` (``subject.__namespace__``). The real server escapes by the object's schema;
  the sandbox has none, so keys of fields known to be maps (annotations, labels, ...) are
  left alone and every other property named like a reserved word is escaped;
* the Kubernetes CEL libraries a policy may use: strings (``charAt``, ``indexOf``,
  ``lastIndexOf``, ``lowerAscii``, ``upperAscii``, ``replace``, ``split``, ``substring``,
  ``trim``, ``join``, ``reverse``), lists (``isSorted``, ``sum``, ``min``, ``max``,
  ``indexOf``, ``lastIndexOf``) and regex (``find``, ``findAll``);
* errors worded as the API server words them: ``expression '<source>' resulted in error: ...``.

Not available (an expression using them fails to evaluate, which the caller's failure
policy then decides): optional types (``object.?spec``), the ``authorizer``, and the
url/ip/cidr/quantity/format/sets libraries.

Programs are compiled once per source text (an LRU cache) and are safe to evaluate from
any thread.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any

import celpy
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError

RESERVED = frozenset(
    {
        "as", "break", "const", "continue", "else", "for", "function", "if", "import", "let", "loop",
        "package", "namespace", "return", "var", "void", "while", "in", "true", "false", "null",
    }
)  # fmt: skip
# Fields whose keys are data, not properties: never escaped.
MAP_FIELDS = frozenset(
    {"annotations", "labels", "params", "selector", "match", "matchLabels", "data", "stringData", "binaryData",
     "nodeSelector", "extra"}
)  # fmt: skip


class CelError(Exception):
    """An expression failed to compile or to evaluate; ``message`` is the API server's wording."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def escape(value: Any, *, in_map: bool = False) -> Any:
    """Rename object properties as Kubernetes exposes them to CEL (``namespace`` -> ``__namespace__``)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = key if in_map or key not in RESERVED else f"__{key}__"
            out[name] = escape(item, in_map=key in MAP_FIELDS)
        return out
    if isinstance(value, list):
        return [escape(item) for item in value]
    return value


def to_cel(value: Any, *, escaped: bool = True) -> Any:
    """A JSON value as a CEL value (null stays None); objects are escaped unless told otherwise."""
    if value is None:
        return None
    return json_to_cel(escape(value) if escaped else value)


def from_cel(value: Any) -> Any:
    """A CEL value as plain JSON-like Python (for messages and results)."""
    if isinstance(value, celtypes.BoolType):
        return bool(value)
    if isinstance(value, celtypes.IntType | celtypes.UintType):
        return int(value)
    if isinstance(value, celtypes.DoubleType):
        return float(value)
    if isinstance(value, celtypes.StringType):
        return str(value)
    if isinstance(value, celtypes.MapType):
        return {str(k): from_cel(v) for k, v in value.items()}
    if isinstance(value, celtypes.ListType):
        return [from_cel(v) for v in value]
    return value


# -- the Kubernetes libraries ------------------------------------------------------------------


def _error(message: str) -> CELEvalError:
    return CELEvalError(message)


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return str(value)


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an int, got {type(value).__name__}")
    return int(value)


def _char_at(text: Any, index: Any) -> Any:
    s, i = _string(text), _int(index)
    if i < 0 or i > len(s):
        return _error(f"index out of range: {i}")
    return celtypes.StringType(s[i : i + 1])


def _index_of(receiver: Any, needle: Any, offset: Any = None) -> Any:
    if isinstance(receiver, celtypes.ListType):
        for position, item in enumerate(receiver):
            if item == needle:
                return celtypes.IntType(position)
        return celtypes.IntType(-1)
    s, sub = _string(receiver), _string(needle)
    start = 0 if offset is None else _int(offset)
    if start < 0 or start > len(s):
        return _error(f"index out of range: {start}")
    return celtypes.IntType(s.find(sub, start))


def _last_index_of(receiver: Any, needle: Any, offset: Any = None) -> Any:
    if isinstance(receiver, celtypes.ListType):
        for position in range(len(receiver) - 1, -1, -1):
            if receiver[position] == needle:
                return celtypes.IntType(position)
        return celtypes.IntType(-1)
    s, sub = _string(receiver), _string(needle)
    end = len(s) if offset is None else _int(offset)
    if end < 0 or end > len(s):
        return _error(f"index out of range: {end}")
    return celtypes.IntType(s.rfind(sub, 0, end + len(sub)))


def _ascii(text: Any, upper: bool) -> celtypes.StringType:
    s = _string(text)
    table = str.maketrans(
        "abcdefghijklmnopqrstuvwxyz" if upper else "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if upper else "abcdefghijklmnopqrstuvwxyz",
    )
    return celtypes.StringType(s.translate(table))


def _replace(text: Any, old: Any, new: Any, count: Any = None) -> celtypes.StringType:
    n = -1 if count is None else _int(count)
    return celtypes.StringType(_string(text).replace(_string(old), _string(new), n))


def _split(text: Any, separator: Any, limit: Any = None) -> Any:
    s, sep = _string(text), _string(separator)
    n = -1 if limit is None else _int(limit)
    if n == 0:
        return celtypes.ListType([])
    if sep == "":
        parts = list(s) if n < 0 or n >= len(s) else [*s[: n - 1], s[n - 1 :]]
    else:
        parts = s.split(sep) if n < 0 else s.split(sep, n - 1)
    return celtypes.ListType([celtypes.StringType(part) for part in parts])


def _substring(text: Any, start: Any, end: Any = None) -> Any:
    s = _string(text)
    i = _int(start)
    j = len(s) if end is None else _int(end)
    if i < 0 or i > len(s) or j < i or j > len(s):
        return _error(f"index out of range: substring({i}, {j}) of a string of length {len(s)}")
    return celtypes.StringType(s[i:j])


def _trim(text: Any) -> celtypes.StringType:
    return celtypes.StringType(_string(text).strip())


def _join(items: Any, separator: Any = None) -> Any:
    if not isinstance(items, list):
        raise TypeError("join needs a list of strings")
    return celtypes.StringType(("" if separator is None else _string(separator)).join(_string(i) for i in items))


def _reverse(value: Any) -> Any:
    if isinstance(value, celtypes.ListType):
        return celtypes.ListType(list(reversed(value)))
    return celtypes.StringType(_string(value)[::-1])


def _is_sorted(items: Any) -> Any:
    values = list(items)
    return celtypes.BoolType(all(values[i] <= values[i + 1] for i in range(len(values) - 1)))


def _sum(items: Any) -> Any:
    values = list(items)
    if not values:
        return celtypes.IntType(0)
    total = values[0]
    for value in values[1:]:
        total = total + value
    return total


def _extreme(items: Any, pick: Callable[..., Any]) -> Any:
    values = list(items)
    if not values:
        return _error("min/max of an empty list")
    return pick(values)


def _find(text: Any, pattern: Any) -> Any:
    try:
        match = re.search(_string(pattern), _string(text))
    except re.error as error:
        return _error(f"invalid regular expression: {error}")
    return celtypes.StringType(match.group(0) if match else "")


def _find_all(text: Any, pattern: Any, limit: Any = None) -> Any:
    n = -1 if limit is None else _int(limit)
    try:
        found = [m.group(0) for m in re.finditer(_string(pattern), _string(text))]
    except re.error as error:
        return _error(f"invalid regular expression: {error}")
    if n >= 0:
        found = found[:n]
    return celtypes.ListType([celtypes.StringType(f) for f in found])


LIBRARY: dict[str, Callable[..., Any]] = {
    "charAt": _char_at,
    "indexOf": _index_of,
    "lastIndexOf": _last_index_of,
    "lowerAscii": lambda text: _ascii(text, upper=False),
    "upperAscii": lambda text: _ascii(text, upper=True),
    "replace": _replace,
    "split": _split,
    "substring": _substring,
    "trim": _trim,
    "join": _join,
    "reverse": _reverse,
    "isSorted": _is_sorted,
    "sum": _sum,
    "min": lambda items: _extreme(items, min),
    "max": lambda items: _extreme(items, max),
    "find": _find,
    "findAll": _find_all,
}


# -- compiling and evaluating ----------------------------------------------------------------

_ENVIRONMENT = celpy.Environment()
_COMPILE_LOCK = threading.Lock()
_NOISE = re.compile(r" \(in activation .*", re.DOTALL)


def _detail(error: BaseException) -> str:
    """celpy's error text, without its dump of the whole activation."""
    args = error.args
    text = str(args[0]) if args else type(error).__name__
    text = _NOISE.sub("", text)
    if len(args) >= 3 and args[2]:
        cause = args[2][0] if isinstance(args[2], tuple) and args[2] else args[2]
        cause_text = _NOISE.sub("", str(cause))
        if cause_text and cause_text not in text:
            text = f"{text}: {cause_text}"
    return text


class Program:
    """One compiled expression."""

    def __init__(self, source: str) -> None:
        self.source = source
        try:
            with _COMPILE_LOCK:
                ast = _ENVIRONMENT.compile(source)
                self._runner = _ENVIRONMENT.program(ast, functions=LIBRARY)
        except CELParseError as error:
            raise CelError(f"compilation failed: {' '.join(str(error).split())}") from None

    def evaluate(self, activation: Mapping[str, Any]) -> Any:
        """The value of the expression (a CEL value); :class:`CelError` if it does not evaluate."""
        try:
            result = self._runner.evaluate(dict(activation))
        except CELEvalError as error:
            raise CelError(f"expression '{self.source}' resulted in error: {_detail(error)}") from None
        except RecursionError:
            raise CelError(f"expression '{self.source}' resulted in error: too deeply nested") from None
        except Exception as error:  # celpy raises plain Python errors for some overloads
            raise CelError(f"expression '{self.source}' resulted in error: {error}") from None
        if isinstance(result, CELEvalError):
            raise CelError(f"expression '{self.source}' resulted in error: {_detail(result)}")
        return result

    def evaluate_bool(self, activation: Mapping[str, Any]) -> bool:
        """For conditions and validations: the result must be a bool."""
        result = self.evaluate(activation)
        if not isinstance(result, celtypes.BoolType | bool):
            raise CelError(
                f"expression '{self.source}' resulted in error: expected a bool, got {type(result).__name__}"
            )
        return bool(result)

    def __repr__(self) -> str:
        return f"Program({self.source!r})"


@functools.lru_cache(maxsize=2048)
def compile_expression(source: str) -> Program:
    """The compiled program of ``source`` (cached by text); :class:`CelError` on a syntax error."""
    return Program(source)


class LazyVariables(celtypes.MapType):
    """``variables``: each evaluated on first use, in the order declared, then remembered.

    A variable that fails to evaluate is an error only for the expressions that use it.
    """

    def __init__(self, programs: Mapping[str, Program], activation: dict[str, Any]) -> None:
        super().__init__()
        self._programs = programs
        self._activation = activation
        self._values: dict[str, Any] = {}

    def __contains__(self, key: object) -> bool:
        return key in self._programs

    def __getitem__(self, key: Any) -> Any:
        name = str(key)
        if name not in self._values:
            program = self._programs.get(name)
            if program is None:
                raise KeyError(name)
            try:
                self._values[name] = program.evaluate(self._activation)
            except CelError as error:
                self._values[name] = CELEvalError(error.message)
        return self._values[name]


def activation_with_variables(activation: dict[str, Any], programs: Mapping[str, Program]) -> dict[str, Any]:
    """``activation`` plus a lazily evaluated ``variables`` map (variables may use earlier ones)."""
    extended = dict(activation)
    extended["variables"] = LazyVariables(programs, extended)
    return extended
