"""``metav1.Condition`` bookkeeping: transition times move only when the status changes."""

from __future__ import annotations

import datetime

from airlock.api.common import Condition, ConditionStatus

READY = "Ready"
CONTAINED = "Contained"
MONITORING_HEALTHY = "MonitoringHealthy"
STALLED = "Stalled"
NOTICES_READY = "NoticesReady"


def set_condition(
    conditions: list[Condition],
    type_: str,
    status: bool | None,
    reason: str,
    message: str,
    generation: int | None,
    now: datetime.datetime,
) -> list[Condition]:
    """Return ``conditions`` with ``type_`` set; other conditions are kept in order."""
    value = ConditionStatus.UNKNOWN if status is None else ConditionStatus.TRUE if status else ConditionStatus.FALSE
    result: list[Condition] = []
    found = False
    for condition in conditions:
        if condition.type != type_:
            result.append(condition)
            continue
        found = True
        transition = condition.last_transition_time if condition.status is value else now
        result.append(
            Condition(
                type=type_,
                status=value,
                reason=reason,
                message=message,
                observed_generation=generation,
                last_transition_time=transition,
            )
        )
    if not found:
        result.append(
            Condition(
                type=type_,
                status=value,
                reason=reason,
                message=message,
                observed_generation=generation,
                last_transition_time=now,
            )
        )
    return result


def get_condition(conditions: list[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)
