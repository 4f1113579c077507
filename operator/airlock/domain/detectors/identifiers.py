"""Payment cards, IBANs and national identity numbers, checked with their check digits.

Every check digit here comes from ``python-stdnum`` (Luhn, ISO 7064 mod 97-10,
Verhoeff, the national algorithms), never re-derived. The scanner hands in
candidates it found with one regex pass; this module decides.

National identifiers covered (stdnum module in brackets):
US SSN (``us.ssn``), Canada SIN (``ca.sin``), UK National Insurance number
(no check digit exists: HMRC's allocation rules), Germany tax id IdNr
(``de.idnr``), France NIR (``fr.nir``), Netherlands BSN (``nl.bsn``), Spain DNI
and NIE (``es.dni``, ``es.nie``), Italy codice fiscale (``it.codicefiscale``),
Brazil CPF (``br.cpf``), India Aadhaar (``in_.aadhaar``), Poland PESEL
(``pl.pesel``), Sweden personnummer (``se.personnummer``).

A bare run of digits that merely passes a checksum is not enough where the
checksum is weak (one in ten or one in eleven random numbers pass): a BSN,
SIN, IdNr, CPF, PESEL or Aadhaar written without its usual separators counts
only after a word that names it (``BSN``, ``Steuer-ID``, ``Aadhaar`` …) —
otherwise every ninth order number would be a Dutch citizen.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

from stdnum import iban as std_iban
from stdnum import luhn
from stdnum.br import cpf
from stdnum.ca import sin
from stdnum.de import idnr
from stdnum.es import dni, nie
from stdnum.fr import nir
from stdnum.in_ import aadhaar
from stdnum.iso7064 import mod_97_10
from stdnum.it import codicefiscale
from stdnum.nl import bsn
from stdnum.pl import pesel
from stdnum.se import personnummer
from stdnum.us import ssn


@dataclass(frozen=True)
class Identified:
    """What a candidate turned out to be: kind (metric label), detail, normalised value."""

    kind: str
    detail: str
    value: str


# Card brands by IIN prefix range and the lengths each issues (ISO/IEC 7812 as the networks publish it).
_CARD_RANGES: tuple[tuple[str, int, int, frozenset[int]], ...] = (
    ("visa", 4, 4, frozenset({13, 16, 19})),
    ("mastercard", 51, 55, frozenset({16})),
    ("mastercard", 2221, 2720, frozenset({16})),
    ("amex", 34, 34, frozenset({15})),
    ("amex", 37, 37, frozenset({15})),
    ("discover", 6011, 6011, frozenset({16, 19})),
    ("discover", 644, 649, frozenset({16, 19})),
    ("discover", 65, 65, frozenset({16, 19})),
    ("jcb", 3528, 3589, frozenset({16, 17, 18, 19})),
    ("jcb", 1800, 1800, frozenset({15})),
    ("jcb", 2131, 2131, frozenset({15})),
    ("diners", 300, 305, frozenset({14, 16, 19})),
    ("diners", 36, 36, frozenset({14, 16, 19})),
    ("diners", 38, 39, frozenset({14, 16, 19})),
    ("unionpay", 62, 62, frozenset({16, 17, 18, 19})),
    ("maestro", 50, 50, frozenset({12, 13, 14, 15, 16, 17, 18, 19})),
    ("maestro", 56, 58, frozenset({12, 13, 14, 15, 16, 17, 18, 19})),
    ("maestro", 6759, 6759, frozenset({12, 13, 14, 15, 16, 17, 18, 19})),
    ("mir", 2200, 2204, frozenset({16, 17, 18, 19})),
)


def card(digits: str) -> Identified | None:
    """A payment card number: a known IIN range with one of its lengths, and a valid Luhn digit."""
    if not 12 <= len(digits) <= 19:
        return None
    for brand, low, high, lengths in _CARD_RANGES:
        prefix = int(digits[: len(str(low))])
        if low <= prefix <= high and len(digits) in lengths:
            return Identified("card", brand, digits) if luhn.is_valid(digits) else None
    return None


_IBAN_FIELD = re.compile(r"(\d+)!?[nace]")


@dataclass(frozen=True)
class _IbanCountry:
    length: int
    bban: re.Pattern[str]
    check: Callable[[str], bool] | None  # the country's own check (Spain's CCC, France's RIB key …) if stdnum has one


@functools.cache
def _iban_country(country: str) -> _IbanCountry | None:
    """A country's IBAN rules from stdnum's registry: looked up once per country (the registry walk is slow)."""
    info = std_iban._ibandb.info(country + "00")
    structure = info[0][1].get("bban", "") if info else ""
    fields = [int(n) for n in _IBAN_FIELD.findall(structure)]
    if not fields:
        return None
    module = std_iban._get_cc_module(country)
    return _IbanCountry(4 + sum(fields), std_iban._struct_to_re(structure), module.is_valid if module else None)


@functools.lru_cache(maxsize=4096)
def iban_valid(compact: str) -> bool:
    """stdnum's IBAN validation (ISO 7064 mod 97-10, the country's BBAN structure and own check), per-country rules cached."""
    rules = _iban_country(compact[:2])
    if rules is None or len(compact) != rules.length or not rules.bban.match(compact[4:]):
        return False
    if not mod_97_10.is_valid(compact[4:] + compact[:4]):
        return False
    return rules.check is None or rules.check(compact)


def iban(raw: str) -> tuple[Identified, int] | None:
    """An IBAN at the start of ``raw`` (which may run on into the next word): the IBAN and its length in ``raw``."""
    rules = _iban_country(raw[:2])
    if rules is None:
        return None
    length = rules.length
    taken = 0
    used = 0
    for ch in raw:
        if taken == length:
            break
        used += 1
        if ch != " ":
            taken += 1
    if taken != length:
        return None
    compact = raw[:used].replace(" ", "")
    if not iban_valid(compact):
        return None
    return Identified("iban", compact[:2], compact), used


# Words that name a national identifier (lower case), by the identifier they name.
CONTEXT_WORDS: dict[str, tuple[str, ...]] = {
    "us-ssn": ("ssn", "social security"),
    "ca-sin": ("sin", "social insurance", "nas", "assurance sociale"),
    "nl-bsn": ("bsn", "burgerservicenummer", "sofinummer", "citizen service"),
    "de-idnr": ("steuer-id", "steuerid", "steuer-idnr", "identifikationsnummer", "idnr", "tax id", "steuernummer"),
    "br-cpf": ("cpf",),
    "in-aadhaar": ("aadhaar", "aadhar", "uidai"),
    "pl-pesel": ("pesel",),
    "fr-nir": ("nir", "sécurité sociale", "securite sociale", "insee"),
}

_SSN_SHAPE = re.compile(r"\d{3}([- ])\d{2}\1\d{4}")
_SIN_SHAPE = re.compile(r"\d{3}([- ])\d{3}\1\d{3}")
_CPF_SHAPE = re.compile(r"\d{3}\.\d{3}\.\d{3}-\d{2}")
_AADHAAR_SHAPE = re.compile(r"[2-9]\d{3}([- ])\d{4}\1\d{4}")
_IDNR_SHAPE = re.compile(r"\d{2} \d{3} \d{3} \d{3}")
_NIR_SHAPE = re.compile(r"[1-478] ?\d{2} ?\d{2} ?\d{2} ?\d{3} ?\d{3} ?\d{2}")
_PERSONNUMMER_SHAPE = re.compile(r"(?:\d{2})?\d{6}[-+]\d{4}")
_BSN_SHAPE = re.compile(r"\d{4}\.\d{2}\.\d{3}")


def digit_id(raw: str, digits: str, named: frozenset[str]) -> Identified | None:
    """A national identifier written with digits only; ``named``: the identifiers a word before it names."""
    n = len(digits)
    if n == 9:
        if (_SSN_SHAPE.fullmatch(raw) or "us-ssn" in named) and ssn.is_valid(digits):
            return Identified("ssn", "US SSN", digits)
        if (_SIN_SHAPE.fullmatch(raw) or "ca-sin" in named) and sin.is_valid(digits):
            return Identified("national-id", "CA SIN", digits)
        if (_BSN_SHAPE.fullmatch(raw) or "nl-bsn" in named) and bsn.is_valid(digits):
            return Identified("national-id", "NL BSN", digits)
    elif n == 11:
        if (_CPF_SHAPE.fullmatch(raw) or "br-cpf" in named) and cpf.is_valid(digits):
            return Identified("national-id", "BR CPF", digits)
        if (_IDNR_SHAPE.fullmatch(raw) or "de-idnr" in named) and idnr.is_valid(digits):
            return Identified("national-id", "DE IdNr", digits)
        if "pl-pesel" in named and pesel.is_valid(digits):
            return Identified("national-id", "PL PESEL", digits)
    elif n == 12:
        if (_AADHAAR_SHAPE.fullmatch(raw) or "in-aadhaar" in named) and aadhaar.is_valid(digits):
            return Identified("national-id", "IN Aadhaar", digits)
    elif n == 15 and (_NIR_SHAPE.fullmatch(raw) or "fr-nir" in named) and nir.is_valid(digits):
        return Identified("national-id", "FR NIR", digits)
    if n in (10, 12) and _PERSONNUMMER_SHAPE.fullmatch(raw) and personnummer.is_valid(raw):
        return Identified("national-id", "SE personnummer", personnummer.compact(raw)[-10:])
    return None


# UK National Insurance numbers: no check digit; HMRC never allocates these prefixes.
_NINO_BAD_PREFIXES = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})


def alnum_id(group: str, raw: str) -> Identified | None:
    """A national identifier that has letters in it: which one the scanner's regex group says."""
    compact = raw.replace(" ", "").replace("-", "").upper()
    if group == "nino":
        if compact[:2] in _NINO_BAD_PREFIXES:
            return None
        return Identified("national-id", "GB NINO", compact)
    if group == "dni":
        return Identified("national-id", "ES DNI", compact) if dni.is_valid(compact) else None
    if group == "nie":
        return Identified("national-id", "ES NIE", compact) if nie.is_valid(compact) else None
    if group == "nir":
        return Identified("national-id", "FR NIR", compact) if nir.is_valid(compact) else None
    if group == "cf":
        return Identified("national-id", "IT codice fiscale", compact) if codicefiscale.is_valid(compact) else None
    return None
