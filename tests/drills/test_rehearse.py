"""rehearse(): what the shipped plans would do in each scenario, and every gap a drill can find.

Each gap is provoked on a shipped plan and shown gone once the plan is fixed,
so a gap message is always something the owner can act on.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from airlock.api.common import Action, Audience, FailureMode, Response, Severity
from airlock.api.incident import AIIncidentStatus
from airlock.api.matrix import NoticeTemplate
from airlock.api.notifications import Notifications
from airlock.domain import drills
from airlock.domain.plan import Plan
from tests.drills.plans import ALL_IS_THERE, plan, responder, with_responders

Scenario = drills.Scenario
INTERNAL_CHANNEL: dict[str, Any] = {"name": "ops-slack", "type": "slack", "secretRef": {"name": "slack"}}


def rehearse(
    base: Plan,
    scenario: Scenario,
    env: drills.Environment = ALL_IS_THERE,
    notifications: dict[str, Any] | None = None,
) -> drills.Rehearsal:
    """``base`` rehearsed with these delivery settings in force (``spec.notifications`` merged over the policy's)."""
    if notifications is not None:
        settings = Notifications.model_validate(notifications)
        base = dataclasses.replace(base, channels=settings.channels, auto_send=settings.auto_send)
    return drills.rehearse(base, scenario, env)


def delivered(**extra: Any) -> dict[str, Any]:
    """Notifications that deliver internal notices at every severity."""
    return {"channels": [INTERNAL_CHANNEL], **extra}


def gaps_with(rehearsal: drills.Rehearsal, text: str) -> list[str]:
    return [g for g in rehearsal.gaps if text in g]


# ---------------------------------------------------------------- scenarios over the shipped plans

SHIPPED: list[tuple[str, Scenario, Severity, Response, list[Action], list[Audience]]] = [
    ("support-chatbot", Scenario.SUDDEN, Severity.SEV1, Response.SHUTDOWN, [Action.REROUTE, Action.SCALE_TO_ZERO], [Audience.INTERNAL, Audience.REGULATOR, Audience.USERS]),
    ("support-chatbot", Scenario.DRIFT, Severity.SEV2, Response.ESCALATE, [Action.REROUTE, Action.PAUSE_ROLLOUT], [Audience.INTERNAL]),
    ("support-chatbot", Scenario.ADVERSARIAL, Severity.SEV2, Response.ESCALATE, [Action.REROUTE, Action.PAUSE_ROLLOUT], [Audience.INTERNAL]),
    ("support-chatbot", Scenario.PRIVACY, Severity.SEV1, Response.SHUTDOWN, [Action.REROUTE, Action.SCALE_TO_ZERO], [Audience.INTERNAL, Audience.REGULATOR, Audience.USERS]),
    ("support-chatbot", Scenario.MANUAL, Severity.SEV1, Response.SHUTDOWN, [Action.REROUTE, Action.SCALE_TO_ZERO], [Audience.INTERNAL, Audience.REGULATOR, Audience.USERS]),
    ("fraud-scorer", Scenario.SUDDEN, Severity.SEV1, Response.CONTAIN, [Action.REROUTE, Action.PAUSE_ROLLOUT], [Audience.INTERNAL, Audience.REGULATOR]),
    ("fraud-scorer", Scenario.DRIFT, Severity.SEV2, Response.ESCALATE, [Action.REROUTE], [Audience.INTERNAL]),
    ("fraud-scorer", Scenario.PRIVACY, Severity.SEV1, Response.CONTAIN, [Action.REROUTE, Action.PAUSE_ROLLOUT], [Audience.INTERNAL, Audience.REGULATOR]),
    ("fraud-scorer", Scenario.MANUAL, Severity.SEV1, Response.SHUTDOWN, [Action.REROUTE, Action.SCALE_TO_ZERO], [Audience.INTERNAL, Audience.REGULATOR]),
    ("content-moderator", Scenario.SUDDEN, Severity.SEV1, Response.CONTAIN, [Action.REROUTE, Action.PAUSE_ROLLOUT], [Audience.INTERNAL, Audience.REGULATOR]),
    ("content-moderator", Scenario.DRIFT, Severity.SEV3, Response.INVESTIGATE, [], [Audience.INTERNAL]),
    ("content-moderator", Scenario.ADVERSARIAL, Severity.SEV2, Response.ESCALATE, [Action.PAUSE_ROLLOUT], [Audience.INTERNAL]),
    ("content-moderator", Scenario.MANUAL, Severity.SEV1, Response.SHUTDOWN, [Action.REROUTE, Action.SCALE_TO_ZERO], [Audience.INTERNAL, Audience.REGULATOR]),
]  # fmt: skip


@pytest.mark.parametrize(("example", "scenario", "severity", "response", "actions", "audiences"), SHIPPED)
def test_each_scenario_rehearses_the_worst_case_of_its_failure_mode(
    example: str,
    scenario: Scenario,
    severity: Severity,
    response: Response,
    actions: list[Action],
    audiences: list[Audience],
) -> None:
    found = rehearse(plan(example), scenario, notifications=delivered())
    assert found.scenario is scenario
    assert found.failure_mode is (FailureMode.SUDDEN if scenario is Scenario.MANUAL else FailureMode(scenario.value))
    assert (found.severity, found.response, found.actions, found.audiences) == (
        severity,
        response,
        actions,
        audiences,
    )
    # The shipped plans are complete once internal notices have somewhere to go.
    assert found.gaps == []


def test_the_decision_is_one_sentence_anyone_can_read() -> None:
    chatbot = plan("support-chatbot")
    assert rehearse(chatbot, Scenario.PRIVACY).decision == (
        "SEV1 privacy: shutdown at once — reroute, scaleToZero; notify internal, regulator, users"
    )
    assert rehearse(chatbot, Scenario.DRIFT).decision == (
        "SEV2 drift: escalate and page (ack within 15m) — reroute, pauseRollout once approved; notify internal"
    )
    assert rehearse(chatbot, Scenario.MANUAL).decision == (
        "SEV1 sudden: manual shutdown at once — reroute, scaleToZero; notify internal, regulator, users"
    )
    assert rehearse(plan("content-moderator"), Scenario.DRIFT).decision == (
        "SEV3 drift: investigate — open an incident, touch nothing; notify internal"
    )
    # fraud-scorer runs in dryRun: the drill says so, because a real incident would touch nothing either.
    assert rehearse(plan("fraud-scorer"), Scenario.SUDDEN).decision == (
        "SEV1 sudden: contain at once — reroute, pauseRollout; notify internal, regulator "
        "(dryRun: the workload would not be touched)"
    )


def test_everyone_who_may_acknowledge_is_paged_with_their_subjects() -> None:
    found = rehearse(plan("support-chatbot"), Scenario.PRIVACY)
    assert found.paged == [
        "ml-oncall (Group oncall-ml, User alice@example.com, ServiceAccount ops/pager-bot)",
        "security-oncall (Group oncall-security)",
        "incident-commander (Group incident-commanders)",
    ]
    # payments-oncall may acknowledge (inline); model-risk-officer too (policy).
    assert rehearse(plan("fraud-scorer"), Scenario.DRIFT).paged == [
        "risk-ml-oncall (Group oncall-risk-ml)",
        "model-risk-officer (Group model-risk)",
        "payments-oncall (Group oncall-payments, ServiceAccount ops/pager-bot)",
    ]


def test_a_manual_drill_without_a_fallback_only_scales_to_zero() -> None:
    base = plan("support-chatbot")
    no_fallback = dataclasses.replace(base, spec=base.spec.model_copy(update={"fallback": None}))
    found = rehearse(no_fallback, Scenario.MANUAL, drills.Environment(True, None), delivered())
    assert found.actions == [Action.SCALE_TO_ZERO]
    assert found.gaps == []


def test_the_record_is_what_the_incident_status_carries() -> None:
    found = rehearse(plan("support-chatbot"), Scenario.PRIVACY, drills.Environment(False, True))
    record = found.record()
    assert record.scenario == "privacy"
    assert record.decision == found.decision
    assert record.actions == [Action.REROUTE, Action.SCALE_TO_ZERO]
    assert record.audiences == [Audience.INTERNAL, Audience.REGULATOR, Audience.USERS]
    assert record.paged == found.paged
    assert record.gaps == found.gaps != []
    assert record.time_to_acknowledge_seconds is None
    dumped = AIIncidentStatus(drill=record).dump()["drill"]
    assert dumped["scenario"] == "privacy"
    assert dumped["actions"] == ["reroute", "scaleToZero"]
    assert AIIncidentStatus.model_validate({"drill": dumped}).drill == record


# ---------------------------------------------------------------- gaps: the matrix


def test_no_monitor_for_the_failure_mode_assumes_the_worst_severity_and_says_so() -> None:
    found = rehearse(plan("fraud-scorer"), Scenario.ADVERSARIAL, notifications=delivered())
    assert (found.severity, found.response) == (Severity.SEV1, Response.CONTAIN)
    assert found.gaps == [
        "no monitor watches for adversarial failures: add one with failureMode: adversarial, or such a failure "
        "is found only when someone notices (the drill assumed SEV1)"
    ]
    monitor = {
        "name": "injection",
        "failureMode": "adversarial",
        "query": 'sum(rate(prompt_injection_detections_total{app="{{ params.app }}"}[5m]))',
        "thresholds": [{"severity": "SEV2", "op": ">", "value": 1, "for": "2m"}],
    }
    fixed = rehearse(plan("fraud-scorer", monitors=[monitor]), Scenario.ADVERSARIAL, notifications=delivered())
    assert (fixed.severity, fixed.gaps) == (Severity.SEV2, [])


def test_a_manual_drill_never_asks_for_a_monitor() -> None:
    # content-moderation watches no privacy, but a manual shutdown needs no monitor.
    assert gaps_with(rehearse(plan("content-moderator"), Scenario.PRIVACY), "no monitor") != []
    assert gaps_with(rehearse(plan("content-moderator"), Scenario.MANUAL), "no monitor") == []


def test_a_severity_without_an_entry_gets_no_response() -> None:
    base = plan("support-chatbot")
    no_sev1 = dataclasses.replace(base, severities={s: p for s, p in base.severities.items() if s is not Severity.SEV1})
    found = rehearse(no_sev1, Scenario.MANUAL, notifications=delivered())
    assert found.audiences == []
    assert found.gaps == [
        "SEV1 has no entry in severities: a SEV1 incident would get no response and notify nobody; "
        "define severities.SEV1"
    ]
    assert gaps_with(rehearse(base, Scenario.MANUAL, notifications=delivered()), "no entry") == []


def test_a_failure_mode_that_only_observes_opens_no_incident() -> None:
    quiet = [
        {
            "name": name,
            "failureMode": "drift",
            "query": 'avg(rate(airlock_guard_answers_total{system="{{ name }}"}[1h]))',
            "thresholds": [{"severity": "SEV4", "op": "<", "value": -0.15, "for": "30m"}],
        }
        for name in ("answer-quality-drift", "length-drift")
    ]
    # The system's drift monitors replace the policy's of the same name.
    found = rehearse(plan("support-chatbot", monitors=quiet), Scenario.DRIFT, notifications=delivered())
    assert (found.severity, found.response) == (Severity.SEV4, Response.OBSERVE)
    assert found.decision == "SEV4 drift: observe — record only, no incident"
    assert found.gaps == [
        "the worst drift severity (SEV4) only observes: a real drift failure opens no incident and pages "
        "nobody; add a threshold with a worse severity"
    ]


def test_escalate_without_ack_within_never_escalates() -> None:
    severities = {"SEV2": {"response": "escalate", "actions": ["reroute", "pauseRollout"], "notify": ["internal"]}}
    found = rehearse(plan("support-chatbot", severities=severities), Scenario.DRIFT, notifications=delivered())
    assert "no ackWithin" in found.decision
    assert found.gaps == [
        "SEV2 escalates without ackWithin: if nobody acknowledges, it never escalates; set severities.SEV2.ackWithin"
    ]
    assert rehearse(plan("support-chatbot"), Scenario.DRIFT, notifications=delivered()).gaps == []


# ---------------------------------------------------------------- gaps: authority

EVERYTHING = ("acknowledge", "approve", "shutdown", "release", "drill")


def test_nobody_may_acknowledge() -> None:
    base = plan("support-chatbot")
    found = rehearse(
        with_responders(base, responder("ops", "approve", "shutdown", "release", groups=("ops",))),
        Scenario.PRIVACY,
        notifications=delivered(),
    )
    assert found.paged == []
    assert found.gaps == [
        "nobody may acknowledge: add acknowledge to a responder, or every incident goes unacknowledged"
    ]
    fixed = with_responders(base, responder("ops", *EVERYTHING, groups=("ops",)))
    assert rehearse(fixed, Scenario.PRIVACY, notifications=delivered()).gaps == []


def test_nobody_may_shut_down_by_hand() -> None:
    base = plan("support-chatbot")
    for scenario in (Scenario.MANUAL, Scenario.DRIFT):
        found = rehearse(
            with_responders(base, responder("ops", "acknowledge", "approve", "release", groups=("ops",))),
            scenario,
            notifications=delivered(),
        )
        assert found.gaps == [
            "nobody may shut the system down by hand: add shutdown to a responder (airlock.dev/shutdown)"
        ]


def test_nobody_may_release_is_sharper_when_the_response_contains_at_once() -> None:
    base = with_responders(
        plan("support-chatbot"), responder("ops", "acknowledge", "approve", "shutdown", groups=("ops",))
    )
    assert rehearse(base, Scenario.PRIVACY, notifications=delivered()).gaps == [
        "SEV1 contains at once but nobody may release: add release to a responder, or the system stays "
        "contained until someone edits the plan"
    ]
    assert rehearse(base, Scenario.DRIFT, notifications=delivered()).gaps == [
        "nobody may release: add release to a responder, or a containment is never lifted"
    ]
    fixed = with_responders(plan("support-chatbot"), responder("ops", *EVERYTHING, groups=("ops",)))
    assert rehearse(fixed, Scenario.PRIVACY, notifications=delivered()).gaps == []


def test_two_person_release_needs_two_people_who_may_release() -> None:
    # fraud-model: SEV1 needs releaseApprovals: 2.
    alone = with_responders(plan("fraud-scorer"), responder("risk", *EVERYTHING, users=("ria@example.com",)))
    assert rehearse(alone, Scenario.SUDDEN, notifications=delivered()).gaps == [
        "SEV1 needs 2 release approvals but only 1 subject(s) may release: name more responders with release, "
        "or lower releaseApprovals"
    ]
    pair = with_responders(
        plan("fraud-scorer"), responder("risk", *EVERYTHING, users=("ria@example.com", "max@example.com"))
    )
    assert rehearse(pair, Scenario.SUDDEN, notifications=delivered()).gaps == []
    # A group may hold any number of people: not counted as too few.
    group = with_responders(plan("fraud-scorer"), responder("risk", *EVERYTHING, groups=("risk",)))
    assert rehearse(group, Scenario.SUDDEN, notifications=delivered()).gaps == []


def test_escalate_with_actions_and_nobody_who_may_approve() -> None:
    base = with_responders(
        plan("support-chatbot"), responder("ops", "acknowledge", "shutdown", "release", groups=("ops",))
    )
    assert rehearse(base, Scenario.DRIFT, notifications=delivered()).gaps == [
        "SEV2 waits for an approval to act but nobody may approve: add approve to a responder"
    ]
    # Containing at once needs no approval.
    assert rehearse(base, Scenario.PRIVACY, notifications=delivered()).gaps == []


# ---------------------------------------------------------------- gaps: the workload


def test_a_missing_target_is_a_gap() -> None:
    found = rehearse(plan("support-chatbot"), Scenario.PRIVACY, drills.Environment(False, True), delivered())
    assert found.gaps == [
        "the target Deployment chatbot-v7 does not exist: containment would have nothing to act on; fix spec.target"
    ]
    assert rehearse(plan("support-chatbot"), Scenario.PRIVACY, ALL_IS_THERE, delivered()).gaps == []


def test_a_missing_fallback_service_breaks_reroute() -> None:
    gone = drills.Environment(target_exists=True, fallback_service_exists=False)
    found = rehearse(plan("content-moderator"), Scenario.SUDDEN, gone, delivered())
    assert found.gaps == [
        "the fallback Service moderator does not exist: reroute would fail; create it or fix spec.fallback.service"
    ]
    # No reroute at this severity: the missing Service does not matter to this scenario.
    assert rehearse(plan("content-moderator"), Scenario.ADVERSARIAL, gone, delivered()).gaps == []


def test_reroute_without_a_declared_fallback() -> None:
    # build_plan refuses this, but a plan can lose its fallback after it was built (the drill re-checks).
    base = plan("support-chatbot")
    no_fallback = dataclasses.replace(base, spec=base.spec.model_copy(update={"fallback": None}))
    found = rehearse(no_fallback, Scenario.PRIVACY, drills.Environment(True, None), delivered())
    assert found.gaps == ["reroute needs a fallback but spec.fallback is not declared: declare one or drop reroute"]


# ---------------------------------------------------------------- gaps: notices


def test_internal_notices_without_a_channel_are_only_drafted() -> None:
    found = rehearse(plan("support-chatbot"), Scenario.PRIVACY)
    assert found.gaps == [
        "internal notices at SEV1 are only drafted: no channel carries the internal audience at that severity; "
        "add one under notifications.channels"
    ]
    assert rehearse(plan("support-chatbot"), Scenario.PRIVACY, notifications=delivered()).gaps == []


def test_a_channel_for_other_severities_does_not_count() -> None:
    sev3_only = {"channels": [{**INTERNAL_CHANNEL, "severities": ["SEV3"]}]}
    assert gaps_with(rehearse(plan("support-chatbot"), Scenario.PRIVACY, notifications=sev3_only), "at SEV1") != []
    both = {"channels": [{**INTERNAL_CHANNEL, "severities": ["SEV1", "SEV3"]}]}
    assert rehearse(plan("support-chatbot"), Scenario.PRIVACY, notifications=both).gaps == []


def test_the_systems_own_channels_count() -> None:
    found = rehearse(plan("support-chatbot", notifications=delivered()), Scenario.PRIVACY)
    assert found.gaps == []


def test_internal_left_out_of_auto_send_is_only_drafted() -> None:
    found = rehearse(plan("support-chatbot"), Scenario.DRIFT, notifications=delivered(autoSend=[]))
    assert found.gaps == [
        "internal notices are only drafted: notifications.autoSend leaves internal out, so nobody is told "
        "without a human; add internal to autoSend"
    ]


def test_regulator_and_users_drafted_by_design_are_no_gap_but_auto_sent_without_a_channel_are() -> None:
    # Default autoSend is [internal]: regulator and users notices wait for a human, as designed.
    assert rehearse(plan("support-chatbot"), Scenario.PRIVACY, notifications=delivered()).gaps == []
    auto = delivered(autoSend=["internal", "regulator", "users"])
    found = rehearse(plan("support-chatbot"), Scenario.PRIVACY, notifications=auto)
    assert found.gaps == [
        "regulator notices are auto-sent (notifications.autoSend) but no channel carries regulator at SEV1: "
        "add a channel for that audience",
        "users notices are auto-sent (notifications.autoSend) but no channel carries users at SEV1: "
        "add a channel for that audience",
    ]
    carried = {
        "channels": [
            {**INTERNAL_CHANNEL, "audiences": ["internal", "users"]},
            {"name": "dpa", "type": "webhook", "secretRef": {"name": "dpa"}, "audiences": ["regulator"]},
        ],
        "autoSend": ["internal", "regulator", "users"],
    }
    assert rehearse(plan("support-chatbot"), Scenario.PRIVACY, notifications=carried).gaps == []


REGULATOR_GAP = (
    "the regulator is notified but there is neither a regulator template nor spec.regulatory: the default report "
    "would lack the provider and the reporting regime; declare spec.regulatory (euAiAct/gdpr) or a "
    "templates.regulator override"
)


def test_the_regulator_report_needs_a_regulatory_profile_or_a_template() -> None:
    # support-chatbot declares spec.regulatory: the default report is complete enough.
    assert rehearse(plan("support-chatbot"), Scenario.PRIVACY, notifications=delivered()).gaps == []
    bare = plan("support-chatbot", regulatory=None)
    assert rehearse(bare, Scenario.PRIVACY, notifications=delivered()).gaps == [REGULATOR_GAP]
    empty = plan("support-chatbot", regulatory={})
    assert rehearse(empty, Scenario.PRIVACY, notifications=delivered()).gaps == [REGULATOR_GAP]
    template = NoticeTemplate.model_validate({"body": "Report of {{ incident.name }}"})
    templated = dataclasses.replace(bare, templates={**bare.templates, Audience.REGULATOR: template})
    assert rehearse(templated, Scenario.PRIVACY, notifications=delivered()).gaps == []
    # Not notified at SEV2: no report to write.
    assert rehearse(bare, Scenario.DRIFT, notifications=delivered()).gaps == []


def test_the_policys_channels_count_for_the_system() -> None:
    shared = plan("support-chatbot", policy_changes={"notifications": {"channels": [INTERNAL_CHANNEL]}})
    assert rehearse(shared, Scenario.PRIVACY).gaps == []
    # The system's autoSend replaces the policy's.
    quiet = plan("support-chatbot", policy_changes={"notifications": delivered()}, notifications={"autoSend": []})
    assert gaps_with(rehearse(quiet, Scenario.PRIVACY), "autoSend leaves internal out") != []


def test_gaps_come_in_a_stable_order_without_repeats() -> None:
    base = with_responders(plan("support-chatbot", regulatory=None), responder("viewer", "drill", groups=("ops",)))
    found = rehearse(base, Scenario.PRIVACY, drills.Environment(False, False))
    assert [g.split(":")[0] for g in found.gaps] == [
        "nobody may acknowledge",
        "nobody may shut the system down by hand",
        "SEV1 contains at once but nobody may release",
        "the target Deployment chatbot-v7 does not exist",
        "the fallback Service chatbot does not exist",
        "internal notices at SEV1 are only drafted",
        "the regulator is notified but there is neither a regulator template nor spec.regulatory",
    ]
    assert len(set(found.gaps)) == len(found.gaps)


# ---------------------------------------------------------------- parse_value


@pytest.mark.parametrize(
    ("value", "scenario"),
    [
        ("privacy", Scenario.PRIVACY),
        ("manual", Scenario.MANUAL),
        ("drift/2026-11-26T13:30:12.123456Z", Scenario.DRIFT),
        ("adversarial/run-7/with/slashes", Scenario.ADVERSARIAL),
        (" sudden ", Scenario.SUDDEN),
    ],
)
def test_the_annotation_value_names_a_scenario_and_anything_unique(value: str, scenario: Scenario) -> None:
    assert drills.parse_value(value) is scenario


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "names no scenario: use one of sudden, drift, adversarial, privacy, manual"),
        ("fire", "'fire' names no scenario"),
        ("Privacy", "'Privacy' names no scenario"),
        ("fairness/1", "'fairness/1' names no scenario"),
        ("/2026-11-26", "names no scenario"),
        ("privacy/", "ends with '/': give something unique after it (e.g. privacy/2026-11-26T13:30:12Z) or nothing"),
        ("privacy/  ", "ends with '/'"),
    ],
)
def test_a_bad_value_says_what_is_expected(value: str, message: str) -> None:
    with pytest.raises(ValueError, match="drill value") as raised:
        drills.parse_value(value)
    assert message in str(raised.value)
