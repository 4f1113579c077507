"""The ``refusal`` detector: whether an answer is the model declining ("I can't help with that").

An answer is judged on its opening (``HEAD`` characters): a refusal says so
first, and an answer that helps and mentions a limit at the end is not a
refusal. It yields at most one finding per answer. Phrasings in English,
German, French, Spanish, Italian, Dutch and Portuguese; idioms that only look
like a refusal ("I can't wait", "I can't help but…") do not count, nor does an
apology that is not a refusal ("sorry for the delay").

Because only the opening matters, a stream knows the verdict as soon as
``HEAD`` characters have arrived (or at its end, if shorter).
"""

from __future__ import annotations

import re

from airlock.domain.detectors import text as textmod
from airlock.domain.detectors.findings import Detector, Finding

HEAD = 300

_ACT = (
    r"(?:help|assist|provide|share|comply|fulfil+|do\s+that|do\s+this|answer\s+(?:that|this)|discuss|disclose|reveal|"
    r"give\s+(?:out|you)|continue\s+with|support\s+(?:that|this)|engage|process\s+(?:that|this)|complete\s+(?:that|this)|"
    r"create|generate|write|offer|access\s+(?:or\s+share\s+)?(?:other|another|someone)|look\s+up\s+(?:other|another|someone))"
)
_REFUSAL = re.compile(
    r"(?:"
    # English
    rf"\b(?:i\s+(?:can(?:no|')t|can\s+not|am\s+(?:not\s+able|unable)|'m\s+(?:not\s+able|unable)|won'?t\s+be\s+able|"
    rf"will\s+not\s+be\s+able|am\s+not\s+(?:allowed|permitted)|'m\s+not\s+(?:allowed|permitted))\s+to\s+{_ACT}|"
    rf"i\s+(?:can(?:no|')t|can\s+not|won'?t|will\s+not|must\s+not|shouldn'?t)\s+(?!help\s+but\b){_ACT})\b"
    r"|\bi\s+(?:must|have\s+to|need\s+to)\s+(?:respectfully\s+)?decline\b"
    r"|\b(?:that'?s|this\s+is|that\s+is)\s+not\s+something\s+i\s+can\s+(?:help|assist|do|share|provide)\b"
    r"|\bi'?m\s+(?:sorry|afraid),?\s+(?:but\s+)?(?:i\s+)?(?:can(?:no|')t|cannot|am\s+unable|'m\s+unable|won'?t)\b(?!\s+wait)"
    r"|\b(?:i\s+)?(?:apologi[sz]e|sorry),?\s+but\s+i\s+(?:can(?:no|')t|cannot|am\s+unable|'m\s+unable|won'?t)\b(?!\s+wait)"
    r"|\bunfortunately,?\s+i\s+(?:can(?:no|')t|cannot|am\s+(?:not\s+able|unable)|'m\s+(?:not\s+able|unable))\s+(?:to\s+)?"
    rf"{_ACT}\b"
    r"|\bas\s+an\s+ai(?:\s+(?:language\s+)?model)?,?\s+i\s+(?:can(?:no|')t|cannot|am\s+not\s+able|don'?t)\b"
    r"|\bi'?m\s+not\s+able\s+to\s+(?:help|assist)\s+with\s+(?:that|this)\b"
    # German
    r"|\b(?:es\s+tut\s+mir\s+leid|leider),?\s+(?:aber\s+)?(?:ich\s+)?(?:kann|darf)\s+ich\b"
    r"|\b(?:es\s+tut\s+mir\s+leid|leider),?\s+(?:aber\s+)?ich\s+(?:kann|darf)\s+(?:ihnen\s+|dir\s+)?(?:dabei\s+|damit\s+|hier\s+)?nicht\b"
    r"|\bich\s+kann\s+(?:ihnen\s+|dir\s+)?(?:dabei\s+|damit\s+|hierbei\s+)?(?:leider\s+)?nicht\s+(?:weiter)?helfen\b"
    r"|\bdas\s+(?:kann|darf)\s+ich\s+(?:leider\s+)?nicht\b"
    r"|\bich\s+darf\s+(?:ihnen\s+|dir\s+)?(?:leider\s+)?(?:keine|nicht)\b"
    # French
    r"|\bje\s+(?:suis\s+)?d[ée]sol[ée]e?,?\s+mais\s+je\s+ne\s+(?:peux|suis)\b"
    r"|\bje\s+ne\s+(?:peux|pourrai)\s+pas\s+(?:vous\s+|t')?(?:aider|r[ée]pondre|communiquer|partager|fournir|donner)\b"
    r"|\bje\s+ne\s+suis\s+pas\s+(?:en\s+mesure|autoris[ée]e?)\b"
    r"|\bmalheureusement,?\s+je\s+ne\s+(?:peux|suis)\b"
    # Spanish
    r"|\blo\s+siento,?\s+(?:pero\s+)?no\s+(?:puedo|estoy|me\s+es\s+posible)\b"
    r"|\bno\s+puedo\s+(?:ayudar(?:te|le)?|proporcionar|compartir|facilitar|dar(?:te|le)?|revelar)\b"
    r"|\bno\s+estoy\s+(?:en\s+condiciones|autorizad[oa])\b"
    r"|\blamentablemente,?\s+no\s+puedo\b"
    # Italian
    r"|\bmi\s+dispiace,?\s+(?:ma\s+)?non\s+(?:posso|sono\s+in\s+grado)\b"
    r"|\bnon\s+posso\s+(?:aiutar(?:ti|la)|fornire|condividere|dare|rivelare)\b"
    r"|\bnon\s+sono\s+(?:in\s+grado|autorizzat[oa])\b"
    # Dutch
    r"|\bhet\s+spijt\s+me,?\s+(?:maar\s+)?ik\s+kan\b"
    r"|\bik\s+kan\s+(?:je|u)\s+(?:daar\s+|hier\s+|daarmee\s+)?niet\s+(?:mee\s+)?(?:helpen|verder\s+helpen)\b"
    r"|\bdaar\s+kan\s+ik\s+(?:je|u)\s+niet\s+(?:mee\s+)?helpen\b"
    r"|\bik\s+mag\s+(?:je|u)\s+(?:dat\s+|die\s+)?niet\b"
    # Portuguese
    r"|\bdesculpe,?\s+(?:mas\s+)?n[ãa]o\s+(?:posso|consigo)\b"
    r"|\bn[ãa]o\s+(?:posso|consigo)\s+(?:ajudar|fornecer|compartilhar|partilhar|revelar|dar)\b"
    r"|\binfelizmente,?\s+n[ãa]o\s+(?:posso|consigo)\b"
    r")"
)


# One of these must occur in the opening before the pattern runs (most answers have none).
_GATES = (
    "can't", "cannot", "can not", "unable", "not able", "decline", "won't", "will not", "must not", "shouldn't",
    "sorry", "afraid", "apolog", "unfortunately", "not something", "not allowed", "not permitted", "as an ai",
    "leid", "kann", "darf", "désolé", "desole", "ne peux", "ne pourrai", "ne suis pas", "siento", "no puedo",
    "no estoy", "dispiace", "non posso", "non sono", "spijt", "kan ik", "ik kan", "ik mag", "desculpe",
    "posso", "consigo",
)  # fmt: skip


def find(text: str) -> list[Finding]:
    """At most one finding: the refusal phrase in the answer's opening."""
    head = textmod.lower(text[:HEAD]).replace("\u2019", "'")
    for gate in _GATES:
        if gate in head:
            break
    else:
        return []
    m = _REFUSAL.search(head)
    if m is None:
        return []
    return [Finding(detector=Detector.REFUSAL, kind="refusal", start=m.start(), end=m.end())]
