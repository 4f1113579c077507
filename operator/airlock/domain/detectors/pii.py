"""The ``pii`` detector: personal data and secrets in a request or an answer.

One cheap pass per family finds candidates; the libraries judge only those:

- number-like runs (a character-class pass, then one regex within each stretch):
  IPv4 addresses (``ipaddress``), payment cards (IIN range + Luhn), national
  identifiers (stdnum check digits), phone numbers (libphonenumber). The word
  that introduced the number decides what is tried first (a phone word: the
  phone; an identifier's name: that identifier); otherwise cards, identifiers,
  then phones;
- identifiers with letters: IBANs (stdnum), UK National Insurance numbers,
  Spanish NIE, Italian codice fiscale (one regex from the first upper-case
  candidate on), Spanish DNI (at the digit stretches), French NIR of people
  born in Corsica (only when ``2A``/``2B`` occurs);
- e-mail addresses, only around an ``@``;
- IPv6 addresses, only around colons, when the text has two;
- secrets (see ``credentials``).

What is deliberately NOT personal data here (each a source of false alarms on
support chats): role mailboxes (``support@``, ``info@`` …), service phone
numbers (toll-free, premium-rate, shared-cost), private, loopback and other
non-global IP addresses, dotted version strings (``version 1.2.3.4``), dates,
times, year ranges, spelled-out digit sequences, and numbers introduced as an
order, invoice, tracking, ticket, reference, customer or loyalty-card number
(``NOT_PERSONAL``).

Every decision reads at most ``CONTEXT`` characters before a candidate and the
one character after it: that locality is what lets a stream be judged with a
rolling window and reach exactly the verdicts of a whole-text scan.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from airlock.domain.detectors import credentials, identifiers, phones
from airlock.domain.detectors import text as textmod
from airlock.domain.detectors.findings import Detector, Finding

CONTEXT = 48  # characters before a candidate that its judgement may read

# A run of digit groups: "+49 (0)30 1234-567", "(212) 555-0182", "4111 1111 1111 1111", "10.0.0.1".
_NUMBER_RUN = re.compile(r"(?<![\w@#$€£¥%/\-.+])(?:\+|\(\+?)?\d+(?:(?:[ \-./]|\)[ \-]?| ?\()\d+)*\)?")
# Stretches of number-like characters long enough to hold a run worth judging (the cheap first pass).
_NUMBER_STRETCH = re.compile(r"[+(\d][\d ()./+\-]{6,}")
_NON_DIGIT = re.compile(r"\D")
_DATEISH = re.compile(
    r"(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}|(?:19|20)\d\d ?[-/] ?(?:19|20)?\d\d)(?: .*)?"
)
_VERSIONISH = re.compile(r"\d{1,4}(?:\.\d{1,4}){2,3}")

# Identifiers with letters. IBAN: country, check digits, then groups (runs on; the country's length cuts it).
_ALNUM = re.compile(
    r"(?<![^\W_])(?:"  # no letter or digit (of any script) right before
    r"(?P<iban>[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,34})"
    r"|(?P<cf>[A-Z]{6}[0-9LMNP-V]{2}[A-EHLMPR-T][0-9LMNP-V]{2}[A-Z][0-9LMNP-V]{3}[A-Z])"
    r"|(?P<nie>[XYZ]-?\d{7}-?[A-Z])"
    r"|(?P<nino>[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D])"
    r")(?![a-z0-9])"
)
# Where one of them can start: an upper-case letter followed by what each needs (a charset first: a fast scan).
_ALNUM_GATE = re.compile(r"[A-Z](?:[A-Z] ?\d\d|[A-Z]{5}[0-9LMNP-V]|-?\d{7})")
# Identifiers that start with digits and end with a letter: looked for at the digit stretches.
_DNI = re.compile(r"(?P<dni>\d{8}-?[A-Z])(?![A-Za-z0-9])")
_NIR_CORSICA = re.compile(r"(?<![^\W_])(?P<nir>[12] ?\d{2} ?\d{2} ?2[AB] ?\d{3} ?\d{3} ?\d{2})(?![A-Za-z0-9])")
_EMAIL_LOCAL = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-")
_EMAIL_DOMAIN = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?)*"
    r"\.(?P<tld>[A-Za-z]{2,24})(?![A-Za-z0-9\-]|\.[A-Za-z0-9])"
)
# Mailboxes of a role or a team: the company's, not a customer's.
ROLE_MAILBOXES = frozenset(
    {
        "support", "help", "helpdesk", "info", "contact", "sales", "billing", "noreply", "no-reply",
        "donotreply", "do-not-reply", "privacy", "dpo", "security", "abuse", "admin", "webmaster",
        "postmaster", "hostmaster", "hello", "team", "service", "customerservice", "customer.service",
        "kundenservice", "service-client", "serviceclient", "atencion", "assistenza", "klantenservice",
        "returns", "orders", "feedback", "press", "jobs", "careers", "hr", "office", "git", "mailer-daemon",
    }
)  # fmt: skip
_FILE_SUFFIXES = frozenset({"png", "jpg", "jpeg", "gif", "svg", "webp", "css", "js", "ts", "py", "json", "yaml", "yml"})

_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")  # the only IPv6 space allocated for hosts on the internet
_IPV6_CHARS = frozenset("0123456789abcdefABCDEF:")

# The words before a number, walked back from it (cheaper than searching the context with big alternations).
_TOKEN = re.compile(r"[^\W\d_][\w'\-]*|[#:]")
_ID_BY_WORD = {w: name for name, ws in identifiers.CONTEXT_WORDS.items() for w in ws}
# A number introduced as one of these is an identifier of a thing, not of a person.
NOT_PERSONAL = frozenset(
    {
        "order", "invoice", "tracking", "ticket", "case", "ref", "reference", "serial", "sku", "part", "model",
        "isbn", "issn", "ean", "upc", "imei", "booking", "confirmation", "transaction", "txn", "policy", "receipt",
        "parcel", "shipment", "package", "voucher", "coupon", "code", "pin", "otp", "article", "item", "product",
        "batch", "lot", "build", "version", "release", "loyalty", "gift", "membership", "member", "bonus", "club",
        "reward", "rewards", "store", "customer", "client", "account", "auftrag", "auftragsnummer", "bestellung",
        "bestellnummer", "rechnung", "rechnungsnummer", "sendung", "sendungsnummer", "kundennummer", "commande",
        "facture", "colis", "pedido", "factura", "envío", "ordine", "fattura", "spedizione", "bestelling", "factuur",
        "zending", "fatura", "encomenda", "rastreio",
    }
)  # fmt: skip
# Words that may stand between such a word and the number ("order number: 123", "loyalty card no. 123").
_CONNECTORS = frozenset(
    {"number", "no", "nr", "num", "nummer", "numéro", "número", "numero", "id", "is", "was", "#", ":", "card", "n°"}
)
_VERSION_WORD = re.compile(r"\b(?:version|ver\.?|v|release|build|firmware|rev(?:ision)?|update|patch)\s*:?\s*$")


@dataclass(frozen=True)
class _Candidate:
    start: int
    end: int
    kind: str
    detail: str
    value: str


def _ipv4(raw: str, before: str) -> _Candidate | None:
    try:
        address = ipaddress.IPv4Address(raw)
    except ValueError:
        return None
    if not address.is_global or address.is_multicast or address.is_reserved or _VERSION_WORD.search(before):
        return None
    return _Candidate(0, 0, "ipv4", "", str(address))


def _number(text: str, m: re.Match[str]) -> _Candidate | None:
    raw = m.group()
    start, end = m.span()
    if raw.startswith("(") and ")" not in raw:
        raw, start = raw[1:], start + 1
    elif raw.endswith(")") and "(" not in raw:
        raw, end = raw[:-1], end - 1
    after = text[end : end + 1]
    if after.isalpha() and after not in "xX":
        return None  # part of a word or an identifier with letters (DNI, NIE)
    if raw.count(".") == 3 and len(raw) <= 15 and raw.replace(".", "").isdigit():
        found = _ipv4(raw, text[max(0, start - CONTEXT) : start].lower())
        return _Candidate(start, end, found.kind, found.detail, found.value) if found else None
    digits = raw if raw.isdigit() else _NON_DIGIT.sub("", raw)
    if (
        len(digits) < 7
        or len(digits) > 19
        or _DATEISH.fullmatch(raw)
        or (_VERSIONISH.fullmatch(raw) and len(digits) < 9)
    ):
        return None
    before = text[max(0, start - CONTEXT) : start].lower()
    tokens = _TOKEN.findall(before)
    if _not_personal(tokens):
        return None
    if raw.startswith("+") or raw.startswith("(+"):
        phone = phones.international(raw) if len(digits) <= 15 else None
        return _Candidate(start, end, "phone", phone.region, phone.national) if phone else None
    if raw.startswith("00") and 10 < len(digits) <= 17:  # 0049 …: international, unless it is not valid as such
        phone = phones.international(raw)
        if phone is not None:
            return _Candidate(start, end, "phone", phone.region, phone.national)
    named, hints = _introduced(tokens)
    if hints:  # called a phone number: that is tried first
        found = _phone(raw, digits, start, end, hints)
        if found is not None:
            return found
    if not raw.startswith("("):
        national_id = identifiers.digit_id(raw, digits, named) if named else None
        if national_id is not None:  # called an identifier: that is tried before cards
            return _Candidate(start, end, national_id.kind, national_id.detail, national_id.value)
        card = identifiers.card(digits) if not ("." in raw or "/" in raw) else None
        if card is not None:
            return _Candidate(start, end, card.kind, card.detail, card.value)
        national_id = identifiers.digit_id(raw, digits, named) if not named else None
        if national_id is not None:
            return _Candidate(start, end, national_id.kind, national_id.detail, national_id.value)
    if named or hints or len(digits) > 15:
        return None  # called an identifier (or a phone number) and it is not a valid one
    if len(raw) == len(digits) and not digits.startswith("0"):
        return None  # a bare number nobody called a phone number: an id of something
    return _phone(raw, digits, start, end, [])


def _not_personal(tokens: list[str]) -> bool:
    """Whether the words right before a number introduce it as an order, invoice, tracking … number."""
    for token in reversed(tokens[-4:]):
        if token in _CONNECTORS:
            continue
        return token in NOT_PERSONAL
    return False


def _introduced(tokens: list[str]) -> tuple[frozenset[str], list[str]]:
    """What the closest naming word before a number calls it: an identifier (its name) or a phone (the word).

    "number" and its translations name a phone only when no identifier is named ("social security number").
    """
    named: str | None = None
    hint: str | None = None
    named_at = hint_at = -1
    for at in range(len(tokens) - 1, -1, -1):
        token = tokens[at]
        if named is None:
            name = (_ID_BY_WORD.get(f"{tokens[at - 1]} {token}") if at > 0 else None) or _ID_BY_WORD.get(token)
            if name is not None:
                named, named_at = name, at
        if hint is None and token in phones.HINTS_BY_WORD:
            hint, hint_at = token, at
        if named is not None and hint is not None:
            break
    if named is not None and hint is not None and hint in phones.WEAK_HINTS:
        hint = None
    if named is not None and (hint is None or named_at > hint_at):
        return frozenset({named}), []
    return frozenset(), [hint] if hint is not None else []


_GROUP = re.compile(r"\d+")


def _phone(raw: str, digits: str, start: int, end: int, hints: list[str]) -> _Candidate | None:
    if "/" in raw and "." in raw:
        return None  # a network (203.0.113.0/24) or a path, not a phone number
    if sum(len(group) == 1 for group in _GROUP.findall(raw)) > 2:
        return None  # digits spelled out one by one (a table, a sequence)
    phone = phones.national(raw, digits, phones.HINTS_BY_WORD[hints[-1]] if hints else ())
    return _Candidate(start, end, "phone", phone.region, phone.national) if phone else None


def _alnum(m: re.Match[str]) -> _Candidate | None:
    group = m.lastgroup or ""
    if group == "iban":
        found = identifiers.iban(m.group())
        if found is None:
            return None
        iban, used = found
        return _Candidate(m.start(), m.start() + used, iban.kind, iban.detail, iban.value)
    national_id = identifiers.alnum_id(group, m.group())
    if national_id is None:
        return None
    return _Candidate(m.start(), m.end(), national_id.kind, national_id.detail, national_id.value)


def _emails(text: str, start: int, out: list[_Candidate]) -> None:
    at = text.find("@", start)
    while at >= 0:
        begin = at
        while begin > 0 and at - begin < 64 and text[begin - 1] in _EMAIL_LOCAL:
            begin -= 1
        domain_m = _EMAIL_DOMAIN.match(text, at + 1) if begin < at else None
        if domain_m is not None:
            local = text[begin:at].lstrip(".")
            begin = at - len(local)
            if (
                begin >= start
                and local
                and not local.endswith(".")
                and local.split("+", 1)[0].lower() not in ROLE_MAILBOXES
                and domain_m.group("tld").lower() not in _FILE_SUFFIXES
            ):
                out.append(_Candidate(begin, domain_m.end(), "email", "", text[begin : domain_m.end()].lower()))
        at = text.find("@", at + 1)


def ipv6_addresses(text: str) -> list[str]:
    """Every IPv6 address in ``text`` (global or not), compressed: what cross-customer compares on."""
    found: list[_Candidate] = []
    _ipv6(text, 0, found, every=True)
    return [c.value for c in found]


def _ipv6(text: str, start: int, out: list[_Candidate], *, every: bool = False) -> None:
    """Around each colon, the run of hex digits and colons; two colons or more and valid makes an address."""
    n = len(text)
    colon = text.find(":", start)
    while colon >= 0:
        begin, end = colon, colon + 1
        while begin > start and text[begin - 1] in _IPV6_CHARS:
            begin -= 1
        while end < n and text[end] in _IPV6_CHARS:
            end += 1
        candidate = text[begin:end]
        if (
            candidate.count(":") >= 2
            and not (begin > 0 and (text[begin - 1].isalnum() or text[begin - 1] in "_."))
            and not (end < n and (text[end].isalnum() or text[end] == "_"))
        ):
            try:
                address = ipaddress.IPv6Address(candidate)
            except ValueError:
                address = None
            if address is not None and (every or (address.is_global and address in _GLOBAL_UNICAST)):
                out.append(_Candidate(begin, end, "ipv6", "", address.compressed))
        colon = text.find(":", end)


def _weight(c: _Candidate) -> tuple[bool, int]:
    # A private-key block wins any overlap: it is the one finding that grows while a stream is open, so
    # letting length decide would let a half-arrived block lose where the whole block wins.
    return (c.detail == "private-key", c.end - c.start)


def _resolve(candidates: list[_Candidate]) -> list[_Candidate]:
    """Overlapping candidates: a private-key block, else the longer (an IBAN over the digits in it; the first on a tie)."""
    kept: list[_Candidate] = []
    for c in sorted(candidates, key=lambda c: c.start):
        kept.append(c)
        while len(kept) > 1 and kept[-1].start < kept[-2].end:
            last, before = kept.pop(), kept.pop()
            kept.append(last if _weight(last) > _weight(before) else before)
    return kept


def find(text: str, start: int = 0) -> list[Finding]:
    """Every piece of personal data and every secret in ``text`` that starts at ``start`` or later, in order.

    The text before ``start`` is still read as context (a stream passes its rolling window).
    """
    candidates: list[_Candidate] = []
    if "-----BEGIN" in text:
        # A private-key block is one secret: its body is blanked (same length, offsets hold) before the other
        # passes, which would only find its base64 again — and a stream re-reads an open block at every delta.
        # Its BEGIN and END lines stay, so what precedes and follows it is judged as without the blanking.
        pieces, at = [], 0
        for block in credentials.private_key_blocks(text):
            if block.start >= start:
                candidates.append(_Candidate(block.start, block.end, "secret", block.detail, block.value))
            body_start, body_end = block.body
            pieces += [text[at:body_start], " " * (body_end - body_start)]
            at = body_end
        text = "".join([*pieces, text[at:]])
    for stretch in _NUMBER_STRETCH.finditer(text, start):
        for m in _NUMBER_RUN.finditer(text, stretch.start(), stretch.end()):
            if m.end() - m.start() >= 7:
                found = _number(text, m)
                if found is not None:
                    candidates.append(found)
            if text[m.end() : m.end() + 1].isupper() or text[m.end() : m.end() + 1] == "-":
                # a Spanish DNI ends in a letter: its 8 digits are the last group of the run
                group = m.group()
                at = m.start() + 1 + max(group.rfind(" "), group.rfind("-"), group.rfind("."), group.rfind("/"))
                dni = _DNI.match(text, at)
                found = _alnum(dni) if dni is not None else None
                if found is not None:
                    candidates.append(found)
    # Tried at every place one can start, and after a hit the search goes on where the identifier ends
    # (an IBAN's regex runs on into the next words): what is found never depends on where a scan began.
    gate = _ALNUM_GATE.search(text, start)
    while gate is not None:
        hit = _ALNUM.match(text, gate.start())
        found = _alnum(hit) if hit is not None else None
        if found is not None:
            candidates.append(found)
        gate = _ALNUM_GATE.search(text, found.end if found is not None else gate.start() + 1)
    if "2A" in text or "2B" in text:  # a French NIR of someone born in Corsica
        for m in _NIR_CORSICA.finditer(text, start):
            found = _alnum(m)
            if found is not None:
                candidates.append(found)
    if "@" in text:
        _emails(text, start, candidates)
    if text.count(":", start) >= 2:
        _ipv6(text, start, candidates)
    for s in credentials.find_secrets(text, textmod.lower(text), blocks=False):
        if s.start >= start:
            candidates.append(_Candidate(s.start, s.end, "secret", s.detail, s.value))
    if len(candidates) > 1:
        candidates = _resolve(candidates)
    return [
        Finding(detector=Detector.PII, kind=c.kind, start=c.start, end=c.end, value=c.value, detail=c.detail)
        for c in candidates
    ]
