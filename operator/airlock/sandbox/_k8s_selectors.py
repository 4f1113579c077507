"""Label and field selectors, as parsed and matched by the Kubernetes API server.

Operators and kubectl narrow lists and watches with ``labelSelector``/``fieldSelector``;
an emulator that ignored them would hand a test objects it should never see and hide
selector bugs in the code under test. The grammar follows ``k8s.io/apimachinery``'s
``labels.Parse``: equality (``a=b``, ``a==b``, ``a!=b``), sets (``a in (x,y)``,
``a notin (x)``), existence (``a``, ``!a``) and the numeric ``a>1``/``a<1``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airlock.sandbox._k8s_errors import ApiError, bad_request

_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_SET_OP = re.compile(r"^(?P<key>\S+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)$")
_BINARY_OP = re.compile(r"^(?P<key>[^=!<>\s]+)\s*(?P<op>==|=|!=|<|>)\s*(?P<value>.*)$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # one of: in, notin, exists, !exists, gt, lt
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "in":
            return present and value in self.values
        if self.op == "notin":
            return not present or value not in self.values
        if self.op == "exists":
            return present
        if self.op == "!exists":
            return not present
        try:
            number = int(str(value))
        except ValueError:
            return False
        (limit,) = self.values
        return present and (number > int(limit) if self.op == "gt" else number < int(limit))


@dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(requirement.matches(labels) for requirement in self.requirements)


def _split_top_level(text: str) -> list[str]:
    # Commas separate requirements, except inside the parentheses of `in (...)` sets.
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part.strip() for part in parts if part.strip()]


def _check_key(key: str, source: str) -> str:
    if not _KEY.match(key) or len(key.rsplit("/", 1)[-1]) > 63:
        raise _parse_error(source, f"invalid label key {key!r}")
    return key


def _check_value(value: str, source: str) -> str:
    if not _VALUE.match(value) or len(value) > 63:
        raise _parse_error(source, f"invalid label value {value!r}")
    return value


def _parse_error(source: str, why: str) -> ApiError:
    return bad_request(f"unable to parse requirement: {why} in selector {source!r}")


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse the ``labelSelector`` query parameter; a bad one is a 400, as on a real server."""
    if not text or not text.strip():
        return LabelSelector()
    requirements: list[Requirement] = []
    for part in _split_top_level(text):
        if part.startswith("!"):
            requirements.append(Requirement(_check_key(part[1:].strip(), text), "!exists"))
        elif match := _SET_OP.match(part):
            values = frozenset(v.strip() for v in match["values"].split(",") if v.strip())
            for value in values:
                _check_value(value, text)
            requirements.append(Requirement(_check_key(match["key"], text), match["op"], values))
        elif match := _BINARY_OP.match(part):
            key, op, value = _check_key(match["key"], text), match["op"], match["value"].strip()
            if op in ("<", ">"):
                if not re.fullmatch(r"-?\d+", value):
                    raise _parse_error(text, f"{value!r} is not an integer")
                requirements.append(Requirement(key, "gt" if op == ">" else "lt", frozenset([value])))
            else:
                value = _check_value(value, text)
                requirements.append(Requirement(key, "notin" if op == "!=" else "in", frozenset([value])))
        else:
            requirements.append(Requirement(_check_key(part, text), "exists"))
    return LabelSelector(tuple(requirements))


@dataclass(frozen=True)
class FieldSelector:
    # (dotted path, must-equal?, value)
    terms: tuple[tuple[str, bool, str], ...] = ()

    def matches(self, obj: Mapping[str, Any]) -> bool:
        for path, equal, expected in self.terms:
            actual = field_value(obj, path)
            if (actual == expected) != equal:
                return False
        return True

    def names(self) -> set[str] | None:
        """The single object name this selector pins, if any (used to watch one object)."""
        for path, equal, expected in self.terms:
            if path == "metadata.name" and equal:
                return {expected}
        return None


def field_value(obj: Mapping[str, Any], path: str) -> str:
    value: Any = obj
    for step in path.split("."):
        value = value.get(step) if isinstance(value, Mapping) else None
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_field_selector(text: str | None) -> FieldSelector:
    """Parse ``fieldSelector``; any dotted path is accepted (a real server allows only a few)."""
    if not text or not text.strip():
        return FieldSelector()
    terms: list[tuple[str, bool, str]] = []
    for part in _split_top_level(text):
        match = re.fullmatch(r"(?P<path>[A-Za-z0-9_.]+)\s*(?P<op>==|=|!=)\s*(?P<value>.*)", part)
        if not match:
            raise bad_request(f"invalid field selector: {part!r}")
        terms.append((match["path"], match["op"] != "!=", match["value"].strip()))
    return FieldSelector(tuple(terms))


def format_label_selector(selector: Mapping[str, Any] | None) -> str:
    """Render a ``LabelSelector`` object (matchLabels/matchExpressions) as its string form."""
    if not selector:
        return ""
    parts = [f"{key}={value}" for key, value in sorted((selector.get("matchLabels") or {}).items())]
    for expression in selector.get("matchExpressions") or []:
        key, op = expression.get("key", ""), expression.get("operator", "")
        values = ",".join(sorted(expression.get("values") or []))
        if op == "In":
            parts.append(f"{key} in ({values})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({values})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)
