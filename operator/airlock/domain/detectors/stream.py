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
  joined by single spaces (a run judged from its middle would be another run);
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

Limits, stated: more than ``MAX_HOLD`` characters that may all be one finding
(one word, or one run of digit groups, longer than 32 KiB) are judged in pieces:
the stream emits rather than buffer without bound, and may then differ from a
whole-text scan.
"""

from __future__ import annotations

from dataclasses import dataclass

from airlock.domain.detectors import credentials, pii, redaction, refusal
from airlock.domain.detectors.findings import Detector, Finding
from airlock.domain.detectors.scan import RequestContext, cross_customer, ordered

MAX_RUN = credentials.MAX_BLOCK  # a run's start must be kept: a run judged from its middle is another run
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
    # an upper-case group may start after any non-alphanumeric character: ".AB 12 34 56 C", "€AB 12 …"
    cut = len(word)
    while cut > 0 and word[cut - 1].isalnum():
        cut -= 1
    tail = word[cut:]
    return 0 < len(tail) <= 4 and tail.isupper()


def _continues(ch: str) -> bool:
    """Whether a word starting with ``ch`` may be a later group of such a run."""
    return ch.isdigit() or ch.isupper() or ch in "+("


_SPACES = " \n\t\r\f\v"


def _word_start(buf: str, end: int, floor: int) -> int:
    """The start of the word that ends at ``end`` (C-level searches: a held word can be kilobytes long)."""
    start = max(max(buf.rfind(ch, floor, end) for ch in _SPACES) + 1, floor)
    piece = buf[start:end]
    if piece and len(piece.split()) == 1 and not piece[0].isspace():
        return start
    k = end  # another kind of space in it (U+2009 …): the slow, exact way
    while k > start and not buf[k - 1].isspace():
        k -= 1
    return k


def _hold_start(buf: str, floor: int, known: tuple[int, int] = (-1, -1)) -> tuple[int, tuple[int, int]]:
    """Where the possible prefix of a finding at the end of ``buf`` starts (``len(buf)``: none).

    Also returns the stretch the walk back over groups of a run covered (its start, and where it began):
    every word start in it was walked already, and the text before the end of it has not changed, so the
    next delta's walk jumps from there to its start (a long run of digit groups is walked once, not once
    per delta). ``known`` is that stretch from the previous delta.
    """
    n = len(buf)
    if n <= floor:
        return n, (n, n)
    i = n
    if not buf[-1].isspace():
        i = _word_start(buf, n, floor)
    elif buf[-1] != " " or (n >= 2 and buf[-2].isspace()):
        i = n
    top = i
    low, high = known
    while i - 2 >= floor and buf[i - 1] == " " and not buf[i - 2].isspace() and (i == n or _continues(buf[i])):
        if floor <= low <= i <= high:
            i = low
            break
        k = _word_start(buf, i - 1, floor)
        if n - k > MAX_RUN or not _extendable(buf[k : i - 1]):
            break
        i = k
    chain = (i, top)
    header = buf.rfind("-----BEGIN", floor)
    if header >= 0 and buf.find("-----", header + 10) < 0:
        i = min(i, header)
    return i, chain


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
        self._chain = (-1, -1)
        self._stalled_at = -1  # a hold point at which a straddling finding held everything back  # the stretch the last walk back over a run covered (absolute)
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
        low, high = self._chain
        hold, (low, high) = _hold_start(self._buf, floor, (low - self._base, high - self._base))
        self._chain = (self._base + low, self._base + high)
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
        # The same hold point as after the last delta, where a finding straddling it held everything back:
        # the text before it is unchanged, so judging again would only hold back the same (it may release
        # less early, never more): skip the scan. A long word or an open block is then scanned once, not
        # once per delta.
        stalled = not final and not forced and safe == self._stalled_at
        hold = safe
        if stalled:
            safe = self._scanned
        candidates = self._detect() if safe > self._scanned or final else []
        moved = not forced
        while moved:
            moved = False
            for f in candidates:
                # straddles the hold point, or touches the end of what has arrived (a block still open)
                if f.start < safe and (f.end > safe or (not final and f.end >= self._total)):
                    safe, moved = f.start, True
        judged = [f for f in candidates if f.end <= safe]
        held_back = stalled or (bool(candidates) and safe == self._scanned < hold)
        self._stalled_at = hold if held_back else -1
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
