"""Regulatory clocks: which obligations an incident starts, their deadlines, and warnings emitted once.

Every clock here is injected; the time zones check that the deadline is the
right instant (all arithmetic in UTC), not the right wall-clock reading.
"""

from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo

import pytest

from airlock.api.incident import ReportingObligation, ReportState
from airlock.domain import deadlines
from airlock.domain.deadlines import ClockWarning
from tests.notices.builders import T0, incident, system

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")
DAY = datetime.timedelta(days=1)


def regimes(obligations: list[ReportingObligation]) -> dict[str, datetime.datetime]:
    return {o.regime: o.deadline for o in obligations}


@pytest.mark.parametrize(
    ("failure_mode", "harm", "widespread", "expected"),
    [
        # Art. 73(2): 15 days general.
        ("safety", ["c"], False, {"eu-ai-act-art73": T0 + 15 * DAY}),
        ("safety", ["d"], False, {"eu-ai-act-art73": T0 + 15 * DAY}),
        # Art. 73(4): 10 days on death.
        ("safety", ["a"], False, {"eu-ai-act-art73": T0 + 10 * DAY}),
        # Art. 73(3): 2 days for critical infrastructure (b) or a widespread infringement.
        ("sudden", ["b"], False, {"eu-ai-act-art73": T0 + 2 * DAY}),
        ("fairness", ["c"], True, {"eu-ai-act-art73": T0 + 2 * DAY}),
        ("safety", ["a", "b"], False, {"eu-ai-act-art73": T0 + 2 * DAY}),
        # Not classified yet: the classification decision is due on the shortest clock.
        ("drift", [], False, {"eu-ai-act-art73-classification": T0 + 2 * DAY}),
        # GDPR Art. 33 runs alongside for privacy incidents.
        (
            "privacy",
            ["c"],
            False,
            {"eu-ai-act-art73": T0 + 15 * DAY, "gdpr-art33": T0 + datetime.timedelta(hours=72)},
        ),
    ],
)
def test_regime_table(failure_mode: str, harm: list[str], widespread: bool, expected: dict[str, object]) -> None:
    got = deadlines.obligations(incident(failure_mode, harm=harm), system(), widespread=widespread)
    assert regimes(got) == expected
    assert all(o.state is ReportState.PENDING for o in got)


def test_gdpr_alone_without_high_risk() -> None:
    got = deadlines.obligations(incident("privacy"), system(high_risk=False))
    assert regimes(got) == {"gdpr-art33": T0 + datetime.timedelta(hours=72)}


@pytest.mark.parametrize(
    ("failure_mode", "high_risk", "personal_data", "drill"),
    [
        ("privacy", False, False, False),  # nothing declared
        ("safety", False, True, False),  # personal data, but not a privacy failure
        ("privacy", True, True, True),  # drills owe nothing
    ],
)
def test_no_obligation(failure_mode: str, high_risk: bool, personal_data: bool, drill: bool) -> None:
    got = deadlines.obligations(
        incident(failure_mode, harm=["c"], drill=drill), system(high_risk=high_risk, personal_data=personal_data)
    )
    assert got == []


def test_system_without_regulatory_profile() -> None:
    bare = system().model_copy(update={"regulatory": None})
    assert deadlines.obligations(incident("privacy", harm=["a"]), bare) == []


def test_explicit_awareness_wins_over_detection() -> None:
    aware = T0 + datetime.timedelta(hours=5)
    got = deadlines.obligations(incident("privacy", harm=["a"]), system(), awareness_at=aware)
    assert regimes(got) == {"eu-ai-act-art73": aware + 10 * DAY, "gdpr-art33": aware + datetime.timedelta(hours=72)}


def test_no_detection_time_is_an_error_not_a_guess() -> None:
    fresh = incident("privacy").model_copy(update={"status": None})
    with pytest.raises(ValueError, match="detectedAt"):
        deadlines.obligations(fresh, system())


@pytest.mark.parametrize(
    ("aware", "period", "deadline_utc"),
    [
        # Berlin, autumn DST change (2026-10-25 03:00 CEST -> 02:00 CET): 72 h is 71 h of wall clock.
        (
            datetime.datetime(2026, 10, 24, 12, 0, tzinfo=BERLIN),
            datetime.timedelta(hours=72),
            datetime.datetime(2026, 10, 27, 10, 0, tzinfo=datetime.UTC),
        ),
        # Berlin, spring DST change (2026-03-29 02:00 CET -> 03:00 CEST).
        (
            datetime.datetime(2026, 3, 28, 12, 0, tzinfo=BERLIN),
            2 * DAY,
            datetime.datetime(2026, 3, 30, 11, 0, tzinfo=datetime.UTC),
        ),
        # New York across its own autumn change (2026-11-01).
        (
            datetime.datetime(2026, 10, 30, 9, 0, tzinfo=NEW_YORK),
            15 * DAY,
            datetime.datetime(2026, 11, 14, 13, 0, tzinfo=datetime.UTC),
        ),
        # Tokyo: awareness on the previous UTC day.
        (
            datetime.datetime(2026, 11, 27, 1, 0, tzinfo=TOKYO),
            10 * DAY,
            datetime.datetime(2026, 12, 6, 16, 0, tzinfo=datetime.UTC),
        ),
        # A naive datetime is UTC.
        (datetime.datetime(2026, 11, 26, 13, 0), 2 * DAY, datetime.datetime(2026, 11, 28, 13, 0, tzinfo=datetime.UTC)),
    ],
)
def test_deadline_is_the_right_instant_in_any_zone(
    aware: datetime.datetime, period: datetime.timedelta, deadline_utc: datetime.datetime
) -> None:
    harm = {datetime.timedelta(hours=72): ["c"], 2 * DAY: ["b"], 15 * DAY: ["c"], 10 * DAY: ["a"]}[period]
    failure_mode = "privacy" if period == datetime.timedelta(hours=72) else "safety"
    regime = "gdpr-art33" if failure_mode == "privacy" else "eu-ai-act-art73"
    got = regimes(deadlines.obligations(incident(failure_mode, harm=harm), system(), awareness_at=aware))
    assert got[regime] == deadline_utc
    assert got[regime].utcoffset() == datetime.timedelta(0)
    # Naive wall-clock arithmetic would be an hour off across the DST change.
    if aware.tzinfo is BERLIN and period == datetime.timedelta(hours=72):
        assert (aware + period).astimezone(datetime.UTC) != deadline_utc


def test_the_serialised_deadline_is_utc() -> None:
    aware = datetime.datetime(2026, 10, 24, 12, 0, tzinfo=BERLIN)
    (gdpr,) = deadlines.obligations(incident("privacy"), system(high_risk=False), awareness_at=aware)
    assert gdpr.dump()["deadline"] == "2026-10-27T10:00:00Z"


def gdpr_clock() -> ReportingObligation:
    return ReportingObligation(regime="gdpr-art33", deadline=T0 + datetime.timedelta(hours=72))


def at(hours: float) -> datetime.datetime:
    return T0 + datetime.timedelta(hours=hours)


def test_each_warning_is_emitted_once_across_frequent_checks() -> None:
    emitted: list[tuple[float, ClockWarning]] = []
    previous = None
    hour = 0.0
    while hour <= 80:
        result = deadlines.check(gdpr_clock(), start=T0, now=at(hour), previous=previous)
        emitted += [(hour, warning) for warning in result.crossed]
        previous = at(hour)
        hour += 0.25
    # 90 % of 72 h is 64.8 h: the first check at or after it is 65.0.
    assert emitted == [(36.0, ClockWarning.HALF), (65.0, ClockWarning.NINETY), (72.0, ClockWarning.OVERDUE)]


def test_a_check_that_skips_ahead_reports_every_point_passed_in_order() -> None:
    result = deadlines.check(gdpr_clock(), start=T0, now=at(73), previous=at(1))
    assert result.crossed == (ClockWarning.HALF, ClockWarning.NINETY, ClockWarning.OVERDUE)
    assert result.state is ReportState.OVERDUE
    assert result.obligation.state is ReportState.OVERDUE
    assert result.seconds_left == -3600
    assert "OVERDUE since 2026-11-29 13:30 UTC (1h 0m ago)" in result.message


def test_same_instant_twice_emits_nothing_new() -> None:
    first = deadlines.check(gdpr_clock(), start=T0, now=at(36), previous=at(35))
    again = deadlines.check(gdpr_clock(), start=T0, now=at(36), previous=at(36))
    assert first.crossed == (ClockWarning.HALF,)
    assert again.crossed == ()


def test_pending_with_time_left() -> None:
    berlin_now = at(10).astimezone(BERLIN)
    result = deadlines.check(gdpr_clock(), start=T0.astimezone(TOKYO), now=berlin_now, previous=None)
    assert result.state is ReportState.PENDING
    assert result.crossed == ()
    assert result.seconds_left == 62 * 3600
    assert result.message.endswith("due 2026-11-29 13:30 UTC (2d 14h left)")


def test_a_submitted_report_never_warns() -> None:
    submitted = deadlines.submit(gdpr_clock(), " DPA-2026-0042 ")
    result = deadlines.check(submitted, start=T0, now=at(100), previous=at(1))
    assert result.state is ReportState.SUBMITTED
    assert result.crossed == ()
    assert submitted.reference == "DPA-2026-0042"
    with pytest.raises(ValueError, match="reference"):
        deadlines.submit(gdpr_clock(), "  ")


def test_merge_keeps_submissions_and_moves_pending_deadlines() -> None:
    before = deadlines.obligations(incident("privacy"), system())
    assert set(regimes(before)) == {"eu-ai-act-art73-classification", "gdpr-art33"}
    recorded = [deadlines.submit(o, "DPA-1") if o.regime == "gdpr-art33" else o for o in before]
    # A responder classifies the incident as critical-infrastructure harm.
    after = deadlines.merge(recorded, deadlines.obligations(incident("privacy", harm=["b"]), system()))
    by_regime = {o.regime: o for o in after}
    assert set(by_regime) == {"eu-ai-act-art73", "gdpr-art33"}  # the pending classification is superseded
    assert by_regime["eu-ai-act-art73"].deadline == T0 + 2 * DAY
    assert by_regime["gdpr-art33"].state is ReportState.SUBMITTED
    assert by_regime["gdpr-art33"].reference == "DPA-1"


def test_a_submitted_classification_stays_on_record() -> None:
    (classification, _gdpr) = deadlines.obligations(incident("privacy"), system())
    assessed = deadlines.submit(classification, "not serious: no person affected")
    after = deadlines.merge([assessed], deadlines.obligations(incident("privacy", harm=["c"]), system()))
    assert [o.regime for o in after] == ["eu-ai-act-art73", "gdpr-art33", "eu-ai-act-art73-classification"]
