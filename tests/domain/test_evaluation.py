"""Monitor evaluation: one sample → ok / breached / noData / error, with persisted `for` clocks."""

from __future__ import annotations

import datetime
import math

import pytest

from airlock.api.aisystem import MonitorState, MonitorStatus, PendingThreshold
from airlock.api.common import FailureMode, Severity
from airlock.api.matrix import Monitor, Op, Threshold
from airlock.domain.evaluation import Sample, evaluate, holds
from tests.domain.builders import at, monitor

QUERY = 'sum(rate(pii_detections_total{app="chatbot"}[1m]))'
SEV3_AFTER_2M = [{"severity": "SEV3", "op": ">", "value": 0, "for": "2m"}]


def step(
    mon: Monitor,
    when: datetime.datetime,
    value: float | None = None,
    previous: MonitorStatus | None = None,
    *,
    error: str | None = None,
    persist: bool = True,
) -> MonitorStatus:
    """Evaluate one sample taken at ``when``; round-trip the result through its manifest like the operator does."""
    result = evaluate(mon, Sample(at=when, value=value, error=error), previous, when, QUERY)
    return MonitorStatus.model_validate(result.dump()) if persist else result


def pending(status: MonitorStatus) -> list[tuple[Severity, datetime.datetime]]:
    return [(p.severity, p.since) for p in status.pending]


@pytest.mark.parametrize(
    ("op", "line", "value", "breaches"),
    [
        (">", 0.5, 0.8, True),
        (">", 0.5, 0.5, False),
        (">=", 0.5, 0.5, True),
        (">=", 0.5, 0.49, False),
        ("<", -0.15, -0.2, True),
        ("<", -0.15, -0.15, False),
        ("<=", -0.15, -0.15, True),
        ("<=", -0.15, 0.0, False),
        ("==", 0, 0.0, True),
        ("==", 0, 0.01, False),
        ("!=", 1, 0.0, True),
        ("!=", 1, 1.0, False),
        (">", 1e9, math.inf, True),
        ("<", -1e9, -math.inf, True),
    ],
)
def test_each_op(op: str, line: float, value: float, breaches: bool) -> None:
    mon = monitor(thresholds=[{"severity": "SEV2", "op": op, "value": line}])
    result = step(mon, at(), value, persist=False)
    assert result.state is (MonitorState.BREACHED if breaches else MonitorState.OK)
    assert result.severity == (Severity.SEV2 if breaches else None)
    assert result.value == value


@pytest.mark.parametrize("op", list(Op))
def test_nan_never_holds(op: Op) -> None:
    threshold = Threshold(severity=Severity.SEV1, op=op, value=0)
    assert holds(threshold, math.nan) is False
    mon = monitor(thresholds=[{"severity": "SEV1", "op": op.value, "value": 0}])
    result = step(mon, at(), math.nan, persist=False)
    assert result.state is MonitorState.OK
    assert result.severity is None
    assert result.pending == []


def test_status_reports_what_was_evaluated() -> None:
    result = step(monitor(), at(seconds=30), 0.8)
    assert result.name == "pii-leak"
    assert result.failure_mode is FailureMode.PRIVACY
    assert result.query == QUERY
    assert result.last_evaluated == at(seconds=30)
    assert result.sample_time == at(seconds=30)
    assert result.since == at(seconds=30)


def test_for_clock_breaches_only_once_the_condition_held_long_enough() -> None:
    mon = monitor(thresholds=SEV3_AFTER_2M)

    first = step(mon, at(), 0.2)
    assert (first.state, first.severity) == (MonitorState.OK, None)
    assert pending(first) == [(Severity.SEV3, at())]

    one_minute = step(mon, at(minutes=1), 0.2, first)
    assert (one_minute.state, one_minute.severity) == (MonitorState.OK, None)
    assert pending(one_minute) == [(Severity.SEV3, at())]

    just_before = step(mon, at(minutes=2, seconds=-1), 0.2, one_minute)
    assert just_before.state is MonitorState.OK

    two_minutes = step(mon, at(minutes=2), 0.2, just_before)
    assert (two_minutes.state, two_minutes.severity) == (MonitorState.BREACHED, Severity.SEV3)
    assert pending(two_minutes) == [(Severity.SEV3, at())]
    assert two_minutes.since == at(minutes=2)


def test_for_clock_survives_a_restart_through_the_persisted_status() -> None:
    mon = monitor(thresholds=SEV3_AFTER_2M)
    before_restart = step(mon, at(), 0.2)

    # The operator restarts: all it has is the status it wrote.
    persisted = MonitorStatus.model_validate(before_restart.dump())
    after_restart = step(mon, at(minutes=2), 0.2, persisted)

    assert after_restart.severity is Severity.SEV3


def test_without_previous_the_clock_starts_over() -> None:
    mon = monitor(thresholds=SEV3_AFTER_2M)
    step(mon, at(), 0.2)
    result = step(mon, at(minutes=2), 0.2, previous=None)
    assert result.state is MonitorState.OK
    assert pending(result) == [(Severity.SEV3, at(minutes=2))]


def test_clock_resets_when_the_condition_stops_holding() -> None:
    mon = monitor(thresholds=SEV3_AFTER_2M)
    status = step(mon, at(), 0.2)
    status = step(mon, at(minutes=1), 0.0, status)
    assert status.state is MonitorState.OK
    assert status.pending == []

    status = step(mon, at(minutes=1, seconds=30), 0.2, status)
    assert pending(status) == [(Severity.SEV3, at(minutes=1, seconds=30))]
    status = step(mon, at(minutes=3), 0.2, status)
    assert status.state is MonitorState.OK, "only 90 s since the condition held again"
    status = step(mon, at(minutes=3, seconds=30), 0.2, status)
    assert status.severity is Severity.SEV3


def test_clock_starts_at_the_sample_time_not_the_evaluation_time() -> None:
    mon = monitor(thresholds=SEV3_AFTER_2M)
    result = evaluate(mon, Sample(at=at(minutes=-2), value=0.2), None, at(), QUERY)
    assert result.severity is Severity.SEV3
    assert result.sample_time == at(minutes=-2)


def test_highest_active_severity_wins() -> None:
    mon = monitor()  # SEV1 > 0.5 for 0s, SEV3 > 0 for 2m

    low = step(mon, at(), 0.3)
    assert (low.state, low.severity) == (MonitorState.OK, None)
    assert pending(low) == [(Severity.SEV3, at())]

    spike = step(mon, at(seconds=30), 0.8, low)
    assert (spike.state, spike.severity) == (MonitorState.BREACHED, Severity.SEV1)
    assert pending(spike) == [(Severity.SEV1, at(seconds=30)), (Severity.SEV3, at())]

    both_active = step(mon, at(minutes=2), 0.8, spike)
    assert both_active.severity is Severity.SEV1

    spike_over = step(mon, at(minutes=2, seconds=30), 0.3, both_active)
    assert (spike_over.state, spike_over.severity) == (MonitorState.BREACHED, Severity.SEV3)
    assert pending(spike_over) == [(Severity.SEV3, at())]
    assert spike_over.since == at(minutes=2, seconds=30), "severity changed: a new state began"


def test_since_moves_only_when_state_or_severity_changes() -> None:
    mon = monitor()
    first = step(mon, at(), 0.8)
    second = step(mon, at(seconds=15), 0.9, first)
    assert second.since == at()
    assert second.value == 0.9
    third = step(mon, at(seconds=30), 0.0, second)
    assert (third.state, third.since) == (MonitorState.OK, at(seconds=30))


def test_no_data_ok_raises_nothing_and_stays_healthy() -> None:
    mon = monitor(noData="ok")
    previous = step(mon, at(), 0.2)
    result = step(mon, at(seconds=15), None, previous)
    assert result.state is MonitorState.NO_DATA
    assert result.severity is None
    assert result.pending == []
    assert result.message == "no data (treated as ok)"


def test_no_data_breach_counts_as_every_threshold_holding() -> None:
    mon = monitor(noData="breach")
    first = step(mon, at(), None)
    assert (first.state, first.severity) == (MonitorState.BREACHED, Severity.SEV1)
    assert first.value is None
    assert pending(first) == [(Severity.SEV1, at()), (Severity.SEV3, at())]
    assert first.message == "no data (treated as a breach)"


def test_no_data_breach_respects_for() -> None:
    mon = monitor(noData="breach", thresholds=SEV3_AFTER_2M)
    first = step(mon, at(), None)
    assert first.state is MonitorState.OK
    later = step(mon, at(minutes=2), None, first)
    assert later.severity is Severity.SEV3


def test_no_data_gap_is_no_data_without_severity() -> None:
    mon = monitor(noData="gap")
    result = step(mon, at(), None, step(mon, at(seconds=-15), 0.8))
    assert result.state is MonitorState.NO_DATA
    assert result.severity is None
    assert result.message == "query returned no series"
    assert result.sample_time == at()


def test_error_keeps_the_clocks_but_raises_no_severity() -> None:
    mon = monitor(thresholds=SEV3_AFTER_2M)
    holding = step(mon, at(), 0.2)

    failed = step(mon, at(minutes=1), previous=holding, error="connection refused")
    assert failed.state is MonitorState.ERROR
    assert failed.severity is None
    assert failed.value is None
    assert failed.sample_time is None
    assert failed.message == "connection refused"
    assert failed.pending == [PendingThreshold(severity=Severity.SEV3, since=at())]

    still_failing = step(mon, at(minutes=3), previous=failed, error="timeout")
    assert (still_failing.state, still_failing.severity) == (MonitorState.ERROR, None)
    assert still_failing.since == at(minutes=1)

    recovered = step(mon, at(minutes=3, seconds=15), 0.2, still_failing)
    assert recovered.severity is Severity.SEV3, "the outage did not restart the 2m window"


def test_error_after_a_breach_drops_the_severity() -> None:
    mon = monitor()
    breach = step(mon, at(), 0.8)
    failed = step(mon, at(seconds=15), previous=breach, error="503")
    assert (failed.state, failed.severity) == (MonitorState.ERROR, None)


def test_thresholds_no_longer_in_the_spec_lose_their_clocks() -> None:
    old = step(monitor(), at(), 0.3)  # SEV3 pending
    changed = monitor(thresholds=[{"severity": "SEV2", "op": ">", "value": 0.1, "for": "5m"}])
    result = step(changed, at(seconds=15), 0.3, old)
    assert pending(result) == [(Severity.SEV2, at(seconds=15))]


def test_from_baseline_is_the_relative_change() -> None:
    sample = Sample.from_baseline(at(), current=85.0, baseline=100.0)
    assert sample.value == pytest.approx(-0.15)
    assert (sample.current, sample.baseline, sample.error) == (85.0, 100.0, None)
    assert Sample.from_baseline(at(), current=150.0, baseline=100.0).value == pytest.approx(0.5)
    # Relative to the magnitude: a negative baseline moving up is a positive change.
    assert Sample.from_baseline(at(), current=-1.0, baseline=-2.0).value == pytest.approx(0.5)


@pytest.mark.parametrize(("current", "baseline"), [(1.0, 0.0), (0.0, 0.0), (None, 1.0), (1.0, None)])
def test_from_baseline_without_a_usable_baseline_is_no_data(current: float | None, baseline: float | None) -> None:
    sample = Sample.from_baseline(at(), current=current, baseline=baseline)
    assert sample.value is None
    assert sample.error is None
    assert (sample.current, sample.baseline) == (current, baseline)


def test_drift_monitor_breaches_on_relative_drop_held_for_its_window() -> None:
    mon = monitor(
        name="answer-quality-drift",
        failureMode="drift",
        baseline={"offset": "7d", "window": "1d"},
        thresholds=[{"severity": "SEV2", "op": "<", "value": -0.15, "for": "30m"}],
    )
    status = evaluate(mon, Sample.from_baseline(at(), 80.0, 100.0), None, at(), QUERY)
    assert status.state is MonitorState.OK
    assert status.value == pytest.approx(-0.2)
    assert (status.current, status.baseline) == (80.0, 100.0)
    status = evaluate(mon, Sample.from_baseline(at(minutes=30), 84.0, 100.0), status, at(minutes=30), QUERY)
    assert (status.state, status.severity) == (MonitorState.BREACHED, Severity.SEV2)


def test_zero_baseline_is_reported_as_such() -> None:
    mon = monitor(baseline={"offset": "7d", "window": "1d"})
    result = evaluate(mon, Sample.from_baseline(at(), 5.0, 0.0), None, at(), QUERY)
    assert result.state is MonitorState.NO_DATA
    assert result.message == "baseline is zero"
    assert (result.current, result.baseline) == (5.0, 0.0)
