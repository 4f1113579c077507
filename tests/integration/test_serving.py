"""Serving stacks end to end (SPEC §8): a KServe InferenceService, Gateway API and Istio routes.

The real operator against the sandbox API server and a real Prometheus, as in
test_actions: a fairness breach (a gauge) triggers containment, a release as a responder
restores.  Every object airlock touched must come back exactly as it was — annotations,
weights (absent ones absent again), and nothing airlock added left behind.

The first scenario starts with none of these kinds installed, as on most clusters: the
operator must keep running, report the target's kind as not served, and pick the kinds up
when their CRDs appear.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from airlock.sandbox import serving
from tests.integration import checks
from tests.integration.checks import SYSTEM, snapshot
from tests.integration.conftest import Tenant, World
from tests.integration.systems import ALICE, chatbot
from tests.integration.workloads import fairness_monitor
from tests.integration.world import wait_for

pytestmark = pytest.mark.integration

ISVC = "chatbot"
ACT_WITHIN = 6.0
STOP = "serving.kserve.io/stop"
POOL_GROUP = serving.INFERENCE_POOL_GROUP


def _served(world: World) -> bool:
    return world.api.call("GET", "/apis/serving.kserve.io/v1beta1") is not None


def _install(world: World) -> None:
    serving.install(world.api)
    wait_for(
        "serving kinds served",
        lambda: all(world.api.call("GET", world.api.path(k)) is not None for k in serving.PATHS),
        timeout=5,
    )


@pytest.fixture
def serving_crds(world: World) -> None:
    if not _served(world):
        _install(world)


def _system(
    tenant: Tenant,
    actions: list[str],
    *,
    fallback: dict[str, Any] | None = None,
    response: str = "contain",
) -> dict[str, Any]:
    extra: dict[str, Any] = {
        "target": {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "name": ISVC}
    }
    if fallback is not None:
        extra["fallback"] = fallback
    return chatbot(
        tenant.namespace,
        tenant.app,
        monitors=[fairness_monitor("SEV1")],
        severities={"SEV1": {"response": response, "actions": actions, "notify": ["internal"]}},
        fallback=False,
        extra=extra,
    )


def _route_fallback(backend: str = "chatbot-fallback", **ref: Any) -> dict[str, Any]:
    return {"httpRoute": {"name": "chatbot", "backend": {"name": backend, **ref}}}


def _breach(world: World, tenant: Tenant, system: dict[str, Any], phase: str) -> dict[str, Any]:
    world.model.inject((tenant.namespace, tenant.app), "fairness", value=0.5)
    world.api.create(system)
    return checks.wait_phase(world, tenant.namespace, phase, timeout=ACT_WITHIN)


def _release(world: World, tenant: Tenant, value: str = "fixed-1") -> None:
    ns = tenant.namespace
    world.model.heal((ns, tenant.app))
    wait_for("fairness back to ok", lambda: checks.monitor(world, ns, "fairness").get("state") == "ok", timeout=6)
    world.api.annotate("AISystem", ns, SYSTEM, {"airlock.dev/release": value, "airlock.dev/requested-by": ALICE})
    wait_for(
        "release handled and system Healthy",
        lambda: (s := checks.status(world, ns)).get("lastHandledRelease") == value and s.get("phase") == "Healthy",
        timeout=5,
    )


def _annotations(world: World, kind: str, ns: str, name: str) -> dict[str, str]:
    return snapshot(world, kind, ns, name).annotations


def _weights(world: World, ns: str, kind: str = "HTTPRoute") -> list[list[int | None]]:
    obj = world.api.get(kind, ns, "chatbot") or {}
    field, refs = ("http", "route") if kind == "VirtualService" else ("rules", "backendRefs")
    return [[ref.get("weight") for ref in rule.get(refs) or []] for rule in obj["spec"][field]]


def _event(world: World, ns: str, reason: str) -> dict[str, Any]:
    found: dict[str, Any] = wait_for(
        f"{reason} event",
        lambda: next((e for e in world.api.events(ns, SYSTEM) if e["reason"] == reason), None),
        timeout=ACT_WITHIN,
    )
    return found


# ------------------------------------------------------------------ kinds not installed


def test_a_target_whose_kind_is_not_installed_is_reported_and_contained_once_it_is(
    world: World, tenant: Tenant
) -> None:
    api, ns = world.api, tenant.namespace
    if _served(world):  # another scenario of this module ran first: take the kinds away again
        for definition in serving.crds():
            api.delete("CustomResourceDefinition", None, definition["metadata"]["name"])
        wait_for("serving kinds gone", lambda: not _served(world), timeout=5)

    _breach(world, tenant, _system(tenant, ["scaleToZero"]), "Degraded")
    ready = wait_for(
        "Ready=False TargetMissing",
        lambda: (c := checks.condition(world, ns, "Ready")).get("reason") == "TargetMissing" and c,
        timeout=ACT_WITHIN,
    )
    assert ready["status"] == "False"
    assert "InferenceService is not served by this cluster" in ready["message"]
    assert "inferenceservices.serving.kserve.io/v1beta1 is not installed" in ready["message"]
    assert "not served by this cluster" in _event(world, ns, "TargetMissing")["message"]
    time.sleep(2.0)  # several evaluations against the missing kind
    assert world.operator.alive(), world.operator.log_tail()
    assert checks.reasons(world, ns).count("TargetMissing") == 1  # reported once, not once per evaluation

    # KServe is installed and the InferenceService created: the next evaluation contains it.
    _install(world)
    api.create(serving.inference_service(ns, ISVC))
    checks.wait_phase(world, ns, "ShutDown", timeout=ACT_WITHIN)
    assert _annotations(world, "InferenceService", ns, ISVC)[STOP] == "true"
    assert checks.condition(world, ns, "Ready")["status"] == "True"
    # And Kopf now watches the kind: a revert is undone at once.
    api.annotate("InferenceService", ns, ISVC, {STOP: None})
    _event(world, ns, "ContainmentReverted")
    wait_for("stopped again", lambda: _annotations(world, "InferenceService", ns, ISVC).get(STOP) == "true", timeout=2)


# ------------------------------------------------------------------ InferenceService


@pytest.mark.usefixtures("serving_crds")
@pytest.mark.parametrize("before", [None, "false"], ids=["no-stop-annotation", "stop-false"])
def test_scale_to_zero_stops_the_inference_service_and_release_restores_the_annotation(
    world: World, tenant: Tenant, before: str | None
) -> None:
    api, ns = world.api, tenant.namespace
    api.create(serving.inference_service(ns, ISVC, annotations={STOP: before} if before else None))
    original = snapshot(world, "InferenceService", ns, ISVC)

    status = _breach(world, tenant, _system(tenant, ["scaleToZero", "isolate"]), "ShutDown")

    annotations = _annotations(world, "InferenceService", ns, ISVC)
    assert annotations[STOP] == "true"
    assert annotations["airlock.dev/contained-by"] == SYSTEM
    expected = {"absent": True} if before is None else {"annotation": before}
    assert json.loads(annotations["airlock.dev/saved-state"])["stop"] == expected
    assert status["containment"]["saved"]["stop"] == expected
    assert snapshot(world, "InferenceService", ns, ISVC).spec == original.spec  # only the annotations changed
    policy = api.get("NetworkPolicy", ns, f"airlock-isolate-{SYSTEM}")
    assert policy is not None
    assert policy["spec"]["podSelector"] == {
        "matchLabels": {"serving.kserve.io/inferenceservice": ISVC, "component": "predictor"}
    }

    _release(world, tenant)

    assert snapshot(world, "InferenceService", ns, ISVC) == original
    assert api.get("NetworkPolicy", ns, f"airlock-isolate-{SYSTEM}") is None
    incident = checks.incident(world, ns)
    assert incident is not None
    assert incident["status"]["phase"] == "Resolved"


@pytest.mark.usefixtures("serving_crds")
def test_an_inference_service_stopped_by_someone_else_is_adopted_and_left_stopped(world: World, tenant: Tenant) -> None:
    api, ns = world.api, tenant.namespace
    api.create(serving.inference_service(ns, ISVC, annotations={STOP: "true"}))  # parked by its team
    original = snapshot(world, "InferenceService", ns, ISVC)

    status = _breach(world, tenant, _system(tenant, ["scaleToZero"]), "ShutDown")

    assert status["containment"]["saved"] == {"stop": {"annotation": "true"}}
    _release(world, tenant)
    # Release restores what was there: stopped. It never starts a model someone else stopped.
    assert snapshot(world, "InferenceService", ns, ISVC) == original
    assert _annotations(world, "InferenceService", ns, ISVC)[STOP] == "true"


@pytest.mark.usefixtures("serving_crds")
def test_a_restarted_inference_service_is_stopped_again(world: World, tenant: Tenant) -> None:
    api, ns = world.api, tenant.namespace
    api.create(serving.inference_service(ns, ISVC))
    _breach(world, tenant, _system(tenant, ["scaleToZero"]), "ShutDown")

    # GitOps re-applies the manifest's stop: "false" (or a human removes the annotation).
    api.annotate("InferenceService", ns, ISVC, {STOP: "false"})

    event = _event(world, ns, "ContainmentReverted")
    assert "scaleToZero" in event["message"]
    wait_for("stopped again", lambda: _annotations(world, "InferenceService", ns, ISVC).get(STOP) == "true", timeout=2)
    assert checks.status(world, ns)["containment"]["saved"] == {"stop": {"absent": True}}  # still the original
    _release(world, tenant)
    assert STOP not in _annotations(world, "InferenceService", ns, ISVC)


# ------------------------------------------------------------------ HTTPRoute


@pytest.fixture
def pool_route(world: World, tenant: Tenant) -> dict[str, Any]:
    """An InferenceService behind an HTTPRoute: model traffic to an InferencePool, the fallback pool idle."""
    api, ns = world.api, tenant.namespace
    if not _served(world):
        _install(world)
    api.create(serving.inference_service(ns, ISVC))
    api.create(serving.inference_pool(ns, "llama-pool", tenant.app))
    api.create(serving.inference_pool(ns, "chatbot-fallback", f"{tenant.app}-fallback"))
    route = serving.http_route(
        ns,
        "chatbot",
        [
            [serving.pool_backend("llama-pool", weight=95), serving.pool_backend("chatbot-fallback", weight=5)],
            [serving.pool_backend("llama-pool"), serving.pool_backend("chatbot-fallback")],  # no weights written
            [serving.service_backend("chatbot-predictor")],  # /: no fallback in this rule
        ],
    )
    api.create(route)
    return route


def test_reroute_moves_every_weight_to_the_fallback_pool_and_release_restores_them(
    world: World, tenant: Tenant, pool_route: dict[str, Any]
) -> None:
    ns = tenant.namespace
    before = snapshot(world, "HTTPRoute", ns, "chatbot")
    isvc_before = snapshot(world, "InferenceService", ns, ISVC)
    fallback = _route_fallback(group=POOL_GROUP, kind="InferencePool")

    status = _breach(world, tenant, _system(tenant, ["reroute", "scaleToZero"], fallback=fallback), "ShutDown")

    assert _weights(world, ns) == [[0, 1], [0, 1], [None]]
    assert _annotations(world, "HTTPRoute", ns, "chatbot")["airlock.dev/contained-by"] == SYSTEM
    saved = status["containment"]["saved"]["route"]
    assert saved["name"] == "chatbot"
    assert [entry["rule"] for entry in saved["rules"]] == [0, 1]
    # Saved on the target before the route was touched: a crash in between loses nothing.
    assert json.loads(_annotations(world, "InferenceService", ns, ISVC)["airlock.dev/saved-state"])["route"] == saved
    assert _annotations(world, "InferenceService", ns, ISVC)[STOP] == "true"
    assert status["containment"]["actions"] == ["reroute", "scaleToZero"]

    _release(world, tenant)

    assert snapshot(world, "HTTPRoute", ns, "chatbot") == before
    assert [[ref.get("weight") for ref in rule["backendRefs"]] for rule in before.spec["rules"]] == [
        [95, 5],
        [None, None],
        [None],
    ]
    assert snapshot(world, "InferenceService", ns, ISVC) == isvc_before


def test_a_route_edited_while_contained_is_rerouted_again(
    world: World, tenant: Tenant, pool_route: dict[str, Any]
) -> None:
    api, ns = world.api, tenant.namespace
    before = snapshot(world, "HTTPRoute", ns, "chatbot")
    fallback = _route_fallback(group=POOL_GROUP, kind="InferencePool")
    _breach(world, tenant, _system(tenant, ["reroute"], fallback=fallback), "Contained")

    # Argo CD self-heal re-applies the manifest: the original weights, airlock's marker kept (3-way merge).
    live = api.get("HTTPRoute", ns, "chatbot") or {}
    edited = copy.deepcopy(live)
    edited["spec"]["rules"] = copy.deepcopy(pool_route["spec"]["rules"])
    api.call("PUT", api.path("HTTPRoute", ns, "chatbot"), edited)

    event = _event(world, ns, "ContainmentReverted")
    assert "reroute" in event["message"]
    wait_for("weights moved again", lambda: _weights(world, ns) == [[0, 1], [0, 1], [None]], timeout=2)
    incident = checks.incident(world, ns)
    assert incident is not None
    assert [a["result"] for a in incident["status"]["actions"]] == ["applied", "re-applied"]

    _release(world, tenant)
    assert snapshot(world, "HTTPRoute", ns, "chatbot") == before


@pytest.mark.usefixtures("serving_crds")
def test_a_fallback_missing_from_the_route_is_reported_and_the_other_actions_still_run(
    world: World, tenant: Tenant
) -> None:
    api, ns = world.api, tenant.namespace
    api.create(serving.inference_service(ns, ISVC))
    route = serving.http_route(ns, "chatbot", [[serving.service_backend("chatbot-predictor")]])
    api.create(route)
    before = snapshot(world, "HTTPRoute", ns, "chatbot")

    status = _breach(world, tenant, _system(tenant, ["reroute", "scaleToZero"], fallback=_route_fallback()), "ShutDown")

    assert _annotations(world, "InferenceService", ns, ISVC)[STOP] == "true"  # scaleToZero ran regardless
    assert status["containment"]["actions"] == ["scaleToZero"]
    failed = _event(world, ns, "ActionFailed")["message"]
    assert "fallback Service chatbot-fallback is not a backend of HTTPRoute chatbot" in failed
    assert "Service/" + ns + "/chatbot-predictor:80" in failed
    ready = checks.condition(world, ns, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ActionFailed")
    assert "chatbot-fallback" in ready["message"]
    assert snapshot(world, "HTTPRoute", ns, "chatbot") == before  # untouched
    time.sleep(1.5)
    assert checks.reasons(world, ns).count("ActionFailed") == 1  # retried every cycle, reported once

    _release(world, tenant)
    assert STOP not in _annotations(world, "InferenceService", ns, ISVC)

    # A drill finds the same gap before the next incident does.
    api.annotate("AISystem", ns, SYSTEM, {"airlock.dev/drill": "manual/1", "airlock.dev/requested-by": ALICE})

    def drill_gaps() -> list[str] | None:
        found = [
            i for i in api.list("AIIncident", ns) if i["spec"].get("drill") and (i.get("status") or {}).get("drill")
        ]
        return found[0]["status"]["drill"].get("gaps") if found else None

    gaps = wait_for("drill incident", drill_gaps, timeout=ACT_WITHIN)
    assert any("reroute through HTTPRoute chatbot -> Service chatbot-fallback would fail" in gap for gap in gaps), gaps


@pytest.mark.usefixtures("serving_crds")
def test_a_fallback_in_another_namespace_needs_a_reference_grant(world: World, tenant: Tenant) -> None:
    api, ns = world.api, tenant.namespace
    shared = f"{ns}-shared"
    api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": shared}})
    api.create(serving.inference_service(ns, ISVC))
    fallback_ref = {**serving.service_backend("chatbot-fallback", weight=0), "namespace": shared}
    api.create(serving.http_route(ns, "chatbot", [[serving.service_backend("chatbot-predictor"), fallback_ref]]))
    before = snapshot(world, "HTTPRoute", ns, "chatbot")

    _breach(world, tenant, _system(tenant, ["reroute"], fallback=_route_fallback(namespace=shared)), "Degraded")
    failed = _event(world, ns, "ActionFailed")["message"]
    assert f"no ReferenceGrant in {shared}" in failed
    assert snapshot(world, "HTTPRoute", ns, "chatbot") == before  # no traffic sent into a refused reference

    # The platform team adds the grant: the next evaluation reroutes.
    api.create(serving.reference_grant(shared, "allow-chatbot", from_namespace=ns))
    checks.wait_phase(world, ns, "Contained", timeout=ACT_WITHIN)
    assert _weights(world, ns) == [[0, 1]]
    _release(world, tenant)
    assert snapshot(world, "HTTPRoute", ns, "chatbot") == before


# ------------------------------------------------------------------ Istio VirtualService


@pytest.mark.usefixtures("serving_crds")
def test_reroute_through_an_istio_virtual_service(world: World, tenant: Tenant) -> None:
    api, ns = world.api, tenant.namespace
    api.create(serving.inference_service(ns, ISVC))
    api.create(
        serving.virtual_service(
            ns,
            "chatbot",
            [
                [
                    serving.destination("chatbot-predictor", weight=90),
                    serving.destination("chatbot-predictor", subset="canary", weight=10),
                    serving.destination("chatbot-fallback", weight=0),
                ]
            ],
        )
    )
    before = snapshot(world, "VirtualService", ns, "chatbot")
    fallback = {"virtualService": {"name": "chatbot", "destination": {"host": "chatbot-fallback"}}}

    _breach(world, tenant, _system(tenant, ["reroute"], fallback=fallback), "Contained")
    assert _weights(world, ns, "VirtualService") == [[0, 0, 100]]

    _release(world, tenant)
    assert snapshot(world, "VirtualService", ns, "chatbot") == before


# ------------------------------------------------------------------ manual shutdown


def test_kubectl_airlock_shutdown_reroutes_and_stops_and_release_restores(
    world: World, tenant: Tenant, pool_route: dict[str, Any], tmp_path: Path
) -> None:
    api, ns = world.api, tenant.namespace
    before = {
        kind: snapshot(world, kind, ns, name) for kind, name in (("HTTPRoute", "chatbot"), ("InferenceService", ISVC))
    }
    system = _system(tenant, ["scaleToZero"], fallback=_route_fallback(group=POOL_GROUP, kind="InferencePool"))
    api.create(system)
    checks.wait_phase(world, ns, "Healthy", timeout=ACT_WITHIN)
    alice = world.cluster.write_kubeconfig(tmp_path / "alice", user=ALICE, namespace=ns)

    shut = _airlock(alice, "shutdown", SYSTEM, "--reason", "answers look off")
    assert shut.returncode == 0, shut.stdout
    assert "reroute       HTTPRoute chatbot -> InferencePool chatbot-fallback" in shut.stdout
    assert f"scaleToZero   InferenceService {ISVC} stopped (serving.kserve.io/stop)" in shut.stdout
    assert _weights(world, ns) == [[0, 1], [0, 1], [None]]
    assert _annotations(world, "InferenceService", ns, ISVC)[STOP] == "true"

    released = _airlock(alice, "release", SYSTEM)
    assert released.returncode == 0, released.stdout
    assert f"restored   InferenceService {ISVC}: serving.kserve.io/stop removed" in released.stdout
    assert "restored   HTTPRoute chatbot: weights as before" in released.stdout
    checks.wait_phase(world, ns, "Healthy", timeout=ACT_WITHIN)
    for kind, name in (("HTTPRoute", "chatbot"), ("InferenceService", ISVC)):
        assert snapshot(world, kind, ns, name) == before[kind], kind


def _airlock(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The console script as the on-call engineer runs it."""
    command = [sys.executable, "-m", "airlock", *args, "--kubeconfig", str(kubeconfig), "--timeout", "20"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    result.stdout += result.stderr
    print(f"$ airlock {' '.join(args)}  # exit {result.returncode}\n{result.stdout}")
    return result
