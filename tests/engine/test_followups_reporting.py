"""The reporting clocks as the follow-ups loop keeps them: one Event per warning, the condition and the metric."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any, cast

from airlock.adapters import metrics as m
from airlock.api.incident import AIIncident, IncidentPhase, ReportingObligation, ReportState
from airlock.engine import followups
from airlock.engine.core import Engine
from tests.domain.builders import NAMESPACE, SYSTEM, T0

NAME = "support-chatbot-20261126-133012"


@dataclass
class _Client:
    events: list[tuple[str, str, str]] = field(default_factory=list)

    async def event(self, obj: dict[str, Any], type_: str, reason: str, message: str, **_: Any) -> None:
        self.events.append((type_, reason, message))


@dataclass
class _Engine:
    client: _Client = field(default_factory=_Client)
    systems: dict[Any, Any] = field(default_factory=dict)
    incidents: dict[Any, Any] = field(default_factory=dict)
    provider: Any = None

    def clock(self) -> datetime.datetime:
        return T0


def _incident() -> AIIncident:
    return AIIncident.model_validate(
        {
            "metadata": {"name": NAME, "namespace": NAMESPACE},
            "spec": {
                "system": SYSTEM,
                "failureMode": "privacy",
                "severity": "SEV1",
                "trigger": {"type": "manual", "by": "alice@example.com"},
            },
            "status": {
                "phase": "Contained",
                "detectedAt": T0.isoformat(),
                "reporting": [
                    ReportingObligation(regime="gdpr-art33", deadline=T0 + datetime.timedelta(hours=72)).dump()
                ],
            },
        }
    )


def _gauge() -> float | None:
    return m.REGISTRY.get_sample_value(
        "airlock_report_deadline_seconds", {"namespace": NAMESPACE, "incident": NAME, "regime": "gdpr-art33"}
    )


async def test_warnings_fire_once_the_condition_follows_and_the_metric_counts_down() -> None:
    engine = _Engine()
    loop = followups.Followups(cast(Engine, engine))
    incident = _incident()
    assert incident.status is not None

    await loop._announce_reporting(incident, None, T0 + datetime.timedelta(hours=10))
    assert engine.client.events == []
    assert _gauge() == 62 * 3600
    on_track = {c.type: c for c in incident.status.conditions}["ReportingOnTrack"]
    assert (on_track.status.value, on_track.reason) == ("True", "OnTrack")

    # Past 90 %: both warnings at once, once each, however often the loop looks.
    for _ in range(3):
        await loop._announce_reporting(incident, None, T0 + datetime.timedelta(hours=70))
    assert [reason for _, reason, _ in engine.client.events] == [
        "ReportDeadlineHalfElapsed",
        "ReportDeadlineNinetyPercentElapsed",
    ]
    assert incident.status.reporting[0].warned == ["ReportDeadlineHalfElapsed", "ReportDeadlineNinetyPercentElapsed"]
    on_track = {c.type: c for c in incident.status.conditions}["ReportingOnTrack"]
    assert (on_track.status.value, on_track.reason) == ("False", "NinetyPercentElapsed")
    assert _gauge() == 2 * 3600

    await loop._announce_reporting(incident, None, T0 + datetime.timedelta(hours=73))
    assert [reason for _, reason, _ in engine.client.events][-1] == "ReportOverdue"
    assert incident.status.reporting[0].state.value == "overdue"
    assert _gauge() == -3600

    # Submitted: no more warnings, and the series disappears.
    incident.status.reporting = [
        incident.status.reporting[0].model_copy(update={"state": ReportState.SUBMITTED, "reference": "DPA-1"})
    ]
    await loop._announce_reporting(incident, None, T0 + datetime.timedelta(hours=80))
    assert len(engine.client.events) == 3
    assert _gauge() is None


def _drill() -> AIIncident:
    return AIIncident.model_validate(
        {
            "metadata": {"name": "support-chatbot-drill-20261126-133012", "namespace": NAMESPACE},
            "spec": {
                "system": SYSTEM,
                "failureMode": "privacy",
                "severity": "SEV1",
                "drill": True,
                "trigger": {"type": "drill", "by": "alice@example.com", "reason": "privacy/1"},
            },
            "status": {
                "phase": "Open",
                "detectedAt": T0.isoformat(),
                "drill": {"scenario": "privacy", "decision": "SEV1 privacy: shutdown", "gaps": []},
            },
        }
    )


async def test_a_drill_nobody_acknowledges_ends_after_the_timeout_with_that_as_its_finding() -> None:
    engine = _Engine()
    loop = followups.Followups(cast(Engine, engine), limits=followups.Limits(drill_timeout=600))
    drill = _drill()
    assert drill.status is not None
    await loop._drill(drill, None, T0 + datetime.timedelta(minutes=9))
    assert drill.status.phase is not None
    assert drill.status.phase.value == "Open"
    await loop._drill(drill, None, T0 + datetime.timedelta(minutes=10))
    assert drill.status.phase.value == "Closed"
    assert drill.status.drill is not None
    assert drill.status.drill.gaps == ["nobody acknowledged the drill within 10 min"]
    assert drill.status.drill.time_to_acknowledge_seconds is None
    assert [reason for _, reason, _ in engine.client.events] == ["DrillUnacknowledged"]


def test_a_profile_added_later_starts_no_clock_for_a_closed_incident_but_keeps_existing_ones() -> None:
    from airlock.domain.plan import build_plan
    from tests.domain.builders import system_spec

    spec = system_spec(regulatory={"gdpr": {"personalData": True}})
    plan = build_plan(NAMESPACE, SYSTEM, spec, None)
    loop = followups.Followups(cast(Engine, _Engine()))
    closed = _incident()
    assert closed.status is not None
    closed.status.reporting = []
    closed.status.phase = IncidentPhase.CLOSED
    loop._reporting(closed, plan, T0)
    assert closed.status.reporting == []
    open_ = _incident()
    assert open_.status is not None
    open_.status.reporting = []
    loop._reporting(open_, plan, T0)
    assert [o.regime for o in open_.status.reporting] == ["gdpr-art33"]
