"""The backtest replay over synthetic series: known breach windows → exactly those incidents."""

from __future__ import annotations

import copy
import datetime
import math
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from airlock.api.common import Action, FailureMode, Response, Severity
from airlock.domain import backtest
from airlock.domain.plan import Plan
from tests.domain.builders import ANSWER_DRIFT, PII_LEAK, T0, at, build

SEV1, SEV2, SEV3 = Severity.SEV1, Severity.SEV2, Severity.SEV3
STEP = 30.0
PII_QUERY = 'sum(rate(pii_detections_total{namespace="ml-prod",app="chatbot"}[1m]))'

Curve = Callable[[float], float | None]  # minutes since T0 → value (None: no point)


def windows(default: float, *spans: tuple[float, float, float]) -> Curve:
    """``default``, but ``value`` on each ``(from_minute, to_minute, value)`` span ``[from, to)``."""

    def curve(minute: float) -> float:
        return next((v for a, b, v in spans if a <= minute < b), default)

    return curve


def history(
    minutes: float,
    answers: Mapping[str, list[tuple[dict[str, str], Curve]]],
    step: float = STEP,
    offset: float = 0.0,
) -> backtest.History:
    """Each curve sampled at every step, its points ``offset`` seconds off the steps."""
    grid = backtest.Grid.between(T0, at(minutes=minutes), step)
    shift = datetime.timedelta(seconds=offset)
    fetched = {}
    for query, curves in answers.items():
        fetched[query] = [
            backtest.Series(
                labels=labels,
                points=[
                    (grid.at(i) + shift, value)
                    for i in range(grid.count)
                    if (value := curve(i * step / 60)) is not None
                ],
            )
            for labels, curve in curves
        ]
    return backtest.History(grid, fetched)


def pii_plan(**overrides: Any) -> Plan:
    return build(monitors=[copy.deepcopy(PII_LEAK)], **overrides)


def replay(plan: Plan, minutes: float, curve: Curve, **kwargs: Any) -> backtest.Result:
    return backtest.replay(plan, history(minutes, {PII_QUERY: [({}, curve)]}), **kwargs)


def test_two_known_breach_windows_give_exactly_two_incidents() -> None:
    # SEV1 (> 0.5, for 0s) from 10m to 20m; SEV3 (> 0, for 2m) from 40m to 50m.
    result = replay(pii_plan(), 60, windows(0.0, (10, 20, 0.8), (40, 50, 0.2)))

    first, second = result.incidents
    assert (first.severity, first.max_severity, first.response) == (SEV1, SEV1, Response.SHUTDOWN)
    assert (first.first_breach, first.opened_at, first.contained_at) == (at(minutes=10),) * 3
    assert first.actions == [Action.REROUTE, Action.SCALE_TO_ZERO]
    assert first.time_to_contain == 0.0
    assert first.resolved_at == at(minutes=20)
    assert (first.monitor, first.failure_mode, first.condition) == ("pii-leak", FailureMode.PRIVACY, "> 0.5")

    assert (second.severity, second.response, second.actions) == (SEV3, Response.INVESTIGATE, [])
    assert second.first_breach == at(minutes=40)
    assert second.opened_at == at(minutes=42)  # the `for: 2m` clock
    assert second.contained_at is None
    assert second.time_to_contain is None
    assert second.resolved_at == at(minutes=50)
    assert (result.containments, result.releases, result.flaps) == (1, 1, 0)


def test_a_breach_shorter_than_its_for_opens_nothing() -> None:
    result = replay(pii_plan(), 30, windows(0.0, (10, 11.5, 0.2)))  # SEV3 needs 2m; it held 1m30s
    assert result.incidents == []
    assert set(result.timeline()) == {"."}


def test_an_incident_still_open_at_the_end_has_no_resolution() -> None:
    result = replay(pii_plan(), 30, windows(0.0, (20, 99, 0.8)))
    (incident,) = result.incidents
    assert incident.resolved_at is None
    assert (result.containments, result.releases) == (1, 0)
    assert result.timeline(width=30).endswith("#" * 10)


def test_an_unacknowledged_escalation_contains_at_the_next_severity_after_ack_within() -> None:
    monitor = copy.deepcopy(PII_LEAK)
    monitor["thresholds"] = [{"severity": "SEV2", "op": ">", "value": 0.5, "for": "1m"}]
    result = replay(build(monitors=[monitor]), 60, windows(0.0, (10, 40, 0.8)))

    (incident,) = result.incidents
    assert (incident.severity, incident.max_severity) == (SEV2, SEV1)
    assert incident.response is Response.SHUTDOWN  # the response in force at the end
    assert incident.first_breach == at(minutes=10)
    assert incident.opened_at == at(minutes=11)
    (raised,) = incident.raised
    assert raised[:2] == (at(minutes=26), SEV1)  # ackWithin 15m from opening, nobody acknowledged
    assert "not acknowledged" in raised[2]
    assert incident.contained_at == at(minutes=26)
    assert incident.time_to_contain == 16 * 60
    assert incident.actions == [Action.REROUTE, Action.SCALE_TO_ZERO]


def test_incident_severity_is_raised_not_reopened_when_a_breach_worsens() -> None:
    result = replay(pii_plan(), 40, windows(0.0, (5, 15, 0.2), (15, 20, 0.8), (20, 25, 0.2)))
    (incident,) = result.incidents
    assert (incident.severity, incident.max_severity) == (SEV3, SEV1)
    assert incident.opened_at == at(minutes=7)
    assert incident.contained_at == at(minutes=15)
    assert incident.time_to_contain == 10 * 60  # from the first breach sample of the incident
    assert incident.resolved_at == at(minutes=25)  # all clear: the SEV3 tail keeps it contained


def test_flapping_counts_every_containment_and_release() -> None:
    # On for 2 minutes, off for 2 minutes, five times.
    spans = [(10 + 4 * k, 12 + 4 * k, 0.8) for k in range(5)]
    result = replay(pii_plan(), 40, windows(0.0, *spans))
    assert len(result.incidents) == 5
    assert all(i.time_to_contain == 0 for i in result.incidents)
    assert (result.containments, result.releases, result.flaps) == (5, 5, 4)
    # A flap window shorter than the 2-minute gaps counts none.
    quiet = replay(pii_plan(), 40, windows(0.0, *spans), flap_window=60)
    assert quiet.flaps == 0


def test_blockers_clear_releases_as_soon_as_the_operator_would_accept_it() -> None:
    curve = windows(0.0, (10, 20, 0.8), (20, 25, 0.2))
    all_clear = replay(pii_plan(), 40, curve)
    earliest = replay(pii_plan(), 40, curve, release=backtest.Release.BLOCKERS_CLEAR)

    assert [(i.severity, i.resolved_at) for i in all_clear.incidents] == [(SEV1, at(minutes=25))]
    # Released when SEV1 stopped; the SEV3 breach still running (its clock held since 10m) opens a new incident.
    assert [(i.severity, i.opened_at, i.resolved_at) for i in earliest.incidents] == [
        (SEV1, at(minutes=10), at(minutes=20)),
        (SEV3, at(minutes=20), at(minutes=25)),
    ]


def test_dry_run_systems_are_replayed_as_enforced() -> None:
    result = replay(pii_plan(mode="dryRun"), 30, windows(0.0, (10, 20, 0.8)))
    (incident,) = result.incidents
    assert incident.actions == [Action.REROUTE, Action.SCALE_TO_ZERO]
    assert result.containments == 1


def test_shared_monitor_takes_its_own_series_by_labels() -> None:
    shared = copy.deepcopy(PII_LEAK)
    shared["query"] = "sum by (namespace, app) (rate(pii_detections_total[1m]))"
    shared["match"] = {"namespace": "{{ namespace }}", "app": "{{ params.app }}"}
    chatbot = build(monitors=[shared])
    other = build(monitors=[shared], params={"app": "other"})
    assert backtest.queries([chatbot, other]) == [shared["query"]]  # one range query for both

    fetched = history(
        30,
        {
            shared["query"]: [
                ({"namespace": "ml-prod", "app": "chatbot"}, windows(0.0, (10, 20, 0.8))),
                ({"namespace": "ml-prod", "app": "other"}, windows(0.0)),
            ]
        },
    )
    assert [i.severity for i in backtest.replay(chatbot, fetched).incidents] == [SEV1]
    assert backtest.replay(other, fetched).incidents == []


def test_an_ambiguous_match_is_a_monitoring_gap_never_an_incident() -> None:
    fetched = history(10, {PII_QUERY: [({"pod": "a"}, windows(0.8)), ({"pod": "b"}, windows(0.8))]})
    result = backtest.replay(pii_plan(), fetched)
    assert result.incidents == []
    assert set(result.timeline()) == {"?"}


def test_missing_points_are_no_data() -> None:
    result = replay(pii_plan(), 30, lambda minute: None if 10 <= minute < 20 else 0.0)
    assert result.incidents == []
    assert "?" in result.timeline()
    assert "." in result.timeline()


def test_a_baseline_monitor_compares_against_its_own_baseline_series() -> None:
    plan = build(monitors=[copy.deepcopy(ANSWER_DRIFT)])
    (resolved,) = plan.monitors
    assert resolved.baseline_query is not None
    assert backtest.queries([plan]) == sorted([resolved.query, resolved.baseline_query])
    # 30% below the baseline from 10m on; the threshold is < -15% for 30m.
    fetched = history(
        50, {resolved.query: [({}, windows(0.9, (10, 99, 0.63)))], resolved.baseline_query: [({}, windows(0.9))]}
    )
    (incident,) = backtest.replay(plan, fetched).incidents
    assert (incident.severity, incident.response, incident.failure_mode) == (SEV2, Response.ESCALATE, FailureMode.DRIFT)
    assert incident.first_breach == at(minutes=10)
    assert incident.opened_at == at(minutes=40)
    assert incident.value == pytest.approx(-0.3)


def test_result_dump_is_plain_json() -> None:
    result = replay(pii_plan(), 30, windows(0.0, (10, 20, 0.8)), namespace="ml-prod", name="support-chatbot")
    dumped = result.dump()
    assert dumped["containments"] == 1
    incidents = dumped["incidents"]
    assert isinstance(incidents, list)
    assert incidents[0]["openedAt"] == "2026-11-26T13:40:12Z"
    assert incidents[0]["actions"] == ["reroute", "scaleToZero"]
    assert incidents[0]["timeToContainSeconds"] == 0.0


def test_grid_maps_provider_timestamps_to_the_nearest_step() -> None:
    grid = backtest.Grid.between(T0, at(minutes=1), 15)
    assert grid.count == 5
    assert grid.index(at(15.0004)) == 1
    assert [grid.index(at(s)) for s in (7, 7.5, 8, 22.5, 37.5)] == [0, 1, 1, 2, 3]  # half-way: the later step
    assert (grid.index(at(-7.5)), grid.index(at(67.4))) == (0, 4)
    assert (grid.index(at(-7.6)), grid.index(at(67.5)), grid.index(at(minutes=2))) == (None, None, None)


@pytest.mark.parametrize(
    ("step", "offset"), [(STEP, 0.5), (STEP, -0.5), (STEP, 14.9), (2.0, 0.5), (2.0, -0.5), (1.0, 0.4)]
)
def test_points_off_the_grid_by_less_than_half_a_step_still_find_the_breach(step: float, offset: float) -> None:
    # A provider answering half a second off the replay's steps (Prometheus on round(start) + k*step
    # for a sub-second --from) is the same history, not a history without data.
    fetched = history(30, {PII_QUERY: [({}, windows(0.0, (10, 20, 0.8)))]}, step=step, offset=offset)
    result = backtest.replay(pii_plan(), fetched)

    (incident,) = result.incidents
    assert (incident.severity, incident.actions) == (SEV1, [Action.REROUTE, Action.SCALE_TO_ZERO])
    assert (incident.first_breach, incident.contained_at, incident.resolved_at) == (
        at(minutes=10),
        at(minutes=10),
        at(minutes=20),
    )
    assert "?" not in result.timeline()
    assert result.dropped == 0


def test_points_that_cannot_be_placed_are_reported_not_silently_dropped() -> None:
    grid = backtest.Grid.between(T0, at(minutes=10), STEP)  # 21 steps
    ten = datetime.timedelta(seconds=10)
    # Healthy on every step; a breach-level point 10 s and 20 s after each step (a series denser
    # than the grid: each lands on a step that also has a nearer point); two points before the
    # window; a NaN, which is "no value", not a point lost.
    points = [(at(minutes=-5), 0.8), (at(-16), 0.8), (at(minutes=-1), math.nan)]
    for i in range(grid.count):
        points += [(grid.at(i), 0.0), (grid.at(i) + ten, 0.8), (grid.at(i) + 2 * ten, 0.8)]
    other = 'sum(rate(other_total{namespace="ml-prod"}[1m]))'
    fetched = backtest.History(
        grid, {PII_QUERY: [backtest.Series({}, points)], other: [backtest.Series({}, [(at(minutes=11), 1.0)])]}
    )
    assert fetched.dropped == {PII_QUERY: 2 + 2 * grid.count, other: 1}

    result = backtest.replay(pii_plan(), fetched)
    assert result.incidents == []  # the point nearest each step is the step's value
    assert set(result.timeline()) == {"."}
    assert result.dropped == 2 + 2 * grid.count  # only the plan's own queries count
    assert result.dump()["dropped"] == 2 + 2 * grid.count
