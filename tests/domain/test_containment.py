"""Containment builders: what each action saves, how a revert is seen, the exact patches and objects."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from airlock.api import annotations as keys
from airlock.api.aisystem import TargetKind
from airlock.api.common import Action
from airlock.domain import containment
from airlock.domain.containment import KEDA_PAUSED, STATEFULSET_PAUSE_PARTITION, Observed

FALLBACK = {"app": "chatbot-fallback"}
LIVE_SELECTOR = {"app": "chatbot", "track": "stable"}


def observed(**changes: Any) -> Observed:
    """A healthy Deployment with 3 replicas behind Service `chatbot`, before containment."""
    base = Observed(
        kind=TargetKind.DEPLOYMENT,
        name="chatbot-v7",
        replicas=3,
        paused=False,
        partition=None,
        update_strategy=None,
        pod_labels={"app": "chatbot"},
        service="chatbot",
        service_selector=dict(LIVE_SELECTOR),
    )
    return dataclasses.replace(base, **changes)


def contained(**changes: Any) -> Observed:
    """The same Deployment with every action in effect."""
    effects: dict[str, Any] = {
        "replicas": 0,
        "paused": True,
        "service_selector": dict(FALLBACK),
        "isolation_exists": True,
    }
    return observed(**{**effects, **changes})


# --- save -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "live", "saved"),
    [
        (Action.SCALE_TO_ZERO, observed(), {"replicas": 3}),
        (
            Action.SCALE_TO_ZERO,
            observed(keda="chatbot-scaler", keda_paused=None),
            {"replicas": 3, "keda": {"name": "chatbot-scaler", "pausedReplicas": None}},
        ),
        (
            Action.SCALE_TO_ZERO,
            observed(keda="chatbot-scaler", keda_paused="2"),
            {"replicas": 3, "keda": {"name": "chatbot-scaler", "pausedReplicas": "2"}},
        ),
        (Action.REROUTE, observed(), {"service": "chatbot", "selector": LIVE_SELECTOR}),
        (Action.REROUTE, observed(service=None, service_selector=None), {}),
        (Action.PAUSE_ROLLOUT, observed(), {"paused": False}),
        (Action.PAUSE_ROLLOUT, observed(kind=TargetKind.ROLLOUT, paused=True), {"paused": True}),
        (
            Action.PAUSE_ROLLOUT,
            observed(kind=TargetKind.ROLLOUT, paused_absent=True),
            {"paused": False, "pausedAbsent": True},
        ),
        (
            Action.PAUSE_ROLLOUT,
            observed(
                kind=TargetKind.STATEFUL_SET,
                update_strategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 1}},
                partition=1,
            ),
            {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}},
        ),
        (Action.PAUSE_ROLLOUT, observed(kind=TargetKind.STATEFUL_SET), {"updateStrategy": None}),
        (Action.ISOLATE, observed(), {"isolate": {"networkPolicy": "created"}}),
        (Action.ISOLATE, observed(isolation_exists=True), {"isolate": {"networkPolicy": None}}),
    ],
)
def test_each_action_saves_what_it_changes(action: Action, live: Observed, saved: dict[str, Any]) -> None:
    assert containment.save([action], live, None) == saved


def test_saving_several_actions_saves_each() -> None:
    saved = containment.save([Action.REROUTE, Action.SCALE_TO_ZERO, Action.PAUSE_ROLLOUT], observed(), None)
    assert saved == {"service": "chatbot", "selector": LIVE_SELECTOR, "replicas": 3, "paused": False}


def test_save_never_overwrites_the_original_in_a_revert_fight() -> None:
    # Contained: replicas 3 → 0, selector → fallback, paused.
    original = containment.save(
        [Action.SCALE_TO_ZERO, Action.REROUTE, Action.PAUSE_ROLLOUT], observed(keda="s", keda_paused="1"), None
    )
    # Someone (or a GitOps sync) reverts it all; airlock re-applies and saves again.
    reverted = observed(replicas=5, paused=False, service_selector={"app": "hacked"}, keda="s", keda_paused=None)
    again = containment.save([Action.SCALE_TO_ZERO, Action.REROUTE, Action.PAUSE_ROLLOUT], reverted, original)

    assert again == original
    assert again["replicas"] == 3
    assert again["selector"] == LIVE_SELECTOR
    assert again["keda"] == {"name": "s", "pausedReplicas": "1"}


def test_save_adds_only_new_actions_to_an_existing_saved_state() -> None:
    first = containment.save([Action.REROUTE], observed(), None)
    later = containment.save([Action.REROUTE, Action.SCALE_TO_ZERO], observed(service_selector=FALLBACK), first)
    assert later == {"service": "chatbot", "selector": LIVE_SELECTOR, "replicas": 3}


def test_save_does_not_mutate_the_previous_saved_state() -> None:
    previous: dict[str, Any] = {"replicas": 3}
    containment.save([Action.PAUSE_ROLLOUT], observed(), previous)
    assert previous == {"replicas": 3}


def test_save_copies_the_selector() -> None:
    live = observed()
    saved = containment.save([Action.REROUTE], live, None)
    assert live.service_selector is not None
    live.service_selector["app"] = "changed"
    assert saved["selector"] == LIVE_SELECTOR


# --- reverted ----------------------------------------------------------------------


def test_nothing_reverted_while_every_action_holds() -> None:
    assert containment.reverted(list(Action), contained(), FALLBACK) == []


@pytest.mark.parametrize(
    ("action", "live"),
    [
        (Action.SCALE_TO_ZERO, contained(replicas=1)),
        (Action.REROUTE, contained(service_selector=LIVE_SELECTOR)),
        (Action.PAUSE_ROLLOUT, contained(paused=False)),
        (Action.PAUSE_ROLLOUT, contained(kind=TargetKind.STATEFUL_SET, paused=False, partition=0)),
        (Action.ISOLATE, contained(isolation_exists=False)),
    ],
)
def test_each_undone_action_is_seen_as_reverted(action: Action, live: Observed) -> None:
    assert containment.reverted(list(Action), live, FALLBACK) == [action]


def test_statefulset_paused_by_partition_is_not_reverted() -> None:
    live = contained(kind=TargetKind.STATEFUL_SET, paused=False, partition=STATEFULSET_PAUSE_PARTITION)
    assert containment.reverted([Action.PAUSE_ROLLOUT], live, FALLBACK) == []


def test_reroute_cannot_be_judged_without_a_service_or_fallback() -> None:
    assert containment.reverted([Action.REROUTE], contained(service_selector=None), FALLBACK) == []
    assert containment.reverted([Action.REROUTE], contained(service_selector=LIVE_SELECTOR), None) == []


def test_unknown_replicas_are_not_a_revert() -> None:
    assert containment.reverted([Action.SCALE_TO_ZERO], contained(replicas=None), FALLBACK) == []


def test_only_applied_actions_are_checked() -> None:
    live = observed()  # nothing contained at all
    assert containment.reverted([Action.SCALE_TO_ZERO], live, FALLBACK) == [Action.SCALE_TO_ZERO]


# --- patches -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [TargetKind.DEPLOYMENT, TargetKind.ROLLOUT])
def test_pause_patch_sets_spec_paused(kind: TargetKind) -> None:
    assert containment.pause_patch(kind) == {"spec": {"paused": True}}


def test_statefulset_pause_is_a_maximal_partition() -> None:
    assert containment.pause_patch(TargetKind.STATEFUL_SET) == {
        "spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2_147_483_647}}}
    }


@pytest.mark.parametrize(
    ("kind", "saved", "patch"),
    [
        (TargetKind.DEPLOYMENT, {"paused": False}, {"spec": {"paused": False}}),
        (TargetKind.ROLLOUT, {"paused": True}, {"spec": {"paused": True}}),
        # Absent before: removed again, not left behind as an explicit `false`.
        (TargetKind.ROLLOUT, {"paused": False, "pausedAbsent": True}, {"spec": {"paused": None}}),
        (TargetKind.DEPLOYMENT, {"replicas": 3}, None),
        (TargetKind.STATEFUL_SET, {"paused": False}, None),
        (
            TargetKind.STATEFUL_SET,
            {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2, "maxUnavailable": 1}}},
            {
                "spec": {
                    "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2, "maxUnavailable": 1}}
                }
            },
        ),
        (
            TargetKind.STATEFUL_SET,
            {"updateStrategy": {"type": "RollingUpdate"}},
            {"spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": None}}}},
        ),
        (
            # OnDelete: the API server rejects any rollingUpdate, so remove the one pause added.
            TargetKind.STATEFUL_SET,
            {"updateStrategy": {"type": "OnDelete"}},
            {"spec": {"updateStrategy": {"type": "OnDelete", "rollingUpdate": None}}},
        ),
        (TargetKind.STATEFUL_SET, {"updateStrategy": None}, {"spec": {"updateStrategy": None}}),
    ],
)
def test_unpause_patch_restores_exactly_what_was_saved(
    kind: TargetKind, saved: dict[str, Any], patch: dict[str, Any] | None
) -> None:
    assert containment.unpause_patch(kind, saved) == patch


def test_unpause_patch_does_not_mutate_the_saved_state() -> None:
    saved = {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}}
    containment.unpause_patch(TargetKind.STATEFUL_SET, saved)
    assert saved == {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}}


def test_reroute_patch_replaces_the_whole_selector() -> None:
    assert containment.reroute_patch(FALLBACK) == [
        {"op": "replace", "path": "/spec/selector", "value": {"app": "chatbot-fallback"}}
    ]


def test_keda_pause_and_restore() -> None:
    assert containment.keda_pause_patch() == {"metadata": {"annotations": {KEDA_PAUSED: "0"}}}
    assert KEDA_PAUSED == "autoscaling.keda.sh/paused-replicas"


@pytest.mark.parametrize(
    ("saved", "patch"),
    [
        # None removes the annotation airlock added.
        ({"keda": {"name": "s", "pausedReplicas": None}}, {"metadata": {"annotations": {KEDA_PAUSED: None}}}),
        ({"keda": {"name": "s", "pausedReplicas": "2"}}, {"metadata": {"annotations": {KEDA_PAUSED: "2"}}}),
        ({"replicas": 3}, None),
        ({}, None),
    ],
)
def test_keda_restore_patch(saved: dict[str, Any], patch: dict[str, Any] | None) -> None:
    assert containment.keda_restore_patch(saved) == patch


# --- isolation NetworkPolicy -----------------------------------------------------------


def test_isolation_policy_cuts_the_model_pods_off() -> None:
    policy = containment.isolation_policy("support-chatbot", "ml-prod", {"app": "chatbot", "version": "v7"})
    assert policy == {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": "airlock-isolate-support-chatbot",
            "namespace": "ml-prod",
            "labels": {keys.SYSTEM_LABEL: "support-chatbot", keys.MANAGED_BY_LABEL: "airlock"},
            "annotations": {keys.CONTAINED_BY: "support-chatbot"},
        },
        "spec": {
            "podSelector": {"matchLabels": {"app": "chatbot", "version": "v7"}},
            # Both types with no rules: deny all ingress and all egress.
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [],
            "egress": [],
        },
    }


def test_isolation_name_stays_a_valid_object_name() -> None:
    assert containment.isolation_name("support-chatbot") == "airlock-isolate-support-chatbot"
    for system in ("a" * 253, "a" * 236 + "-b" + "c" * 15, "a" * 236 + ".b" + "c" * 15):
        name = containment.isolation_name(system)
        assert len(name) <= 253
        assert name[-1].isalnum(), name[-3:]


# --- markers on the target --------------------------------------------------------------


def test_marker_round_trips_the_saved_state() -> None:
    saved = {
        "replicas": 3,
        "selector": {"app": "chatbot"},
        "paused": False,
        "keda": {"name": "s", "pausedReplicas": None},
        "service": "chatbot",
    }
    patch = containment.marker_patch("support-chatbot", saved)
    annotations = patch["metadata"]["annotations"]

    assert annotations[keys.CONTAINED_BY] == "support-chatbot"
    assert json.loads(annotations[keys.SAVED_STATE]) == saved
    assert containment.saved_from_annotations(annotations) == saved


def test_marker_is_stable_for_equal_states() -> None:
    one = containment.marker_patch("s", {"b": 1, "a": {"y": 2, "x": 1}})
    two = containment.marker_patch("s", {"a": {"x": 1, "y": 2}, "b": 1})
    assert one == two


def test_clear_marker_removes_both_annotations() -> None:
    assert containment.clear_marker_patch() == {
        "metadata": {"annotations": {keys.CONTAINED_BY: None, keys.SAVED_STATE: None}}
    }


@pytest.mark.parametrize("raw", ["", "not json", "{", "[1, 2]", '"text"', "3", "null"])
def test_unreadable_saved_state_annotation_is_ignored(raw: str) -> None:
    assert containment.saved_from_annotations({keys.SAVED_STATE: raw}) is None


def test_missing_saved_state_annotation_is_none() -> None:
    assert containment.saved_from_annotations({}) is None
    assert containment.saved_from_annotations({keys.CONTAINED_BY: "x"}) is None


# --- InferenceService (KServe's stop annotation) -------------------------------------------


def isvc(stop: str | None = None) -> Observed:
    return Observed(
        kind=TargetKind.INFERENCE_SERVICE,
        name="chatbot",
        replicas=None,
        paused=False,
        partition=None,
        update_strategy=None,
        pod_labels=containment.predictor_labels("chatbot"),
        stop=stop,
    )


@pytest.mark.parametrize("before", [None, "false", "true", "True"])
def test_scale_to_zero_of_an_inference_service_saves_the_stop_annotation_as_found(before: str | None) -> None:
    saved = containment.save([Action.SCALE_TO_ZERO], isvc(before), None)
    assert saved == {"stop": {"absent": True} if before is None else {"annotation": before}}
    assert "replicas" not in saved
    patch = containment.unstop_patch(saved)
    # Absent comes back absent (merge-patch null); a pre-existing value, even "true", comes back as it was.
    assert patch == {"metadata": {"annotations": {containment.KSERVE_STOP: before}}}


def test_the_stop_patch_is_kserves_own() -> None:
    assert containment.stop_patch() == {"metadata": {"annotations": {"serving.kserve.io/stop": "true"}}}
    assert containment.unstop_patch({"replicas": 3}) is None


@pytest.mark.parametrize(("value", "reverted"), [("true", False), ("TRUE", False), ("false", True), (None, True)])
def test_an_inference_service_started_again_is_a_revert(value: str | None, reverted: bool) -> None:
    assert (containment.reverted([Action.SCALE_TO_ZERO], isvc(value), None) == [Action.SCALE_TO_ZERO]) is reverted


def test_isolate_selects_kserves_predictor_pods() -> None:
    policy = containment.isolation_policy("support-chatbot", "ml-prod", isvc().pod_labels)
    assert policy["spec"]["podSelector"] == {
        "matchLabels": {"serving.kserve.io/inferenceservice": "chatbot", "component": "predictor"}
    }
