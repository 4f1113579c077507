"""Turn one Prometheus sample into a monitor's evaluation state (SPEC §2.1).

The four states are explicit and each has one meaning:
- ``ok``: the value was read and no threshold holds (``for`` may be pending);
- ``breached``: a threshold held for its ``for``: the monitor raises a severity;
- ``noData``: the query returned nothing (handled by the monitor's ``noData``);
- ``error``: Prometheus could not answer. It never contains by itself and never
  counts as healthy.

``for`` clocks are kept in the returned status (``pending``), which the
operator persists, so a restart does not reset them.
"""

from __future__ import annotations

import datetime
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass

from airlock.api.aisystem import MonitorState, MonitorStatus, PendingThreshold
from airlock.api.common import Severity
from airlock.api.matrix import Monitor, NoDataPolicy, Op, Threshold

_OPS: dict[Op, Callable[[float, float], bool]] = {
    Op.GT: operator.gt,
    Op.GE: operator.ge,
    Op.LT: operator.lt,
    Op.LE: operator.le,
    Op.EQ: operator.eq,
    Op.NE: operator.ne,
}


@dataclass(frozen=True)
class Sample:
    """What the provider answered for one monitor of one system.

    Exactly one of: ``error`` set; ``value`` set; neither (no data).
    ``baseline``/``current`` are set for a baseline monitor, ``value`` being the
    relative change.
    """

    at: datetime.datetime
    value: float | None = None
    error: str | None = None
    current: float | None = None
    baseline: float | None = None

    @classmethod
    def from_baseline(cls, at: datetime.datetime, current: float | None, baseline: float | None) -> Sample:
        """Relative change of ``current`` against ``baseline``; no data if either is missing or zero."""
        if current is None or baseline is None:
            return cls(at=at, current=current, baseline=baseline)
        if baseline == 0:
            return cls(at=at, current=current, baseline=baseline, error=None, value=None)
        return cls(at=at, value=(current - baseline) / abs(baseline), current=current, baseline=baseline)


def holds(threshold: Threshold, value: float) -> bool:
    """Whether ``value`` satisfies the threshold's condition (NaN never does)."""
    if math.isnan(value):
        return False
    return _OPS[threshold.op](value, threshold.value)


def evaluate(
    monitor: Monitor,
    sample: Sample,
    previous: MonitorStatus | None,
    now: datetime.datetime,
    query: str,
) -> MonitorStatus:
    """Evaluate one monitor; pure and deterministic given its inputs."""
    previous_pending = {p.severity: p.since for p in (previous.pending if previous else [])}
    message: str | None = None

    if sample.error is not None:
        # The provider failed: we know nothing new.  Keep the `for` clocks (a
        # short outage should not restart a 30-minute drift window) but raise
        # no severity.
        return _status(monitor, MonitorState.ERROR, previous, now, sample, query, None, previous_pending, sample.error)

    holding: list[Threshold]
    if sample.value is None:
        if monitor.no_data is NoDataPolicy.OK:
            holding = []
            message = "no data (treated as ok)"
        elif monitor.no_data is NoDataPolicy.BREACH:
            holding = list(monitor.thresholds)
            message = "no data (treated as a breach)"
        else:
            why = "baseline is zero" if sample.baseline == 0 else "query returned no series"
            return _status(monitor, MonitorState.NO_DATA, previous, now, sample, query, None, {}, why)
    else:
        holding = [t for t in monitor.thresholds if holds(t, sample.value)]

    pending: dict[Severity, datetime.datetime] = {}
    active: list[Severity] = []
    for threshold in holding:
        # The clock starts at the first sample for which the condition held.
        since = previous_pending.get(threshold.severity, sample.at)
        pending[threshold.severity] = since
        if (now - since).total_seconds() >= threshold.for_.seconds:
            active.append(threshold.severity)
    severity = min(active, key=lambda s: s.rank) if active else None
    state = MonitorState.BREACHED if severity is not None else MonitorState.OK
    if sample.value is None and monitor.no_data is NoDataPolicy.OK:
        state = MonitorState.NO_DATA
    return _status(monitor, state, previous, now, sample, query, severity, pending, message)


def _status(
    monitor: Monitor,
    state: MonitorState,
    previous: MonitorStatus | None,
    now: datetime.datetime,
    sample: Sample,
    query: str,
    severity: Severity | None,
    pending: dict[Severity, datetime.datetime],
    message: str | None,
) -> MonitorStatus:
    unchanged = previous is not None and previous.state is state and previous.severity == severity
    since = previous.since if unchanged and previous is not None and previous.since else now
    return MonitorStatus(
        name=monitor.name,
        state=state,
        failure_mode=monitor.failure_mode,
        value=sample.value,
        current=sample.current,
        baseline=sample.baseline,
        severity=severity,
        since=since,
        pending=[
            PendingThreshold(severity=s, since=t) for s, t in sorted(pending.items(), key=lambda item: item[0].rank)
        ],
        last_evaluated=now,
        sample_time=sample.at if sample.error is None else None,
        query=query,
        message=message,
    )


def breach_start(threshold: Threshold, points: list[tuple[datetime.datetime, float]]) -> datetime.datetime | None:
    """The earliest time from which ``threshold`` held at every point up to the last one.

    Used to date a breach at the first sample Prometheus could show it, not at
    the evaluation that happened to notice it: time to contain is measured from
    there.
    """
    start: datetime.datetime | None = None
    for at, value in sorted(points):
        start = (start or at) if holds(threshold, value) else None
    return start
