"""report(): the practice record per system, from drill incidents only."""

from __future__ import annotations

import datetime

from airlock.api.incident import AIIncident
from airlock.domain import drills
from tests.drills.plans import T0, drill_incident


def later(minutes: float) -> datetime.datetime:
    return T0 + datetime.timedelta(minutes=minutes)


def test_drills_are_grouped_per_system_and_sorted() -> None:
    incidents = [
        drill_incident("support-chatbot", at=later(60), acknowledged_after=90),
        drill_incident("fraud-scorer", namespace="payments", at=later(5), acknowledged_after=30),
        drill_incident("content-moderator", namespace="trust-safety", at=later(1)),
        drill_incident("support-chatbot", at=later(0), acknowledged_after=30),
        drill_incident("support-chatbot", namespace="ml-staging", at=later(2), acknowledged_after=10),
    ]
    summaries = drills.report(incidents)
    assert [(s.namespace, s.system, s.drills) for s in summaries] == [
        ("ml-prod", "support-chatbot", 2),
        ("ml-staging", "support-chatbot", 1),
        ("payments", "fraud-scorer", 1),
        ("trust-safety", "content-moderator", 1),
    ]


def test_real_incidents_are_not_drills() -> None:
    real = drill_incident("support-chatbot", drill=False, acknowledged_after=5)
    assert drills.report([real]) == []
    summaries = drills.report([real, drill_incident("support-chatbot", at=later(-10), acknowledged_after=40)])
    assert [s.drills for s in summaries] == [1]
    assert summaries[0].last_time_to_acknowledge_seconds == 40


def test_the_last_drill_is_the_latest_whatever_the_order_given() -> None:
    first = drill_incident("support-chatbot", at=later(0), scenario="drift", acknowledged_after=30, gaps=("old gap",))
    last = drill_incident("support-chatbot", at=later(60), scenario="privacy", acknowledged_after=90, gaps=("new",))
    (summary,) = drills.report([last, first])
    assert summary.last_at == later(60)
    assert summary.last_scenario == "privacy"
    assert summary.last_incident == last.metadata.name == "support-chatbot-drill-20261126-143012"
    assert summary.last_time_to_acknowledge_seconds == 90
    assert summary.acknowledged is True
    assert summary.gaps == ["new"]


def test_the_median_counts_acknowledged_drills_only() -> None:
    incidents = [
        drill_incident("support-chatbot", at=later(0), acknowledged_after=30),
        drill_incident("support-chatbot", at=later(10), acknowledged_after=600),
        drill_incident("support-chatbot", at=later(20), acknowledged_after=90),
        drill_incident("support-chatbot", at=later(30), acknowledged_after=60),
        drill_incident("support-chatbot", at=later(40)),  # nobody acknowledged the last one
    ]
    (summary,) = drills.report(incidents)
    assert summary.drills == 5
    assert summary.median_time_to_acknowledge_seconds == 75.0
    assert summary.acknowledged is False
    assert summary.last_time_to_acknowledge_seconds is None


def test_a_system_whose_drills_were_never_acknowledged_has_no_median() -> None:
    (summary,) = drills.report([drill_incident("fraud-scorer", namespace="payments")])
    assert (summary.acknowledged, summary.median_time_to_acknowledge_seconds) == (False, None)


def test_time_to_acknowledge_comes_from_the_status_when_the_record_lacks_it() -> None:
    # An operator that records acknowledgedAt but not the drill's own timing.
    incident = drill_incident("support-chatbot", acknowledged_after=45)
    assert incident.status is not None
    assert incident.status.drill is not None
    incident.status.drill.time_to_acknowledge_seconds = None
    assert drills.time_to_acknowledge(incident) == 45.0
    (summary,) = drills.report([incident])
    assert summary.last_time_to_acknowledge_seconds == 45.0


def test_a_drill_without_its_record_still_counts_with_the_scenario_from_its_trigger() -> None:
    incident = drill_incident("support-chatbot", scenario="adversarial", record=False)
    assert drills.scenario_of(incident) == "adversarial"
    (summary,) = drills.report([incident])
    assert (summary.drills, summary.last_scenario, summary.gaps) == (1, "adversarial", [])


def test_a_drill_without_a_status_is_counted_by_its_creation_time() -> None:
    body = drill_incident("support-chatbot").dump()
    body.pop("status")
    body["metadata"]["creationTimestamp"] = "2026-11-26T15:00:00Z"
    incident = AIIncident.model_validate(body)
    (summary,) = drills.report([incident, drill_incident("support-chatbot", at=later(0), acknowledged_after=12)])
    assert summary.drills == 2
    assert summary.last_at == datetime.datetime(2026, 11, 26, 15, tzinfo=datetime.UTC)
    assert summary.acknowledged is False
    assert summary.median_time_to_acknowledge_seconds == 12


def test_the_json_form_is_camel_case() -> None:
    (summary,) = drills.report([drill_incident("support-chatbot", acknowledged_after=30, gaps=("g",))])
    assert summary.dump() == {
        "namespace": "ml-prod",
        "system": "support-chatbot",
        "drills": 1,
        "lastAt": "2026-11-26T13:30:12Z",
        "lastScenario": "privacy",
        "lastIncident": "support-chatbot-drill-20261126-133012",
        "lastTimeToAcknowledgeSeconds": 30,
        "acknowledged": True,
        "medianTimeToAcknowledgeSeconds": 30.0,
        "gaps": ["g"],
    }
