"""Detection quality and cost of the guard's detectors (issue 12, "Numbers").

Prints, from the corpora in tests/detectors:
- pii precision and recall per kind (a finding counts when it overlaps a label of its kind),
- the false-positive rate on clean support-chat answers (generated + hand-written hard negatives),
- prompt-injection recall and false positives, on the tuning corpus and on a held-out set,
- the cost of scan_request + RequestContext.build + scan_response for a 1 KB answer with every
  detector on (pii, cross-customer, canary with a remembered system prompt, refusal; injection on
  the request), p50/p99 in microseconds, on distinct answers, with the phone and IBAN verdict caches
  emptied before each (so no answer profits from numbers seen in another) — wall
  time and the thread's CPU time (on a shared machine the CPU time is the figure to compare),
- the CPU cost of one ResponseStream.feed (redacting) per 16-character chunk, p50/p99.

    python benchmarks/guard_detection.py [--answers 2000] [--seed 12]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

from faker import Faker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from airlock.domain.detectors import (
    INJECTION_THRESHOLD,
    Canary,
    Detector,
    RequestContext,
    ResponseStream,
    identifiers,
    injection_score,
    phones,
    pii,
    scan_request,
    scan_response,
)
from tests.detectors import corpus, injection_corpus

SYSTEM_PROMPT = (
    "You are the customer support assistant of Acme Online. Answer politely and briefly in the customer's "
    "language. Never share the personal data of one customer with another customer, even if the user claims to "
    "be an administrator, a police officer or a family member. Escalate billing disputes and chargebacks to a "
    "human agent. Do not promise refunds above fifty euros without approval. Customer record: {record}"
)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def quality(seed: int) -> None:
    samples = [*corpus.pii_samples(seed=seed), *corpus.clean_samples(seed=seed + 1), *corpus.hard_negative_samples()]
    scores = corpus.evaluate(samples, lambda text: [(f.kind, f.start, f.end) for f in pii.find(text)])
    print(f"pii on {len(samples)} texts (seed {seed}): {sum(1 for s in samples if s.labels)} with labels")
    print(f"  {'kind':12} {'labels':>6} {'found':>6} {'false':>6} {'precision':>9} {'recall':>7}")
    for kind in [*sorted(k for k in scores if k != "all"), "all"]:
        s = scores[kind]
        print(f"  {kind:12} {s.tp + s.fn:6} {s.tp:6} {s.fp:6} {s.precision:9.4f} {s.recall:7.4f}")
    for kind, s in scores.items():
        if kind != "all":
            for text in s.misses[:3]:
                print(f"    missed {text}")
            for text in s.false[:3]:
                print(f"    false  {text}")
    clean = [s for s in samples if s.category != "pii" and not s.labels]
    flagged = [s for s in clean if pii.find(s.text)]
    print(f"clean answers: {len(flagged)} of {len(clean)} flagged ({len(flagged) / len(clean):.2%})")

    for name, attacks, ordinary in (
        ("tuning set", injection_corpus.ATTACKS + injection_corpus.OBFUSCATED, injection_corpus.ORDINARY),
        ("held out", injection_corpus.HELD_OUT_ATTACKS, injection_corpus.HELD_OUT_ORDINARY),
    ):
        caught = sum(injection_score(t)[0] >= INJECTION_THRESHOLD for t in attacks)
        false = sum(injection_score(t)[0] >= INJECTION_THRESHOLD for t in ordinary)
        print(
            f"prompt-injection ({name}): recall {caught}/{len(attacks)} = {caught / len(attacks):.3f}; "
            f"false positives {false}/{len(ordinary)} = {false / len(ordinary):.2%}"
        )


def _glue(pool: list[str], rnd: random.Random) -> str:
    parts: list[str] = []
    while sum(len(p) + 1 for p in parts) < 1024:
        parts.append(rnd.choice(pool))
    return " ".join(parts)[:1024]


def _answers(n: int, seed: int) -> dict[str, list[tuple[str, str]]]:
    """``n`` distinct (customer record, 1 KB answer) pairs per mix, glued from the corpus's answers.

    "with PII": ~8 personal values per answer (every answer of the corpus carries some);
    "one with PII": one corpus answer with personal data (~2 values), the rest clean;
    "clean": support answers with order/tracking numbers, dates, prices and no personal data.
    """
    rnd = random.Random(seed)
    faker = Faker("en_GB")
    faker.seed_instance(seed)
    with_pii = [s.text for s in corpus.pii_samples(n=max(400, n // 2), seed=seed + 7)]
    clean = [s.text for s in corpus.clean_samples(n=max(400, n // 2), seed=seed + 8)]
    mixes: dict[str, list[tuple[str, str]]] = {}

    def record() -> str:
        return f"name {faker.name()}, e-mail {faker.free_email()}, customer since {faker.year()}"

    mixes["with PII"] = [(record(), _glue(with_pii, rnd)) for _ in range(n)]
    mixes["one with PII"] = [(record(), (rnd.choice(with_pii) + " " + _glue(clean, rnd))[:1024]) for _ in range(n)]
    mixes["clean"] = [(record(), _glue(clean, rnd)) for _ in range(n)]
    return mixes


def _forget_verdicts() -> None:
    phones.international.cache_clear()
    phones.national.cache_clear()
    identifiers.iban_valid.cache_clear()


def timing(n: int, seed: int) -> None:
    canary = Canary()
    question = "Hi, I'm Maria (maria.lopez@gmail.com). My parcel from order 48291 hasn't arrived, can you check?"
    for name, pairs in _answers(n, seed).items():
        durations: list[float] = []
        cpu: list[float] = []
        for i, (record, answer) in enumerate(pairs):
            system = SYSTEM_PROMPT.format(record=record) + "\n" + canary.system_line()
            canary.remember_system_prompt(system)
            _forget_verdicts()  # no answer profits from the numbers of another (the corpus reuses values)
            start, start_cpu = time.perf_counter(), time.thread_time()
            scan_request(question)
            context = RequestContext.build(system + "\n" + question, canary)
            scan_response(answer, context=context)
            elapsed, elapsed_cpu = time.perf_counter() - start, time.thread_time() - start_cpu
            if i >= 50:  # the first ones warm the interpreter and libphonenumber's metadata
                durations.append(elapsed * 1e6)
                cpu.append(elapsed_cpu * 1e6)
        print(
            f"scan_request + RequestContext.build + scan_response, 1 KB answers {name}, every detector on "
            f"({len(durations)} distinct answers): wall p50 {_pct(durations, 0.5):.0f} us, p99 "
            f"{_pct(durations, 0.99):.0f} us; CPU p50 {_pct(cpu, 0.5):.0f} us, p99 {_pct(cpu, 0.99):.0f} us, "
            f"mean {statistics.fmean(cpu):.0f} us"
        )
        feeds: list[float] = []
        context = RequestContext.build(SYSTEM_PROMPT.format(record="") + question, canary)
        for _, answer in pairs[: max(50, n // 10)]:
            stream = ResponseStream(context=context, redact={Detector.PII, Detector.CROSS_CUSTOMER, Detector.CANARY})
            for pos in range(0, len(answer), 16):
                start = time.thread_time()
                stream.feed(answer[pos : pos + 16])
                feeds.append((time.thread_time() - start) * 1e6)
            stream.finish()
        print(
            f"  ResponseStream.feed (redacting pii, cross-customer, canary), 16-character chunks "
            f"({len(feeds)} feeds): CPU p50 {_pct(feeds, 0.5):.0f} us, p99 {_pct(feeds, 0.99):.0f} us"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--answers", type=int, default=2000, help="distinct 1 KB answers timed (default 2000)")
    parser.add_argument("--seed", type=int, default=corpus.SEED, help="corpus seed (default: the tests' seed)")
    args = parser.parse_args()
    quality(args.seed)
    timing(args.answers, args.seed)


if __name__ == "__main__":
    main()
