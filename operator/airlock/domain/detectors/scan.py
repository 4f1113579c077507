"""Whole texts: what a request and an answer are scanned for, and the cross-customer comparison.

``scan_request`` runs ``pii`` and ``prompt-injection`` on a request;
``scan_response`` runs ``pii``, ``cross-customer``, ``canary`` and ``refusal``
on an answer, judged against a ``RequestContext`` built once per request.

Cross-customer (the seed incident: a chatbot quoting *other* customers' data)
is a ``pii`` finding of the answer whose value the request does not contain —
anywhere in it: system prompt, context documents, earlier turns, tool results.
Values are compared normalised (a phone's national digits, a card's digits, a
lower-cased e-mail, an IBAN without spaces) against the request's text with
separators removed and lower-cased, so "+49 30 1234567" in the answer is the
customer's own when the request said "030/1234567", and a number the request
wrote in a shape the detector would not call PII (no keyword, odd spacing)
still counts as the customer's own.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

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

    ``request_text`` is every message of the request (system, user, assistant, tool) joined. A value
    of the answer is the customer's own when the request has it: the same normalised value among
    ``request_findings`` (when the caller has them), or the value, without separators, within the
    request's text without separators — which also covers a number the request wrote in a shape the
    detector would not call PII. That text is computed the first time an answer has a finding to
    compare (most answers have none); the request is never scanned for PII here.
    """

    request_text: str
    canary: Canary | None = None
    request_findings: Sequence[Finding] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def build(
        cls, request_text: str, canary: Canary | None = None, *, request_findings: Sequence[Finding] | None = None
    ) -> RequestContext:
        """A context for ``request_text``; ``request_findings``: PII findings of (part of) that text, if at hand."""
        return cls(request_text, canary, request_findings)

    @functools.cached_property
    def values(self) -> frozenset[tuple[str, str]]:
        """(kind, normalised value) of the PII among ``request_findings``."""
        found = self.request_findings or ()
        return frozenset((f.kind, f.value) for f in found if f.detector is Detector.PII)

    @functools.cached_property
    def compacted(self) -> str:
        """The request's text without separators, lower case."""
        return compact(self.request_text)

    @functools.cached_property
    def ipv6(self) -> frozenset[str]:
        """The request's IPv6 addresses, compressed (one address has many written forms)."""
        return frozenset(pii.ipv6_addresses(self.request_text))

    def contains(self, finding: Finding) -> bool:
        """Whether the request already had this value (then it is the customer's own, not a leak)."""
        if (finding.kind, finding.value) in self.values:
            return True
        if finding.kind == "ipv6":
            return finding.value in self.ipv6
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
