"""metav1.Condition bookkeeping: lastTransitionTime moves only when the status changes."""

from __future__ import annotations

from airlock.api.common import Condition, ConditionStatus
from airlock.domain.conditions import CONTAINED, MONITORING_HEALTHY, READY, STALLED, get_condition, set_condition
from tests.domain.builders import at


def test_condition_types_are_the_binding_names() -> None:
    assert (READY, CONTAINED, MONITORING_HEALTHY, STALLED) == ("Ready", "Contained", "MonitoringHealthy", "Stalled")


def test_new_condition_starts_its_transition_now() -> None:
    conditions = set_condition([], READY, True, "Healthy", "all monitors ok", 4, at())
    assert conditions == [
        Condition(
            type="Ready",
            status=ConditionStatus.TRUE,
            reason="Healthy",
            message="all monitors ok",
            observed_generation=4,
            last_transition_time=at(),
        )
    ]


def test_same_status_keeps_the_transition_time_but_updates_the_rest() -> None:
    first = set_condition([], CONTAINED, True, "MonitorBreached", "pii-leak > 0.5", 4, at())
    again = set_condition(first, CONTAINED, True, "ManualShutdown", "held by alice", 5, at(minutes=10))
    (condition,) = again
    assert condition.last_transition_time == at()
    assert (condition.reason, condition.message, condition.observed_generation) == (
        "ManualShutdown",
        "held by alice",
        5,
    )


def test_status_change_moves_the_transition_time() -> None:
    conditions = set_condition([], MONITORING_HEALTHY, True, "AllMonitorsOk", "", 1, at())
    conditions = set_condition(conditions, MONITORING_HEALTHY, False, "NoData", "pii-leak", 1, at(minutes=1))
    assert conditions[0].status is ConditionStatus.FALSE
    assert conditions[0].last_transition_time == at(minutes=1)
    conditions = set_condition(conditions, MONITORING_HEALTHY, None, "ProviderError", "", 1, at(minutes=2))
    assert conditions[0].status is ConditionStatus.UNKNOWN
    assert conditions[0].last_transition_time == at(minutes=2)
    conditions = set_condition(conditions, MONITORING_HEALTHY, None, "ProviderError", "still", 1, at(minutes=3))
    assert conditions[0].last_transition_time == at(minutes=2)


def test_transition_time_survives_a_round_trip_through_the_status() -> None:
    written = set_condition([], READY, False, "Invalid", "spec.fallback: ...", 2, at())
    read_back = [Condition.model_validate(c.dump()) for c in written]
    again = set_condition(read_back, READY, False, "Invalid", "spec.fallback: ...", 2, at(minutes=5))
    assert again[0].last_transition_time == at()
    assert again[0].dump()["lastTransitionTime"] == "2026-11-26T13:30:12Z"


def test_other_conditions_are_kept_in_order() -> None:
    conditions = set_condition([], READY, True, "Healthy", "", 1, at())
    conditions = set_condition(conditions, CONTAINED, False, "NotContained", "", 1, at())
    conditions = set_condition(conditions, MONITORING_HEALTHY, True, "AllMonitorsOk", "", 1, at())
    conditions = set_condition(conditions, CONTAINED, True, "MonitorBreached", "", 1, at(minutes=1))

    assert [c.type for c in conditions] == ["Ready", "Contained", "MonitoringHealthy"]
    assert [c.last_transition_time for c in conditions] == [at(), at(minutes=1), at()]


def test_set_condition_does_not_mutate_its_input() -> None:
    original = set_condition([], READY, True, "Healthy", "", 1, at())
    set_condition(original, READY, False, "Degraded", "", 1, at(minutes=1))
    assert original[0].status is ConditionStatus.TRUE


def test_get_condition() -> None:
    conditions = set_condition([], READY, True, "Healthy", "", 1, at())
    found = get_condition(conditions, READY)
    assert found is not None
    assert found.reason == "Healthy"
    assert get_condition(conditions, STALLED) is None
