"""Recorded-looking metrics of real serving runtimes, for backfilling a real Prometheus.

Each runtime's series carry the exact names, label names and histogram bucket boundaries
its /metrics endpoint exports (vLLM V1 engine, Hugging Face TGI's router, Knative's
queue-proxy and KServe's Python model server, the OpenTelemetry GenAI client conventions
as translated to Prometheus, airlock guard), plus the labels a Prometheus scrape adds
(``namespace``, ``pod``, ``service``, ``job``).

Every series has one level in the baseline windows (``healthy``) and one in the current
window (``incident``): a rate per second for counters (integrated into a monotonic
counter), a value for gauges. Histograms put all observations of a phase in one bucket,
so their quantiles are exact: ``lo + (hi - lo) * q``. Everything is emitted as OpenMetrics
``unknown`` families: PromQL does not care about the type, and promtool would insist that a
counter's samples end in ``_total`` — which TGI's and Knative's counters do not.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

INF = math.inf


@dataclass(frozen=True)
class Series:
    name: str
    labels: dict[str, str]
    counter: bool
    healthy: float
    incident: float


@dataclass(frozen=True)
class Window:
    start: float
    end: float
    step: float
    incident: bool


def counter(name: str, labels: dict[str, str], healthy: float, incident: float) -> Series:
    return Series(name, labels, True, healthy, incident)


def gauge(name: str, labels: dict[str, str], healthy: float, incident: float) -> Series:
    return Series(name, labels, False, healthy, incident)


def _bucket_of(buckets: Sequence[float], upper: float) -> int:
    if upper not in buckets:
        raise ValueError(f"{upper} is not a bucket boundary")
    return list(buckets).index(upper)


def histogram(
    name: str,
    labels: dict[str, str],
    buckets: Sequence[float],
    *,
    healthy: tuple[float, float],
    incident: tuple[float, float],
    mean: tuple[float, float] | None = None,
) -> list[Series]:
    """A histogram's series: ``healthy``/``incident`` are (observations per second, the bucket's upper bound).

    ``mean`` (healthy, incident) sets ``_sum``'s rate per observation (default: the bucket's middle).
    """

    def middle(upper: float) -> float:
        index = _bucket_of(buckets, upper)
        lower = buckets[index - 1] if index else 0.0
        return (lower + upper) / 2

    out: list[Series] = []
    for le in [*buckets, INF]:
        h = healthy[0] if le >= healthy[1] else 0.0
        i = incident[0] if le >= incident[1] else 0.0
        out.append(counter(f"{name}_bucket", {**labels, "le": _le(le)}, h, i))
    means = mean or (middle(healthy[1]), middle(incident[1]))
    out.append(counter(f"{name}_sum", labels, healthy[0] * means[0], incident[0] * means[1]))
    out.append(counter(f"{name}_count", labels, healthy[0], incident[0]))
    return out


def quantile(buckets: Sequence[float], upper: float, q: float) -> float:
    """What Prometheus' histogram_quantile answers when every observation is in the bucket ending at ``upper``."""
    index = _bucket_of(buckets, upper)
    lower = buckets[index - 1] if index else 0.0
    return lower + (upper - lower) * q


def _le(value: float) -> str:
    return "+Inf" if value == INF else repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def openmetrics(series: Iterable[Series], windows: Sequence[Window]) -> str:
    """OpenMetrics text for promtool: every series sampled on every window's grid."""
    families: dict[str, list[Series]] = {}
    for s in series:
        families.setdefault(s.name, []).append(s)
    lines: list[str] = []
    for name, members in families.items():
        lines.append(f"# TYPE {name} unknown")
        for s in members:
            labels = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(s.labels.items()))
            value = 1_000_000.0 if s.counter else 0.0  # far from 0: rate() never clamps its extrapolation
            for window in windows:
                level = s.incident if window.incident else s.healthy
                steps = round((window.end - window.start) / window.step)
                for k in range(steps + 1):
                    t = window.start + k * window.step
                    if s.counter:
                        if k:
                            value += level * window.step
                        shown = value
                    else:
                        shown = level
                    lines.append(f"{name}{{{labels}}} {shown!r} {t:.3f}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------- bucket boundaries
# As the runtimes declare them.

VLLM_E2E = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
            480.0, 960.0, 1920.0, 7680.0)  # fmt: skip
VLLM_TTFT = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
             40.0, 80.0, 160.0, 640.0, 2560.0)  # fmt: skip
# build_1_2_5_buckets(max_model_len) for max_model_len 8192.
VLLM_TOKENS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
# TGI: 35 durations, a geometric sequence from 0.0001 s times 1.5.
TGI_DURATION = tuple(0.0001 * 1.5 ** (k + 1) for k in range(35))
# TGI: tgi_request_generated_tokens, 100 buckets of max_total_tokens/100 (max_total_tokens 2048).
TGI_TOKENS = tuple(20.48 * (k + 1) for k in range(100))
# Knative's queue-proxy request latencies, milliseconds.
KNATIVE_LATENCY_MS = (5, 10, 20, 40, 60, 80, 100, 150, 200, 250, 300, 350, 400, 450, 500, 600, 700, 800, 900,
                      1000, 2000, 5000, 10000, 20000, 50000, 100000)  # fmt: skip
# prometheus_client's default buckets (KServe's model server uses them).
PROMETHEUS_DEFAULT = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
# The OpenTelemetry GenAI conventions' advisory boundaries.
OTEL_DURATION = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
OTEL_TOKENS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
