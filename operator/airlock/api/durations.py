"""Go/Prometheus-style durations (``15s``, ``2m``, ``1h30m``, ``7d``) parsed once.

Manifests carry durations as strings because that is what people write and
what ``kubectl get -o yaml`` should show back.  The model turns each one into
a :class:`Duration` — still a ``str`` (so it serialises unchanged) that also
knows its length in seconds, so no caller ever parses a duration twice.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

# The same grammar the CRD schema enforces; kept in one place so the model and
# the schema cannot disagree.
DURATION_PATTERN = r"^([0-9]+(ms|s|m|h|d|w))+$"
# Bounded so the API server's CEL cost estimate for rules reading a duration stays small.
DURATION_MAX_LENGTH = 32
_PART = re.compile(r"([0-9]+)(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_WHOLE = re.compile(DURATION_PATTERN)


class DurationError(ValueError):
    """A string that is not a duration such as ``15s``, ``2m`` or ``1h30m``."""


def parse_seconds(text: str) -> float:
    """Return the length of ``text`` in seconds; raise :class:`DurationError` if malformed."""
    # fullmatch, not match: Python's `$` also matches before a trailing newline, Go's (the API server's) does not.
    if not isinstance(text, str) or len(text) > DURATION_MAX_LENGTH or not _WHOLE.fullmatch(text):
        raise DurationError(
            f"invalid duration {text!r}: use a number and a unit (ms, s, m, h, d, w), e.g. 15s, 2m, 1h30m, 7d"
        )
    return sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _PART.findall(text))


def format_seconds(seconds: float) -> str:
    """Render seconds as the shortest exact duration string (``90`` → ``1m30s``)."""
    if seconds < 0:
        raise DurationError(f"negative duration: {seconds}")
    millis = round(seconds * 1000)
    if millis == 0:
        return "0s"
    parts: list[str] = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        count, millis = divmod(millis, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


class Duration(str):
    """A validated duration string that also carries its value in seconds."""

    __slots__ = ("seconds",)
    seconds: float

    def __new__(cls, text: str) -> Duration:
        seconds = parse_seconds(text)
        self = super().__new__(cls, text)
        self.seconds = seconds
        return self

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(
            cls._validate,
            core_schema.str_schema(),
            serialization=core_schema.plain_serializer_function_ser_schema(str),
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string", "pattern": DURATION_PATTERN, "maxLength": DURATION_MAX_LENGTH}

    @classmethod
    def _validate(cls, value: str) -> Duration:
        if isinstance(value, Duration):
            return value
        try:
            return cls(value)
        except DurationError as exc:
            raise ValueError(str(exc)) from None
