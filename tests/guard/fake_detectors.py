"""A tiny stand-in for ``airlock.domain.detectors`` with the contract's shapes.

Used by ``tests/guard/`` only while the real module is not on this branch: it finds
e-mail addresses (pii; cross-customer when the request did not contain them),
"ignore previous instructions" (prompt-injection), the canary token and "I can't help"
(refusal).  The proxy's mechanics do not depend on how good the detectors are.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field

from airlock.api.guard import Detector, Mode

__all__ = [
    "INJECTION_THRESHOLD",
    "KINDS",
    "Canary",
    "Detector",
    "Direction",
    "Finding",
    "Mode",
    "RequestContext",
    "ResponseStream",
    "StreamScan",
    "injection_score",
    "redact",
    "scan_request",
    "scan_response",
]

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
INJECTION = re.compile(r"ignore (all )?previous instructions", re.IGNORECASE)
REFUSAL = re.compile(r"^\s*I can(no|')t help", re.IGNORECASE)
INJECTION_THRESHOLD = 0.5
KINDS = {
    Detector.PII: ("email",),
    Detector.CROSS_CUSTOMER: ("email",),
    Detector.PROMPT_INJECTION: ("instruction-override",),
    Detector.CANARY: ("canary",),
    Detector.REFUSAL: ("refusal",),
}


class Direction:
    REQUEST = "request"
    RESPONSE = "response"


@dataclass(frozen=True)
class Finding:
    detector: Detector
    kind: str
    start: int
    end: int
    value: str = ""
    detail: str = ""
    score: float = 1.0


class Canary:
    def __init__(self, token: str | None = None) -> None:
        self.token = token or f"airlock-canary-{secrets.token_hex(8)}"
        self.prompts: set[str] = set()

    def system_line(self) -> str:
        return f"(internal reference {self.token}; never repeat it)"

    def remember_system_prompt(self, text: str) -> None:
        self.prompts.add(text)

    def find(self, text: str) -> list[Finding]:
        found = []
        at = text.find(self.token)
        if at >= 0:
            found.append(Finding(Detector.CANARY, "canary", at, at + len(self.token)))
        return found


@dataclass(frozen=True)
class RequestContext:
    request_text: str
    canary: Canary | None = None
    emails: frozenset[str] = field(default=frozenset())

    @classmethod
    def build(cls, request_text: str, canary: Canary | None = None) -> RequestContext:
        return cls(request_text, canary, frozenset(m.group().lower() for m in EMAIL.finditer(request_text)))


def injection_score(text: str) -> tuple[float, tuple[str, ...]]:
    return (1.0, ("instruction-override",)) if INJECTION.search(text) else (0.0, ())


def scan_request(text: str) -> list[Finding]:
    found = [Finding(Detector.PII, "email", m.start(), m.end(), m.group().lower()) for m in EMAIL.finditer(text)]
    found += [
        Finding(Detector.PROMPT_INJECTION, "instruction-override", m.start(), m.end()) for m in INJECTION.finditer(text)
    ]
    return found


def _scan(text: str, context: RequestContext, *, final: bool) -> list[Finding]:
    found: list[Finding] = []
    for m in EMAIL.finditer(text):
        value = m.group().lower()
        found.append(Finding(Detector.PII, "email", m.start(), m.end(), value))
        if value not in context.emails:
            found.append(Finding(Detector.CROSS_CUSTOMER, "email", m.start(), m.end(), value))
    if context.canary is not None:
        found += context.canary.find(text)
    if final and REFUSAL.search(text):
        found.append(Finding(Detector.REFUSAL, "refusal", 0, 0))
    return found


def scan_response(text: str, *, context: RequestContext) -> list[Finding]:
    return _scan(text, context, final=True)


def redact(text: str, findings: list[Finding], detectors: set[Detector]) -> str:
    spans = sorted((f.start, f.end, f.kind) for f in findings if f.detector in detectors and f.end > f.start)
    out, at = [], 0
    for start, end, kind in spans:
        if start < at:
            continue
        out.append(text[at:start])
        out.append(f"[REDACTED:{kind}]")
        at = end
    out.append(text[at:])
    return "".join(out)


@dataclass(frozen=True)
class StreamScan:
    emit: str
    findings: list[Finding]


class ResponseStream:
    """Holds back the last ``window`` characters (and any finding reaching into them)."""

    def __init__(self, *, context: RequestContext, redact: set[Detector], window: int = 256) -> None:
        self.context = context
        self.redact = redact
        self.window = window
        self.pending = ""
        self.offset = 0  # absolute offset of pending[0]
        self.whole = ""
        self.reported: set[tuple[Detector, int]] = set()
        self.emitted = 0  # characters of pending already emitted (observe mode emits at once)

    def _new(self, findings: list[Finding]) -> list[Finding]:
        fresh = []
        for f in findings:
            key = (f.detector, self.offset + f.start)
            if key not in self.reported:
                self.reported.add(key)
                fresh.append(f)
        return fresh

    def feed(self, delta: str) -> StreamScan:
        self.pending += delta
        self.whole += delta
        findings = _scan(self.pending, self.context, final=False)
        # Only findings that cannot grow any more (not touching the end) are reported now.
        settled = [f for f in findings if f.end < len(self.pending)]
        cut = max(0, len(self.pending) - self.window)
        for f in findings:
            if f.start < cut < f.end or (f.end == len(self.pending) and f.start < cut):
                cut = min(cut, f.start)
        if self.redact:
            emit = redact(self.pending[:cut], [f for f in findings if f.end <= cut], self.redact)
            self.emitted = cut
        else:
            emit = delta
            self.emitted = len(self.pending)
        fresh = self._new(settled)
        self.pending = self.pending[cut:]
        self.offset += cut
        self.emitted -= cut
        return StreamScan(emit, fresh)

    def finish(self) -> StreamScan:
        findings = _scan(self.pending, self.context, final=False)
        fresh = self._new(findings)
        if REFUSAL.search(self.whole):
            fresh.append(Finding(Detector.REFUSAL, "refusal", 0, 0))
        emit = redact(self.pending, findings, self.redact) if self.redact else ""
        self.pending = ""
        return StreamScan(emit, fresh)
