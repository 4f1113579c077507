"""Whole texts: what a request and an answer are scanned for, and the cross-customer comparison.

``scan_request`` runs ``pii`` and ``prompt-injection`` on a request;
``scan_response`` runs ``pii``, ``cross-customer``, ``canary`` and ``refusal``
on an answer, judged against a ``RequestContext`` built once per request.

Cross-customer (the seed incident: a chatbot quoting *other* customers' data)
is a ``pii`` finding of the answer whose value the request does not contain —
anywhere in it: system prompt, context documents, earlier turns, tool results.
Values are compared normalised (a phone's national digits, a card's digits, a
lower-cased e-mail, an IBAN without spaces), and also against the request's
text with separators removed, so a number the request wrote in a shape the
detector would not call PII (no keyword, odd spacing) still counts as the
customer's own.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import InitVar, dataclass, field

from airlock.domain.detectors import injection, pii, refusal
from airlock.domain.detectors.canary import Canary
from airlock.domain.detectors.findings import Detector, Finding

_SEPARATORS = re.compile(r"[\s\-./()]+")
_MIN_COMPARED = 4  # shorter normalised values are not looked for in the request's text


def compact(text: str) -> str:
    """A value or a text without separators, lower case: what cross-customer compares."""
    return _SEPARATORS.sub("", text).lower()


@dataclass(frozen=True)
class RequestContext:
    """What an answer is judged against: built once per request.

    ``request_text`` is every message of the request (system, user, assistant, tool) joined.
    """

    request_text: str
    canary: Canary | None = None
    request_findings: InitVar[Sequence[Finding] | None] = None
    values: frozenset[tuple[str, str]] = field(init=False)
    compacted: str = field(init=False, repr=False)

    def __post_init__(self, request_findings: Sequence[Finding] | None) -> None:
        found = pii.find(self.request_text) if request_findings is None else request_findings
        object.__setattr__(self, "values", frozenset((f.kind, f.value) for f in found if f.detector is Detector.PII))
        object.__setattr__(self, "compacted", compact(self.request_text))

    @classmethod
    def build(
        cls, request_text: str, canary: Canary | None = None, *, request_findings: Sequence[Finding] | None = None
    ) -> RequestContext:
        """Precompute the request's PII values; ``request_findings`` reuses a ``scan_request`` of the same text."""
        return cls(request_text, canary, request_findings)

    def contains(self, finding: Finding) -> bool:
        """Whether the request already had this value (then it is the customer's own, not a leak)."""
        if (finding.kind, finding.value) in self.values:
            return True
        value = compact(finding.value)
        return len(value) >= _MIN_COMPARED and value in self.compacted


def cross_customer(found: Sequence[Finding], context: RequestContext) -> list[Finding]:
    """The ``pii`` findings of an answer that the request did not contain, as ``cross-customer`` findings."""
    return [
        Finding(
            detector=Detector.CROSS_CUSTOMER,
            kind=f.kind,
            start=f.start,
            end=f.end,
            value=f.value,
            detail=f.detail,
            score=f.score,
        )
        for f in found
        if f.detector is Detector.PII and not context.contains(f)
    ]


_ORDER = {d: i for i, d in enumerate(Detector)}


def ordered(findings: list[Finding]) -> list[Finding]:
    """Findings in text order (then by detector), the order every scan returns."""
    return sorted(findings, key=lambda f: (f.start, f.end, _ORDER[f.detector], f.kind))


def scan_request(text: str) -> list[Finding]:
    """``pii`` and ``prompt-injection`` findings of a request's text."""
    return ordered([*pii.find(text), *injection.find(text)])


def scan_response(text: str, *, context: RequestContext) -> list[Finding]:
    """``pii``, ``cross-customer``, ``canary`` and ``refusal`` (at most one) findings of an answer."""
    found = pii.find(text)
    return ordered(
        [
            *found,
            *cross_customer(found, context),
            *(context.canary.find(text) if context.canary is not None else ()),
            *refusal.find(text),
        ]
    )
