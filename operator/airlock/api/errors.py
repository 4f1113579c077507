"""Pydantic validation errors rendered the way the API server words them: ``spec.monitors[0].interval: …``.

A human fixing a manifest at 3 a.m. needs the field path, in the same
notation ``kubectl apply`` uses for the CRD's own checks, so the message in a
condition or Event points at the line to change whichever layer caught it.
"""

from __future__ import annotations

import re

from pydantic import ValidationError

# Model validators name the field they reject at the start of the message,
# relative to the model: "monitors[1].name: duplicate name 'x'".
_RELATIVE_PATH = re.compile(
    r"^([A-Za-z][A-Za-z0-9]*|\[[^\]\s]*\])(\[[^\]\s]*\])*(\.[A-Za-z][A-Za-z0-9]*(\[[^\]\s]*\])*)*: "
)
_PREFIXES = ("Value error, ", "Assertion failed, ")


def field_path(loc: tuple[int | str, ...]) -> str:
    """``('spec', 'monitors', 0, 'interval')`` → ``spec.monitors[0].interval``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part == "[key]":
            path += "[key]"
        else:
            path += f".{part}" if path else part
    return path


def describe(exc: ValidationError) -> list[str]:
    """One ``path: message`` line per error, in the order pydantic found them."""
    lines: list[str] = []
    for error in exc.errors(include_url=False):
        message = error["msg"]
        for prefix in _PREFIXES:
            message = message.removeprefix(prefix)
        path = field_path(tuple(error["loc"]))
        relative = _RELATIVE_PATH.match(message)
        if relative:
            inner = relative.group(0)[:-2]
            message = message[relative.end() :]
            path = f"{path}.{inner}" if path and not inner.startswith("[") else f"{path}{inner}"
        lines.append(f"{path}: {message}" if path else message)
    return lines
