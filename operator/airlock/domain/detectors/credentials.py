"""Secrets in text: cloud keys, API tokens, private-key blocks, JWTs, bearer tokens, credential assignments.

All of them are one ``kind`` (``secret``, a metric label) with the sub-kind in
``detail``. Each pattern is guarded by a literal that must occur in the text
(``AKIA``, ``ghp_``, ``-----BEGIN`` …; ``str.__contains__`` is a C loop), so
an answer without any of them costs a few microseconds and no regex.

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


@dataclass(frozen=True)
class _Pattern:
    detail: str
    gates: tuple[str, ...]  # literals of which one must occur (in the lower-cased text when ``lower``)
    regex: re.Pattern[str]
    lower: bool = False
    group: int = 0  # the group that is the secret (0: the whole match)


_WORD = r"(?<![A-Za-z0-9_\-])"
_PATTERNS: tuple[_Pattern, ...] = (
    _Pattern(
        "aws-access-key",
        ("AKIA", "ASIA", "ABIA", "ACCA", "AGPA", "AIDA", "AROA", "ANPA", "ANVA", "APKA", "AIPA"),
        re.compile(_WORD + r"(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|ANPA|ANVA|APKA|AIPA)[A-Z2-7]{16}(?![A-Za-z0-9])"),
    ),
    _Pattern("gcp-api-key", ("AIza",), re.compile(_WORD + r"AIza[0-9A-Za-z_\-]{35}(?![A-Za-z0-9_\-])")),
    _Pattern(
        "github-token",
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
        re.compile(_WORD + r"(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{60,255})(?![A-Za-z0-9_])"),
    ),
    _Pattern("slack-token", ("xox",), re.compile(_WORD + r"xox[abposr]-[A-Za-z0-9\-]{10,250}(?![A-Za-z0-9\-])")),
    _Pattern(
        "slack-webhook",
        ("hooks.slack.com",),
        re.compile(r"https://hooks\.slack\.com/services/T[A-Z0-9]{6,}/B[A-Z0-9]{6,}/[A-Za-z0-9]{16,}"),
    ),
    _Pattern(
        "stripe-key",
        ("sk_live_", "sk_test_", "rk_live_", "rk_test_"),
        re.compile(_WORD + r"[sr]k_(?:live|test)_[0-9A-Za-z]{16,247}(?![A-Za-z0-9])"),
    ),
    _Pattern(
        "api-key",  # OpenAI-style (sk-…, sk-proj-…, sk-ant-…)
        ("sk-",),
        re.compile(
            _WORD
            + r"sk-(?:[a-z]{2,8}-)*(?=[A-Za-z0-9_\-]*\d)(?=[A-Za-z0-9_\-]*[A-Z])[A-Za-z0-9_\-]{20,200}(?![A-Za-z0-9_\-])"
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
        re.compile(r"\"private_key_id\"\s*:\s*\"([0-9a-f]{40})\""),
        group=1,
    ),
    _Pattern(
        "bearer-token",
        ("bearer",),
        re.compile(r"(?i)\bbearer\s+([A-Za-z0-9\-._~+/]{16,}=*)"),
        lower=True,
        group=1,
    ),
    _Pattern(
        "bearer-token",
        ("authorization",),
        re.compile(
            r"(?i)\bauthorization[\"']?\s*[:=]\s*[\"']?(?:(?:basic|token|bearer)\s+)?([A-Za-z0-9\-._~+/]{16,}=*)"
        ),
        lower=True,
        group=1,
    ),
    _Pattern(
        "credential",
        ("secret", "password", "passwd", "pwd", "api_key", "apikey", "api-key", "token", "private_key_id"),
        re.compile(
            r"(?i)\b(?:[a-z]+_)*(?:secret(?:_?access)?(?:_?key)?|client_?secret|password|passwd|pwd|api[_\-]?key|"
            r"access_?token|auth_?token|refresh_?token)[\"']?\s*[:=]\s*[\"']?([^\s\"',;<>{}$()\[\]]{8,200})"
        ),
        lower=True,
        group=1,
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
        body = text[header.end() : end_marker.start() if end_marker else end]
        yield Secret(begin, end, "private-key", _SPACE.sub("", body)[:128])
        pos = end


def find_secrets(text: str, lower: str) -> list[Secret]:
    """Every secret in ``text`` (``lower`` is ``text.lower()``, computed once by the caller)."""
    found: list[Secret] = []
    if "-----BEGIN" in text:
        found.extend(private_key_blocks(text))
    if "eyJ" in text:
        for m in _JWT.finditer(text):
            if m.start() > 0 and text[m.start() - 1] in _B64URL:
                continue
            if _jwt_header(m.group().split(".", 1)[0]):
                found.append(Secret(m.start(), m.end(), "jwt", m.group()))
    for pattern in _PATTERNS:
        haystack = lower if pattern.lower else text
        for gate in pattern.gates:
            if gate in haystack:
                break
        else:
            continue
        for m in pattern.regex.finditer(text):
            token = m.group(pattern.group)
            if pattern.group and not _random_looking(token):
                continue
            start, end = m.span(pattern.group)
            detail = pattern.detail
            if detail == "credential" and "secret" in m.group().lower() and len(token) == 40:
                detail = "aws-secret-key" if "access" in m.group().lower() else detail
            found.append(Secret(start, end, detail, token))
    return found
