"""The pii detector as a whole: e-mails, IP addresses, what is deliberately not personal data, offsets."""

from __future__ import annotations

import pytest

from airlock.domain.detectors import Detector, pii


def found(text: str) -> list[tuple[str, str, str]]:
    return [(f.kind, text[f.start : f.end], f.value) for f in pii.find(text)]


@pytest.mark.parametrize(
    ("text", "email", "value"),
    [
        ("Write to Jane.Doe@Example.com today.", "Jane.Doe@Example.com", "jane.doe@example.com"),
        ("mail: maria.garcia+orders@correo.es,", "maria.garcia+orders@correo.es", "maria.garcia+orders@correo.es"),
        ("<jp.dupont@orange.fr>", "jp.dupont@orange.fr", "jp.dupont@orange.fr"),
        ("contact k.mueller@firma.co.uk.", "k.mueller@firma.co.uk", "k.mueller@firma.co.uk"),
    ],
)
def test_emails_normalised_to_lower_case(text: str, email: str, value: str) -> None:
    assert found(text) == [("email", email, value)]


@pytest.mark.parametrize(
    "text",
    [
        "Please write to support@acme.com or returns@acme.com.",  # role mailboxes are the company's
        "See icon@2x.png in the assets",
        "git clone git@github.com:acme/app.git",
        "the @mention feature",
        "user@localhost is not routable",
    ],
)
def test_addresses_that_are_not_a_customers(text: str) -> None:
    assert [k for k, _, _ in found(text) if k == "email"] == []


@pytest.mark.parametrize(
    ("text", "kind", "address"),
    [
        ("Login from 81.2.69.160 was blocked", "ipv4", "81.2.69.160"),
        ("from 2a00:1450:4001:81b::200e", "ipv6", "2a00:1450:4001:81b::200e"),
        ("IPv6 2001:4860:4860:0:0:0:0:8888.", "ipv6", "2001:4860:4860::8888"),
    ],
)
def test_global_ip_addresses(text: str, kind: str, address: str) -> None:
    (f,) = [f for f in pii.find(text)]
    assert (f.kind, f.value) == (kind, address)
    assert text[f.start : f.end] in text


@pytest.mark.parametrize(
    "text",
    [
        "Open 192.168.1.1 in your browser to configure the router",  # private
        "ping 127.0.0.1",  # loopback
        "version 1.2.3.4 is out",  # a version string
        "Upgrade to v2.10.3.1 today",
        "docs use 2001:db8::1",  # documentation range
        "at 14:30:45 on the clock",
        "MAC 00:1A:2B:3C:4D:5E",
        "std::vector<int> and a::b",
        "OID 1.3.6.1.4.1.311",
    ],
)
def test_addresses_that_are_not_personal(text: str) -> None:
    assert [k for k, _, _ in found(text) if k in ("ipv4", "ipv6")] == []


@pytest.mark.parametrize(
    "text",
    [
        "Your order #4829173650 ships on 2024-03-15 at 14:30 for $129.99.",
        "Tracking number: 1Z999AA10123456784. Invoice INV-2024-00042.",
        "Use coupon SAVE20 before 31/12/2025; version 2.3.1 fixes it.",
        "Build 20240315.1 (commit 9fceb02) passed 1,024 tests in 3.5 s.",
        "Product code 4006381333931, model XR-5500, serial SN-88213-77.",
        "The package weighs 2.5 kg and measures 30x20x10 cm.",
        "ISBN 978-0-306-40615-7; DOI 10.1000/182.",
        "UUID 550e8400-e29b-41d4-a716-446655440000 and hash d41d8cd98f00b204e9800998ecf8427e.",
        "Call our free hotline 0800 123 4567 or +44 800 123 4567.",
        "Between 9:00-17:00, Monday to Friday; 5-7 business days.",
    ],
)
def test_support_chat_hard_negatives(text: str) -> None:
    assert found(text) == []


def test_offsets_point_at_the_value_and_findings_come_in_order() -> None:
    text = "Card 4111 1111 1111 1111, mail anna@web.de, phone +49 30 12345678."
    findings = pii.find(text)
    assert [f.detector for f in findings] == [Detector.PII] * 3
    assert [text[f.start : f.end] for f in findings] == ["4111 1111 1111 1111", "anna@web.de", "+49 30 12345678"]


def test_start_skips_earlier_candidates_but_keeps_them_as_context() -> None:
    text = "SSN 536-90-4399 and social security number 536904399"
    later = pii.find(text, start=20)
    assert [(f.kind, text[f.start : f.end]) for f in later] == [("ssn", "536904399")]
