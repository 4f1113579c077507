"""No path around the kill switch (SPEC §7), through the admission the chart installs.

Each scenario runs twice: with only the shipped ValidatingAdmissionPolicies (CEL in the
API server, the ContainmentPolicies read as params) and with only the operator's real
webhook (HTTPS, registered with ``url:`` and its CA). A non-responder — or an on-call
responder without ``configure`` — cannot lift a shutdown, weaken the plan (mode,
thresholds, monitors, target) or change the ContainmentPolicy behind it; the API server
refuses before anything is stored, and the refusal names who may.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

import pytest

from airlock.api import annotations as keys
from airlock.sandbox.world import AdmissionMode
from tests.integration import checks
from tests.integration.admission import MALLORY, annotate, as_user, guarded_system, wait_shut_down_by_alice
from tests.integration.conftest import Tenant, World
from tests.integration.systems import ALICE, chatbot, pii_monitor
from tests.integration.world import Api, deployment, service

pytestmark = pytest.mark.integration

LENA = "lena@example.com"  # group ml-platform: configure, nothing else
PLATFORM = {"name": "ml-platform", "subjects": [{"kind": "Group", "name": "ml-platform"}], "may": ["configure"]}
_policies = itertools.count(1)


@pytest.fixture(scope="module", params=[AdmissionMode.POLICY, AdmissionMode.WEBHOOK], ids=["policy", "webhook"])
def world_admission(request: pytest.FixtureRequest) -> AdmissionMode:
    mode: AdmissionMode = request.param
    return mode


def _patch(api: Api, tenant: Tenant, spec: dict[str, Any], kind: str = "AISystem", name: str = "chatbot") -> Any:
    path = api.path(kind, None if kind == "ContainmentPolicy" else tenant.namespace, name)
    return api.request("PATCH", path, {"spec": spec}, "application/merge-patch+json")


def _refused(result: tuple[int, Any], *says: str) -> str:
    status, body = result
    assert status == 403, body
    message = str((body or {}).get("message"))
    assert "allowed: " in message, message  # a refusal names who may
    for fragment in says:
        assert fragment in message, message
    return message


def test_a_stranger_cannot_lift_a_responders_shutdown(world: World, tenant: Tenant) -> None:
    guarded_system(world, tenant)
    alice, mallory = as_user(world, ALICE), as_user(world, MALLORY)
    assert annotate(alice, tenant, {keys.SHUTDOWN: "PII in answers", keys.REQUESTED_BY: ALICE})[0] == 200
    wait_shut_down_by_alice(world, tenant)

    _refused(annotate(mallory, tenant, {keys.SHUTDOWN: None, keys.REQUESTED_BY: MALLORY}), ALICE)
    _refused(annotate(mallory, tenant, {keys.SHUTDOWN: "all fine", keys.REQUESTED_BY: MALLORY}), ALICE)
    assert checks.status(world, tenant.namespace)["containment"]["manualRequest"] == "PII in answers"
    assert checks.replicas(world, "Deployment", tenant.namespace, "chatbot-v7") == 0


def test_the_plan_is_changed_only_by_configure_or_an_admin(world: World, tenant: Tenant) -> None:
    system = guarded_system(world, tenant)
    before = copy.deepcopy((world.api.get("AISystem", tenant.namespace, "chatbot") or {})["spec"])
    oncall = as_user(world, ALICE)  # may shut down and release, not configure
    mallory = as_user(world, MALLORY)
    blind = pii_monitor()
    blind["thresholds"] = [{**t, "value": 1e9} for t in blind["thresholds"]]

    _refused(_patch(oncall, tenant, {"mode": "dryRun"}), "spec.mode", "group airlock-admins")
    _refused(_patch(oncall, tenant, {"monitors": [blind]}), "spec.monitors")
    _refused(_patch(mallory, tenant, {"monitors": []}), "spec.monitors")
    target = {**system["spec"]["target"], "name": "decoy"}
    _refused(_patch(mallory, tenant, {"target": target}), "spec.target")
    _refused(_patch(mallory, tenant, {"responders": [PLATFORM]}), "spec.responders")
    assert (world.api.get("AISystem", tenant.namespace, "chatbot") or {})["spec"] == before

    # An admin (the world's own identity, as GitOps would be) adds a configure responder; she may then.
    assert _patch(world.api, tenant, {"responders": [*system["spec"]["responders"], PLATFORM]})[0] == 200
    lena = as_user(world, LENA, "ml-platform")
    status, body = _patch(lena, tenant, {"mode": "dryRun"})
    assert status == 200, body
    checks.wait_phase(world, tenant.namespace, "Healthy", timeout=10)


def test_the_policy_behind_a_system_is_guarded_too(world: World, tenant: Tenant) -> None:
    name = f"chatbot-policy-{next(_policies)}"
    policy = {
        "apiVersion": "airlock.dev/v1alpha1",
        "kind": "ContainmentPolicy",
        "metadata": {"name": name},
        "spec": {
            "monitors": [pii_monitor()],
            "severities": {
                "SEV1": {"response": "shutdown", "actions": ["reroute", "scaleToZero"]},
                "SEV3": {"response": "investigate"},
            },
            "responders": [
                {"name": "security", "subjects": [{"kind": "Group", "name": "secops"}], "may": ["shutdown"]},
                PLATFORM,
            ],
        },
    }
    world.api.create(policy)
    world.api.create(deployment(tenant.namespace, "chatbot-v7", tenant.app, replicas=3))
    world.api.create(service(tenant.namespace, "chatbot", {"app": tenant.app}))
    system = chatbot(tenant.namespace, tenant.app, monitors=[])
    system["spec"]["policyRef"] = {"name": name}
    del system["spec"]["severities"]
    world.api.create(system)
    checks.wait_phase(world, tenant.namespace, "Healthy", timeout=20)
    mallory = as_user(world, MALLORY)

    # The policy's responders are in sight of both forms: a stranger's shutdown is refused, naming them.
    _refused(annotate(mallory, tenant, {keys.SHUTDOWN: "x", keys.REQUESTED_BY: MALLORY}), "group secops")
    blind = pii_monitor()
    blind["thresholds"] = [{**t, "value": 1e9} for t in blind["thresholds"]]
    _refused(_patch(mallory, tenant, {"monitors": [blind]}, "ContainmentPolicy", name), "group ml-platform")
    status, body = mallory.request("DELETE", mallory.path("ContainmentPolicy", None, name))
    _refused((status, body), f"ContainmentPolicy {name}")
    assert world.api.get("ContainmentPolicy", None, name) is not None

    # The policy's configure responder may change it (and, through the policy, the system's plan).
    lena = as_user(world, LENA, "ml-platform")
    assert _patch(lena, tenant, {"monitors": [blind]}, "ContainmentPolicy", name)[0] == 200
    assert _patch(lena, tenant, {"mode": "dryRun"})[0] == 200
