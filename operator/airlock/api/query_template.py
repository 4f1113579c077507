"""The tiny template language of monitor queries: ``{{ namespace }}``, ``{{ params.app }}``.

It lives in the API layer because a malformed template is a *spec* error: the
model rejects it at admission/parse time, long before 3 a.m.  Rendering (with
PromQL escaping) is the domain's job and reuses :func:`parse`.

Deliberately not Jinja: a query template has no logic, and an unknown variable
must be an error, never a silently empty string.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# Variables every monitor may use; ``params.<key>`` comes from the AISystem's params.
BUILTIN_VARIABLES = ("namespace", "name", "target")
PARAM_PREFIX = "params."

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)?)\s*\}\}")


class TemplateError(ValueError):
    """A query template that cannot be parsed or names an unknown variable."""


@dataclass(frozen=True)
class Placeholder:
    """One ``{{ variable }}`` occurrence: its span in the text and the variable name."""

    start: int
    end: int
    variable: str


def parse(template: str) -> list[Placeholder]:
    """Return the placeholders of ``template``; raise :class:`TemplateError` on stray braces."""
    placeholders = [Placeholder(m.start(), m.end(), m.group(1)) for m in _PLACEHOLDER.finditer(template)]
    # Whatever is left once the well-formed placeholders are cut out must not
    # contain template braces: `{{ x }`, `{{x y}}` or a lone `}}` are typos.
    rest = _PLACEHOLDER.sub("", template)
    for marker in ("{{", "}}"):
        pos = rest.find(marker)
        if pos >= 0:
            raise TemplateError(
                f"malformed template near {rest[max(0, pos - 10) : pos + 12]!r}: "
                "placeholders look like {{ namespace }} or {{ params.key }}"
            )
    return placeholders


def check_variables(template: str, params: Iterable[str] | None) -> list[str]:
    """Validate the variables of ``template``; return them in order of appearance.

    ``params`` is the set of available ``params`` keys, or ``None`` when they are
    not known yet (a ContainmentPolicy, checked again when merged into a system).
    """
    known = set(params) if params is not None else None
    names: list[str] = []
    for placeholder in parse(template):
        variable = placeholder.variable
        if variable.startswith(PARAM_PREFIX):
            key = variable[len(PARAM_PREFIX) :]
            if known is not None and key not in known:
                available = ", ".join(sorted(known)) or "none"
                raise TemplateError(f"unknown variable {{{{ {variable} }}}}: params has no key {key!r} ({available})")
        elif variable not in BUILTIN_VARIABLES:
            allowed = ", ".join(BUILTIN_VARIABLES)
            raise TemplateError(f"unknown variable {{{{ {variable} }}}}: use one of {allowed} or params.<key>")
        names.append(variable)
    return names
