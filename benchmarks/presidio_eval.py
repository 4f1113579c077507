"""How presidio-analyzer's pattern recognizers do on the guard's PII corpus (why airlock does not use them).

Not a dependency of airlock: run it in a scratch virtualenv, offline like a cluster without egress:

    python -m venv /tmp/presidio && /tmp/presidio/bin/pip install presidio-analyzer faker python-stdnum
    /tmp/presidio/bin/python benchmarks/presidio_eval.py

Prints whether the AnalyzerEngine can start without downloading a spaCy model, precision/recall of
the recognizers that need no NLP model (card, e-mail, phone, IBAN, IP, US SSN) on the same corpus and
matching rule as benchmarks/guard_detection.py, for several score thresholds, and their cost per
1 KB answer. Network access is refused inside the script (any attempt fails at once), so a
recognizer that tries to download something at run time shows up as an error, not as a stall.
"""

from __future__ import annotations

import logging
import socket
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.detectors import corpus


def _offline(*args: Any, **kwargs: Any) -> Any:
    raise OSError("network refused by presidio_eval.py")


def main() -> None:
    logging.disable(logging.CRITICAL)
    socket.getaddrinfo = _offline  # no egress: what a guard in a locked-down cluster sees
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
        PhoneRecognizer,
        UsSsnRecognizer,
    )

    try:
        AnalyzerEngine()
        print("AnalyzerEngine(): started")
    except Exception as error:  # what it raises offline varies with the version
        print(f"AnalyzerEngine(): cannot start offline ({type(error).__name__}: it fetches a spaCy model)")

    kinds = {
        "CREDIT_CARD": "card",
        "EMAIL_ADDRESS": "email",
        "PHONE_NUMBER": "phone",
        "IBAN_CODE": "iban",
        "IP_ADDRESS": "ip",
        "US_SSN": "ssn",
    }
    regions = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "BR", "IN", "PL", "SE", "CA")
    recognizers = [
        CreditCardRecognizer(),
        EmailRecognizer(),
        PhoneRecognizer(supported_regions=regions),
        IbanRecognizer(),
        IpRecognizer(),
        UsSsnRecognizer(),
    ]

    def find(text: str, threshold: float) -> list[tuple[str, int, int]]:
        found = []
        for recognizer in recognizers:
            for result in recognizer.analyze(text, recognizer.supported_entities, None):
                if result.score >= threshold:
                    found.append((kinds[result.entity_type], result.start, result.end))
        return found

    samples = [
        corpus.Sample(
            s.text,
            tuple(
                corpus.Label("ip" if label.kind in ("ipv4", "ipv6") else label.kind, label.start, label.end)
                for label in s.labels
                if label.kind in ("card", "email", "phone", "iban", "ipv4", "ipv6", "ssn")
            ),
            s.locale,
            s.category,
        )
        for s in corpus.corpus()
    ]
    for threshold in (0.0, 0.4, 0.5):
        scores = corpus.evaluate(samples, lambda text, t=threshold: find(text, t))
        total = scores["all"]
        per_kind = ", ".join(
            f"{kind} P={s.precision:.2f} R={s.recall:.2f}" for kind, s in sorted(scores.items()) if kind != "all"
        )
        print(f"score >= {threshold}: precision {total.precision:.3f}, recall {total.recall:.3f} ({per_kind})")

    text = " ".join(s.text for s in samples if s.category == "pii")
    answers = [text[i : i + 1024] for i in range(0, 200 * 1024, 1024)]
    for answer in answers[:10]:
        find(answer, 0.0)
    for recognizer in [*recognizers, None]:
        durations = []
        for answer in answers:
            start = time.thread_time()
            if recognizer is None:
                find(answer, 0.0)
            else:
                recognizer.analyze(answer, recognizer.supported_entities, None)
            durations.append((time.thread_time() - start) * 1e6)
        durations.sort()
        name = type(recognizer).__name__ if recognizer is not None else "all six"
        print(f"{name}: CPU per 1 KB answer p50 {durations[len(durations) // 2]:.0f} us")


if __name__ == "__main__":
    main()
