"""The guard's detectors (SPEC §9): pure functions over the text of a request or an answer.

``scan_request`` and ``scan_response`` judge whole texts; ``ResponseStream``
judges a streamed answer delta by delta with the same verdicts; ``redact``
replaces findings by ``[REDACTED:<kind>]``. No I/O, no logging, no clock: the
guard (``airlock.guard``) calls these and does the rest.

Detectors: ``pii`` (module ``pii``, with ``phones``, ``identifiers`` and
``credentials``), ``cross-customer`` (``scan``), ``prompt-injection``
(``injection``), ``canary`` (``canary``), ``refusal`` (``refusal``).
"""

from __future__ import annotations

from airlock.domain.detectors.canary import Canary
from airlock.domain.detectors.findings import KINDS, Detector, Direction, Finding, Mode
from airlock.domain.detectors.injection import INJECTION_THRESHOLD, injection_score
from airlock.domain.detectors.redaction import redact
from airlock.domain.detectors.scan import RequestContext, scan_request, scan_response
from airlock.domain.detectors.stream import ResponseStream, StreamScan

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
