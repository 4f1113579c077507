"""Containment transitions (airlock.domain.transitions): adoption, diffing, reverts, who contained, reporting once."""

from __future__ import annotations

from typing import Any

from airlock.api.aisystem import Containment, ReleaseApproval
from airlock.api.common import Action, FailureMode, Severity
from airlock.domain import containment, transitions
from tests.domain.builders import at
from tests.domain.test_containment import FALLBACK, LIVE_SELECTOR, contained, observed

TARGET = "Deployment chatbot-v7"


def intent(*desired: Action, **changes: Any) -> transitions.Intent:
    base: dict[str, Any] = {
        "system": "support-chatbot",
        "desired": tuple(desired),
        "reason": "monitor pii-leak breached SEV1 (0.8)",
        "severity": Severity.SEV1,
        "failure_mode": FailureMode.PRIVACY,
        "monitors_contain": bool(desired),
        "fallback_selector": FALLBACK,
    }
    base.update(changes)
    return transitions.Intent(**base)


def held(*actions: Action, **changes: Any) -> Containment:
    base: dict[str, Any] = {
        "active": True,
        "actions": list(actions),
        "since": at(0),
        "by": "airlock",
        "reason": "monitor pii-leak breached SEV1 (0.8)",
        "severity": Severity.SEV1,
        "saved": {"replicas": 3, "service": "chatbot", "selector": LIVE_SELECTOR},
    }
    base.update(changes)
    return Containment(**base)


NO_MARKER: tuple[str | None, dict[str, Any] | None] = (None, None)


def test_first_step_saves_before_acting_and_writes_every_wanted_action() -> None:
    step = transitions.plan_step(intent(Action.REROUTE, Action.SCALE_TO_ZERO), None, observed(), NO_MARKER, at(10))
    assert step.writes == [Action.REROUTE, Action.SCALE_TO_ZERO]
    assert step.saved == {"replicas": 3, "service": "chatbot", "selector": LIVE_SELECTOR}
    assert not step.adopted
    assert not step.active
    assert step.applied == ()


def test_nothing_to_write_when_everything_wanted_is_in_effect() -> None:
    step = transitions.plan_step(
        intent(Action.REROUTE, Action.SCALE_TO_ZERO),
        held(Action.REROUTE, Action.SCALE_TO_ZERO),
        contained(),
        NO_MARKER,
        at(10),
    )
    assert step.idle
    assert transitions.idle(intent(Action.REROUTE, Action.SCALE_TO_ZERO), step) == step.current


def test_a_revert_is_written_again_and_the_saved_state_stays_the_original() -> None:
    # Someone scaled the contained Deployment back to 2: the saved "original" stays 3.
    step = transitions.plan_step(
        intent(Action.REROUTE, Action.SCALE_TO_ZERO),
        held(Action.REROUTE, Action.SCALE_TO_ZERO),
        contained(replicas=2),
        NO_MARKER,
        at(10),
    )
    assert step.new == ()
    assert step.undone == (Action.SCALE_TO_ZERO,)
    assert step.saved["replicas"] == 3
    settled = transitions.settle(
        intent(Action.REROUTE, Action.SCALE_TO_ZERO),
        step,
        applied=[Action.SCALE_TO_ZERO],
        failed={},
        accepted=at(11),
        target=TARGET,
    )
    assert [reason for reason, _ in settled.events] == ["ContainmentReverted"]
    assert settled.note == ("ContainmentReverted", f"scaleToZero on {TARGET}")
    assert [(r.action, r.result) for r in settled.records] == [(Action.SCALE_TO_ZERO, "re-applied")]
    assert not settled.newly
    assert settled.containment.since == at(0)


def test_adopts_a_containment_the_target_records_when_the_status_lost_it() -> None:
    saved = {"replicas": 3, "service": "chatbot", "selector": LIVE_SELECTOR}
    marker = ("support-chatbot", saved)
    step = transitions.plan_step(intent(), None, contained(), marker, at(10))
    assert step.adopted
    assert step.active
    assert step.current is not None
    assert step.current.reason == transitions.ADOPTED_REASON
    assert step.applied == (Action.REROUTE, Action.SCALE_TO_ZERO)
    assert step.saved == saved  # the contained state is never taken for the original
    assert step.idle


def test_another_systems_marker_is_not_adopted() -> None:
    step = transitions.plan_step(intent(), None, contained(), ("other-system", {"replicas": 3}), at(10))
    assert not step.adopted
    assert step.current is None


def test_the_targets_saved_state_is_the_base_when_the_status_has_none() -> None:
    # A crash after the marker write, before the status write: the target's record wins.
    step = transitions.plan_step(
        intent(Action.SCALE_TO_ZERO), None, observed(replicas=0), ("other", {"replicas": 5}), at(10)
    )
    assert step.saved == {"replicas": 5}


def test_a_failure_is_reported_once_however_often_it_is_retried() -> None:
    wanted = intent(Action.REROUTE, Action.SCALE_TO_ZERO)
    step = transitions.plan_step(wanted, None, observed(), NO_MARKER, at(10))
    first = transitions.settle(
        wanted,
        step,
        applied=[Action.REROUTE],
        failed={Action.SCALE_TO_ZERO: "403 Forbidden"},
        accepted=at(11),
        target=TARGET,
    )
    assert first.fresh_failures == {Action.SCALE_TO_ZERO: "403 Forbidden"}
    assert [reason for reason, _ in first.events] == ["ActionFailed", "Contained"]
    assert first.containment.actions == [Action.REROUTE]
    assert first.containment.failed == ["scaleToZero: 403 Forbidden"]

    again = transitions.plan_step(wanted, first.containment, observed(service_selector=FALLBACK), NO_MARKER, at(20))
    assert again.new == (Action.SCALE_TO_ZERO,)
    second = transitions.settle(
        wanted, again, applied=[], failed={Action.SCALE_TO_ZERO: "403 Forbidden"}, accepted=at(21), target=TARGET
    )
    assert second.fresh_failures == {}
    assert second.events == ()
    assert second.records == ()

    changed = transitions.settle(
        wanted, again, applied=[], failed={Action.SCALE_TO_ZERO: "500 boom"}, accepted=at(31), target=TARGET
    )
    assert [(r.action, r.result) for r in changed.records] == [(Action.SCALE_TO_ZERO, "failed: 500 boom")]


def test_a_manual_shutdown_is_credited_to_who_asked_not_to_who_annotated_later() -> None:
    manual = intent(
        Action.REROUTE,
        Action.SCALE_TO_ZERO,
        reason="all monitors ok",
        monitors_contain=False,
        manual=True,
        manual_request="PII in answers",
        requester="alice@example.com",
    )
    step = transitions.plan_step(manual, None, observed(), NO_MARKER, at(10))
    settled = transitions.settle(
        manual, step, applied=[Action.REROUTE, Action.SCALE_TO_ZERO], failed={}, accepted=at(11), target=TARGET
    )
    assert settled.by == "alice@example.com"
    assert settled.containment.reason == "manual shutdown by alice@example.com: PII in answers"
    assert settled.containment.manual
    assert settled.containment.manual_request == "PII in answers"
    assert settled.containment.severity is Severity.SEV1
    assert settled.newly

    # Later somebody else's annotation is the one in requested-by; a revert is re-applied in alice's name.
    later = intent(
        Action.REROUTE,
        Action.SCALE_TO_ZERO,
        reason="all monitors ok",
        manual=True,
        manual_request="PII in answers",
        requester="bob@example.com",
    )
    revert = transitions.plan_step(later, settled.containment, contained(replicas=1), NO_MARKER, at(20))
    again = transitions.settle(later, revert, applied=[Action.SCALE_TO_ZERO], failed={}, accepted=at(21), target=TARGET)
    assert again.by == "alice@example.com"


def test_idle_takes_over_an_automatic_containment_as_manual_and_back() -> None:
    auto = held(Action.REROUTE, Action.SCALE_TO_ZERO)
    manual = intent(
        Action.REROUTE,
        Action.SCALE_TO_ZERO,
        manual=True,
        manual_request="hold it",
        requester="alice@example.com",
    )
    step = transitions.plan_step(manual, auto, contained(), NO_MARKER, at(10))
    updated = transitions.idle(manual, step)
    assert updated is not None
    assert updated.manual
    assert updated.manual_request == "hold it"
    assert updated.by == "alice@example.com"
    assert auto.manual is False  # the input is not mutated

    back = transitions.idle(
        intent(Action.REROUTE, Action.SCALE_TO_ZERO),
        transitions.plan_step(intent(Action.REROUTE, Action.SCALE_TO_ZERO), updated, contained(), NO_MARKER, at(20)),
    )
    assert back is not None
    assert not back.manual
    assert back.manual_request is None


def test_release_approvals_survive_a_reapplied_revert_but_not_a_new_action() -> None:
    approvals = [ReleaseApproval(by="alice@example.com", at=at(5), value="r1")]
    current = held(Action.REROUTE, release_approvals=approvals)
    revert = transitions.plan_step(intent(Action.REROUTE), current, observed(), NO_MARKER, at(10))
    assert revert.undone == (Action.REROUTE,)
    kept = transitions.settle(
        intent(Action.REROUTE), revert, applied=[Action.REROUTE], failed={}, accepted=at(11), target=TARGET
    )
    assert kept.containment.release_approvals == approvals

    worse = intent(Action.REROUTE, Action.SCALE_TO_ZERO)
    escalation = transitions.plan_step(worse, current, contained(replicas=3), NO_MARKER, at(10))
    assert escalation.new == (Action.SCALE_TO_ZERO,)
    reset = transitions.settle(
        worse, escalation, applied=[Action.SCALE_TO_ZERO], failed={}, accepted=at(11), target=TARGET
    )
    assert reset.containment.release_approvals == []
    assert reset.newly
    assert reset.containment.actions == [Action.REROUTE, Action.SCALE_TO_ZERO]


def test_found_applied_records_without_claiming_a_time_to_contain() -> None:
    step = transitions.plan_step(
        intent(Action.SCALE_TO_ZERO), held(Action.SCALE_TO_ZERO), contained(), NO_MARKER, at(10)
    )
    records, message = transitions.found_applied(step, TARGET, at(10))
    assert [(r.action, r.result) for r in records] == [(Action.SCALE_TO_ZERO, "found applied")]
    assert message == f"scaleToZero found in effect on {TARGET}"


def test_actions_from_saved_follow_the_saved_keys() -> None:
    saved = containment.save(
        [Action.REROUTE, Action.PAUSE_ROLLOUT, Action.SCALE_TO_ZERO, Action.ISOLATE], observed(), None
    )
    assert transitions.actions_from_saved(saved) == [
        Action.REROUTE,
        Action.ISOLATE,
        Action.PAUSE_ROLLOUT,
        Action.SCALE_TO_ZERO,
    ]
    assert transitions.actions_from_saved({}) == []
