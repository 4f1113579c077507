"""Synthetic metric history, rendered as OpenMetrics for ``promtool`` backfill.

Some of airlock's signals look back over hours or days (baselines, drift against last
week, burn rates). Tests cannot wait that long, so they write the past instead: describe
each series as a function of time, render it with :func:`openmetrics_history`, and feed the
text to :meth:`airlock.sandbox.prometheus.PrometheusProcess.backfill`.

Counters are described by their per-second *rate* and integrated here, so the
backfilled ``rate()`` is what the description says. :class:`Signal` carries the times at
which a description changes slope (window edges, the start of a drift) so integration
splits there and stays exact for piecewise-linear descriptions::

    helpful = windows(0.9, (t_bad, t_fixed, 0.7))      # 0.9, but 0.7 on [t_bad, t_fixed)
    series = model_history("ml-prod", "chatbot", helpful_ratio=helpful)
    text = openmetrics_history(series, start=now - 3 * 86400, end=now, step=60)

:func:`model_history` yields the same metric families as the live
:mod:`airlock.sandbox.model` server, so recording rules and queries work on both.

Mind the seam when history and live scrapes share labels: the live server's counters
start from 0, so Prometheus sees a counter reset, and a ``rate()`` window that spans the
gap between the last backfilled and the first scraped sample under-reports. End the
history well before the windows a test looks at live, or give it distinct labels.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from airlock.sandbox.model import FAILURE_DEFAULTS

Kind = Literal["counter", "gauge"]
TimeFunction = Callable[[float], float]


class Signal:
    """A function of time (unix seconds) that knows where it changes slope.

    Arithmetic with numbers or other signals builds new signals (breakpoints are merged),
    e.g. ``request_rate * helpful_ratio``.
    """

    __slots__ = ("breakpoints", "fn", "linear")

    def __init__(self, fn: TimeFunction, breakpoints: Iterable[float] = (), *, linear: bool = False) -> None:
        self.fn = fn
        self.breakpoints: tuple[float, ...] = tuple(sorted(set(breakpoints)))
        # True when fn is (close enough to) linear between breakpoints, so one midpoint per
        # piece integrates it exactly; arbitrary functions get sub-sampled instead.
        self.linear = linear

    def __call__(self, t: float) -> float:
        return self.fn(t)

    def _combine(self, other: SignalLike, op: Callable[[float, float], float]) -> Signal:
        rhs = as_signal(other)
        return Signal(
            lambda t: op(self.fn(t), rhs.fn(t)),
            (*self.breakpoints, *rhs.breakpoints),
            linear=self.linear and rhs.linear,
        )

    def __mul__(self, other: SignalLike) -> Signal:
        return self._combine(other, lambda a, b: a * b)

    __rmul__ = __mul__

    def __add__(self, other: SignalLike) -> Signal:
        return self._combine(other, lambda a, b: a + b)

    __radd__ = __add__

    def __sub__(self, other: SignalLike) -> Signal:
        return self._combine(other, lambda a, b: a - b)

    def __rsub__(self, other: SignalLike) -> Signal:
        return as_signal(other) - self


SignalLike = Signal | TimeFunction | float


def as_signal(value: SignalLike) -> Signal:
    if isinstance(value, Signal):
        return value
    if callable(value):
        return Signal(value)
    constant_value = float(value)
    return Signal(lambda _t: constant_value, linear=True)


def constant(value: float) -> Signal:
    return as_signal(float(value))


def windows(default: float, *spans: tuple[float, float, float]) -> Signal:
    """``default``, except ``value`` on each ``(start, end, value)`` span ``[start, end)``.

    Later spans win where spans overlap. ``windows(0.9, (t1, t2, 0.7))`` is "helpful ratio
    0.9 until t1, 0.7 from t1 to t2, 0.9 again after t2".
    """
    spans_ = tuple((float(a), float(b), float(v)) for a, b, v in spans)

    def fn(t: float) -> float:
        value = default
        for start, end, span_value in spans_:
            if start <= t < end:
                value = span_value
        return value

    return Signal(fn, itertools.chain.from_iterable((a, b) for a, b, _ in spans_), linear=True)


def ramp(
    base: float,
    since: float,
    per_second: float,
    *,
    floor: float = -math.inf,
    ceiling: float = math.inf,
    until: float = math.inf,
) -> Signal:
    """``base`` until ``since``, then changing linearly by ``per_second``, clamped to
    ``[floor, ceiling]``; back to ``base`` from ``until`` on (a fix rolled out).

    A quality drift like the live model server's ``drift`` failure is
    ``ramp(0.9, t0, -0.05 / 60, floor=0.0)``.
    """

    def fn(t: float) -> float:
        if t < since or t >= until:
            return base
        return min(ceiling, max(floor, base + per_second * (t - since)))

    points = [since]
    if until != math.inf:
        points.append(until)
    for bound in (floor, ceiling):
        if per_second and math.isfinite(bound):
            points.append(since + (bound - base) / per_second)
    return Signal(fn, (p for p in points if p >= since), linear=True)


@dataclass(frozen=True)
class Series:
    """One series to backfill.

    ``fn`` gives, at time t, the per-second rate (``kind="counter"``; integrated from
    ``initial``) or the value (``kind="gauge"``). Counter names end in ``_total``.
    """

    name: str
    labels: Mapping[str, str]
    kind: Kind
    fn: SignalLike
    initial: float = 0.0
    help: str = ""

    def __post_init__(self) -> None:
        if self.kind == "counter" and not self.name.endswith("_total"):
            raise ValueError(f"counter {self.name!r} must be named *_total (OpenMetrics)")
        if self.kind not in ("counter", "gauge"):
            raise ValueError(f"kind must be 'counter' or 'gauge', not {self.kind!r}")

    @property
    def family(self) -> str:
        """OpenMetrics family name: counters drop the ``_total`` suffix."""
        return self.name.removesuffix("_total") if self.kind == "counter" else self.name


def integrate(fn: SignalLike, a: float, b: float, substeps: int = 4) -> float:
    """∫ fn over [a, b]: the midpoint rule on pieces split at the signal's breakpoints.

    Exact for piecewise-linear signals (constants, :func:`windows`, :func:`ramp`, and sums
    or scalings of them); other functions get ``substeps`` midpoints per piece.
    """
    if b <= a:
        return 0.0
    signal = as_signal(fn)
    inner = [p for p in signal.breakpoints if a < p < b]
    points = [a, *inner, b]
    pieces = 1 if signal.linear else substeps
    total = 0.0
    for lo, hi in itertools.pairwise(points):
        width = (hi - lo) / pieces
        total += sum(signal.fn(lo + (i + 0.5) * width) for i in range(pieces)) * width
    return total


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _fmt_value(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _fmt_time(t: float) -> str:
    return str(int(t)) if float(t).is_integer() else repr(float(t))


def openmetrics_history(series: Iterable[Series], start: float, end: float, step: float) -> str:
    """OpenMetrics text with one sample per series every ``step`` s from ``start`` to ``end``.

    Times are unix seconds (inclusive of ``start``, and of ``end`` when on the grid).
    Families are emitted in first-seen order with ``# TYPE`` lines, each series'
    samples in time order, and the text ends with ``# EOF`` as promtool requires.
    Series sharing a name must share a kind.
    """
    if step <= 0:
        raise ValueError("step must be positive")
    if end < start:
        raise ValueError("end must not be before start")
    count = int((end - start) // step) + 1
    times = [start + i * step for i in range(count)]
    stamps = [_fmt_time(t) for t in times]

    families: dict[str, list[Series]] = {}
    for s in series:
        family = families.setdefault(s.family, [])
        if family and family[0].kind != s.kind:
            raise ValueError(f"{s.name!r} is both a {family[0].kind} and a {s.kind}")
        family.append(s)

    out: list[str] = []
    for family_name, members in families.items():
        first = members[0]
        out.append(f"# TYPE {family_name} {first.kind}")
        if first.help:
            out.append(f"# HELP {family_name} {first.help}")
        for s in members:
            labels = ",".join(f'{k}="{_escape(v)}"' for k, v in s.labels.items())
            prefix = f"{s.name}{{{labels}}} " if labels else f"{s.name} "
            signal = as_signal(s.fn)
            if s.kind == "counter":
                value = s.initial
                previous = start
                for t, stamp in zip(times, stamps, strict=True):
                    value += integrate(signal, previous, t)
                    previous = t
                    out.append(f"{prefix}{_fmt_value(value)} {stamp}")
            else:
                out.extend(f"{prefix}{_fmt_value(signal(t))} {stamp}" for t, stamp in zip(times, stamps, strict=True))
    out.append("# EOF")
    return "\n".join(out) + "\n"


def model_history(
    namespace: str,
    app: str,
    *,
    request_rate: SignalLike = 20.0,
    error_ratio: SignalLike = 0.0,
    helpful_ratio: SignalLike = 0.9,
    pii_rate: SignalLike = 0.0,
    prompt_injection_rate: SignalLike = 0.0,
    harmful_rate: SignalLike = 0.0,
    tokens_per_second: SignalLike = 2000.0,
    fairness_ratio: SignalLike = 1.0,
    version: str = "v1",
    extra_labels: Mapping[str, str] | None = None,
) -> list[Series]:
    """The series a :class:`~airlock.sandbox.model.ModelServer` app would have produced.

    Every argument may be a number, a function of time or a :class:`Signal`
    (e.g. :func:`windows`, :func:`ramp`). Rates are per second; ratios in [0, 1].
    ``extra_labels`` (e.g. ``{"job": "model", "instance": "127.0.0.1:9000"}``) make the
    history line up with live scrapes of the same app. The request-duration histogram is
    not rendered: promtool's OpenMetrics import has no use for it in airlock's tests.
    """
    labels = {"namespace": namespace, "app": app, **(extra_labels or {})}
    requests = as_signal(request_rate)
    errors = as_signal(error_ratio)
    ok = requests * (1.0 - errors)

    def counter(name: str, rate: SignalLike, **more: str) -> Series:
        return Series(name, {**labels, **more}, "counter", rate)

    return [
        Series("model_info", {**labels, "version": version}, "gauge", 1.0),
        counter("model_requests_total", ok, code="200"),
        counter("model_requests_total", requests * errors, code="500"),
        counter("answer_total", ok),
        counter("answer_helpful_total", ok * as_signal(helpful_ratio)),
        counter("pii_detections_total", pii_rate),
        counter("prompt_injection_detections_total", prompt_injection_rate),
        counter("harmful_output_total", harmful_rate),
        counter("llm_tokens_total", tokens_per_second),
        Series("fairness_disparity_ratio", labels, "gauge", fairness_ratio),
    ]


def drift(
    since: float,
    *,
    base: float = 0.9,
    per_minute: float = FAILURE_DEFAULTS["drift"]["per_minute"],
    floor: float = FAILURE_DEFAULTS["drift"]["floor"],
    until: float = math.inf,
) -> Signal:
    """The live server's ``drift`` failure as a helpful-ratio signal (for ``helpful_ratio=``)."""
    return ramp(base, since, -per_minute / 60.0, floor=floor, until=until)


__all__ = [
    "Series",
    "Signal",
    "as_signal",
    "constant",
    "drift",
    "integrate",
    "model_history",
    "openmetrics_history",
    "ramp",
    "windows",
]
