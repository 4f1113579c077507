"""The classification matrix in action: monitor states → severity, response, phase, incident, actions."""

from __future__ import annotations

import copy
import datetime
from typing import Any

import pytest

from airlock.api.aisystem import Containment, MonitorState, MonitorStatus, Phase
from airlock.api.common import Action, FailureMode, Response, Severity
from airlock.domain.decisions import Decision, OpenIncident, Situation, classify, decide, release_blockers
from airlock.domain.plan import Plan
from tests.domain.builders import ANSWER_DRIFT, PII_LEAK, SEVERITIES, at, breached, build, ok, status

SEV1, SEV2, SEV3, SEV4 = Severity.SEV1, Severity.SEV2, Severity.SEV3, Severity.SEV4
SHUTDOWN_ACTIONS = (Action.REROUTE, Action.SCALE_TO_ZERO)
ESCALATE_ACTIONS = (Action.REROUTE, Action.PAUSE_ROLLOUT)
PROVIDER_DOWN = "Prometheus unreachable"


def run(
    plan: Plan,
    *monitors: MonitorStatus,
    now: datetime.datetime | None = None,
    containment: Containment | None = None,
    incident: OpenIncident | None = None,
    provider_error_since: datetime.datetime | None = None,
) -> Decision:
    return decide(
        Situation(
            plan=plan,
            monitors=list(monitors),
            now=now or at(),
            containment=containment,
            incident=incident,
            provider_error_since=provider_error_since,
        )
    )


def incident(
    severity: Severity,
    *,
    detected: datetime.datetime | None = None,
    since: datetime.datetime | None = None,
    acknowledged: bool = False,
    approved: bool = False,
) -> OpenIncident:
    return OpenIncident(
        name="support-chatbot-20261126-133012",
        severity=severity,
        detected_at=detected or at(),
        acknowledged=acknowledged,
        approved=approved,
        severity_since=since,
    )


def severities(**changes: Any) -> dict[str, Any]:
    result = copy.deepcopy(SEVERITIES)
    result.update(changes)
    return result


def error(name: str = "pii-leak") -> MonitorStatus:
    return status(name, MonitorState.ERROR, None, None)


# --- the five responses -----------------------------------------------------------


def test_all_ok_is_healthy() -> None:
    decision = run(build(), ok("pii-leak"), ok("answer-quality-drift"))
    assert decision.phase is Phase.HEALTHY
    assert (decision.severity, decision.response) == (None, None)
    assert decision.open_incident is False
    assert decision.contain == ()
    assert decision.reason == "all monitors ok"


def test_observe_records_without_an_incident() -> None:
    decision = run(build(), breached("pii-leak", SEV4, 0.1))
    assert (decision.severity, decision.response) == (SEV4, Response.OBSERVE)
    assert decision.phase is Phase.DEGRADED
    assert decision.open_incident is False
    assert decision.incident_severity is None
    assert decision.contain == ()


def test_investigate_opens_an_incident_and_touches_nothing() -> None:
    decision = run(build(), breached("pii-leak", SEV3, 0.2))
    assert decision.response is Response.INVESTIGATE
    assert (decision.open_incident, decision.incident_severity) == (True, SEV3)
    assert decision.contain == ()
    assert decision.acts is False
    assert decision.phase is Phase.DEGRADED
    assert decision.reason == "monitor pii-leak breached SEV3 (0.2)"


def test_escalate_opens_an_incident_but_waits_for_approval() -> None:
    decision = run(build(), breached("answer-quality-drift", SEV2, -0.2))
    assert decision.response is Response.ESCALATE
    assert (decision.open_incident, decision.incident_severity) == (True, SEV2)
    assert decision.contain == ()
    assert decision.phase is Phase.DEGRADED


def test_escalate_waits_while_the_incident_is_open_but_unapproved() -> None:
    decision = run(build(), breached("answer-quality-drift", SEV2, -0.2), incident=incident(SEV2), now=at(minutes=5))
    assert decision.contain == ()


def test_escalate_acts_once_a_responder_approves() -> None:
    decision = run(
        build(), breached("answer-quality-drift", SEV2, -0.2), incident=incident(SEV2, approved=True), now=at(minutes=5)
    )
    assert decision.contain == ESCALATE_ACTIONS
    assert decision.containment_severity is SEV2
    assert decision.acts is True
    assert decision.phase is Phase.CONTAINED


def test_shutdown_acts_at_once() -> None:
    decision = run(build(), breached("pii-leak", SEV1, 0.8), ok("answer-quality-drift"))
    assert (decision.severity, decision.response) == (SEV1, Response.SHUTDOWN)
    assert decision.contain == SHUTDOWN_ACTIONS
    assert decision.containment_severity is SEV1
    assert (decision.open_incident, decision.incident_severity) == (True, SEV1)
    assert decision.phase is Phase.SHUT_DOWN
    assert decision.reason == "monitor pii-leak breached SEV1 (0.8)"
    assert decision.classification.failure_mode is FailureMode.PRIVACY


def test_contain_acts_at_once() -> None:
    plan = build(severities=severities(SEV2={"response": "contain", "actions": ["isolate", "pauseRollout"]}))
    decision = run(plan, breached("answer-quality-drift", SEV2, -0.3))
    assert decision.response is Response.CONTAIN
    assert decision.contain == (Action.ISOLATE, Action.PAUSE_ROLLOUT)
    assert decision.phase is Phase.CONTAINED


def test_contain_that_scales_to_zero_is_shut_down_before_and_after_it_applies() -> None:
    # The phase must not flip Contained → ShutDown once the actions are recorded.
    plan = build(severities=severities(SEV2={"response": "contain", "actions": ["scaleToZero"]}))
    first = run(plan, breached("answer-quality-drift", SEV2, -0.3))
    applied = Containment(active=True, actions=[Action.SCALE_TO_ZERO], severity=SEV2)
    second = run(plan, breached("answer-quality-drift", SEV2, -0.3), containment=applied, now=at(seconds=15))
    assert first.phase is second.phase is Phase.SHUT_DOWN


def test_containment_holds_after_monitors_recover() -> None:
    held = Containment(active=True, actions=[Action.ISOLATE], severity=SEV2)
    decision = run(build(), ok("pii-leak"), ok("answer-quality-drift"), containment=held)
    assert decision.phase is Phase.CONTAINED
    assert decision.contain == ()


def test_manual_shutdown_is_shut_down() -> None:
    held = Containment(active=True, actions=[Action.REROUTE], manual=True, by="alice@example.com")
    assert run(build(), ok(), containment=held).phase is Phase.SHUT_DOWN


def test_incident_severity_is_never_silently_lowered() -> None:
    decision = run(build(), ok("pii-leak"), incident=incident(SEV1), now=at(minutes=1))
    assert decision.severity is SEV1
    assert decision.incident_severity is SEV1


def test_worse_breach_raises_the_open_incident() -> None:
    decision = run(build(), breached("pii-leak", SEV1), incident=incident(SEV3), now=at(minutes=1))
    assert decision.incident_severity is SEV1
    assert decision.contain == SHUTDOWN_ACTIONS


# --- escalation on ackWithin ------------------------------------------------------


def test_unacknowledged_escalate_moves_to_the_next_higher_severity_after_ack_within() -> None:
    plan = build()
    drift = breached("answer-quality-drift", SEV2, -0.2)

    waiting = run(plan, drift, incident=incident(SEV2), now=at(minutes=15, seconds=-1))
    assert waiting.severity is SEV2
    assert waiting.escalated_from is None
    assert waiting.contain == ()

    escalated = run(plan, drift, incident=incident(SEV2), now=at(minutes=15))
    assert escalated.severity is SEV1
    assert escalated.escalated_from is SEV2
    assert escalated.response is Response.SHUTDOWN
    assert escalated.incident_severity is SEV1
    assert escalated.contain == SHUTDOWN_ACTIONS
    assert escalated.phase is Phase.SHUT_DOWN
    assert escalated.reason == "SEV2 not acknowledged in time: escalated to SEV1"


def test_acknowledged_incident_does_not_escalate() -> None:
    decision = run(
        build(),
        breached("answer-quality-drift", SEV2, -0.2),
        incident=incident(SEV2, acknowledged=True),
        now=at(minutes=60),
    )
    assert decision.severity is SEV2
    assert decision.escalated_from is None
    assert decision.contain == ()


def test_ack_within_counts_from_when_the_incident_reached_its_severity() -> None:
    raised = incident(SEV2, detected=at(), since=at(minutes=20))
    drift = breached("answer-quality-drift", SEV2, -0.2)
    assert run(build(), drift, incident=raised, now=at(minutes=34)).severity is SEV2
    assert run(build(), drift, incident=raised, now=at(minutes=35)).severity is SEV1


def test_a_fresh_breach_worse_than_the_incident_gets_its_own_ack_within() -> None:
    # An old SEV3 incident must not make a brand-new SEV2 page skip its 15 minutes.
    old = incident(SEV3, detected=at())
    decision = run(build(), breached("answer-quality-drift", SEV2, -0.2), incident=old, now=at(minutes=40))
    assert decision.severity is SEV2
    assert decision.escalated_from is None
    assert decision.contain == ()


def test_each_level_gets_its_own_ack_within() -> None:
    plan = build(severities=severities(SEV3={"response": "escalate", "ackWithin": "10m"}))
    open_sev3 = incident(SEV3, detected=at())
    low = breached("pii-leak", SEV3, 0.2)

    assert run(plan, low, incident=open_sev3, now=at(minutes=9)).severity is SEV3
    at_ten = run(plan, low, incident=open_sev3, now=at(minutes=10))
    assert (at_ten.severity, at_ten.escalated_from, at_ten.contain) == (SEV2, SEV3, ())
    assert run(plan, low, incident=open_sev3, now=at(minutes=24)).severity is SEV2
    at_25 = run(plan, low, incident=open_sev3, now=at(minutes=25))
    assert (at_25.severity, at_25.escalated_from, at_25.contain) == (SEV1, SEV3, SHUTDOWN_ACTIONS)


def test_no_escalation_without_a_higher_severity_defined() -> None:
    plan = build(
        severities={"SEV2": SEVERITIES["SEV2"], "SEV3": SEVERITIES["SEV3"]},
        monitors=[copy.deepcopy(ANSWER_DRIFT)],
        fallback={"service": "chatbot", "selector": {"app": "chatbot-fallback"}},
    )
    decision = run(plan, breached("answer-quality-drift", SEV2, -0.2), incident=incident(SEV2), now=at(minutes=60))
    assert decision.severity is SEV2
    assert decision.escalated_from is None


def test_investigate_never_escalates_by_time() -> None:
    decision = run(build(), breached("pii-leak", SEV3, 0.2), incident=incident(SEV3), now=at(minutes=600))
    assert decision.severity is SEV3


# --- monitoring gaps and provider errors ------------------------------------------


def test_monitoring_gap_is_unknown_and_named() -> None:
    decision = run(build(), status("pii-leak", MonitorState.NO_DATA, None, None), ok("answer-quality-drift"))
    assert decision.phase is Phase.UNKNOWN
    assert decision.classification.monitoring_healthy is False
    assert decision.classification.unhealthy == ["pii-leak"]
    assert decision.reason == "monitoring gap: pii-leak"
    assert decision.contain == ()


def test_no_data_treated_as_ok_is_healthy() -> None:
    pii = copy.deepcopy(PII_LEAK)
    pii["noData"] = "ok"
    plan = build(monitors=[pii])
    decision = run(plan, status("pii-leak", MonitorState.NO_DATA, None, None))
    assert decision.phase is Phase.HEALTHY
    assert decision.classification.monitoring_healthy is True


def test_a_breach_outranks_a_gap_in_another_monitor() -> None:
    decision = run(build(), breached("pii-leak", SEV3, 0.2), error("answer-quality-drift"))
    assert decision.phase is Phase.DEGRADED
    assert decision.classification.unhealthy == ["answer-quality-drift"]
    assert decision.classification.provider_error is False


def test_provider_error_with_hold_never_contains() -> None:
    plan = build()  # onProviderError: hold (the default)
    decision = run(
        plan, error("pii-leak"), error("answer-quality-drift"), now=at(minutes=600), provider_error_since=at()
    )
    assert decision.classification.provider_error is True
    assert decision.contain == ()
    assert decision.fail_closed is False
    assert decision.phase is Phase.UNKNOWN
    assert decision.open_incident is False


def fail_closed_plan(**extra: Any) -> Plan:
    return build(
        onProviderError="contain",
        failClosedAfter="5m",
        severities=severities(SEV2={"response": "contain", "actions": ["isolate"]}),
        **extra,
    )


def test_provider_error_with_contain_waits_for_fail_closed_after() -> None:
    decision = run(
        fail_closed_plan(),
        error("pii-leak"),
        error("answer-quality-drift"),
        now=at(minutes=5, seconds=-1),
        provider_error_since=at(),
    )
    assert decision.contain == ()
    assert decision.fail_closed is False
    assert decision.phase is Phase.UNKNOWN


def test_provider_error_with_contain_fails_closed_at_the_mildest_containing_severity() -> None:
    decision = run(
        fail_closed_plan(),
        error("pii-leak"),
        error("answer-quality-drift"),
        now=at(minutes=5),
        provider_error_since=at(),
    )
    assert decision.fail_closed is True
    assert decision.severity is SEV2, "SEV2 (contain) is milder than SEV1 (shutdown)"
    assert decision.response is Response.CONTAIN
    assert decision.contain == (Action.ISOLATE,)
    assert decision.containment_severity is SEV2
    assert decision.phase is Phase.CONTAINED
    assert PROVIDER_DOWN in decision.reason
    assert "5m" in decision.reason


def test_partial_provider_error_does_not_fail_closed() -> None:
    decision = run(
        fail_closed_plan(), error("pii-leak"), ok("answer-quality-drift"), now=at(minutes=60), provider_error_since=at()
    )
    assert decision.classification.provider_error is False
    assert decision.contain == ()
    assert decision.phase is Phase.UNKNOWN


def test_fail_closed_needs_to_know_since_when() -> None:
    decision = run(fail_closed_plan(), error("pii-leak"), error("answer-quality-drift"), now=at(minutes=60))
    assert decision.contain == ()


def test_fail_closed_without_any_containing_severity_holds() -> None:
    plan = build(
        onProviderError="contain",
        severities=severities(SEV1={"response": "escalate", "actions": ["reroute"], "ackWithin": "5m"}),
    )
    decision = run(
        plan, error("pii-leak"), error("answer-quality-drift"), now=at(minutes=60), provider_error_since=at()
    )
    assert decision.contain == ()
    assert decision.fail_closed is False


# --- dryRun ---------------------------------------------------------------------------


def test_dry_run_records_what_it_would_do_and_touches_nothing() -> None:
    decision = run(build(mode="dryRun"), breached("pii-leak", SEV1, 0.8))
    assert decision.would_contain == SHUTDOWN_ACTIONS
    assert decision.contain == ()
    assert decision.acts is False
    assert decision.containment_severity is None
    assert decision.open_incident is True, "dryRun still records and notifies"
    assert decision.phase is Phase.DEGRADED


def test_dry_run_fail_closed_is_only_would_contain() -> None:
    decision = run(
        fail_closed_plan(mode="dryRun"),
        error("pii-leak"),
        error("answer-quality-drift"),
        now=at(minutes=10),
        provider_error_since=at(),
    )
    assert decision.contain == ()
    assert decision.would_contain == (Action.ISOLATE,)
    assert decision.phase is Phase.DEGRADED


# --- classification and release -------------------------------------------------------


def test_classify_picks_the_worst_monitor() -> None:
    result = classify(build(), [breached("pii-leak", SEV3, 0.2), breached("answer-quality-drift", SEV2, -0.3)])
    assert result.severity is SEV2
    assert result.trigger is not None
    assert result.trigger.name == "answer-quality-drift"


def test_classify_tie_goes_to_the_first_monitor() -> None:
    result = classify(build(), [breached("answer-quality-drift", SEV2, -0.3), breached("pii-leak", SEV2, 0.4)])
    assert result.trigger is not None
    assert result.trigger.name == "answer-quality-drift"


def test_classify_with_no_monitors_is_healthy_not_a_provider_error() -> None:
    result = classify(build(), [])
    assert (result.severity, result.monitoring_healthy, result.provider_error) == (None, True, False)


def test_reason_for_a_no_data_breach() -> None:
    decision = run(build(), status("pii-leak", MonitorState.BREACHED, SEV3, None))
    assert decision.reason == "monitor pii-leak breached SEV3 (no data)"


@pytest.mark.parametrize(
    ("monitors", "blocking"),
    [
        ([breached("pii-leak", SEV1)], ["pii-leak"]),
        ([breached("pii-leak", SEV3), breached("answer-quality-drift", SEV2)], []),
        ([ok("pii-leak"), error("answer-quality-drift")], []),
        ([status("pii-leak", MonitorState.NO_DATA, None, None)], []),
    ],
)
def test_release_blockers_are_monitors_still_breaching_at_a_containing_level(
    monitors: list[MonitorStatus], blocking: list[str]
) -> None:
    assert [s.name for s in release_blockers(build(), monitors)] == blocking


def test_release_blockers_follow_the_plans_own_matrix() -> None:
    plan = build(severities=severities(SEV3={"response": "contain", "actions": ["isolate"]}))
    assert [s.name for s in release_blockers(plan, [breached("pii-leak", SEV3, 0.2)])] == ["pii-leak"]
