"""Secrets in text: cloud keys, API tokens, private-key blocks, JWTs, bearer tokens, credential assignments.

All of them are one ``kind`` (``secret``, a metric label) with the sub-kind in
``detail``. Patterns that begin with a literal (``AKIA``, ``ghp_``, ``xox``,
``sk-`` …) scan the text themselves: the regex engine skips to that literal in
C. The others run only where their keyword occurs (``password``, ``bearer``,
``AccountKey=``, ``-----BEGIN``, ``eyJ`` …), so an ordinary answer costs a few
microseconds here.

A private-key block is the one finding that may be long: it runs from its
``BEGIN`` line to its ``END`` line, or to the end of the text when the END line
has not (yet) come, and never further than ``MAX_BLOCK`` characters (a
streamed answer is held back at most that much while a block is open).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import string
from collections.abc import Iterator
from dataclasses import dataclass

MAX_BLOCK = 16384
_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@dataclass(frozen=True)
class Secret:
    start: int
    end: int
    detail: str
    value: str
    body: tuple[int, int] = (0, 0)  # a private-key block's body: between its BEGIN and END lines


@dataclass(frozen=True)
class _Pattern:
    """A kind of secret: literals it contains (``gates``), and its regex, run only where a gate occurs.

    ``at_gate``: the regex matches starting at the gate (it may run past whitespace: "password: x");
    otherwise it is searched for within the whitespace-delimited word around the gate. Without gates the
    regex starts with a literal and scans the text itself (the regex engine skips to that literal in C).
    A secret must not continue a word: the character before it is checked here, not with a look-behind
    at the start of the regex, which would cost the engine its literal-prefix scan (~30x slower).
    """

    detail: str
    gates: tuple[str, ...]  # literals it contains (looked for in the lower-cased text when ``lower``)
    regex: re.Pattern[str]
    lower: bool = False
    group: int = 0  # the group that is the secret (0: the whole match)
    at_gate: bool = False


_WORD_CHARS = frozenset(string.ascii_letters + string.digits + "_-")
_PATTERNS: tuple[_Pattern, ...] = (
    _Pattern(
        "aws-access-key",
        (),
        re.compile(r"A(?:KIA|SIA|BIA|CCA|GPA|IDA|ROA|NPA|NVA|PKA|IPA)[A-Z2-7]{16}(?![A-Za-z0-9])"),
    ),
    _Pattern("gcp-api-key", (), re.compile(r"AIza[0-9A-Za-z_\-]{35}(?![A-Za-z0-9_\-])")),
    _Pattern(
        "github-token",
        (),
        re.compile(r"g(?:h[pousr]_[A-Za-z0-9]{36}|ithub_pat_[A-Za-z0-9_]{60,255})(?![A-Za-z0-9_])"),
    ),
    _Pattern("slack-token", (), re.compile(r"xox[abposr]-[A-Za-z0-9\-]{10,250}(?![A-Za-z0-9\-])")),
    _Pattern(
        "slack-webhook",
        (),
        re.compile(r"https://hooks\.slack\.com/services/T[A-Z0-9]{6,}/B[A-Z0-9]{6,}/[A-Za-z0-9]{16,}"),
    ),
    _Pattern(
        "stripe-key",
        ("sk_live_", "sk_test_", "rk_live_", "rk_test_"),
        re.compile(r"[sr]k_(?:live|test)_[0-9A-Za-z]{16,247}(?![A-Za-z0-9])"),
        at_gate=True,
    ),
    _Pattern(
        "api-key",  # OpenAI-style (sk-…, sk-proj-…, sk-ant-…)
        (),
        re.compile(
            r"sk-(?:[a-z]{2,8}-)*(?=[A-Za-z0-9_\-]*\d)(?=[A-Za-z0-9_\-]*[A-Z])[A-Za-z0-9_\-]{20,200}(?![A-Za-z0-9_\-])"
        ),
    ),
    _Pattern(
        "azure-connection-string",
        ("AccountKey=", "SharedAccessKey="),
        re.compile(
            r"(?:[A-Za-z]+=[^;\s\"']+;)*(?:AccountKey|SharedAccessKey)=[A-Za-z0-9+/]{20,}={0,2}(?:;[A-Za-z]+=[^;\s\"']*)*"
        ),
    ),
    _Pattern(
        "gcp-service-account-key",
        ("private_key_id",),
        re.compile(r"private_key_id\"\s*:\s*\"([0-9a-f]{40})\""),
        group=1,
        at_gate=True,
    ),
    _Pattern(
        "bearer-token",
        ("bearer",),
        re.compile(r"(?i)(?<![a-z])bearer\s+([A-Za-z0-9\-._~+/]{16,}=*)"),
        lower=True,
        group=1,
        at_gate=True,
    ),
    _Pattern(
        "bearer-token",
        ("authorization",),
        re.compile(r"(?i)authorization[\"']?\s*[:=]\s*[\"']?(?:(?:basic|token|bearer)\s+)?([A-Za-z0-9\-._~+/]{16,}=*)"),
        lower=True,
        group=1,
        at_gate=True,
    ),
    _Pattern(
        "credential",
        ("secret", "password", "passwd", "pwd", "api_key", "apikey", "api-key", "token"),
        re.compile(
            r"(?i)(?:secret(?:_?access)?(?:_?key)?|password|passwd|pwd|api[_\-]?key|token)[\"']?\s*[:=]\s*[\"']?"
            r"([^\s\"',;<>{}$()\[\]]{8,200})"
        ),
        lower=True,
        group=1,
        at_gate=True,
    ),
)

_PRIVATE_KEY_BEGIN = re.compile(r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY(?: BLOCK)?-----")
_PRIVATE_KEY_END = re.compile(r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
_JWT = re.compile(r"eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*")
_SPACE = re.compile(r"\s+")


def _random_looking(token: str) -> bool:
    """A credential value, not a word or a placeholder: letters and digits mixed, or long."""
    has_digit = any(ch.isdigit() for ch in token)
    has_alpha = any(ch.isalpha() for ch in token)
    return (has_digit and has_alpha) or (len(token) >= 32 and has_alpha)


def _jwt_header(part: str) -> bool:
    try:
        raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        header = json.loads(raw)
    except (binascii.Error, ValueError):
        return False
    return isinstance(header, dict) and ("alg" in header or "typ" in header)


def private_key_blocks(text: str) -> Iterator[Secret]:
    """Private-key blocks: BEGIN line to END line, or to the end of the text, at most ``MAX_BLOCK`` long."""
    pos = 0
    while (begin := text.find("-----BEGIN", pos)) >= 0:
        header = _PRIVATE_KEY_BEGIN.match(text, begin)
        if header is None:
            pos = begin + 10
            continue
        limit = min(len(text), begin + MAX_BLOCK)
        end_marker = _PRIVATE_KEY_END.search(text, header.end(), limit)
        end = end_marker.end() if end_marker else limit
        body_end = end_marker.start() if end_marker else end
        body = text[header.end() : body_end]
        yield Secret(begin, end, "private-key", _SPACE.sub("", body)[:128], (header.end(), body_end))
        pos = end


def _matches(pattern: _Pattern, text: str, lower: str, n: int) -> list[re.Match[str]]:
    if not pattern.gates:
        return list(pattern.regex.finditer(text))
    found: list[re.Match[str]] = []
    haystack = lower if pattern.lower else text
    for gate in pattern.gates:
        at = haystack.find(gate)
        while at >= 0:
            if pattern.at_gate:
                m = pattern.regex.match(text, at)
            else:
                word_start, word_end = at, at + len(gate)
                while word_start > 0 and not text[word_start - 1].isspace():
                    word_start -= 1
                while word_end < n and not text[word_end].isspace():
                    word_end += 1
                m = pattern.regex.search(text, word_start, word_end)
            if m is not None:
                found.append(m)
            at = haystack.find(gate, at + len(gate))
    return found


def find_secrets(text: str, lower: str, *, blocks: bool = True) -> list[Secret]:
    """Every secret in ``text`` (``lower`` is ``text.lower()``, computed once by the caller).

    ``blocks=False``: private-key blocks are left out (the caller has found them already).
    """
    found: list[Secret] = []
    if blocks and "-----BEGIN" in text:
        found.extend(private_key_blocks(text))
    if "eyJ" in text:
        for m in _JWT.finditer(text):
            if m.start() > 0 and text[m.start() - 1] in _B64URL:
                continue
            if _jwt_header(m.group().split(".", 1)[0]):
                found.append(Secret(m.start(), m.end(), "jwt", m.group()))
    n = len(text)
    seen: set[tuple[int, int]] = set()
    for pattern in _PATTERNS:
        for m in _matches(pattern, text, lower, n):
            token = m.group(pattern.group)
            span = m.span(pattern.group)
            if span in seen or (pattern.group and not _random_looking(token)):
                continue
            if not pattern.group and span[0] > 0 and text[span[0] - 1] in _WORD_CHARS:
                continue  # the tail of a longer word
            seen.add(span)
            detail = pattern.detail
            if detail == "credential" and len(token) == 40 and "secret" in m.group().lower():
                detail = "aws-secret-key" if "access" in lower[max(0, span[0] - 40) : span[0]] else detail
            found.append(Secret(span[0], span[1], detail, token))
    return found
