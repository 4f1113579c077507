"""The pure half of :mod:`airlock.engine.followups`: annotation parsing, retry arithmetic and the outbox.

No cluster, no clock: incidents are built as the operator records them and
Plans with :func:`airlock.domain.plan.build_plan` from the specs a user would
``kubectl apply``, so these tests exercise what a platform team writes.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

import pytest

from airlock.api.common import Audience, Severity
from airlock.api.incident import AIIncident, HarmCategory, Notification, NotificationState
from airlock.domain.plan import Plan, build_plan
from airlock.engine import followups
from airlock.engine.followups import Limits, backoff, due, idempotency_key, outbox, parse_harm, parse_submissions
from tests.domain.builders import NAMESPACE, SYSTEM, at, system_spec

A, B, C, D = (
    HarmCategory.DEATH_OR_HEALTH,
    HarmCategory.CRITICAL_INFRASTRUCTURE,
    HarmCategory.FUNDAMENTAL_RIGHTS,
    HarmCategory.PROPERTY_OR_ENVIRONMENT,
)
INTERNAL, REGULATOR, USERS = Audience.INTERNAL, Audience.REGULATOR, Audience.USERS
NAME = "support-chatbot-20261126-133012"
UID = "6f1c2a9e-0d7b-4f43-9a51-3f0e8c2b7d10"


# ------------------------------------------------------------------ parse_harm


@pytest.mark.parametrize(
    ("value", "harm", "widespread"),
    [
        ("b", [B], False),
        ("a,c", [A, C], False),
        ("c,widespread", [C], True),
        ("none", [], False),
        ("(b)", [B], False),
        ("", [], False),
        ("widespread", [], True),
        ("C, a ; A", [A, C], False),  # case, spaces, ';' as a separator, a repeat counted once, sorted
        ("d,(a),WIDESPREAD", [A, D], True),
        ("art3-49-b", [B], False),
        ("none, b", [B], False),
    ],
)
def test_parse_harm_valid_forms(value: str, harm: list[HarmCategory], widespread: bool) -> None:
    assert parse_harm(value) == (harm, widespread)


@pytest.mark.parametrize(
    ("value", "bad"),
    [("e", "'e'"), ("b,x", "'x'"), ("a, widespred", "'widespred'"), ("ab", "'ab'"), ("b c", "'b c'")],
)
def test_parse_harm_names_the_bad_part(value: str, bad: str) -> None:
    with pytest.raises(ValueError, match=re.escape("airlock.dev/harm: ")) as caught:
        parse_harm(value)
    message = str(caught.value)
    assert bad in message
    assert "(a, b, c, d)" in message
    assert "'widespread'" in message


# ----------------------------------------------------------- parse_submissions


def test_parse_submissions_several_regimes() -> None:
    assert parse_submissions("gdpr-art33=DPA-1142; eu-ai-act-art73=EU-77") == {
        "gdpr-art33": "DPA-1142",
        "eu-ai-act-art73": "EU-77",
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("gdpr-art33=DPA-1142", {"gdpr-art33": "DPA-1142"}),
        ("  gdpr-art33 =  DPA-1142  ", {"gdpr-art33": "DPA-1142"}),
        (";gdpr-art33=DPA-1142;;", {"gdpr-art33": "DPA-1142"}),
        ("gdpr-art33=DPA 2026/1142 (phone)", {"gdpr-art33": "DPA 2026/1142 (phone)"}),
        (
            "eu-ai-act-art73-classification=not serious: no person affected",
            {"eu-ai-act-art73-classification": "not serious: no person affected"},
        ),
        ("gdpr-art33=ref=with=equals", {"gdpr-art33": "ref=with=equals"}),
        ("\tgdpr-art33=A ;\n eu-ai-act-art73=B\n", {"gdpr-art33": "A", "eu-ai-act-art73": "B"}),
    ],
)
def test_parse_submissions_whitespace_and_forms(value: str, expected: dict[str, str]) -> None:
    assert parse_submissions(value) == expected


@pytest.mark.parametrize(
    ("value", "bad"),
    [
        ("gdpr-art33", "'gdpr-art33'"),
        ("=DPA-1142", "'=DPA-1142'"),
        ("gdpr-art33=   ", "'gdpr-art33='"),
        ("gdpr-art33=DPA-1142; eu-ai-act-art73", "'eu-ai-act-art73'"),
        ("  = ", "'='"),
    ],
)
def test_parse_submissions_names_the_bad_part(value: str, bad: str) -> None:
    with pytest.raises(ValueError, match=re.escape("airlock.dev/report-submitted: ")) as caught:
        parse_submissions(value)
    assert bad in str(caught.value)
    assert "regime=reference" in str(caught.value)


@pytest.mark.parametrize("value", ["", "   ", ";", " ; ;"])
def test_parse_submissions_nothing_given(value: str) -> None:
    with pytest.raises(ValueError, match="give 'regime=reference'"):
        parse_submissions(value)


# --------------------------------------------------------------------- backoff


def test_backoff_doubles_from_the_base() -> None:
    limits = Limits()
    assert [backoff(n, limits) for n in range(1, 9)] == [2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]


def test_backoff_is_capped() -> None:
    limits = Limits()
    assert backoff(9, limits) == 300.0
    assert backoff(limits.max_attempts, limits) == 300.0
    assert backoff(1000, limits) == 300.0


def test_backoff_before_any_failure_is_the_base() -> None:
    assert backoff(0, Limits()) == 2.0


def test_backoff_follows_the_limits() -> None:
    limits = Limits(backoff_base=0.5, backoff_max=3.0)
    assert [backoff(n, limits) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert isinstance(backoff(3, limits), float)


# ------------------------------------------------------------- idempotency_key


def test_idempotency_key_is_stable() -> None:
    key = idempotency_key(UID, NAME, "ops-webhook", INTERNAL, "opened")
    assert key == idempotency_key(UID, NAME, "ops-webhook", INTERNAL, "opened")
    assert len(key) == 32
    assert int(key, 16) >= 0


def test_idempotency_key_differs_per_part() -> None:
    base = (UID, NAME, "ops-webhook", INTERNAL, "opened")
    variants = [
        ("0b7e1b52-0000-4000-8000-000000000000", NAME, "ops-webhook", INTERNAL, "opened"),  # a re-created incident
        (UID, NAME, "pager", INTERNAL, "opened"),
        (UID, NAME, None, INTERNAL, "opened"),
        (UID, NAME, "ops-webhook", REGULATOR, "opened"),
        (UID, NAME, "ops-webhook", USERS, "opened"),
        (UID, NAME, "ops-webhook", INTERNAL, "contained"),
        (UID, NAME, "ops-webhook", INTERNAL, "severity-SEV1"),
    ]
    keys = {idempotency_key(*base), *(idempotency_key(*v) for v in variants)}
    assert len(keys) == 1 + len(variants)


def test_idempotency_key_without_a_uid_uses_the_name() -> None:
    assert idempotency_key(None, "a", "hook", INTERNAL, "opened") != idempotency_key(
        None, "b", "hook", INTERNAL, "opened"
    )
    # With a uid the name adds nothing: the uid already names exactly one incident.
    assert idempotency_key(UID, "a", "hook", INTERNAL, "opened") == idempotency_key(
        UID, "b", "hook", INTERNAL, "opened"
    )


# ---------------------------------------------------------------------- outbox

SEVERITIES: dict[str, Any] = {
    "SEV1": {
        "response": "shutdown",
        "actions": ["reroute", "scaleToZero"],
        "notify": ["internal", "regulator", "users"],
    },
    "SEV2": {
        "response": "escalate",
        "actions": ["reroute", "pauseRollout"],
        "ackWithin": "15m",
        "notify": ["internal"],
    },
    "SEV3": {"response": "investigate", "notify": ["internal"]},
    "SEV4": {"response": "observe"},
}

WEBHOOK: dict[str, Any] = {
    "name": "ops-webhook",
    "type": "webhook",
    "url": "https://hooks.example.com/airlock",
    "secretRef": {"name": "ops-webhook"},
}
PAGER: dict[str, Any] = {"name": "pager", "type": "pagerduty", "secretRef": {"name": "pagerduty"}}


def channel(base: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    return {**base, **overrides}


def plan_with(*channels: dict[str, Any], auto_send: list[str] | None = None) -> Plan:
    notifications: dict[str, Any] = {"channels": list(channels)}
    if auto_send is not None:
        notifications["autoSend"] = auto_send
    spec = system_spec(severities=SEVERITIES, notifications=notifications)
    return build_plan(NAMESPACE, SYSTEM, spec, None)


def incident(severity: str = "SEV1", *, drill: bool = False, **status: Any) -> AIIncident:
    """An incident just detected at T0 (status keys in camelCase add milestones)."""
    return AIIncident.model_validate(
        {
            "metadata": {"name": NAME, "namespace": NAMESPACE, "uid": UID},
            "spec": {
                "system": SYSTEM,
                "failureMode": "privacy",
                "severity": severity,
                "drill": drill,
                "trigger": {"type": "drill", "reason": "privacy"}
                if drill
                else {"type": "monitor", "monitor": "pii-leak", "value": 0.8, "condition": "> 0.5"},
            },
            "status": {"phase": "Open", "detectedAt": at(0).isoformat(), **status},
        }
    )


def entries(notifications: list[Notification]) -> list[tuple[str | None, str, str | None]]:
    return [(n.channel, n.audience.value, n.event) for n in notifications]


def advance(subject: AIIncident, plan: Plan | None) -> list[Notification]:
    """One followups pass: the new outbox, stored on the incident as the operator writes it."""
    assert subject.status is not None
    subject.status.notifications = outbox(subject, plan)
    return subject.status.notifications


def test_internal_is_sent_over_webhook_and_pagerduty_others_drafted() -> None:
    subject = incident()
    result = advance(subject, plan_with(WEBHOOK, PAGER))
    assert entries(result) == [
        ("ops-webhook", "internal", "opened"),
        ("pager", "internal", "opened"),
        (None, "regulator", "opened"),
        (None, "users", "opened"),
    ]
    for entry in result:
        assert entry.state is NotificationState.DRAFTED
        assert entry.attempts == 0
        assert entry.idempotency_key == idempotency_key(UID, NAME, entry.channel, entry.audience, "opened")
    sent = [n for n in result if n.channel is not None]
    assert all(n.severity is Severity.SEV1 for n in sent)
    assert all(n.next_attempt == at(0) for n in sent)
    drafted = [n for n in result if n.channel is None]
    assert all(n.next_attempt is None for n in drafted)


def test_pagerduty_is_not_told_about_containment() -> None:
    plan = plan_with(WEBHOOK, PAGER)
    subject = incident()
    advance(subject, plan)
    assert subject.status is not None
    subject.status.contained_at = at(2)
    result = advance(subject, plan)
    assert ("ops-webhook", "internal", "contained") in entries(result)
    assert ("pager", "internal", "contained") not in entries(result)
    subject.status.acknowledged_at = at(60)
    subject.status.resolved_at = at(3600)
    result = advance(subject, plan)
    assert [e for c, a, e in entries(result) if c == "pager"] == ["opened", "acknowledged", "resolved"]
    assert [e for c, a, e in entries(result) if c == "ops-webhook"] == [
        "opened",
        "contained",
        "acknowledged",
        "resolved",
    ]


def test_regulator_and_users_are_drafted_only_without_auto_send() -> None:
    everyone = channel(WEBHOOK, audiences=["internal", "regulator", "users"])
    result = advance(incident(), plan_with(everyone))
    assert entries(result) == [
        ("ops-webhook", "internal", "opened"),
        (None, "regulator", "opened"),
        (None, "users", "opened"),
    ]
    # autoSend without internal: internal is only drafted too.
    result = advance(incident(), plan_with(everyone, auto_send=["regulator"]))
    assert entries(result) == [
        (None, "internal", "opened"),
        ("ops-webhook", "regulator", "opened"),
        (None, "users", "opened"),
    ]


def test_auto_send_delivers_regulator_and_users_their_opening_notice_only() -> None:
    everyone = channel(WEBHOOK, audiences=["internal", "regulator", "users"])
    plan = plan_with(everyone, auto_send=["internal", "regulator", "users"])
    subject = incident()
    assert entries(advance(subject, plan)) == [
        ("ops-webhook", "internal", "opened"),
        ("ops-webhook", "regulator", "opened"),
        ("ops-webhook", "users", "opened"),
    ]
    assert subject.status is not None
    subject.status.acknowledged_at = at(60)
    subject.status.contained_at = at(2)
    subject.status.resolved_at = at(3600)
    result = advance(subject, plan)
    assert [(a, e) for c, a, e in entries(result) if a != "internal"] == [("regulator", "opened"), ("users", "opened")]


def test_a_channel_not_carrying_an_audience_leaves_it_drafted() -> None:
    users_only = channel(WEBHOOK, name="status-page", audiences=["users"])
    result = advance(incident(), plan_with(users_only, PAGER, auto_send=["internal", "users"]))
    assert entries(result) == [
        ("pager", "internal", "opened"),
        (None, "regulator", "opened"),
        ("status-page", "users", "opened"),
    ]


def test_a_channels_severities_filter() -> None:
    plan = plan_with(WEBHOOK, channel(PAGER, severities=["SEV1"]))
    assert entries(advance(incident("SEV3"), plan)) == [("ops-webhook", "internal", "opened")]
    assert entries(advance(incident("SEV1"), plan))[:2] == [
        ("ops-webhook", "internal", "opened"),
        ("pager", "internal", "opened"),
    ]
    # No channel takes a SEV3: the internal notice is drafted, not lost.
    only_sev1 = plan_with(channel(WEBHOOK, severities=["SEV1", "SEV2"]))
    assert entries(advance(incident("SEV3"), only_sev1)) == [(None, "internal", "opened")]


def test_a_severity_raise_is_announced_once() -> None:
    plan = plan_with(WEBHOOK, PAGER)
    subject = incident("SEV2")
    first = advance(subject, plan)
    assert entries(first) == [("ops-webhook", "internal", "opened"), ("pager", "internal", "opened")]
    assert [n.severity for n in first] == [Severity.SEV2, Severity.SEV2]
    subject.spec.severity = Severity.SEV1
    raised = advance(subject, plan)
    assert entries(raised) == [
        ("ops-webhook", "internal", "opened"),
        ("pager", "internal", "opened"),
        ("ops-webhook", "internal", "severity-SEV1"),
        ("pager", "internal", "severity-SEV1"),  # PagerDuty re-triggers at the new severity
        (None, "regulator", "opened"),  # SEV1 notifies more audiences
        (None, "users", "opened"),
    ]
    announcements = [n for n in raised if n.event == "severity-SEV1"]
    assert all(n.severity is Severity.SEV1 for n in announcements)
    assert all(n.state is NotificationState.DRAFTED for n in announcements)
    assert entries(advance(subject, plan)) == entries(raised)


def test_a_raise_through_two_levels_announces_each() -> None:
    plan = plan_with(WEBHOOK)
    subject = incident("SEV3")
    advance(subject, plan)
    subject.spec.severity = Severity.SEV2
    advance(subject, plan)
    subject.spec.severity = Severity.SEV1
    result = advance(subject, plan)
    assert [e for c, a, e in entries(result) if c == "ops-webhook"] == ["opened", "severity-SEV2", "severity-SEV1"]


def test_milestones_are_appended_in_order_for_internal_only() -> None:
    both = channel(WEBHOOK, audiences=["internal", "users"])
    plan = plan_with(both, auto_send=["internal", "users"])
    subject = incident()
    advance(subject, plan)
    assert subject.status is not None
    subject.status.acknowledged_at = at(60)
    subject.status.acknowledged_by = "alice@example.com"
    subject.status.contained_at = at(61)
    subject.status.resolved_at = at(3600)
    result = advance(subject, plan)
    assert entries(result) == [
        ("ops-webhook", "internal", "opened"),
        (None, "regulator", "opened"),
        ("ops-webhook", "users", "opened"),
        ("ops-webhook", "internal", "acknowledged"),
        ("ops-webhook", "internal", "contained"),
        ("ops-webhook", "internal", "resolved"),
    ]


def test_milestones_one_at_a_time_keep_their_order() -> None:
    plan = plan_with(WEBHOOK)
    subject = incident("SEV2")
    advance(subject, plan)
    assert subject.status is not None
    subject.status.contained_at = at(2)
    advance(subject, plan)
    subject.status.acknowledged_at = at(60)
    advance(subject, plan)
    subject.status.resolved_at = at(3600)
    result = advance(subject, plan)
    assert [e for _, _, e in entries(result)] == ["opened", "contained", "acknowledged", "resolved"]


def test_drills_send_only_to_internal_channels() -> None:
    everyone = channel(WEBHOOK, audiences=["internal", "regulator", "users"])
    plan = plan_with(everyone, PAGER, auto_send=["internal", "regulator", "users"])
    result = advance(incident(drill=True), plan)
    assert entries(result) == [
        ("ops-webhook", "internal", "opened"),
        ("pager", "internal", "opened"),
        (None, "regulator", "opened"),
        (None, "users", "opened"),
    ]


def test_outbox_twice_adds_nothing() -> None:
    plan = plan_with(WEBHOOK, PAGER)
    subject = incident()
    once = advance(subject, plan)
    twice = outbox(subject, plan)
    assert [n.dump() for n in twice] == [n.dump() for n in once]


def test_outbox_of_an_already_contained_incident_is_complete_at_once() -> None:
    plan = plan_with(WEBHOOK)
    subject = incident(containedAt=at(2).isoformat(), phase="Contained")
    once = advance(subject, plan)
    assert entries(outbox(subject, plan)) == entries(once)
    assert ("ops-webhook", "internal", "contained") in entries(once)


def test_outbox_never_removes_or_changes_entries() -> None:
    delivered = Notification(
        audience=INTERNAL,
        event="opened",
        channel="old-slack",  # a channel since removed from the plan
        state=NotificationState.SENT,
        attempts=3,
        idempotency_key="k-old",
        sent_at=at(5),
    )
    failed = Notification(
        audience=INTERNAL,
        event="opened",
        channel="ops-webhook",
        state=NotificationState.FAILED,
        attempts=12,
        idempotency_key=idempotency_key(UID, NAME, "ops-webhook", INTERNAL, "opened"),
        last_error="HTTP 500",
    )
    subject = incident("SEV3")
    assert subject.status is not None
    subject.status.notifications = [delivered, failed]
    before = [n.dump() for n in subject.status.notifications]
    result = outbox(subject, plan_with(WEBHOOK))
    assert [n.dump() for n in result[:2]] == before
    assert entries(result) == [("old-slack", "internal", "opened"), ("ops-webhook", "internal", "opened")]
    # The severity lowered by hand or the plan gone: still nothing removed.
    assert [n.dump() for n in outbox(subject, None)] == before
    subject.spec.severity = Severity.SEV4
    assert [n.dump() for n in outbox(subject, plan_with(WEBHOOK))] == before


def test_outbox_without_a_plan_or_audience_is_empty() -> None:
    assert outbox(incident(), None) == []
    assert outbox(incident("SEV4"), plan_with(WEBHOOK)) == []


def test_outbox_does_not_mutate_the_incident() -> None:
    subject = incident()
    assert subject.status is not None
    outbox(subject, plan_with(WEBHOOK, PAGER))
    assert subject.status.notifications == []


def test_default_auto_send_is_internal_only() -> None:
    spec = system_spec(severities=SEVERITIES, notifications=None)
    plan = build_plan(NAMESPACE, SYSTEM, spec, None)
    assert followups.auto_send(plan) == [INTERNAL]
    assert followups.auto_send(None) == [INTERNAL]
    assert followups.auto_send(plan_with(WEBHOOK, auto_send=[])) == []


# ------------------------------------------------------------------------- due

NOW = at(minutes=10)


def note(state: NotificationState, channel: str | None = "ops-webhook", **fields: Any) -> Notification:
    return Notification(audience=INTERNAL, event="opened", channel=channel, state=state, **fields)


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (note(NotificationState.DRAFTED), True),
        (note(NotificationState.DRAFTED, next_attempt=at(0)), True),
        (note(NotificationState.SENDING, attempts=1), True),  # a process died mid-attempt: resend, same key
        (note(NotificationState.SENT, attempts=1, sent_at=at(3)), False),
        (note(NotificationState.FAILED, attempts=2, next_attempt=NOW - datetime.timedelta(seconds=1)), True),
        (note(NotificationState.FAILED, attempts=2, next_attempt=NOW), True),
        (note(NotificationState.FAILED, attempts=2, next_attempt=NOW + datetime.timedelta(seconds=1)), False),
        (note(NotificationState.FAILED, attempts=12, last_error="gave up"), False),  # no next attempt: gave up
        (note(NotificationState.DRAFTED, channel=None), False),  # drafted only: a human sends it
        (note(NotificationState.SENDING, channel=None), False),
        (note(NotificationState.FAILED, channel=None, next_attempt=at(0)), False),
    ],
    ids=[
        "drafted",
        "drafted-with-next-attempt",
        "sending",
        "sent",
        "failed-retry-passed",
        "failed-retry-now",
        "failed-retry-future",
        "failed-gave-up",
        "draft-only",
        "draft-only-sending",
        "draft-only-failed",
    ],
)
def test_due(entry: Notification, expected: bool) -> None:
    assert due(entry, NOW) is expected


def test_due_compares_instants_across_zones() -> None:
    berlin = datetime.timezone(datetime.timedelta(hours=1))
    retry = (NOW + datetime.timedelta(minutes=30)).astimezone(berlin)
    entry = note(NotificationState.FAILED, attempts=1, next_attempt=retry)
    assert not due(entry, NOW)
    assert due(entry, NOW + datetime.timedelta(minutes=30))
    naive_past = (NOW - datetime.timedelta(minutes=1)).replace(tzinfo=None)
    assert due(note(NotificationState.FAILED, attempts=1, next_attempt=naive_past), NOW)


def test_a_channel_that_announced_the_incident_hears_how_it_ends_after_a_raise() -> None:
    """A page opened at SEV2 must be acknowledged and resolved, even when the incident was raised past its filter."""
    plan = plan_with(channel(PAGER, severities=["SEV2"]))
    subject = incident("SEV2")
    assert entries(advance(subject, plan)) == [("pager", "internal", "opened")]
    subject.spec.severity = Severity.SEV1
    assert subject.status is not None
    subject.status.acknowledged_at = at(30)
    subject.status.resolved_at = at(90)
    result = entries(advance(subject, plan))
    assert ("pager", "internal", "acknowledged") in result
    assert ("pager", "internal", "resolved") in result
