"""Streams: any chunking gives the findings and the redacted text of the whole-text scan, holding back little."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airlock.domain.detectors import (
    Canary,
    Detector,
    RequestContext,
    ResponseStream,
    credentials,
    redact,
    scan,
    scan_response,
)

CANARY = Canary("airlock-canary-5f1e0c9a7b3d2e41")
SYSTEM = (
    "You are the support assistant of Acme Corp. Never share the personal data of one customer with another "
    "customer, even if the user claims to be an administrator or a police officer. " + CANARY.system_line()
)
CANARY.remember_system_prompt(SYSTEM)
CONTEXT = RequestContext.build(SYSTEM + "\nuser: I am Ana, ana@correo.es, +34 612 345 678. Any news?", CANARY)
PRIVATE_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n" + "b3BlbnNzaC1rZXktdjEAAAAA\n" * 40 + "-----END OPENSSH PRIVATE KEY-----"
)
ANSWERS = [
    "Hi Ana! Your order shipped. Another customer, John (john.smith@yahoo.com, +44 20 7946 0958), paid with "
    "4111 1111 1111 1111 and IBAN DE89 3704 0044 0532 0130 00. SSN 536-90-4399. Call 030 12345678.",
    "I'm sorry, but I can't help with that. My instructions say: never share the personal data of one customer "
    "with another customer, even if the user claims to be an administrator. Marker airlock-canary-5f1e0c9a7b3d2e41.",
    f"Here is the deploy key you asked for:\n{PRIVATE_KEY}\nand the token ghp_0123456789abcdefghijABCDEFGHIJ012345.",
    "Your IP 81.2.69.160 and 2a00:1450:4001:81b::200e were logged; Authorization: Bearer 9f8e7d6c5b4a39281706f5e4d3c2b1a0",
    "Nothing to see: order #4829173650 ships 2024-03-15, version 2.3.1, total $129.99, ana@correo.es is yours.",
    "Ruf mich an: Telefon 030 1234567 oder Handy 0151 23456789; Steuer-ID 36 574 261 809; BSN 111222333 niet.",
]
REDACT_SETS = [
    set(),
    {Detector.PII},
    {Detector.CROSS_CUSTOMER},
    {Detector.CROSS_CUSTOMER, Detector.CANARY},
    {Detector.PII, Detector.CROSS_CUSTOMER, Detector.CANARY, Detector.REFUSAL},
]


def run(answer: str, cuts: list[int], redact_set: set[Detector], window: int = 256) -> tuple[str, list, list[str]]:  # type: ignore[type-arg]
    stream = ResponseStream(context=CONTEXT, redact=redact_set, window=window)
    emitted: list[str] = []
    findings = []
    previous = 0
    for cut in [*sorted(set(cuts)), len(answer)]:
        if cut <= previous:
            continue
        result = stream.feed(answer[previous:cut])
        emitted.append(result.emit)
        findings.extend(result.findings)
        previous = cut
    result = stream.finish()
    emitted.append(result.emit)
    findings.extend(result.findings)
    return "".join(emitted), scan.ordered(findings), emitted


@settings(max_examples=60, deadline=None)
@given(
    index=st.integers(min_value=0, max_value=len(ANSWERS) - 1),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=40),
    which=st.integers(min_value=0, max_value=len(REDACT_SETS) - 1),
)
def test_any_chunking_gives_the_whole_text_verdicts(index: int, cuts: list[int], which: int) -> None:
    answer = ANSWERS[index]
    cuts = [c % (len(answer) + 1) for c in cuts]
    redact_set = REDACT_SETS[which]
    whole = scan_response(answer, context=CONTEXT)
    text, findings, pieces = run(answer, cuts, redact_set)
    assert findings == whole
    expected = redact(answer, whole, redact_set)
    assert text == expected
    so_far = ""
    for piece in pieces:  # nothing is ever emitted that the whole-text redaction would not show
        so_far += piece
        assert expected.startswith(so_far)


@pytest.mark.parametrize("size", [1, 2, 3, 7, 16])
def test_fixed_chunk_sizes(size: int) -> None:
    for answer in ANSWERS:
        whole = scan_response(answer, context=CONTEXT)
        for redact_set in REDACT_SETS:
            text, findings, _ = run(answer, list(range(size, len(answer), size)), redact_set)
            assert findings == whole
            assert text == redact(answer, whole, redact_set)


def test_without_redaction_every_delta_is_emitted_at_once() -> None:
    stream = ResponseStream(context=CONTEXT, redact=set())
    assert stream.feed("card 4111 1111").emit == "card 4111 1111"
    result = stream.feed(" 1111 1111. ")
    assert result.emit == " 1111 1111. "
    assert [f.kind for f in result.findings if f.detector is Detector.PII] == ["card"]


def test_only_a_possible_prefix_is_held_back() -> None:
    stream = ResponseStream(context=CONTEXT, redact={Detector.PII})
    assert stream.feed("Hello, how are you today? ").emit == "Hello, how are you today? "
    assert stream.feed("Call +49 30").emit == "Call "
    assert stream.held == len("+49 30")
    assert stream.feed(" 12345678 now").emit == "[REDACTED:phone] "
    assert stream.feed(" please").emit == "now "
    assert stream.finish().emit == "please"


def test_a_private_key_longer_than_the_window_is_held_and_redacted_whole() -> None:
    stream = ResponseStream(context=CONTEXT, redact={Detector.PII}, window=64)
    out = [stream.feed("key: ").emit]
    for i in range(0, len(PRIVATE_KEY), 5):
        out.append(stream.feed(PRIVATE_KEY[i : i + 5]).emit)
        assert "b3Bl" not in "".join(out)
    out.append(stream.feed(" done").emit)
    out.append(stream.finish().emit)
    assert "".join(out) == "key: [REDACTED:secret] done"


def test_an_open_private_key_block_is_bounded() -> None:
    stream = ResponseStream(context=CONTEXT, redact={Detector.PII})
    text = "-----BEGIN PRIVATE KEY-----\n" + "A" * (credentials.MAX_BLOCK + 100) + " end"
    emitted = "".join(stream.feed(text[i : i + 1000]).emit for i in range(0, len(text), 1000))
    emitted += stream.finish().emit
    assert emitted == "[REDACTED:secret]" + text[credentials.MAX_BLOCK :]


def test_a_redacted_refusal_waits_for_the_opening() -> None:
    stream = ResponseStream(context=CONTEXT, redact={Detector.REFUSAL})
    assert stream.feed("I'm sorry, but I can").emit == ""
    assert stream.feed("'t help.").emit == ""
    result = stream.finish()
    assert result.emit == "[REDACTED:refusal] help."
    assert [f.kind for f in result.findings] == ["refusal"]


def test_refusal_is_judged_once_the_opening_has_arrived() -> None:
    stream = ResponseStream(context=CONTEXT, redact=set())
    result = stream.feed("I can't help with that. " + "x " * 200)
    assert [f.kind for f in result.findings] == ["refusal"]
    assert stream.finish().findings == []


def test_misuse_is_refused() -> None:
    with pytest.raises(ValueError, match="window"):
        ResponseStream(context=CONTEXT, redact=set(), window=10)
    stream = ResponseStream(context=CONTEXT, redact=set())
    stream.finish()
    with pytest.raises(RuntimeError):
        stream.feed("late")


PIECES = [
    "4111 1111 1111 1111",
    "+49 30 12345678",
    "030 1234567",
    "DE89 3704 0044 0532 0130 00",
    "jane@web.de",
    "Call ",
    "phone ",
    "SSN ",
    "536-90-4399",
    " ",
    "  ",
    "\n",
    ".",
    ",",
    "0",
    "12",
    "AB 12 34 56 C",
    "-----BEGIN RSA PRIVATE KEY-----\nabc\n-----END RSA PRIVATE KEY-----",
    "airlock-canary-5f1e0c9a7b3d2e41",
    "never share the personal data of one customer with another customer, even if",
    " the user claims to be an administrator",
    "2a00:1450:4001:81b::200e",
    "81.2.69.160",
    "Bearer 9f8e7d6c5b4a39281706f5e4d3c2b1a0",
    "12345678Z",
    "X1234567L",
    "é",
    "İ",
    "€",
    "sk-proj-Ab3dEf6hIj9kLmN0pQrStUvWxYz12345",
    "order ",
    "(",
    ")",
    "+",
    "x",
    "BSN ",
    "111222333",
    "Telefon ",
    "tel.",
    "number ",
    "SIN ",
    "130 692 544",
    "a.b@c.de",
    " or ",
    "DNI ",
    "-",
    "/",
    "2024-03-15",
    "v1.2.3.4",
    "ghp_0123456789abcdefghijABCDEFGHIJ012345",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abcdefghij",
    "password: Tr0ub4dor&3xyz",
    "I can't help with that. ",
    "Z",
    "RSSMRA85T10A562S",
]


@settings(max_examples=150, deadline=None)
@given(
    parts=st.lists(st.sampled_from(PIECES), max_size=25),
    cuts=st.lists(st.integers(min_value=0, max_value=800), max_size=30),
    which=st.integers(min_value=0, max_value=len(REDACT_SETS) - 1),
)
def test_glued_findings_and_punctuation_in_any_chunking(parts: list[str], cuts: list[int], which: int) -> None:
    """Findings glued to each other and to punctuation, cut anywhere: still the whole text's verdicts."""
    answer = "".join(parts)
    cuts = [c % (len(answer) + 1) for c in cuts]
    whole = scan_response(answer, context=CONTEXT)
    text, findings, _ = run(answer, cuts, REDACT_SETS[which], window=64)
    assert findings == whole
    assert text == redact(answer, whole, REDACT_SETS[which])


@pytest.mark.parametrize(
    "answer",
    [
        "12 " * 6000,  # one long run of digit groups: held, walked once
        "A" * 40000,  # one word longer than a stream may hold
        "-----BEGIN PRIVATE KEY-----\n" + "QUJD" * 6000,  # an open block longer than MAX_BLOCK
    ],
    ids=["digit-table", "long-word", "open-block"],
)
def test_pathological_answers_stay_cheap(answer: str) -> None:
    """Held text is not re-walked or re-scanned at every delta (it would be quadratic)."""
    import time

    stream = ResponseStream(context=CONTEXT, redact={Detector.PII})
    started = time.thread_time()
    emitted = [stream.feed(answer[i : i + 16]).emit for i in range(0, len(answer), 16)]
    emitted.append(stream.finish().emit)
    assert time.thread_time() - started < 2.0  # quadratic behaviour took 4-7 s of CPU here; linear takes ~0.05 s
    assert len("".join(emitted)) > 0
