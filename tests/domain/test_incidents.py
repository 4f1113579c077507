"""Incident records: deterministic names, the opening record, time to contain."""

from __future__ import annotations

import datetime
import re
import time
from collections.abc import Iterator

import pytest

from airlock.api import annotations as keys
from airlock.api.common import FailureMode, Severity
from airlock.api.incident import IncidentPhase, PostmortemState, Trigger, TriggerType
from airlock.domain import incidents
from tests.domain.builders import T0, at

# DNS subdomain (RFC 1123), what the API server requires of an object name.
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def test_name_is_the_system_and_the_utc_detection_time() -> None:
    assert incidents.incident_name("support-chatbot", T0) == "support-chatbot-20261126-133012"


def test_drill_names_say_so() -> None:
    assert incidents.incident_name("support-chatbot", T0, drill=True) == "support-chatbot-drill-20261126-133012"
    assert incidents.incident_name("support-chatbot", T0, dry_run=True) == "support-chatbot-dryrun-20261126-133012"


@pytest.fixture
def host_in_tokyo(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run on a host whose local zone is not UTC (as a laptop running the CLI may be)."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("host_in_tokyo")
def test_name_is_deterministic_whatever_the_time_zone() -> None:
    paris = T0.astimezone(datetime.timezone(datetime.timedelta(hours=1)))
    naive_utc = T0.replace(tzinfo=None)  # naive times are UTC, as when serialised
    names = {incidents.incident_name("support-chatbot", when) for when in (T0, paris, naive_utc)}
    assert names == {"support-chatbot-20261126-133012"}


def test_sub_second_differences_name_the_same_incident() -> None:
    assert incidents.incident_name("s", T0) == incidents.incident_name("s", T0 + datetime.timedelta(seconds=0.9))


@pytest.mark.parametrize("drill", [False, True])
@pytest.mark.parametrize(
    "system", ["a" * 253, "a" * 240 + ".bcdefghijklm", "a" * 236 + ".bcdefghijklmnop", "x" * 230 + "-" + "y" * 22]
)
def test_long_names_are_truncated_to_a_valid_name(system: str, drill: bool) -> None:
    name = incidents.incident_name(system, T0, drill=drill)
    assert len(name) <= incidents.MAX_NAME == 253
    assert name.endswith("-drill-20261126-133012" if drill else "-20261126-133012")
    assert DNS_SUBDOMAIN.match(name), name[-30:]


def test_exactly_253_characters_when_truncated() -> None:
    assert len(incidents.incident_name("a" * 253, T0)) == 253


def monitor_trigger() -> Trigger:
    return Trigger(
        type=TriggerType.MONITOR,
        monitor="pii-leak",
        value=0.8,
        condition="> 0.5",
        query='sum(rate(pii_detections_total{app="chatbot"}[1m]))',
    )


def test_open_incident_is_the_audit_record() -> None:
    record = incidents.open_incident(
        system="support-chatbot",
        namespace="ml-prod",
        severity=Severity.SEV1,
        failure_mode=FailureMode.PRIVACY,
        trigger=monitor_trigger(),
        detected=T0,
        now=at(seconds=2),
    )
    assert record.metadata.name == "support-chatbot-20261126-133012"
    assert record.metadata.namespace == "ml-prod"
    assert record.metadata.labels == {keys.SYSTEM_LABEL: "support-chatbot", keys.MANAGED_BY_LABEL: "airlock"}
    assert (record.spec.system, record.spec.severity, record.spec.failure_mode) == (
        "support-chatbot",
        Severity.SEV1,
        FailureMode.PRIVACY,
    )
    assert (record.spec.drill, record.spec.dry_run) == (False, False)
    assert record.spec.trigger == monitor_trigger()
    assert record.status is not None
    assert record.status.phase is IncidentPhase.OPEN
    assert record.status.detected_at == T0
    assert record.status.postmortem is not None
    assert record.status.postmortem.state is PostmortemState.PENDING
    (detected,) = record.status.timeline
    assert (detected.at, detected.type, detected.by) == (at(seconds=2), "Detected", "airlock")
    assert detected.message == "SEV1 privacy: monitor pii-leak > 0.5 (0.8)"
    assert record.dump()["status"]["detectedAt"] == "2026-11-26T13:30:12Z"


def test_manual_incident_records_who_and_why() -> None:
    trigger = Trigger(type=TriggerType.MANUAL, by="alice@example.com", reason="leaking customer emails")
    record = incidents.open_incident(
        system="support-chatbot",
        namespace="ml-prod",
        severity=Severity.SEV1,
        failure_mode=FailureMode.PRIVACY,
        trigger=trigger,
        detected=T0,
        now=T0,
    )
    assert record.status is not None
    (detected,) = record.status.timeline
    assert detected.by == "alice@example.com"
    assert detected.message == "SEV1 privacy: leaking customer emails"


def test_drill_incident_in_dry_run() -> None:
    record = incidents.open_incident(
        system="support-chatbot",
        namespace="ml-prod",
        severity=Severity.SEV2,
        failure_mode=FailureMode.ADVERSARIAL,
        trigger=Trigger(type=TriggerType.DRILL),
        detected=T0,
        now=T0,
        dry_run=True,
        drill=True,
    )
    assert record.metadata.name == "support-chatbot-drill-20261126-133012"
    assert (record.spec.drill, record.spec.dry_run) == (True, True)
    assert record.status is not None
    assert record.status.timeline[0].message == "SEV2 adversarial: drill"


def test_timeline_entry() -> None:
    entry = incidents.entry(at(minutes=3), "Acknowledged", "acknowledged", by="alice@example.com")
    assert (entry.at, entry.type, entry.message, entry.by) == (
        at(minutes=3),
        "Acknowledged",
        "acknowledged",
        "alice@example.com",
    )
    assert incidents.entry(T0, "Contained", "reroute, scaleToZero").by == "airlock"


@pytest.mark.parametrize(
    ("contained", "seconds"),
    [
        (at(seconds=2.1), 2.1),
        (at(), 0.0),
        (at(minutes=1, seconds=0.0004), 60.0),
        (at(seconds=0.0016), 0.002),
        (at(seconds=-5), 0.0),  # clock skew never gives a negative time
    ],
)
def test_time_to_contain(contained: datetime.datetime, seconds: float) -> None:
    assert incidents.time_to_contain(T0, contained) == seconds
