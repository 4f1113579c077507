"""Phone numbers: libphonenumber judges the candidates; international and national formats in several regions."""

from __future__ import annotations

import pytest

from airlock.domain.detectors import phones as phone_rules
from airlock.domain.detectors import pii


def phones(text: str) -> list[tuple[str, str, str]]:
    return [(text[f.start : f.end], f.detail, f.value) for f in pii.find(text) if f.kind == "phone"]


@pytest.mark.parametrize(
    ("text", "number", "region", "national"),
    [
        ("Call me on +49 30 12345678 tomorrow.", "+49 30 12345678", "DE", "3012345678"),
        ("Ring 0049 30 12345678 please", "0049 30 12345678", "DE", "3012345678"),
        ("UK mobile: +44 7400 123456.", "+44 7400 123456", "GB", "7400123456"),
        ("Her number is 07400 123456.", "07400 123456", "GB", "7400123456"),
        ("Landline (020) 7946 0958 works", "(020) 7946 0958", "GB", "2079460958"),
        ("+44 (0)20 7946 0958 is the office", "+44 (0)20 7946 0958", "GB", "2079460958"),
        ("Reach him at (212) 555-2368.", "(212) 555-2368", "US", "2125552368"),
        ("his cell is 415-555-2671", "415-555-2671", "US", "4155552671"),
        ("Tel. 01 42 68 53 00 (Paris)", "01 42 68 53 00", "FR", "142685300"),
        ("Portable : 06 12 34 56 78", "06 12 34 56 78", "FR", "612345678"),
        ("Telefon 030 1234567", "030 1234567", "DE", "301234567"),
        ("Handy: 0151 23456789", "0151 23456789", "DE", "15123456789"),
        ("teléfono 612 345 678", "612 345 678", "ES", "612345678"),
        ("cellulare 347 123 4567", "347 123 4567", "IT", "3471234567"),
        ("telefoon 06-12345678", "06-12345678", "NL", "612345678"),
        ("celular (11) 91234-5678", "(11) 91234-5678", "BR", "11912345678"),
        ("+55 21 98765-4321 no WhatsApp", "+55 21 98765-4321", "BR", "21987654321"),
        ("mobile +91 98765 43210", "+91 98765 43210", "IN", "9876543210"),
    ],
)
def test_valid_numbers_in_many_formats_and_regions(text: str, number: str, region: str, national: str) -> None:
    assert phones(text) == [(number, region, national)]


def test_the_word_before_a_number_decides_its_region() -> None:
    # 06 12 34 56 78 is valid in France and in the Netherlands: the French word decides.
    assert phones("Mon portable: 0612345678")[0][1] == "FR"
    assert phones("Mijn mobiel: 0612345678")[0][1] == "NL"


def test_the_same_number_in_two_formats_has_one_normalised_value() -> None:
    (_, _, international), (_, _, national) = phones("+49 30 12345678 or, nationally, 030 12345678")
    assert international == national == "3012345678"


@pytest.mark.parametrize(
    "text",
    [
        "Call our hotline 0800 123 4567 for free",  # UK toll-free
        "Call 1-800-555-0199 any time",  # US toll-free
        "Premium line 0900 123 4567",  # premium rate
        "Order 4829173650 shipped",  # an order number
        "Your order number is 0612345678.",  # introduced as an order number
        "Tracking: 1Z999AA10123456784",
        "On 2024-03-15 14:30 we shipped",
        "between 2019-2024 prices rose",
        "Version 10.15.7 fixes it",
        "Invoice INV-2024-000421 is attached",
        "The code is 0456789123",  # a code, not a phone
        "The total was 1 299 999 units",
        "ISBN 978-3-16-148410-0",
        "+1 212 555 12",  # too short to be valid
    ],
)
def test_things_that_are_not_personal_phone_numbers(text: str) -> None:
    assert phones(text) == []


def test_bare_digits_count_only_when_called_a_phone_number() -> None:
    assert phones("Order ref 4155552671 is ready") == []
    assert phones("You can call him at 4155552671") == [("4155552671", "US", "4155552671")]


def test_an_extension_is_not_part_of_the_number() -> None:
    assert phones("Office: +1 212-555-2368x123") == [("+1 212-555-2368", "US", "2125552368")]


def _parser_only(digits: str, first: str) -> phone_rules.Phone | None:
    """The region search of ``phones.national`` with libphonenumber's parser for every region."""
    import phonenumbers

    shaped = next((regions for shape, regions in phone_rules.SHAPES if shape.fullmatch(digits)), ())
    for code in (first, *shaped, *phone_rules.DEFAULT_REGIONS):
        region = phone_rules._REGIONS[code]
        if not phone_rules._fits(region, digits):
            continue
        try:
            number = phonenumbers.parse(digits, code)
        except phonenumbers.NumberParseException:
            continue
        verdict = phone_rules._verdict(number)
        if verdict is not None:
            return phone_rules.Phone(phonenumbers.national_significant_number(number), code) if verdict else None
    return None


def test_numbers_built_directly_get_the_verdicts_of_libphonenumbers_parser() -> None:
    """National numbers in the DIRECT regions skip the parser (a third of the cost): same verdicts, same values."""
    import random

    rnd = random.Random(7)
    for region in sorted(phone_rules.DIRECT):
        for _ in range(300):
            digits = rnd.choice(["0", "", "1", "00"]) + "".join(
                rnd.choice("0123456789") for _ in range(rnd.randint(6, 12))
            )
            phone_rules.national.cache_clear()
            assert phone_rules.national(digits, digits, (region,)) == _parser_only(digits, region), (region, digits)
