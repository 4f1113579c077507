"""Phone numbers: candidates from the PII scanner, judged by Google's libphonenumber (``phonenumbers``).

This module never finds numbers in text by itself; the scanner hands it a
number-like run and the regions to try first. How the region is inferred:

1. A number written internationally (``+49 …``, ``0049 …``) carries its country:
   no region is guessed.
2. Otherwise the word that introduced it decides the first regions tried: a
   ``Telefon``/``Handy`` before the number tries Germany, Austria and Switzerland
   first, ``téléphone``/``portable`` France, Belgium, Switzerland, and so on
   (``HINTS_BY_WORD``) — the local language is the best evidence a chat answer
   has, and it is local (the guard judges a stream without the whole answer).
3. Then the region its written shape belongs to (``01 42 68 53 00`` is French,
   ``(11) 91234-5678`` Brazilian, ``(212) 555-2368`` North American: ``SHAPES``).
4. Then ``DEFAULT_REGIONS`` in order (North America through ``US``, which also
   validates Canadian numbers, then the large European markets, Brazil, India).
   The first region where the number is valid and personal decides, unless
   an earlier one calls it toll-free, premium-rate or shared-cost.

A national number must carry its trunk prefix where the country writes one
(``030 …`` in Germany, ``020 …`` in the UK); only North America, Brazil, India
and Mexico commonly leave it out (``TRUNK_OPTIONAL``), so a bare ``30 1234567``
is not taken for a Berlin number.

A region is only parsed when the digits fit its national number pattern from
libphonenumber's own metadata (a compiled regex, microseconds), so an order
number is not parsed nineteen times. A number counts when libphonenumber says
it is valid *and* of a personal type: toll-free, premium-rate, shared-cost and
universal access numbers belong to companies, not to customers.

Verdicts are cached (4,096 numbers, least recently used first out): the same
customer's number recurs in a conversation's request and answers.

The normalised value is the national significant number (digits, without
trunk prefix or country code), so ``+49 30 1234567`` in a request and
``030 1234567`` in the answer are the same customer's number even when a
region is guessed differently.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumberType

DEFAULT_REGIONS: tuple[str, ...] = (
    "US",
    "GB",
    "DE",
    "FR",
    "ES",
    "IT",
    "NL",
    "BR",
    "IN",
    "PT",
    "BE",
    "AT",
    "CH",
    "PL",
    "SE",
    "IE",
    "AU",
    "MX",
)

# The word before a number -> the regions tried first (none: a phone word of no particular language).
HINTS_BY_WORD: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("tel", "phone", "telephone", "fax", "sms", "whatsapp", "call", "number"), ()),
    **dict.fromkeys(
        (
            "telefon",
            "telefonisch",
            "handy",
            "mobil",
            "mobilnummer",
            "rufnummer",
            "telefonnummer",
            "anrufen",
            "erreichbar",
        ),
        ("DE", "AT", "CH"),
    ),
    **dict.fromkeys(
        ("téléphone", "tél", "portable", "numéro", "appeler", "joindre", "joignable"),
        ("FR", "BE", "CH"),
    ),
    **dict.fromkeys(("teléfono", "móvil", "movil", "llamar", "número"), ("ES", "MX")),
    **dict.fromkeys(("telefono", "cellulare", "chiamare", "numero"), ("IT", "CH")),
    **dict.fromkeys(("telefoon", "telefoonnummer", "mobiel", "bellen", "nummer"), ("NL", "BE")),
    **dict.fromkeys(("telefone", "celular", "ligar", "contato"), ("BR", "PT")),
    **dict.fromkeys(("mobile", "cell", "ring", "text", "reach", "contact"), ("US", "GB", "IN", "IE", "AU")),
}

# Written shapes that belong to one numbering plan: tried first when no word says otherwise.
SHAPES: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = (
    (re.compile(r"0[1-9](?:[ .\-]?\d\d){4}"), ("FR",)),  # 01 42 68 53 00
    (re.compile(r"\(\d\d\) ?9?\d{4}-\d{4}"), ("BR",)),  # (11) 91234-5678
    (re.compile(r"(?:1[ .\-]?)?\(?[2-9]\d\d\)?[ .\-]?\d{3}[ .\-]\d{4}"), ("US",)),  # (212) 555-2368
    (re.compile(r"0\d{1,3}-\d{2,3} \d{2,3} ?\d{2}"), ("SE",)),  # 08-835 160 33
)

# Words that say "number" without saying "phone": a phone hint only when no identifier is named nearby.
WEAK_HINTS = frozenset({"number", "numéro", "número", "numero", "nummer", "contact", "contato", "reach"})

PERSONAL_TYPES = frozenset(
    {
        PhoneNumberType.FIXED_LINE,
        PhoneNumberType.MOBILE,
        PhoneNumberType.FIXED_LINE_OR_MOBILE,
        PhoneNumberType.PERSONAL_NUMBER,
        PhoneNumberType.VOIP,
        PhoneNumberType.PAGER,
    }
)


# Where a number written nationally may leave out the trunk prefix (North America's 1; Brazil and India,
# where mobile numbers are commonly written without the 0). Elsewhere a national number starts with it.
TRUNK_OPTIONAL = frozenset({"US", "CA", "BR", "IN", "MX"})


# Regions whose national prefix is stripped as is (no carrier codes, no transform rule): a national number there
# is built directly, without libphonenumber's parser (a third of the cost). Brazil and Australia are parsed.
DIRECT = frozenset({"US", "GB", "DE", "FR", "ES", "IT", "NL", "IN", "PT", "BE", "AT", "CH", "PL", "SE", "IE", "MX"})


@dataclass(frozen=True)
class _Region:
    code: str
    country_code: int
    trunk: str
    trunk_required: bool
    pattern: re.Pattern[str]
    lengths: frozenset[int]


def _region(code: str) -> _Region:
    meta = PhoneMetadata.metadata_for_region(code)
    if meta is None or meta.general_desc is None or meta.general_desc.national_number_pattern is None:
        raise ValueError(f"libphonenumber has no metadata for region {code}")
    return _Region(
        code=code,
        country_code=int(meta.country_code or 0),
        trunk=meta.national_prefix or "",
        trunk_required=bool(meta.national_prefix) and code not in TRUNK_OPTIONAL,
        pattern=re.compile(f"(?:{meta.general_desc.national_number_pattern})"),
        lengths=frozenset(meta.general_desc.possible_length),
    )


_REGIONS: dict[str, _Region] = {
    code: _region(code) for code in {*DEFAULT_REGIONS, *(r for rs in HINTS_BY_WORD.values() for r in rs)}
}


@dataclass(frozen=True)
class Phone:
    """A valid personal phone number: its national significant number and its region."""

    national: str
    region: str


# Numbers that are a company's wherever they are valid: a number that is one of these in the first region
# where it is valid is not looked for elsewhere (UK "03" and other UAN numbers are not in this set: 030 … is Berlin).
SERVICE_TYPES = frozenset({PhoneNumberType.TOLL_FREE, PhoneNumberType.PREMIUM_RATE, PhoneNumberType.SHARED_COST})


def _verdict(number: phonenumbers.PhoneNumber) -> bool | None:
    """True: a valid personal number; False: a valid service number; None: not valid or neither."""
    kind = phonenumbers.number_type(number)  # UNKNOWN exactly when not is_valid_number (and half the cost of both)
    if kind == PhoneNumberType.UNKNOWN:
        return None
    if kind in PERSONAL_TYPES:
        return True
    return False if kind in SERVICE_TYPES else None


def _national(number: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.national_significant_number(number)


def _fits(region: _Region, digits: str) -> bool:
    """Whether the digits can be a national number of the region (cheap: its metadata regex)."""
    if region.trunk and digits.startswith(region.trunk):
        rest = digits[len(region.trunk) :]
        if len(rest) in region.lengths and region.pattern.fullmatch(rest):
            return True
    if region.trunk_required:
        return False
    return len(digits) in region.lengths and region.pattern.fullmatch(digits) is not None


def _direct(region: _Region, digits: str) -> phonenumbers.PhoneNumber:
    """The number libphonenumber's parser would build from national digits in a DIRECT region."""
    nsn = digits
    if region.trunk and digits.startswith(region.trunk):
        stripped = digits[len(region.trunk) :]
        # the parser strips the prefix only if what is left can still be a number of the region
        if region.pattern.fullmatch(stripped) or not region.pattern.fullmatch(digits):
            nsn = stripped
    number = phonenumbers.PhoneNumber(country_code=region.country_code, national_number=int(nsn or "0"))
    if nsn.startswith("0") and len(nsn) > 1:
        number.italian_leading_zero = True
        zeros = len(nsn) - len(nsn.lstrip("0"))
        if zeros > 1:
            number.number_of_leading_zeros = zeros
    return number


@functools.lru_cache(maxsize=4096)
def international(raw: str) -> Phone | None:
    """A number written with its country code (``+…`` or ``00…``)."""
    text = raw.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return None
    if not _verdict(number):
        return None
    region = phonenumbers.region_code_for_number(number) or ""
    return Phone(national=_national(number), region=region)


@functools.lru_cache(maxsize=4096)
def national(raw: str, digits: str, hints: tuple[str, ...] = ()) -> Phone | None:
    """A number in national format: the hinted regions first, then its shape's, then ``DEFAULT_REGIONS``.

    The first region where the number is personal decides; a toll-free, premium-rate or shared-cost number
    in an earlier region is a service number and ends the search.
    """
    shaped = next((regions for shape, regions in SHAPES if shape.fullmatch(raw)), ())
    tried: set[str] = set()
    for code in (*hints, *shaped, *DEFAULT_REGIONS):
        if code in tried:
            continue
        tried.add(code)
        region = _REGIONS.get(code)
        if region is None or not _fits(region, digits):
            continue
        verdict = None
        if code in DIRECT:
            number = _direct(region, digits)
            verdict = _verdict(number)
        if verdict is None and (code not in DIRECT or digits.startswith(("00", str(region.country_code)))):
            try:  # carrier codes, or digits that begin with a country code: the parser knows those
                number = phonenumbers.parse(raw, code)
            except phonenumbers.NumberParseException:
                continue
            verdict = _verdict(number)
        if verdict is not None:
            return Phone(national=_national(number), region=code) if verdict else None
    return None
