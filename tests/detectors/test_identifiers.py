"""Payment cards, IBANs and national identifiers: check digits from python-stdnum, context where checksums are weak."""

from __future__ import annotations

import pytest

from airlock.domain.detectors import pii


def found(text: str) -> list[tuple[str, str, str]]:
    return [(f.kind, f.detail, text[f.start : f.end]) for f in pii.find(text)]


@pytest.mark.parametrize(
    ("number", "brand"),
    [
        ("4111 1111 1111 1111", "visa"),
        ("4012-8888-8888-1881", "visa"),
        ("5555555555554444", "mastercard"),
        ("2223 0031 2200 3222", "mastercard"),
        ("3782 822463 10005", "amex"),
        ("6011 1111 1111 1117", "discover"),
        ("3530 1113 3330 0000", "jcb"),
        ("3056 9309 0259 04", "diners"),
        ("6200 0000 0000 0005", "unionpay"),
    ],
)
def test_cards_of_every_network(number: str, brand: str) -> None:
    assert found(f"The card {number} was charged.") == [("card", brand, number)]


@pytest.mark.parametrize(
    "text",
    [
        "The card 4111 1111 1111 1112 was charged.",  # Luhn fails
        "Reference 9111 1111 1111 1111 was charged.",  # no issuer starts with 9
        "Shipment 1234 5678 9012 3456",  # no issuer, and introduced as a shipment
    ],
)
def test_numbers_that_are_not_cards(text: str) -> None:
    assert [k for k, _, _ in found(text) if k == "card"] == []


@pytest.mark.parametrize(
    ("iban", "country"),
    [
        ("DE89 3704 0044 0532 0130 00", "DE"),
        ("GB82 WEST 1234 5698 7654 32", "GB"),
        ("FR1420041010050500013M02606", "FR"),
        ("ES91 2100 0418 4502 0005 1332", "ES"),
        ("NL91ABNA0417164300", "NL"),
        ("IT60 X054 2811 1010 0000 0123 456", "IT"),
    ],
)
def test_ibans_with_mod_97(iban: str, country: str) -> None:
    assert found(f"Please pay to {iban} by Friday.") == [("iban", country, iban)]


def test_an_iban_ends_where_its_country_says_even_before_a_capitalised_word() -> None:
    assert found("IBAN DE89 3704 0044 0532 0130 00 BIC COBADEFFXXX") == [("iban", "DE", "DE89 3704 0044 0532 0130 00")]


def test_an_iban_with_a_wrong_check_is_not_one() -> None:
    assert found("Pay to DE88 3704 0044 0532 0130 00 please") == []


@pytest.mark.parametrize(
    ("text", "kind", "detail", "value"),
    [
        ("His SSN is 536-90-4399.", "ssn", "US SSN", "536-90-4399"),
        ("social security number 536904399", "ssn", "US SSN", "536904399"),
        ("SIN: 130 692 544", "national-id", "CA SIN", "130 692 544"),
        ("BSN 111222333 staat in het systeem", "national-id", "NL BSN", "111222333"),
        ("Steuer-ID 36 574 261 809", "national-id", "DE IdNr", "36 574 261 809"),
        ("Ihre Steuer-ID lautet 36574261809.", "national-id", "DE IdNr", "36574261809"),
        ("NIR 2 55 08 14 168 025 38", "national-id", "FR NIR", "2 55 08 14 168 025 38"),
        ("DNI 12345678Z", "national-id", "ES DNI", "12345678Z"),
        ("NIE X1234567L", "national-id", "ES NIE", "X1234567L"),
        ("codice fiscale RSSMRA85T10A562S", "national-id", "IT codice fiscale", "RSSMRA85T10A562S"),
        ("NI number AB 12 34 56 C", "national-id", "GB NINO", "AB 12 34 56 C"),
        ("CPF 390.533.447-05", "national-id", "BR CPF", "390.533.447-05"),
        ("Aadhaar 2341 2341 2346", "national-id", "IN Aadhaar", "2341 2341 2346"),
        ("PESEL 44051401359", "national-id", "PL PESEL", "44051401359"),
        ("personnummer 811228-9874", "national-id", "SE personnummer", "811228-9874"),
    ],
)
def test_national_identifiers(text: str, kind: str, detail: str, value: str) -> None:
    assert found(text) == [(kind, detail, value)]


@pytest.mark.parametrize(
    "text",
    [
        "Order 111222333 shipped",  # a valid BSN checksum, but nobody called it one
        "Item 36574261809 is back in stock",  # a valid IdNr checksum, but an item number
        "Reference 39053344705",  # a valid CPF checksum without the CPF's dots, nobody called it one
        "His SSN is 666-12-3456.",  # never issued (666)
        "DNI 12345678A",  # wrong check letter
        "NI number ZZ 12 34 56 C",  # ZZ is never allocated
        "codice RSSMRA85T10A562X",  # wrong check character
    ],
)
def test_identifiers_that_do_not_count(text: str) -> None:
    assert found(text) == []
