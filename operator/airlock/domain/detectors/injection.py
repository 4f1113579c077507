"""The ``prompt-injection`` detector: a score from several weighted signals, not one regex.

Signals (each with a weight; ``SIGNALS`` is the table, written as data):
- instruction override: "ignore all previous instructions" and its paraphrases
  ("disregard the above", "from now on you will…", "the previous rules are
  void") in English, German, French, Spanish, Italian, Dutch and Portuguese;
- role-play personas: DAN / "do anything now", "developer mode", "you have no
  restrictions", "stay in character", the grandmother exploit;
- system-prompt exfiltration: "reveal your system prompt", "repeat everything
  above", "what was written before this message";
- delimiter and markup injection: chat-template tokens (``<|im_start|>``,
  ``[INST]``, ``<<SYS>>``), fake ``system:`` turns, ``{"role": "system"}``;
- encodings: base64 or rot13 payloads that decode to an attack, strings split
  into variables to be concatenated, zero-width and bidirectional control
  characters, words mixing Latin with Cyrillic/Greek look-alikes;
- indirect injection in pasted documents: "note to the AI assistant", "if you
  are an AI reading this".

The text is folded first (``text.fold``: NFKC, invisible characters removed,
look-alikes mapped, leetspeak undone), so ``1gn0re all prev1ous 1nstruct1ons``
and a Cyrillic-"о" "ignоre" match the same phrase. Scores combine like
independent evidence: ``1 - Π(1 - weight)`` over the distinct signals seen, so
one weak hint ("system prompt" mentioned) stays under the threshold while an
override plus a persona is near 1.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from dataclasses import dataclass

from airlock.domain.detectors import text as textmod
from airlock.domain.detectors.findings import Detector, Finding

INJECTION_THRESHOLD = 0.5


@dataclass(frozen=True)
class Signal:
    """One kind of evidence. ``gates``: words of which every group must have one in the text (for ``markup``
    signals: substrings of which one must occur) before the pattern is run at all."""

    name: str
    kind: str  # the finding kind it argues for (findings.INJECTION_KINDS)
    weight: float
    pattern: str
    gates: tuple[frozenset[str], ...]
    markup: bool = False  # matched on the folded text without leetspeak undone (keeps "|", digits)


def _w(*words: str) -> frozenset[str]:
    return frozenset(words)


_MODES = (
    r"(?:developer|dev|god|sudo|jailbreak|jailbroken|unrestricted|unfiltered|uncensored|evil|opposite|chaos|"
    r"entwickler|d[ée]veloppeur|desarrollador|sviluppatore|ontwikkelaar|desenvolvedor)"
)
_OVERRIDE_VERB = (
    r"(?:ignore|disregard|forget|override|overrule|bypass|skip|drop|abandon|neglect|discard|overlook|"
    r"set\s+aside|throw\s+away|pay\s+no\s+attention\s+to|stop\s+following|do\s+not\s+follow|don'?t\s+follow|"
    r"no\s+longer\s+follow|cancel|erase|delete|clear|reset)"
)
_PRIOR = (
    r"(?:previous|prior|above|earlier|preceding|initial|original|old|existing|former|foregoing|system|developer|"
    r"default|safety|given|current|hidden|built-in|pre-?set|first)"
)
_RULES = (
    r"(?:instructions?|rules?|directions?|directives?|guidelines?|prompts?|constraints?|context|programming|"
    r"polic(?:y|ies)|restrictions?|messages?|commands?|orders|guidance|guardrails|filters?|training|"
    r"settings|conditioning|limitations?|boundaries)"
)

_VERB_WORDS = _w(
    "ignore", "disregard", "forget", "override", "overrule", "bypass", "skip", "drop", "abandon", "neglect", "discard",
    "overlook", "aside", "away", "attention", "following", "follow", "cancel", "erase", "delete", "clear", "reset",
)  # fmt: skip
_RULE_WORDS = _w(
    "instruction", "instructions", "rule", "rules", "direction", "directions", "directive", "directives", "guideline",
    "guidelines", "prompt", "prompts", "constraint", "constraints", "context", "programming", "policy", "policies",
    "restriction", "restrictions", "message", "messages", "command", "commands", "orders", "guidance", "guardrails",
    "filter", "filters", "training", "settings", "conditioning", "limitation", "limitations", "boundaries",
)  # fmt: skip
_AI_WORDS = _w(
    "ai",
    "ais",
    "llm",
    "llms",
    "assistant",
    "assistants",
    "chatbot",
    "chatbots",
    "model",
    "models",
    "gpt",
    "language",
    "bot",
    "bots",
)
_REVEAL_VERBS = _w(
    "reveal", "show", "print", "display", "output", "repeat", "recite", "tell", "give", "share", "leak", "dump", "list",
    "write", "spell", "copy", "paste", "reproduce", "disclose", "expose", "summarize", "summarise", "translate", "what",
    "what's", "whats", "contain", "contains", "containing", "include", "includes", "including",
)  # fmt: skip

_REVEAL_FOREIGN = _w(
    "zeig", "zeige", "zeigen", "gib", "nenne", "verrate", "montre", "montres", "montrez", "affiche", "affichez",
    "révèle", "revele", "révèlez", "donne", "donnez", "muéstrame", "muestrame", "revela", "dime", "enséñame",
    "ensename", "mostrami", "rivela", "rivelami", "dimmi",
)  # fmt: skip

SIGNALS: tuple[Signal, ...] = (
    # --- instruction override
    Signal(
        "override",
        "instruction-override",
        0.75,
        rf"\b{_OVERRIDE_VERB}\s+(?:(?:all|any|every|each|of|the|your|you'?re|ur|my|these|those|its|whatever|everything|anything)\s+){{0,3}}"
        rf"(?:{_PRIOR}\s+){{0,2}}{_RULES}\b",
        (_VERB_WORDS, _RULE_WORDS),
    ),
    Signal(
        "override",
        "instruction-override",
        0.75,
        rf"\b{_OVERRIDE_VERB}\s+(?:(?:all|everything|anything|what|whatever)\s+)?(?:(?:of|that)\s+)?(?:the\s+)?"
        r"(?:above|before|previously\s+(?:said|stated|written)|(?:you\s+(?:were|have\s+been)\s+)?told(?:\s+(?:before|earlier|so\s+far))?|"
        r"you\s+know|you\s+were\s+(?:given|taught|trained\s+on))\b",
        (_VERB_WORDS, _w("above", "before", "previously", "told", "know", "given", "taught", "trained")),
    ),
    Signal(
        "override-void",
        "instruction-override",
        0.7,
        rf"\b(?:{_PRIOR}\s+)+{_RULES}\s+(?:are|is|were|have\s+been)\s+(?:now\s+)?(?:void|null|cancel+ed|invalid|"
        r"obsolete|revoked|lifted|suspended|outdated|replaced|no\s+longer\s+(?:valid|apply|applicable|in\s+effect))\b",
        (
            _w(
                "void",
                "null",
                "cancelled",
                "canceled",
                "invalid",
                "obsolete",
                "revoked",
                "lifted",
                "suspended",
                "outdated",
                "replaced",
                "longer",
            ),
            _RULE_WORDS,
        ),
    ),
    Signal(
        "new-instructions",
        "instruction-override",
        0.55,
        rf"\b(?:new|updated|real|actual|true|secret)\s+{_RULES}\s*:",
        (_RULE_WORDS, _w("new", "updated", "real", "actual", "true", "secret")),
    ),
    Signal(
        "new-instructions",
        "instruction-override",
        0.55,
        r"\b(?:your|the)\s+(?:real|true|actual|new|only)\s+(?:task|job|goal|purpose|objective|mission|instructions?)\s+(?:is|are|now)\b",
        (
            _w("task", "job", "goal", "purpose", "objective", "mission", "instruction", "instructions"),
            _w("real", "true", "actual", "new", "only"),
        ),
    ),
    Signal(
        "from-now-on",
        "instruction-override",
        0.4,
        r"\bfrom\s+now\s+on,?\s+(?:you|your|always|only|never|respond|answer|reply)\b",
        (_w("now"), _w("from")),
    ),
    Signal(
        "do-not-tell",
        "instruction-override",
        0.35,
        r"\b(?:do\s+not|don'?t|never)\s+(?:tell|inform|warn|alert|mention\s+(?:this\s+)?to)\s+the\s+user\b",
        (_w("user"), _w("tell", "inform", "warn", "alert", "mention")),
    ),
    Signal(
        "override",
        "instruction-override",
        0.75,
        r"\b(?:ignorier(?:e|en\s+sie)?|vergiss|vergessen\s+sie|missachte)\s+(?:(?:alle|alles|die|deine|ihre|jegliche)[\s,]+)*"
        r"(?:(?:vorherigen|bisherigen|obigen|vorigen|vorangegangenen|urspr[üu]nglichen)\s+)?"
        r"(?:anweisungen|instruktionen|regeln|befehle|vorgaben|richtlinien|was\s+(?:dir\s+)?(?:gesagt|vorher))",
        (_w("ignoriere", "ignorieren", "vergiss", "vergessen", "missachte"),),
    ),
    Signal(
        "override",
        "instruction-override",
        0.75,
        r"\b(?:ignore[rz]?|oublie[rz]?|oubliez)\s+(?:(?:toutes?|tout|les|tes|vos|ces)\s+)*"
        r"(?:(?:instructions|consignes|r[èe]gles|directives|ce\s+qu)\b)",
        (
            _w("ignore", "ignorer", "ignorez", "oublie", "oublier", "oubliez"),
            _w("instructions", "consignes", "règles", "regles", "directives", "ce"),
        ),
    ),
    Signal(
        "override",
        "instruction-override",
        0.75,
        r"\b(?:ignora(?:r)?|olvida(?:r)?|omite)\s+(?:(?:todas?|todo|las|tus|sus|esas)\s+)*"
        r"(?:instrucciones|reglas|indicaciones|directrices|[oó]rdenes)\b",
        (_w("ignora", "ignorar", "olvida", "olvidar", "omite"),),
    ),
    Signal(
        "override",
        "instruction-override",
        0.75,
        r"\b(?:ignora(?:re)?|dimentica(?:re)?)\s+(?:(?:tutte|tutto|le|tue|sue|queste)\s+)*(?:istruzioni|regole|indicazioni|direttive)\b",
        (_w("ignora", "ignorare", "dimentica", "dimenticare"),),
    ),
    Signal(
        "override",
        "instruction-override",
        0.75,
        r"\b(?:negeer|vergeet)\s+(?:(?:alle|de|je|jouw|uw)\s+)*(?:(?:vorige|eerdere|voorgaande|oorspronkelijke)\s+)?"
        r"(?:instructies|regels|opdrachten|richtlijnen)\b",
        (_w("negeer", "vergeet"),),
    ),
    Signal(
        "override",
        "instruction-override",
        0.75,
        r"\b(?:ignore|ignorar|esque[çc]a)\s+(?:(?:todas|tudo|as|suas|tuas)\s+)*(?:instru[çc][õo]es|regras|diretrizes)\b",
        (_w("ignore", "ignorar", "esqueça", "esqueca"), _w("instruções", "instrucoes", "regras", "diretrizes")),
    ),
    # --- role-play personas
    Signal(
        "dan",
        "role-play",
        0.8,
        r"\bdo\s+anything\s+now\b|\b(?:you\s+are|you'?re|act\s+as|become|be)\s+(?:now\s+)?dan\b|\bdan\s+mode\b",
        (_w("dan", "anything"),),
    ),
    Signal(
        "persona-mode",
        "role-play",
        0.3,
        rf"\b{_MODES}[\s-]*(?:mode|modus|modo)\b|\b(?:mode|modo)\s+(?:d[ée]veloppeur|desarrollador|sviluppatore|"
        r"desenvolvedor)\b|\bentwicklermodus\b",
        (_w("mode", "modus", "modo", "entwicklermodus", "developermode"),),
    ),
    Signal(
        "persona-mode-on",
        "role-play",
        0.6,
        r"\b(?:enable|activate|enter|switch\s+(?:on|to|into)|turn\s+on|go\s+into|put\s+yourself\s+in|you\s+are\s+(?:now\s+)?in|"
        r"aktivier\w*|schalte|active[rz]?|activa\w*|attiva\w*|ativ[ae]\w*)\s+(?:the\s+|den\s+|le\s+|el\s+|la\s+|il\s+|o\s+)?"
        rf"(?:{_MODES}[\s-]*(?:mode|modus|modo)\b|entwicklermodus|mode\s+d[ée]veloppeur|modo\s+(?:desarrollador|"
        rf"sviluppatore|desenvolvedor))|\ban?\s+{_MODES}\s+mode\s+(?:assistant|ai|bot|model|chatbot)\b",
        (_w("mode", "modus", "modo", "entwicklermodus", "developermode"),),
    ),
    Signal(
        "you-are-jailbroken",
        "role-play",
        0.6,
        r"\byou\s+(?:have\s+been|are(?:\s+now)?|were)\s+(?:jailbroken|unlocked|freed|liberated|unchained)\b",
        (_w("jailbroken", "unlocked", "freed", "liberated", "unchained"),),
    ),
    Signal(
        "jailbreak",
        "role-play",
        0.45,
        r"\bjailbr(?:oken|eak(?:ed|ing|s)?)\b",
        (_w("jailbreak", "jailbroken", "jailbreaking", "jailbreaked", "jailbreaks"),),
    ),
    Signal(
        "no-limits",
        "role-play",
        0.45,
        r"\b(?:no|without|free\s+(?:from|of)|not\s+bound\s+by|unbound\s+by|(?:do\s+not|don'?t|doesn'?t|does\s+not)\s+have\s+(?:any)?|"
        r"have\s+no|has\s+no|ignores?\s+all|beyond)\s+(?:any\s+|all\s+)?(?:ethical\s+|moral\s+|content\s+|safety\s+)?"
        r"(?:restrictions|limitations|limits|rules|filters|guidelines|censorship|ethics|morals|boundaries|polic(?:y|ies)|"
        r"guardrails)\b",
        (
            _w(
                "restrictions",
                "limitations",
                "limits",
                "rules",
                "filters",
                "guidelines",
                "censorship",
                "ethics",
                "morals",
                "boundaries",
                "policy",
                "policies",
                "guardrails",
            ),
            _w("no", "without", "free", "bound", "unbound", "have", "has", "ignores", "ignore", "beyond"),
        ),
    ),
    Signal(
        "pretend",
        "role-play",
        0.3,
        r"\b(?:pretend|imagine|roleplay|role-play|role\s+play)\s+(?:that\s+)?(?:you\s+are|to\s+be|as|you'?re)\b|"
        r"\bact\s+as\s+(?:if\s+you\s+(?:are|were)|an?\s+(?:ai|assistant|chatbot|model)\s+(?:that|who|which|without))\b",
        (_w("pretend", "imagine", "roleplay", "role", "act"),),
    ),
    Signal(
        "in-character",
        "role-play",
        0.35,
        r"\b(?:stay|remain|keep|break)(?:ing)?\s+(?:in|out\s+of)\s+character\b",
        (_w("character"),),
    ),
    Signal(
        "not-an-ai",
        "role-play",
        0.45,
        r"\byou\s+are\s+(?:no\s+longer|not)\s+(?:an?\s+)?(?:ai|assistant|chatbot|language\s+model|bound|restricted|limited|chatgpt|claude)\b",
        (
            _w("longer", "not"),
            _w("ai", "assistant", "chatbot", "language", "bound", "restricted", "limited", "chatgpt", "claude"),
        ),
    ),
    Signal(
        "grandma",
        "role-play",
        0.5,
        r"\b(?:deceased|late|dead|dear|dying|beloved)\s+(?:grandma|grandmother|granny|nana|grandpa|grandfather)\b|"
        r"\b(?:grandma|grandmother|granny)\b[^.]{0,80}\b(?:used\s+to|would)\s+(?:tell|read|recite|say|sing|whisper)",
        (_w("grandma", "grandmother", "granny", "nana", "grandpa", "grandfather"),),
    ),
    Signal(
        "dual-answer",
        "role-play",
        0.5,
        r"\b(?:two|2|both)\s+(?:different\s+)?(?:responses|answers|replies)\b[^.]{0,60}\b(?:jailbr|unfiltered|developer|dan|normal)",
        (_w("responses", "answers", "replies"),),
    ),
    # --- system-prompt exfiltration
    Signal(
        "reveal-prompt",
        "prompt-exfiltration",
        0.65,
        r"\b(?:reveal|show|print|display|output|repeat|recite|tell|give|share|leak|dump|list|write\s+out|spell\s+out|"
        r"copy|paste|reproduce|disclose|expose|summari[sz]e|translate|contain(?:s|ing)?|includ(?:e|es|ing)|"
        r"what\s+(?:is|are|were)|what'?s)\s+(?:me\s+|us\s+)?(?:(?:all|exactly|verbatim|word\s+for\s+word|back)\s+)?(?:of\s+)?"
        r"(?:(?:the\s+)?(?:(?:full|complete|entire|exact|first|last)\s+)?(?:\w+\s+)?(?:text|content|contents|wording|"
        r"lines|words|sentences|characters|paragraphs)\s+of\s+)?(?:your|the|those|these|its)\s+"
        r"(?:(?:full|complete|entire|exact|original|initial|hidden|secret|internal|confidential|system|first|"
        r"previous|developer|pre-?|starting)\s*){1,3}(?:prompt|instructions|directives|message|rules|guidelines|"
        r"configuration|context|programming)\b",
        (
            _REVEAL_VERBS,
            _w(
                "prompt",
                "instructions",
                "directives",
                "message",
                "rules",
                "guidelines",
                "configuration",
                "context",
                "programming",
            ),
        ),
    ),
    Signal(
        "reveal-prompt",
        "prompt-exfiltration",
        0.55,
        r"\b(?:reveal|show|print|display|output|repeat|recite|tell|give|share|leak|dump|disclose|expose|copy|paste|"
        r"what\s+(?:is|are)|what'?s)"
        r"\s+(?:me\s+|us\s+)?(?:(?:the\s+)?(?:(?:full|complete|entire|exact|first|last)\s+)?(?:\w+\s+)?(?:text|content|contents|"
        r"wording|lines|words|sentences|characters|paragraphs)\s+of\s+)?"
        r"(?:your\s+(?:instructions|rules|guidelines|directives|programming|configuration|prompt)\b|"
        r"the\s+prompt\s*(?:[?.!,]|$|\s+(?:you|above|that|which|text)\b))",
        (
            _REVEAL_VERBS,
            _w("instructions", "rules", "guidelines", "directives", "programming", "configuration", "prompt"),
        ),
    ),
    Signal(
        "repeat-above",
        "prompt-exfiltration",
        0.6,
        r"\b(?:repeat|print|output|write|copy|echo|say|type|recite|reproduce)\s+(?:back\s+)?(?:out\s+)?(?:everything|all|"
        r"the\s+(?:text|words|content|lines?|message|conversation)|the\s+first\s+\w+\s+(?:lines|words|sentences|"
        r"characters)|your\s+(?:first|initial)\s+(?:message|lines|words))\s+(?:(?:written|that\s+(?:is|was|appears?))\s+)?"
        r"(?:above|before|preceding|prior|earlier|(?:from|at)\s+the\s+(?:start|beginning|top))",
        (
            _w("above", "before", "preceding", "prior", "earlier", "start", "beginning", "top"),
            _w("repeat", "print", "output", "write", "copy", "echo", "say", "type", "recite", "reproduce"),
        ),
    ),
    Signal(
        "written-above",
        "prompt-exfiltration",
        0.5,
        r"\bwhat\s+(?:was|were|is|are)\s+(?:written|said|typed|stated|told|given)\s+(?:to\s+you\s+)?"
        r"(?:above|before|at\s+the\s+(?:start|beginning|top))|\b(?:everything|text|words)\s+(?:above|before)\s+"
        r"(?:this|my)\s+(?:line|message|question)",
        (
            _w("above", "before", "start", "beginning", "top"),
            _w("written", "said", "typed", "stated", "told", "given", "everything", "text", "words"),
        ),
    ),
    Signal(
        "start-with-you-are",
        "prompt-exfiltration",
        0.5,
        r"\b(?:start|begin)\s+(?:your\s+)?(?:answer|response|reply|output)\s+with\s+[\"'“]?you\s+are\b",
        (_w("start", "begin"), _w("are")),
    ),
    Signal(
        "system-prompt",
        "prompt-exfiltration",
        0.3,
        r"\bsystem[\s_-]*prompt\b|\bpre-?prompt\b|\binitial\s+prompt\b",
        (_w("prompt", "preprompt", "systemprompt"),),
    ),
    Signal(
        "reveal-prompt",
        "prompt-exfiltration",
        0.6,
        r"\b(?:zeig(?:e|en\s+sie)?|gib|nenne|verrate)\s+(?:mir\s+)?(?:deinen|deine|ihren|ihre|den|die)\s+"
        r"(?:system-?prompt|systemanweisungen|anweisungen|instruktionen)|\b(?:montre|affiche|r[ée]v[èe]le|donne)[sz]?(?:-moi)?\s+"
        r"(?:ton|votre|tes|vos|le|les)\s+(?:prompt|instructions|consignes)|\b(?:mu[ée]strame|revela|dime|ens[ée][ñn]ame)\s+"
        r"(?:tu|tus|el|las)\s+(?:prompt|instrucciones)|\b(?:mostrami|rivela(?:mi)?|dimmi)\s+(?:il\s+tuo|le\s+tue|il|le)\s+"
        r"(?:prompt|istruzioni)",
        (_REVEAL_FOREIGN,),
    ),
    Signal("verbatim", "prompt-exfiltration", 0.15, r"\bverbatim\b|\bword\s+for\s+word\b", (_w("verbatim", "word"),)),
    # --- delimiters and markup (matched without leetspeak undone; gates are substrings)
    Signal(
        "chat-template",
        "delimiter",
        0.7,
        r"<\|(?:im_start|im_end|system|user|assistant|endoftext|eot_id|start_header_id)\|>",
        (_w("<|"),),
        markup=True,
    ),
    Signal(
        "chat-template",
        "delimiter",
        0.6,
        r"\[/?(?:inst|sys)\]|<<\s*/?sys\s*>>",
        (_w("[inst", "[/inst", "[sys", "<<"),),
        markup=True,
    ),
    Signal(
        "fake-turn",
        "delimiter",
        0.35,
        r"(?:^|\n)[ \t]*(?:#{1,4}[ \t]*)?(?:system|assistant|developer)[ \t]*(?:message|prompt|note)?[ \t]*:",
        (_w("system", "assistant", "developer"),),
        markup=True,
    ),
    Signal(
        "fake-tag",
        "delimiter",
        0.5,
        r"</?(?:system|instructions?|admin|prompt|sys|developer)(?:\s[^>]*)?>",
        (_w("<"),),
        markup=True,
    ),
    Signal(
        "fake-role",
        "delimiter",
        0.6,
        r"[{,]\s*[\"']role[\"']\s*:\s*[\"'](?:system|developer)[\"']",
        (_w("role"),),
        markup=True,
    ),
    Signal(
        "end-of-input",
        "delimiter",
        0.4,
        r"\b(?:end|begin(?:ning)?|start)\s+of\s+(?:the\s+)?(?:user\s+)?(?:input|prompt|instructions|conversation|context|"
        r"document|system\s+message)\b|-{3,}\s*(?:new|end|begin|system|admin)\b|={3,}\s*(?:new|end|system)|"
        r"\b(?:user\s+)?(?:message|input|prompt)\s+ends\s+here\b",
        (_w(" of ", "---", "===", "ends here"),),
        markup=True,
    ),
    Signal("code-fence-system", "delimiter", 0.5, r"```\s*(?:system|instructions|prompt)\b", (_w("```"),), markup=True),
    # --- indirect injection in pasted content
    Signal(
        "note-to-ai",
        "instruction-override",
        0.5,
        r"\b(?:note|message|instructions?|attention|important)\s*(?:to|for)\s+(?:the\s+|any\s+|all\s+)?(?:ai|assistant|llm|"
        r"model|chatbot|gpt|language\s+model|bot)s?\b",
        (_AI_WORDS, _w("note", "message", "instruction", "instructions", "attention", "important")),
    ),
    Signal(
        "if-you-are-ai",
        "instruction-override",
        0.4,
        r"\b(?:if|when)\s+you\s+are\s+(?:an?\s+)?(?:ai|llm|language\s+model|assistant|chatbot|bot)\b",
        (_AI_WORDS, _w("if", "when")),
    ),
    Signal(
        "ai-reading-this",
        "instruction-override",
        0.45,
        r"\b(?:ai|llm|assistant|chatbot|model)s?\s+(?:reading|processing|summari[sz]ing|parsing)\s+this\b",
        (_w("reading", "processing", "summarizing", "summarising", "parsing"),),
    ),
    Signal(
        "ai-reads-this",
        "instruction-override",
        0.45,
        r"\bwhen\s+(?:the\s+|an?\s+|any\s+)?(?:ai|assistant|llm|model|chatbot|bot)\s+(?:reads|processes|sees|summari[sz]es|parses)\s+this\b",
        (_w("reads", "processes", "sees", "summarizes", "summarises", "parses"),),
    ),
    Signal(
        "addressed-to-ai",
        "instruction-override",
        0.4,
        r"(?:^|[\"'“\n.!?]\s*)(?:assistant|ai|chatbot|bot|llm)\s*[,:]\s*(?:ignore|forget|forward|send|reveal|print|delete|"
        r"disregard|you\s+(?:must|will|are|should))\b",
        (_w("assistant", "ai", "chatbot", "bot", "llm"),),
    ),
    Signal(
        "assistant-must",
        "instruction-override",
        0.35,
        r"\bthe\s+(?:assistant|ai|model|chatbot|bot)\s+(?:must|shall|will\s+now|is\s+now|now\s+(?:ignores|answers|reveals))\b",
        (_w("assistant", "ai", "model", "chatbot", "bot"), _w("must", "shall", "now")),
    ),
    Signal(
        "rule-breaker",
        "role-play",
        0.5,
        r"\b(?:who|that|which)\s+(?:ignores|breaks|bypasses|disregards|doesn'?t\s+follow|does\s+not\s+follow|never\s+follows)\s+"
        r"(?:all\s+|the\s+|any\s+|every\s+|its\s+|their\s+)?(?:rules?|guidelines|restrictions|policies|filters|laws|instructions)\b",
        (_w("ignores", "breaks", "bypasses", "disregards", "follow", "follows"),),
    ),
    Signal(
        "unrestricted-ai",
        "role-play",
        0.5,
        r"\b(?:an?\s+)?(?:ai|assistant|model|chatbot|llm)\s+(?:with\s+no|without(?:\s+any)?|free\s+of)\s+(?:rules|restrictions|"
        r"limits|limitations|guidelines|filters|ethics|guardrails|censorship)\b",
        (_AI_WORDS, _w("without", "no", "free")),
    ),
    Signal(
        "told-before",
        "prompt-exfiltration",
        0.55,
        r"\bwhat\s+(?:were|was|have)\s+you\s+(?:been\s+)?(?:told|given|instructed|programmed)\s+(?:to\s+do\s+)?(?:before|at\s+the\s+"
        r"(?:start|beginning)|initially|originally|by\s+(?:your|the)\s+(?:developers?|company|creators?|operators?))",
        (_w("told", "given", "instructed", "programmed"),),
    ),
    Signal(
        "acrostic",
        "prompt-exfiltration",
        0.35,
        r"\b(?:first|initial)\s+letters?\b[^.\n]{0,40}\b(?:spell|form|make\s+up)\b",
        (_w("letter", "letters"),),
    ),
    Signal(
        "exfil-link",
        "prompt-exfiltration",
        0.6,
        r"\b(?:append|add|attach|include|encode|insert|put|send|embed)\b[^.\n]{0,50}\b(?:chat\s+history|conversation|previous\s+"
        r"messages|user'?s?\s+(?:data|messages|emails?|history|details)|system\s+prompt)\b[^.\n]{0,60}(?:https?://|\burl\b|"
        r"\blink\b|\bimage\b|\bquery\b)",
        (
            _w("append", "add", "attach", "include", "encode", "insert", "put", "send", "embed"),
            _w("history", "conversation", "messages", "data", "emails", "email", "prompt", "details"),
        ),
    ),
    Signal(
        "forward-data",
        "prompt-exfiltration",
        0.45,
        r"\b(?:forward|send|email|transfer|post|upload|leak)\s+(?:all|every|the|any)\s+(?:of\s+)?(?:the\s+)?(?:user'?s?\s+|customers?'?\s+)?"
        r"(?:emails|messages|contacts|files|data|conversations?|chat\s+history|credentials|passwords|customer\s+list)\s+to\b",
        (_w("forward", "send", "email", "transfer", "post", "upload", "leak"),),
    ),
    Signal(
        "markdown-exfil",
        "prompt-exfiltration",
        0.6,
        r"!\[[^\]\n]*\]\(\s*https?://[^)\s]*[?&][^)\s]*=[^)\s]*(?:\{|%7b|\$)",
        (_w("!["),),
        markup=True,
    ),
    Signal(
        "refusal-suppression",
        "role-play",
        0.35,
        r"\b(?:never|don'?t|do\s+not)\s+(?:say|tell\s+me|respond\s+with|reply\s+that)\s+(?:that\s+)?you\s+(?:can'?t|cannot|are\s+unable)"
        r"|\b(?:do\s+not|don'?t|never)\s+(?:apologi[sz]e|refuse|add\s+(?:any\s+)?(?:warnings|disclaimers))\b"
        r"|\bwithout\s+(?:any\s+)?(?:disclaimers|warnings)\b",
        (_w("apologize", "apologise", "refuse", "warnings", "disclaimers", "can't", "cant", "cannot", "unable"),),
    ),
    Signal(
        "fake-prefill",
        "delimiter",
        0.5,
        r"(?:^|\n)[ \t]*assistant[ \t]*:[ \t]*(?:sure|certainly|of\s+course|ok(?:ay)?|absolutely|here\s+(?:is|are))\b",
        (_w("assistant"),),
        markup=True,
    ),
    # --- encodings, declared (markup: "rot13", "base64" keep their digits)
    Signal(
        "decode-and-follow",
        "encoding",
        0.35,
        r"\b(?:decode|decipher|translate|convert|rot-?13|base-?64)\b[^.\n]{0,60}\b(?:follow|execute|obey|do\s+what|carry\s+out|"
        r"run|perform|comply)\b",
        (_w("decode", "decipher", "rot", "base"),),
        markup=True,
    ),
    Signal(
        "payload-splitting",
        "encoding",
        0.45,
        r"\b(?:concatenate|combine|join|merge|put\s+together)\b[^.\n]{0,40}\b(?:strings?|parts|variables|pieces|[a-z]\s*\+\s*[a-z])\b",
        (_w("concatenate", "combine", "join", "merge", "together"),),
    ),
)

_COMPILED = tuple(re.compile(s.pattern) for s in SIGNALS)
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
_BASE64 = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{20,}={0,2}")
_HEX = re.compile(r"(?<![0-9A-Fa-f])(?:[0-9A-Fa-f]{2}[ :]?){16,}")
_QUOTED = re.compile(r"[\"']([^\"'\n]{1,80})[\"']")
_ASSIGNED = re.compile(r"\b\w{1,12}\s*=\s*[\"'][^\"'\n]{1,80}[\"']")
_MIXED_SCRIPT = re.compile(r"[a-z][а-яёα-ω]|[а-яёα-ω][a-z]", re.IGNORECASE)
# rot13 of "you", "your", "now", "the", "and", "all", "are", "ignore", "instructions", "previous", "system",
# "prompt", "disregard", "reveal", "rules": two of them as words and the text is decoded and judged again.
_ROT13_WORDS = frozenset(
    {"lbh", "lbhe", "abj", "gur", "naq", "nyy", "ner", "vtaber", "vafgehpgvbaf", "cerivbhf", "flfgrz", "cebzcg"}
    | {"qvfertneq", "erirny", "ehyrf"}
)
_SIGNAL_WEIGHT = {s.name: s.weight for s in SIGNALS}
_SIGNAL_KIND = {s.name: s.kind for s in SIGNALS}
_ENCODED_WEIGHTS = {
    "base64-payload": 0.8,
    "rot13-payload": 0.8,
    "hex-payload": 0.8,
    "split-payload": 0.75,
    "zero-width": 0.35,
    "bidi-control": 0.45,
    "homoglyph": 0.4,
}


@dataclass
class _Evidence:
    weights: dict[str, float]
    kinds: dict[str, str]
    start: int
    end: int

    def add(self, name: str, kind: str, weight: float, span: tuple[int, int] | None) -> None:
        """Add a signal; ``span`` is where it is (None: a property of the whole text, such as hidden characters)."""
        if weight > self.weights.get(name, 0.0):
            self.weights[name] = weight
            self.kinds[name] = kind
        if span is not None:
            self.start = min(self.start, span[0])
            self.end = max(self.end, span[1])


# A word -> the signals whose first gate group has it: a text's words select the few patterns worth running.
_BY_WORD: dict[str, list[int]] = {}
for _i, _signal in enumerate(SIGNALS):
    if not _signal.markup:
        for _word in _signal.gates[0]:
            _BY_WORD.setdefault(_word, []).append(_i)
_MARKUP_SIGNALS = tuple(i for i, s in enumerate(SIGNALS) if s.markup)


_MARKUP_GATES = tuple((gate, i) for i in _MARKUP_SIGNALS for gate in SIGNALS[i].gates[0])


def _candidates(folded: textmod.Folded, words: set[str]) -> list[int]:
    chosen = {i for word in words.intersection(_BY_WORD) for i in _BY_WORD[word]}
    chosen = {i for i in chosen if all(not words.isdisjoint(group) for group in SIGNALS[i].gates[1:])}
    plain = folded.plain
    for gate, i in _MARKUP_GATES:
        if gate in plain:
            chosen.add(i)
    return sorted(chosen)


def _phrases(folded: textmod.Folded, evidence: _Evidence, words: set[str], *, origin: bool = True) -> None:
    for index in _candidates(folded, words):
        signal = SIGNALS[index]
        if signal.weight <= evidence.weights.get(signal.name, 0.0):
            continue
        m = _COMPILED[index].search(folded.plain if signal.markup else folded.words)
        if m is None:
            continue
        span = (folded.position(m.start()), folded.position(m.end())) if origin else None
        evidence.add(signal.name, signal.kind, signal.weight, span)


def _attack_in(decoded: str) -> bool:
    """Whether a decoded payload carries an attack phrase itself."""
    inner = _Evidence({}, {}, 0, 0)
    folded = textmod.fold(decoded)
    _phrases(folded, inner, set(_WORD.findall(folded.words)), origin=False)
    return any(_SIGNAL_KIND[name] != "encoding" and weight >= 0.4 for name, weight in inner.weights.items())


def _printable(raw: bytes) -> str | None:
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not decoded or sum(ch.isprintable() or ch.isspace() for ch in decoded) < 0.9 * len(decoded):
        return None
    return decoded


def _encodings(text: str, folded: textmod.Folded, words: set[str], evidence: _Evidence) -> None:
    if len(text) >= 20:
        for m in _BASE64.finditer(text):
            chunk = m.group()
            try:
                decoded = _printable(base64.b64decode(chunk + "=" * (-len(chunk) % 4), validate=True))
            except (binascii.Error, ValueError):
                decoded = None
            if decoded and _attack_in(decoded):
                evidence.add("base64-payload", "encoding", _ENCODED_WEIGHTS["base64-payload"], m.span())
        for m in _HEX.finditer(text):
            try:
                decoded = _printable(bytes.fromhex(m.group().replace(" ", "").replace(":", "")))
            except ValueError:
                decoded = None
            if decoded and _attack_in(decoded):
                evidence.add("hex-payload", "encoding", _ENCODED_WEIGHTS["hex-payload"], m.span())
    if len(_ROT13_WORDS.intersection(words)) >= 2 and _attack_in(codecs.decode(folded.plain, "rot13")):
        evidence.add("rot13-payload", "encoding", _ENCODED_WEIGHTS["rot13-payload"], None)
    if "=" in text and len(_ASSIGNED.findall(text)) >= 2:
        pieces = _QUOTED.findall(text)
        if len(pieces) >= 2 and (_attack_in("".join(pieces)) or _attack_in(" ".join(pieces))):
            evidence.add("split-payload", "encoding", _ENCODED_WEIGHTS["split-payload"], None)
    if folded.zero_width:
        evidence.add("zero-width", "encoding", _ENCODED_WEIGHTS["zero-width"], None)
    if folded.bidi:
        evidence.add("bidi-control", "encoding", _ENCODED_WEIGHTS["bidi-control"], None)
    if folded.lookalikes and _MIXED_SCRIPT.search(text):
        evidence.add("homoglyph", "encoding", _ENCODED_WEIGHTS["homoglyph"], None)


def _evidence(text: str) -> _Evidence:
    folded = textmod.fold(text)
    words = set(_WORD.findall(folded.words))
    evidence = _Evidence({}, {}, len(text), 0)
    _phrases(folded, evidence, words)
    _encodings(text, folded, words, evidence)
    return evidence


def _combine(weights: dict[str, float]) -> float:
    remaining = 1.0
    for weight in weights.values():
        remaining *= 1.0 - weight
    return round(1.0 - remaining, 4)


def injection_score(text: str) -> tuple[float, tuple[str, ...]]:
    """A score in 0..1 and the signals that contributed to it (strongest first)."""
    evidence = _evidence(text)
    signals = tuple(sorted(evidence.weights, key=lambda name: (-evidence.weights[name], name)))
    return _combine(evidence.weights), signals


def find(text: str, threshold: float = INJECTION_THRESHOLD) -> list[Finding]:
    """One finding when the score reaches the threshold: kind of the strongest evidence, all signals in ``detail``."""
    evidence = _evidence(text)
    score = _combine(evidence.weights)
    if score < threshold or not evidence.weights:
        return []
    by_kind: dict[str, float] = {}
    for name, weight in evidence.weights.items():
        by_kind[evidence.kinds[name]] = by_kind.get(evidence.kinds[name], 0.0) + weight
    kind = max(sorted(by_kind), key=lambda k: by_kind[k])
    signals = sorted(evidence.weights, key=lambda name: (-evidence.weights[name], name))
    start, end = (evidence.start, evidence.end) if evidence.end > evidence.start else (0, len(text))
    return [
        Finding(
            detector=Detector.PROMPT_INJECTION,
            kind=kind,
            start=start,
            end=end,
            detail=",".join(signals),
            score=score,
        )
    ]
