"""Redaction: findings of the chosen detectors replaced by [REDACTED:<kind>], overlaps merged."""

from __future__ import annotations

from airlock.domain.detectors import Detector, Finding, RequestContext, redact, scan_response


def f(detector: Detector, kind: str, start: int, end: int) -> Finding:
    return Finding(detector=detector, kind=kind, start=start, end=end)


def test_only_the_chosen_detectors_are_redacted() -> None:
    text = "mail a@b.io and c@d.io"
    findings = [f(Detector.PII, "email", 5, 11), f(Detector.CROSS_CUSTOMER, "email", 16, 22)]
    assert redact(text, findings, {Detector.CROSS_CUSTOMER}) == "mail a@b.io and [REDACTED:email]"
    assert redact(text, findings, {Detector.PII}) == "mail [REDACTED:email] and c@d.io"
    assert redact(text, findings, set()) == text


def test_overlapping_findings_become_one_marker_with_the_first_kind() -> None:
    text = "0123456789"
    findings = [f(Detector.PII, "phone", 2, 6), f(Detector.CANARY, "canary", 4, 8), f(Detector.PII, "card", 8, 9)]
    assert redact(text, findings, {Detector.PII, Detector.CANARY}) == "01[REDACTED:phone][REDACTED:card]9"


def test_a_leak_redacted_end_to_end() -> None:
    context = RequestContext.build("user: what is my balance? I am ana@correo.es")
    answer = "Hi ana@correo.es! Note: bob@yahoo.com paid with 4111 1111 1111 1111."
    findings = scan_response(answer, context=context)
    assert (
        redact(answer, findings, {Detector.CROSS_CUSTOMER})
        == "Hi ana@correo.es! Note: [REDACTED:email] paid with [REDACTED:card]."
    )
    assert (
        redact(answer, findings, {Detector.PII, Detector.CROSS_CUSTOMER})
        == "Hi [REDACTED:email]! Note: [REDACTED:email] paid with [REDACTED:card]."
    )
