"""Text normalisation for matching attacks that hide from a plain regex.

``fold`` turns a text into the form the prompt-injection patterns are written
for: NFKC (full-width and mathematical letters become ASCII), zero-width and
bidirectional control characters removed, common Cyrillic and Greek look-alikes
mapped to the Latin letters they imitate, lower case, and "leetspeak-lite"
(``1gn0r3`` → ``ignore``). It also returns where each folded character came
from, so a finding's offsets point into the original text.

The common case costs almost nothing: an ASCII text (or one already in NFKC
with no invisible or look-alike characters) is folded with two ``str``
methods and an identity map; the per-character path runs only for texts that
need it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e\u2061\u2062\u2063\u2064"
BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"

# Look-alikes of Latin letters (Unicode's confusables, the ones attackers use).
HOMOGLYPHS = {
    **dict(zip("аеорсухіјѕԁһӏԛԝвкмнт", "aeopcyxijsdhlqwbkmht", strict=True)),  # Cyrillic, lower
    **dict(zip("АЕОРСУХІЈЅВКМНТ", "aeopcyxijsbkmht", strict=True)),  # Cyrillic, upper
    **dict(zip("αεοριτυνκχ", "aeopitunkx", strict=True)),  # Greek, lower
    **dict(zip("ΑΕΟΡΙΤΥΝΚΧΒΜΗΖ", "aeopityvkxbmhz", strict=True)),  # Greek, upper
}
_LEET = str.maketrans("013457@$!|", "oieastasil")
_SPECIAL = re.compile("[" + ZERO_WIDTH + BIDI_CONTROLS + "".join(HOMOGLYPHS) + "]")
_DROP = frozenset(ZERO_WIDTH + BIDI_CONTROLS)


@dataclass(frozen=True)
class Folded:
    """A folded text (``plain``: for markup; ``words``: the same with leetspeak undone, for phrases).

    Both have the same length; ``origin`` says where each character came from when
    that is not simply the same position.
    """

    plain: str
    words: str
    origin: tuple[int, ...] | None  # None: character i came from position i
    zero_width: int = 0  # zero-width characters removed
    bidi: int = 0  # bidirectional controls removed
    lookalikes: int = 0  # look-alike letters replaced

    def position(self, index: int) -> int:
        """The original offset of folded offset ``index`` (``len(folded)`` maps past the original's end)."""
        if self.origin is None:
            return index
        if index >= len(self.origin):
            return (self.origin[-1] + 1) if self.origin else 0
        return self.origin[index]


def lower(text: str) -> str:
    """``text.lower()`` with the same length, so offsets into it are offsets into ``text``.

    A few characters lower-case to two ("İ" to "i̇"); those keep their first.
    """
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(ch.lower()[:1] for ch in text)


def leet(text: str) -> str:
    """Leetspeak-lite: the digits and symbols that stand in for letters (same length)."""
    return text.translate(_LEET)


def fold(text: str) -> Folded:
    """NFKC, invisible characters removed, look-alikes mapped, lower case (and a leetspeak-lite copy)."""
    if text.isascii() or (unicodedata.is_normalized("NFKC", text) and _SPECIAL.search(text) is None):
        plain = text.lower()
        return Folded(plain, leet(plain), None)
    out: list[str] = []
    origin: list[int] = []
    zero_width = bidi = lookalikes = 0
    for i, ch in enumerate(text):
        if ch in _DROP:
            if ch in BIDI_CONTROLS:
                bidi += 1
            else:
                zero_width += 1
            continue
        mapped = HOMOGLYPHS.get(ch)
        if mapped is not None:
            lookalikes += 1
            out.append(mapped)
            origin.append(i)
            continue
        for piece in unicodedata.normalize("NFKC", ch) if not ch.isascii() else ch:
            out.append(piece)
            origin.append(i)
    plain = "".join(out).lower()
    if len(plain) != len(origin):  # lower() changed a length (rare: e.g. "İ"); keep offsets approximate
        origin = [origin[min(i, len(origin) - 1)] for i in range(len(plain))] if origin else []
    return Folded(plain, leet(plain), tuple(origin), zero_width, bidi, lookalikes)
