"""Carry out containment on a live workload: observe, save, act, restore.

Order matters for "nothing lost" (SPEC §6): the saved state is written to the
target's own annotations *before* any action changes it, and the saved state
already on the target is always the base — so a crash between any two steps
leaves enough on the cluster to restore exactly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from airlock.adapters import kube
from airlock.api import annotations as keys
from airlock.api.aisystem import AISystemSpec, TargetKind
from airlock.api.common import Action
from airlock.domain import containment, drills
from airlock.engine import routes

log = structlog.get_logger("airlock.targets")


@dataclass
class ActionOutcome:
    applied: list[Action] = field(default_factory=list)
    failed: dict[Action, str] = field(default_factory=dict)


# How often one write is re-applied after a 409 Conflict before it counts as failed.
CONFLICT_ATTEMPTS = 3


class TargetMissing(Exception):
    """The workload named by spec.target does not exist."""


async def observe(client: kube.KubeClient, namespace: str, system: str, spec: AISystemSpec) -> containment.Observed:
    resource = kube.TARGETS[spec.target.kind.value]
    target = await client.get_or_none(resource, namespace, spec.target.name)
    if target is None:
        raise TargetMissing(await routes.missing(client, resource, namespace, spec.target.name))
    tspec = target.get("spec") or {}
    annotations = dict((target.get("metadata") or {}).get("annotations") or {})
    if spec.target.kind is TargetKind.INFERENCE_SERVICE:
        observed = containment.Observed(
            kind=spec.target.kind,
            name=spec.target.name,
            replicas=None,  # KServe owns the predictor's replicas; the stop annotation is the switch
            paused=False,
            partition=None,
            update_strategy=None,
            pod_labels=containment.predictor_labels(spec.target.name),
            target_annotations=annotations,
            stop=annotations.get(containment.KSERVE_STOP),
        )
    else:
        strategy = tspec.get("updateStrategy")
        rolling = (strategy or {}).get("rollingUpdate") or {}
        labels = ((tspec.get("selector") or {}).get("matchLabels")) or (
            ((tspec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        )
        observed = containment.Observed(
            kind=spec.target.kind,
            name=spec.target.name,
            replicas=tspec.get("replicas", 1),
            paused=bool(tspec.get("paused", False)),
            paused_absent="paused" not in tspec,
            partition=rolling.get("partition"),
            update_strategy=strategy,
            pod_labels=dict(labels),
            target_annotations=annotations,
        )
    if spec.fallback is not None and spec.fallback.service is not None:
        service = await client.get_or_none(kube.SERVICES, namespace, spec.fallback.service)
        if service is not None:
            observed = dataclasses.replace(
                observed,
                service=spec.fallback.service,
                service_selector=dict((service.get("spec") or {}).get("selector") or {}),
            )
    route = await routes.observe(client, namespace, spec)
    if route is not None:
        observed = dataclasses.replace(observed, route=route.located, route_problem=route.problem)
    if spec.target.kind is TargetKind.INFERENCE_SERVICE:
        # KServe's stop scales the predictor away whatever autoscales it; KEDA targets its Deployment, not this.
        isolation = await client.get_or_none(kube.NETWORKPOLICIES, namespace, containment.isolation_name(system))
        return dataclasses.replace(observed, isolation_exists=isolation is not None)
    keda = await _scaled_object(client, namespace, spec)
    if keda is not None:
        observed = dataclasses.replace(
            observed,
            keda=keda["metadata"]["name"],
            keda_paused=(keda["metadata"].get("annotations") or {}).get(containment.KEDA_PAUSED),
        )
    isolation = await client.get_or_none(kube.NETWORKPOLICIES, namespace, containment.isolation_name(system))
    return dataclasses.replace(observed, isolation_exists=isolation is not None)


async def _scaled_object(client: kube.KubeClient, namespace: str, spec: AISystemSpec) -> dict[str, Any] | None:
    try:
        objects = await client.list(kube.SCALEDOBJECTS, namespace)
    except kube.ApiError:
        return None  # KEDA not installed: nothing to pause
    for obj in objects:
        ref = (obj.get("spec") or {}).get("scaleTargetRef") or {}
        if ref.get("name") == spec.target.name and ref.get("kind", "Deployment") == spec.target.kind.value:
            return obj
    return None


async def contain(
    client: kube.KubeClient,
    namespace: str,
    system: str,
    spec: AISystemSpec,
    actions: list[Action],
    observed: containment.Observed,
    saved: dict[str, Any],
) -> ActionOutcome:
    """Apply ``actions`` (already saved in ``saved`` and on the target) idempotently."""
    outcome = ActionOutcome()
    resource = kube.TARGETS[spec.target.kind.value]
    # The marker first: from here on a restart can always find what to restore.
    await client.patch(resource, namespace, spec.target.name, containment.marker_patch(system, saved))
    for action in _ordered(actions):
        try:
            await _retry_conflict(functools.partial(_apply, client, namespace, system, spec, action, observed))
        except (kube.ApiError, TargetMissing, routes.RouteProblem) as exc:
            outcome.failed[action] = str(exc)
        else:
            outcome.applied.append(action)
    return outcome


def _ordered(actions: list[Action]) -> list[Action]:
    # Reroute before scaling to zero so users hit the fallback, not an empty Service.
    order = [Action.REROUTE, Action.ISOLATE, Action.PAUSE_ROLLOUT, Action.SCALE_TO_ZERO]
    return sorted(set(actions), key=order.index)


async def _apply(
    client: kube.KubeClient,
    namespace: str,
    system: str,
    spec: AISystemSpec,
    action: Action,
    observed: containment.Observed,
) -> None:
    resource = kube.TARGETS[spec.target.kind.value]
    name = spec.target.name
    if action is Action.REROUTE and spec.fallback is not None and spec.fallback.service is None:
        if observed.route is None:
            raise TargetMissing(observed.route_problem or f"{spec.fallback.kind} {spec.fallback.object_name}: not read")
        await routes.reroute(client, namespace, system, spec, observed.route)
    elif action is Action.SCALE_TO_ZERO and spec.target.kind is TargetKind.INFERENCE_SERVICE:
        await client.patch(resource, namespace, name, containment.stop_patch())
    elif action is Action.PAUSE_ROLLOUT and spec.target.kind is TargetKind.INFERENCE_SERVICE:
        raise TargetMissing("pauseRollout does not apply to an InferenceService")  # refused at admission already
    elif action is Action.REROUTE:
        if spec.fallback is None or spec.fallback.service is None or spec.fallback.selector is None:
            raise TargetMissing("reroute needs spec.fallback")
        if observed.service_selector is None:
            raise TargetMissing(f"fallback Service {namespace}/{spec.fallback.service} not found")
        await client.patch(
            kube.SERVICES,
            namespace,
            spec.fallback.service,
            containment.reroute_patch(spec.fallback.selector),
            content_type=kube.JSON_PATCH,
        )
    elif action is Action.SCALE_TO_ZERO:
        if observed.keda is not None:
            await client.patch(kube.SCALEDOBJECTS, namespace, observed.keda, containment.keda_pause_patch())
        await client.scale(resource, namespace, name, 0)
    elif action is Action.PAUSE_ROLLOUT:
        await client.patch(resource, namespace, name, containment.pause_patch(spec.target.kind))
    elif action is Action.ISOLATE and not observed.isolation_exists:
        body = containment.isolation_policy(system, namespace, observed.pod_labels)
        with contextlib.suppress(kube.Conflict):  # created by an earlier attempt: idempotent
            await client.create(kube.NETWORKPOLICIES, namespace, body)


async def restore(
    client: kube.KubeClient,
    namespace: str,
    system: str,
    spec: AISystemSpec,
    saved: dict[str, Any],
) -> ActionOutcome:
    """Put back exactly what ``saved`` recorded, then remove the markers (only if all went well)."""
    outcome = ActionOutcome()
    resource = kube.TARGETS[spec.target.kind.value]
    name = spec.target.name
    # Reverse order of containment: capacity first, traffic last.
    unstop = containment.unstop_patch(saved)
    if unstop is not None:
        await _attempt(outcome, Action.SCALE_TO_ZERO, lambda: client.patch(resource, namespace, name, unstop))
    if "replicas" in saved:
        replicas = saved.get("replicas")
        await _attempt(
            outcome,
            Action.SCALE_TO_ZERO,
            lambda: client.scale(resource, namespace, name, 1 if replicas is None else int(replicas)),
        )
        keda_patch = containment.keda_restore_patch(saved)
        if keda_patch is not None:
            await _attempt(
                outcome,
                Action.SCALE_TO_ZERO,
                lambda: client.patch(kube.SCALEDOBJECTS, namespace, saved["keda"]["name"], keda_patch),
            )
    unpause = containment.unpause_patch(spec.target.kind, saved)
    if unpause is not None:
        await _attempt(outcome, Action.PAUSE_ROLLOUT, lambda: client.patch(resource, namespace, name, unpause))
    if (saved.get("isolate") or {}).get("networkPolicy") == "created":
        await _attempt(
            outcome,
            Action.ISOLATE,
            lambda: client.delete(kube.NETWORKPOLICIES, namespace, containment.isolation_name(system)),
        )
    if "selector" in saved and saved.get("service"):
        patch = containment.reroute_patch(saved["selector"])
        await _attempt(
            outcome,
            Action.REROUTE,
            lambda: client.patch(kube.SERVICES, namespace, saved["service"], patch, content_type=kube.JSON_PATCH),
        )
    if saved.get("route"):
        await _attempt(outcome, Action.REROUTE, lambda: _restore_route(client, namespace, system, saved["route"]))
    if not outcome.failed:
        with contextlib.suppress(kube.NotFound):
            await client.patch(resource, namespace, name, containment.clear_marker_patch())
    return outcome


async def _restore_route(client: kube.KubeClient, namespace: str, system: str, saved: dict[str, Any]) -> None:
    try:
        gone = await routes.restore(client, namespace, saved)
    except routes.RouteProblem as exc:
        raise kube.ApiError(404, "NotFound", str(exc)) from exc
    if gone:
        # The route lost these while contained (GitOps removed them): nothing to give their weight back to.
        log.warning("route.restore_partial", namespace=namespace, name=system, route=saved.get("name"), missing=gone)


async def _retry_conflict(step: Callable[[], Awaitable[Any]]) -> Any:
    """Run ``step``, again on a 409 Conflict (bounded).

    Every write here sets absolute values (replicas 0, ``paused``, a whole
    selector, the saved state), so applying it again is idempotent.
    """
    for attempt in range(1, CONFLICT_ATTEMPTS + 1):
        try:
            return await step()
        except kube.Conflict:
            if attempt == CONFLICT_ATTEMPTS:
                raise
    return None


async def _attempt(outcome: ActionOutcome, action: Action, step: Callable[[], Awaitable[Any]]) -> None:
    try:
        await _retry_conflict(step)
    except kube.ApiError as exc:
        outcome.failed[action] = str(exc)
    else:
        if action not in outcome.applied:
            outcome.applied.append(action)


def marker(observed: containment.Observed) -> tuple[str | None, dict[str, Any] | None]:
    """Who contained this target, and what it saved (from the target's own annotations)."""
    return (
        observed.target_annotations.get(keys.CONTAINED_BY),
        containment.saved_from_annotations(observed.target_annotations),
    )


async def environment(client: kube.KubeClient, namespace: str, spec: AISystemSpec) -> drills.Environment:
    """What a drill needs to know about the cluster: does the target exist, can reroute reach the fallback."""
    target = await client.get_or_none(kube.TARGETS[spec.target.kind.value], namespace, spec.target.name)
    fallback: bool | None = None
    problem: str | None = None
    if spec.fallback is not None and spec.fallback.service is not None:
        service = await client.get_or_none(kube.SERVICES, namespace, spec.fallback.service)
        fallback = service is not None
    elif spec.fallback is not None:
        route = await routes.observe(client, namespace, spec)
        fallback = route is not None and route.located is not None
        problem = route.problem if route is not None else None
    return drills.Environment(
        target_exists=target is not None, fallback_service_exists=fallback, fallback_problem=problem
    )


def concerns(spec: AISystemSpec, kind: str, name: str) -> bool:
    """Whether an object of ``kind``/``name`` (in the system's namespace) is one containment changes."""
    if spec.target.kind.value == kind and spec.target.name == name:
        return True
    fallback = spec.fallback
    return fallback is not None and fallback.kind == kind and fallback.object_name == name


__all__ = [
    "ActionOutcome",
    "TargetKind",
    "TargetMissing",
    "concerns",
    "contain",
    "environment",
    "marker",
    "observe",
    "restore",
]
