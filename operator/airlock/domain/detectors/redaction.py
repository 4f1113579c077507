"""Redaction: each finding of the chosen detectors replaced by ``[REDACTED:<kind>]`` (SPEC §9)."""

from __future__ import annotations

from collections.abc import Iterable

from airlock.domain.detectors.findings import Detector, Finding


def marker(kind: str) -> str:
    """What a redacted finding is replaced with."""
    return f"[REDACTED:{kind}]"


def spans(findings: Iterable[Finding], detectors: set[Detector] | frozenset[Detector]) -> list[tuple[int, int, str]]:
    """The spans to replace: the chosen detectors' findings, overlapping ones merged (the first one's kind)."""
    chosen = sorted(
        (f for f in findings if f.detector in detectors and f.end > f.start), key=lambda f: (f.start, -f.end)
    )
    merged: list[tuple[int, int, str]] = []
    for f in chosen:
        if merged and f.start < merged[-1][1]:
            start, end, kind = merged[-1]
            merged[-1] = (start, max(end, f.end), kind)
        else:
            merged.append((f.start, f.end, f.kind))
    return merged


def redact(text: str, findings: list[Finding], detectors: set[Detector]) -> str:
    """``text`` with each finding of ``detectors`` replaced by ``[REDACTED:<kind>]``; overlapping findings merged."""
    return apply(text, spans(findings, detectors))


def apply(text: str, merged: list[tuple[int, int, str]], offset: int = 0) -> str:
    """Replace merged spans (offsets relative to ``offset``, the position of ``text`` in the whole answer)."""
    out: list[str] = []
    pos = 0
    for start, end, kind in merged:
        start, end = max(start - offset, 0), min(end - offset, len(text))
        if end <= pos:
            continue
        out.append(text[pos:start])
        out.append(marker(kind))
        pos = end
    out.append(text[pos:])
    return "".join(out)
