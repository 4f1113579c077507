"""Render monitor query templates into PromQL, escaping every substituted value.

A value such as ``a"}or vector(1)`` must never change the shape of the query:
each substitution is escaped as the inside of a PromQL double-quoted string
literal.  Unknown variables are errors (see ``airlock.api.query_template``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from airlock.api import durations, query_template


@dataclass(frozen=True)
class TemplateContext:
    """The values a system offers to its query templates."""

    namespace: str
    name: str
    target: str
    params: Mapping[str, str]

    def lookup(self, variable: str) -> str:
        if variable.startswith(query_template.PARAM_PREFIX):
            key = variable[len(query_template.PARAM_PREFIX) :]
            if key not in self.params:
                raise query_template.TemplateError(f"unknown variable {{{{ {variable} }}}}: params has no key {key!r}")
            return self.params[key]
        if variable == "namespace":
            return self.namespace
        if variable == "name":
            return self.name
        if variable == "target":
            return self.target
        raise query_template.TemplateError(f"unknown variable {{{{ {variable} }}}}")


def escape_promql_string(value: str) -> str:
    """Escape ``value`` for use inside a double-quoted PromQL string literal."""
    out: list[str] = []
    for char in value:
        if char == "\\":
            out.append("\\\\")
        elif char == '"':
            out.append('\\"')
        elif char == "'":
            # Not \': PromQL (like Go) rejects \' inside a double-quoted literal.
            # \x27 is valid in both quote styles, so a single-quoted template stays safe too.
            out.append("\\x27")
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif char == "\t":
            out.append("\\t")
        elif ord(char) < 0x20 or char == "\x7f":
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return "".join(out)


def render(template: str, context: TemplateContext, *, escape: bool = True) -> str:
    """Substitute every placeholder; raise ``TemplateError`` for an unknown variable."""
    placeholders = query_template.parse(template)
    parts: list[str] = []
    cursor = 0
    for placeholder in placeholders:
        parts.append(template[cursor : placeholder.start])
        value = context.lookup(placeholder.variable)
        parts.append(escape_promql_string(value) if escape else value)
        cursor = placeholder.end
    parts.append(template[cursor:])
    return "".join(parts)


def render_match(match: Mapping[str, str], context: TemplateContext) -> dict[str, str]:
    """Resolve a shared monitor's label match; values are compared, not embedded, so no escaping."""
    return {label: render(value, context, escape=False) for label, value in match.items()}


def baseline_query(query: str, offset: str, window: str, step: str | None = None) -> str:
    """The same query averaged over an earlier window (a PromQL subquery with ``offset``).

    The default ``step`` is a tenth of the window, between 1s and 1m: subquery points are
    aligned to multiples of the step, so a step longer than the window (``[10s:1m]``)
    would find no point in it most of the time and the monitor would flap to no data.
    """
    if step is None:
        step = durations.format_seconds(min(60, max(1, round(durations.parse_seconds(window) / 10))))
    return f"avg_over_time(({query})[{window}:{step}] offset {offset})"
