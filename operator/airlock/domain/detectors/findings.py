"""What every detector returns: a ``Finding`` of one ``Detector`` (SPEC §9), with offsets for redaction.

The detector names and modes are binding (they are the values of the
``detector`` label and of the guard's configuration); both enums are the
guard configuration's own (``airlock.api.guard``). ``kind`` is the label
value of ``airlock_guard_detections_total{kind}``: a small closed set per
detector (``KINDS``), so a metric never gets one series per secret or per customer.
``value`` is the normalised value a cross-customer comparison uses; it is
personal data and is never logged or exported.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from airlock.api.guard import Detector, Mode

# One enum for the detectors' names and one for their modes, shared with the guard's configuration
# (``airlock.api.guard``, which the CRD's closed enums come from): re-exported here, never redefined.
__all__ = ["KINDS", "Detector", "Direction", "Finding", "Mode"]


class Direction(StrEnum):
    """Which side of the exchange a finding was seen on."""

    REQUEST = "request"
    RESPONSE = "response"


# The closed set of ``kind`` values per detector (a guard pre-creates each metric series at 0).
# pii and cross-customer share the personal-data kinds.
PII_KINDS: tuple[str, ...] = ("email", "phone", "card", "iban", "ssn", "national-id", "ipv4", "ipv6", "secret")
INJECTION_KINDS: tuple[str, ...] = ("instruction-override", "role-play", "prompt-exfiltration", "encoding", "delimiter")
KINDS: dict[Detector, tuple[str, ...]] = {
    Detector.PII: PII_KINDS,
    Detector.CROSS_CUSTOMER: PII_KINDS,
    Detector.PROMPT_INJECTION: INJECTION_KINDS,
    Detector.CANARY: ("canary", "system-prompt"),
    Detector.REFUSAL: ("refusal",),
}


@dataclass(frozen=True)
class Finding:
    """One thing a detector found in a text.

    ``start``/``end`` are offsets into the text that was scanned (for a stream: into
    the whole answer so far). ``value`` is normalised (digits of a card or phone,
    lower-cased email, IBAN without spaces) and never logged. ``detail`` refines
    ``kind`` without growing the metric's label set (``aws-access-key``,
    ``DE tax id``, the injection signals).
    """

    detector: Detector
    kind: str
    start: int
    end: int
    value: str = ""
    detail: str = ""
    score: float = 1.0

    def shifted(self, offset: int) -> Finding:
        """The same finding with its offsets moved by ``offset`` (a window's position in a stream)."""
        return Finding(
            detector=self.detector,
            kind=self.kind,
            start=self.start + offset,
            end=self.end + offset,
            value=self.value,
            detail=self.detail,
            score=self.score,
        )
