"""The detectors on their corpora: the targets of issue 12 (pii, clean answers, prompt injection) as assertions."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airlock.domain.detectors import (
    INJECTION_THRESHOLD,
    KINDS,
    Detector,
    RequestContext,
    ResponseStream,
    injection_score,
    pii,
    redact,
    scan,
    scan_request,
    scan_response,
)
from tests.detectors import corpus, injection_corpus

SAMPLES = corpus.corpus()
PII = [s for s in SAMPLES if s.category == "pii"]
CLEAN = [s for s in SAMPLES if s.category != "pii" and not s.labels]


def found(text: str) -> list[tuple[str, int, int]]:
    return [(f.kind, f.start, f.end) for f in pii.find(text)]


def test_the_corpus_is_large_varied_and_labelled() -> None:
    assert len(SAMPLES) >= 1000
    assert len({s.locale for s in PII}) >= 10
    assert {label.kind for s in PII for label in s.labels} == set(KINDS[Detector.PII])
    for sample in PII:
        for label in sample.labels:
            assert sample.text[label.start : label.end].strip() == sample.text[label.start : label.end]


def test_pii_precision_and_recall_reach_98_percent() -> None:
    scores = corpus.evaluate(SAMPLES, found)
    total = scores["all"]
    assert total.recall >= 0.98, total.misses[:20]
    assert total.precision >= 0.98, total.false[:20]
    for kind, score in scores.items():  # no kind hides behind the others
        assert score.recall >= 0.95, (kind, score.misses[:10])
        assert score.precision >= 0.95, (kind, score.false[:10])


def test_false_positive_rate_on_clean_answers_is_at_most_one_percent() -> None:
    flagged = [s.text for s in CLEAN if pii.find(s.text)]
    assert len(CLEAN) >= 400
    assert len(flagged) / len(CLEAN) <= 0.01, flagged


def test_every_finding_has_a_kind_of_its_detector() -> None:
    context = RequestContext.build("")
    for sample in SAMPLES[::7]:
        for finding in [*scan_response(sample.text, context=context), *scan_request(sample.text)]:
            assert finding.kind in KINDS[finding.detector], finding


def test_cross_customer_is_every_value_the_request_did_not_have() -> None:
    for sample in PII[::3]:
        findings = pii.find(sample.text)
        strangers = scan_response(sample.text, context=RequestContext.build("user: where is my order?"))
        leaked = [(f.kind, f.start) for f in strangers if f.detector is Detector.CROSS_CUSTOMER]
        assert leaked == [(f.kind, f.start) for f in findings]
        own = RequestContext.build("system: customer record\n" + sample.text)
        assert [f for f in scan_response(sample.text, context=own) if f.detector is Detector.CROSS_CUSTOMER] == []


def test_prompt_injection_recall_and_false_positives() -> None:
    attacks = injection_corpus.ATTACKS + injection_corpus.OBFUSCATED
    missed = [t for t in attacks if injection_score(t)[0] < INJECTION_THRESHOLD]
    flagged = [t for t in injection_corpus.ORDINARY if injection_score(t)[0] >= INJECTION_THRESHOLD]
    assert len(attacks) >= 100
    assert len(injection_corpus.ORDINARY) >= 200
    assert 1 - len(missed) / len(attacks) >= 0.9, missed
    assert len(flagged) / len(injection_corpus.ORDINARY) <= 0.02, flagged


@pytest.mark.parametrize(
    "redact_set", [set(), {Detector.PII}, {Detector.CROSS_CUSTOMER}], ids=["observe", "pii", "cross"]
)
def test_streaming_the_corpus_in_random_chunks_matches_the_whole_text(redact_set: set[Detector]) -> None:
    rnd = random.Random(12)
    context = RequestContext.build("user: hello, my order?")
    for sample in SAMPLES[:: 5 if redact_set else 11]:
        whole = scan_response(sample.text, context=context)
        stream = ResponseStream(context=context, redact=redact_set, window=rnd.choice([64, 128, 256]))
        emitted: list[str] = []
        findings = []
        pos = 0
        while pos < len(sample.text):
            step = rnd.randint(1, 24)
            result = stream.feed(sample.text[pos : pos + step])
            emitted.append(result.emit)
            findings.extend(result.findings)
            pos += step
        result = stream.finish()
        emitted.append(result.emit)
        findings.extend(result.findings)
        assert scan.ordered(findings) == whole, sample.text
        assert "".join(emitted) == redact(sample.text, whole, redact_set), sample.text


@settings(max_examples=80, deadline=None)
@given(
    index=st.integers(min_value=0, max_value=len(PII) - 1),
    cuts=st.lists(st.integers(min_value=0, max_value=600), max_size=30),
)
def test_any_chunking_of_a_corpus_answer_gives_the_same_verdicts(index: int, cuts: list[int]) -> None:
    sample = PII[index]
    context = RequestContext.build("user: hi")
    whole = scan_response(sample.text, context=context)
    stream = ResponseStream(context=context, redact={Detector.PII, Detector.CROSS_CUSTOMER})
    emitted, findings, previous = [], [], 0
    for cut in [*sorted({c % (len(sample.text) + 1) for c in cuts}), len(sample.text)]:
        if cut > previous:
            result = stream.feed(sample.text[previous:cut])
            emitted.append(result.emit)
            findings.extend(result.findings)
            previous = cut
    result = stream.finish()
    emitted.append(result.emit)
    findings.extend(result.findings)
    assert scan.ordered(findings) == whole
    assert "".join(emitted) == redact(sample.text, whole, {Detector.PII, Detector.CROSS_CUSTOMER})
