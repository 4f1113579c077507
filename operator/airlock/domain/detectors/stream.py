"""Streams (SSE deltas): the same findings and the same redacted text as a whole-text scan, without the whole text.

A ``ResponseStream`` keeps a rolling buffer: the text not yet judged, plus
``window`` characters before it as context (the words that introduce a
number, the start of a system-prompt run). Each ``feed`` judges everything up
to the *hold point* and reports those findings; text after the hold point is
a possible prefix of a finding and waits for the next delta:

- a word the delta ended in the middle of (``jane.do`` may become an e-mail,
  ``sk-`` a key);
- before it, words that may be the earlier groups of a spaced number or IBAN
  (``+49 30``, ``DE89 3704``): words with digits or short upper-case groups,
  joined by single spaces, at most ``MAX_RUN`` characters back;
- an unfinished ``-----BEGIN … PRIVATE KEY-----`` header, and an open
  private-key block (up to ``credentials.MAX_BLOCK``);
- words that may begin or continue a run of the remembered system prompt.

A finding that would straddle the hold point moves it back to the finding's
start. Decisions read at most ``pii.CONTEXT`` characters before a candidate
and the character after it, so a finding judged here is judged exactly as in
the whole text.

With redaction on, only text before the hold point is emitted (redacted);
otherwise every delta is passed on at once and the scan only reports. The
refusal verdict needs the answer's first ``refusal.HEAD`` characters; when
``refusal`` is redacted, emission waits for them.

Limits, stated: a single word longer than ``MAX_HOLD`` characters is judged in
pieces (the stream emits rather than buffer without bound).
"""

from __future__ import annotations

from dataclasses import dataclass

from airlock.domain.detectors import credentials, pii, redaction, refusal
from airlock.domain.detectors.findings import Detector, Finding
from airlock.domain.detectors.scan import RequestContext, cross_customer, ordered

MAX_RUN = 96
MAX_HOLD = 2 * credentials.MAX_BLOCK
MIN_WINDOW = 64
_TEXT_DETECTORS = frozenset({Detector.PII, Detector.CROSS_CUSTOMER, Detector.CANARY})


@dataclass(frozen=True)
class StreamScan:
    """What a delta produced: the text safe to emit now (redacted if asked) and the findings judged now."""

    emit: str
    findings: list[Finding]


def _extendable(word: str) -> bool:
    """A word that may be an earlier group of a spaced number, IBAN or insurance number (a space may follow it)."""
    if not word or not (word[-1].isalnum() or word[-1] == ")"):
        return False
    if word[0] in "+(" or any(ch.isdigit() for ch in word):
        return True
    return len(word) <= 4 and word.isalnum() and word.isupper()


def _continues(ch: str) -> bool:
    """Whether a word starting with ``ch`` may be a later group of such a run."""
    return ch.isdigit() or ch.isupper() or ch in "+("


def _hold_start(buf: str, floor: int) -> int:
    """Where the possible prefix of a finding at the end of ``buf`` starts (``len(buf)``: none)."""
    n = len(buf)
    if n <= floor:
        return n
    i = n
    if not buf[-1].isspace():
        while i > floor and not buf[i - 1].isspace():
            i -= 1
    elif buf[-1] != " " or (n >= 2 and buf[-2].isspace()):
        i = n
    while i - 2 >= floor and buf[i - 1] == " " and not buf[i - 2].isspace() and (i == n or _continues(buf[i])):
        k = i - 1
        while k > floor and not buf[k - 1].isspace():
            k -= 1
        if n - k > MAX_RUN or not _extendable(buf[k : i - 1]):
            break
        i = k
    header = buf.rfind("-----BEGIN", floor)
    if header >= 0 and buf.find("-----", header + 10) < 0:
        i = min(i, header)
    return i


class ResponseStream:
    """One streamed answer: ``feed`` each delta, then ``finish``."""

    def __init__(self, *, context: RequestContext, redact: set[Detector], window: int = 256) -> None:
        if window < MIN_WINDOW:
            raise ValueError(f"window must be at least {MIN_WINDOW} characters (context for the detectors)")
        self._context = context
        self._redact = frozenset(redact)
        self._window = window
        self._redacting = bool(self._redact & _TEXT_DETECTORS)
        self._hold_head = Detector.REFUSAL in self._redact
        self._buf = ""
        self._base = 0  # position of the buffer in the answer
        self._scanned = 0  # findings that start before this are reported
        self._emitted = 0  # text before this is emitted
        self._total = 0
        self._head = ""
        self._refusal_judged = False
        self._to_redact: list[Finding] = []
        self._finished = False

    @property
    def held(self) -> int:
        """Characters received and not emitted yet (held back while a possible finding is judged)."""
        return self._total - self._emitted

    def feed(self, delta: str) -> StreamScan:
        """Take the next piece of the answer: what may be emitted now, and the findings judged now."""
        if self._finished:
            raise RuntimeError("the stream is finished")
        self._append(delta)
        found = self._judge(final=False)
        return StreamScan(self._emit(final=False), found)

    def finish(self) -> StreamScan:
        """The end of the answer: the held-back tail, its findings, and the refusal verdict if not given yet."""
        if self._finished:
            raise RuntimeError("the stream is finished")
        found = self._judge(final=True)
        self._finished = True
        return StreamScan(self._emit(final=True), found)

    def _append(self, delta: str) -> None:
        self._buf += delta
        self._total += len(delta)
        if len(self._head) < refusal.HEAD:
            self._head += delta[: refusal.HEAD - len(self._head)]

    def _hold_point(self) -> int:
        floor = self._scanned - self._base
        hold = _hold_start(self._buf, floor)
        if self._context.canary is not None:
            hold = min(hold, self._context.canary.pending(self._buf, floor))
        return self._base + max(hold, floor)

    def _detect(self) -> list[Finding]:
        start = self._scanned - self._base
        found = pii.find(self._buf, start)
        detected = [*found, *cross_customer(found, self._context)]
        if self._context.canary is not None:
            detected.extend(self._context.canary.find(self._buf, start))
        return [f.shifted(self._base) for f in detected]

    def _judge(self, *, final: bool) -> list[Finding]:
        safe = self._total if final else self._hold_point()
        forced = not final and self._total - self._scanned > MAX_HOLD
        if forced:
            safe = max(safe, self._total - credentials.MAX_BLOCK)
        candidates = self._detect() if safe > self._scanned or final else []
        moved = not forced
        while moved:
            moved = False
            for f in candidates:
                # straddles the hold point, or touches the end of what has arrived (a block still open)
                if f.start < safe and (f.end > safe or (not final and f.end >= self._total)):
                    safe, moved = f.start, True
        judged = [f for f in candidates if f.end <= safe]
        self._scanned = max(self._scanned, safe)
        if not self._refusal_judged and (final or len(self._head) >= refusal.HEAD):
            self._refusal_judged = True
            judged.extend(refusal.find(self._head))
        self._to_redact.extend(f for f in judged if f.detector in self._redact)
        return ordered(judged)

    def _emit(self, *, final: bool) -> str:
        if final:
            limit = self._total
        elif self._hold_head and not self._refusal_judged:
            limit = self._emitted
        else:
            limit = self._scanned if self._redacting else self._total
        if limit <= self._emitted:
            self._trim()
            return ""
        spans = redaction.spans([f for f in self._to_redact if f.end > self._emitted], self._redact)
        start = self._emitted - self._base
        piece = self._buf[start : limit - self._base]
        out = redaction.apply(piece, [s for s in spans if s[0] < limit], offset=self._emitted)
        # A redacted span that began before this piece was replaced when that earlier piece was emitted.
        self._emitted = max(limit, max((s[1] for s in spans if s[0] < limit), default=limit))
        self._to_redact = [f for f in self._to_redact if f.end > self._emitted]
        self._trim()
        return out

    def _trim(self) -> None:
        keep_from = min(self._emitted, self._scanned - self._window)
        if keep_from > self._base:
            self._buf = self._buf[keep_from - self._base :]
            self._base = keep_from
