"""Containment actions as pure builders: what to save, what to patch, what to restore.

Every action saves exactly what it changes *before* changing it, and a saved
value is never overwritten by a later re-application (after a revert fight the
saved state is still the original).  Release restores from the saved state
only, so it is exact.  The adapters send these patches; nothing here talks to
the API server.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from airlock.api import annotations as keys
from airlock.api.aisystem import TargetKind
from airlock.api.common import Action
from airlock.domain import routes

KEDA_PAUSED = "autoscaling.keda.sh/paused-replicas"
# KServe's own stop (SPEC §8): the controller scales the predictor away while it is "true".
KSERVE_STOP = "serving.kserve.io/stop"
# The labels KServe puts on every predictor pod of an InferenceService (what isolate selects).
KSERVE_ISVC_LABEL = "serving.kserve.io/inferenceservice"
KSERVE_COMPONENT_LABEL = "component"
# A StatefulSet has no `paused`: a partition above any ordinal stops a rollout.
STATEFULSET_PAUSE_PARTITION = 2_147_483_647


@dataclass(frozen=True)
class Observed:
    """The live state of everything containment may touch, read just before acting."""

    kind: TargetKind
    name: str
    replicas: int | None
    paused: bool
    partition: int | None
    update_strategy: dict[str, Any] | None
    pod_labels: dict[str, str]
    target_annotations: dict[str, str] = field(default_factory=dict)
    service: str | None = None
    service_selector: dict[str, str] | None = None
    keda: str | None = None
    keda_paused: str | None = None
    isolation_exists: bool = False
    # `spec.paused` was not set at all (a CRD keeps an explicit `false`: restore must not add one).
    paused_absent: bool = False
    # InferenceService: the serving.kserve.io/stop annotation as found (None: absent).
    stop: str | None = None
    # Reroute through a route (HTTPRoute, VirtualService): where the fallback is in it.
    route: routes.Located | None = None
    route_problem: str | None = None  # why reroute cannot use the route (missing, fallback not in it, ...)


def predictor_labels(name: str) -> dict[str, str]:
    """The labels of an InferenceService's predictor pods (KServe sets them on every one)."""
    return {KSERVE_ISVC_LABEL: name, KSERVE_COMPONENT_LABEL: "predictor"}


def isolation_name(system: str) -> str:
    # A DNS subdomain may not end with '-' or '.', which a cut at 253 could leave.
    return f"airlock-isolate-{system}"[:253].rstrip("-.")


def save(actions: list[Action], observed: Observed, saved: dict[str, Any] | None) -> dict[str, Any]:
    """The saved state after applying ``actions``: existing entries are kept as they are."""
    result: dict[str, Any] = dict(saved or {})
    for action in actions:
        if action is Action.SCALE_TO_ZERO and observed.kind is TargetKind.INFERENCE_SERVICE:
            if "stop" not in result:
                # No JSON null: the status is written with a merge patch, where null deletes the key.
                result["stop"] = {"absent": True} if observed.stop is None else {"annotation": observed.stop}
        elif action is Action.SCALE_TO_ZERO:
            if "replicas" not in result:
                result["replicas"] = observed.replicas
            if observed.keda is not None and "keda" not in result:
                result["keda"] = {"name": observed.keda, "pausedReplicas": observed.keda_paused}
        elif action is Action.REROUTE and observed.route is not None:
            # Merged, not replaced: backends first seen now (added while contained) are saved too.
            result["route"] = routes.saved_state(observed.route, result.get("route"))
        elif action is Action.REROUTE:
            if "selector" not in result and observed.service_selector is not None:
                result["service"] = observed.service
                result["selector"] = dict(observed.service_selector)
        elif action is Action.PAUSE_ROLLOUT:
            if observed.kind is TargetKind.STATEFUL_SET:
                if "updateStrategy" not in result:
                    result["updateStrategy"] = observed.update_strategy
            elif "paused" not in result:
                result["paused"] = observed.paused
                if observed.paused_absent:
                    result["pausedAbsent"] = True
        elif action is Action.ISOLATE and "isolate" not in result:
            result["isolate"] = {"networkPolicy": None if observed.isolation_exists else "created"}
    return result


def reverted(actions: list[Action], observed: Observed, fallback_selector: dict[str, str] | None) -> list[Action]:
    """Actions whose effect is no longer in place (someone or something put the target back)."""
    out: list[Action] = []
    for action in actions:
        if action is Action.SCALE_TO_ZERO and observed.kind is TargetKind.INFERENCE_SERVICE:
            if not stopped(observed.stop):
                out.append(action)
        elif action is Action.SCALE_TO_ZERO and observed.replicas not in (0, None):
            out.append(action)
        elif action is Action.REROUTE and observed.route is not None:
            if not routes.rerouted(observed.route):
                out.append(action)
        elif action is Action.REROUTE and fallback_selector is not None and observed.service_selector is not None:
            if observed.service_selector != fallback_selector:
                out.append(action)
        elif (action is Action.PAUSE_ROLLOUT and not _paused(observed)) or (
            action is Action.ISOLATE and not observed.isolation_exists
        ):
            out.append(action)
    return out


def _paused(observed: Observed) -> bool:
    if observed.kind is TargetKind.STATEFUL_SET:
        return observed.partition == STATEFULSET_PAUSE_PARTITION
    return observed.paused


def stopped(value: str | None) -> bool:
    """Whether a serving.kserve.io/stop value stops the InferenceService (KServe compares case-insensitively)."""
    return (value or "").strip().lower() == "true"


def stop_patch() -> dict[str, Any]:
    return {"metadata": {"annotations": {KSERVE_STOP: "true"}}}


def unstop_patch(saved: dict[str, Any]) -> dict[str, Any] | None:
    """Merge patch putting the stop annotation back as it was (``null`` removes it), or None if never saved."""
    if "stop" not in saved:
        return None
    value = (saved["stop"] or {}).get("annotation")
    return {"metadata": {"annotations": {KSERVE_STOP: None if value is None else str(value)}}}


def pause_patch(kind: TargetKind) -> dict[str, Any]:
    if kind is TargetKind.STATEFUL_SET:
        return {
            "spec": {
                "updateStrategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"partition": STATEFULSET_PAUSE_PARTITION},
                }
            }
        }
    return {"spec": {"paused": True}}


def unpause_patch(kind: TargetKind, saved: dict[str, Any]) -> dict[str, Any] | None:
    """Merge patch restoring the rollout state, or None if pauseRollout never saved anything."""
    if kind is TargetKind.STATEFUL_SET:
        if "updateStrategy" not in saved:
            return None
        # `null` removes what airlock added when there was no strategy before.
        return {"spec": {"updateStrategy": _nullify_missing(saved["updateStrategy"])}}
    if "paused" not in saved:
        return None
    # `null` removes the field when it was absent before (merge patch).
    return {"spec": {"paused": None if saved.get("pausedAbsent") else bool(saved["paused"])}}


def _nullify_missing(strategy: dict[str, Any] | None) -> dict[str, Any] | None:
    if strategy is None:
        return None
    restored = dict(strategy)
    if restored.get("type", "RollingUpdate") != "RollingUpdate":
        # pause_patch switched e.g. OnDelete to RollingUpdate; the API server
        # rejects rollingUpdate (even `{}`) on any other type, so remove it whole.
        restored["rollingUpdate"] = None
        return restored
    rolling = dict(restored.get("rollingUpdate") or {})
    rolling.setdefault("partition", None)
    restored["rollingUpdate"] = rolling
    return restored


def reroute_patch(selector: dict[str, str]) -> list[dict[str, Any]]:
    """JSON patch replacing the whole selector: a merge patch would keep stale keys."""
    return [{"op": "replace", "path": "/spec/selector", "value": dict(selector)}]


def keda_pause_patch() -> dict[str, Any]:
    return {"metadata": {"annotations": {KEDA_PAUSED: "0"}}}


def keda_restore_patch(saved: dict[str, Any]) -> dict[str, Any] | None:
    keda = saved.get("keda")
    if not keda:
        return None
    return {"metadata": {"annotations": {KEDA_PAUSED: keda.get("pausedReplicas")}}}


def isolation_policy(system: str, namespace: str, pod_labels: dict[str, str]) -> dict[str, Any]:
    """A NetworkPolicy denying all ingress and egress of the model's pods; the pods stay alive for forensics."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": isolation_name(system),
            "namespace": namespace,
            "labels": {
                keys.SYSTEM_LABEL: system,
                keys.MANAGED_BY_LABEL: "airlock",
            },
            "annotations": {keys.CONTAINED_BY: system},
        },
        "spec": {
            "podSelector": {"matchLabels": dict(pod_labels)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [],
            "egress": [],
        },
    }


def marker_patch(system: str, saved: dict[str, Any]) -> dict[str, Any]:
    """Annotations on the target so a restore survives loss of the AISystem's status."""
    return {
        "metadata": {
            "annotations": {
                keys.CONTAINED_BY: system,
                keys.SAVED_STATE: json.dumps(saved, sort_keys=True, separators=(",", ":")),
            }
        }
    }


def clear_marker_patch() -> dict[str, Any]:
    return {"metadata": {"annotations": {keys.CONTAINED_BY: None, keys.SAVED_STATE: None}}}


def saved_from_annotations(target_annotations: dict[str, str]) -> dict[str, Any] | None:
    """The saved state recorded on the target, or None if absent or unreadable."""
    raw = target_annotations.get(keys.SAVED_STATE)
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
