"""The shipped ValidatingAdmissionPolicy, evaluated by the sandbox API server, with the real operator.

The world runs with ``policies/admission/validating-admission-policy.yaml`` as the Helm
chart renders it and no webhook: the API server itself refuses what CEL can see, before
anything is stored, and lets a responder's request through to the operator.
"""

from __future__ import annotations

import pytest

from airlock.api import annotations as keys
from airlock.sandbox.world import AdmissionMode
from tests.integration import checks
from tests.integration.admission import (
    MALLORY,
    annotate,
    annotations,
    as_user,
    guarded_system,
    relabel,
    wait_shut_down_by_alice,
)
from tests.integration.conftest import Tenant, World
from tests.integration.systems import ALICE

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world_admission() -> AdmissionMode:
    return AdmissionMode.POLICY


def test_a_non_responders_shutdown_is_refused_by_the_api_server(world: World, tenant: Tenant) -> None:
    guarded_system(world, tenant)
    versions = checks.versions(world, "aisystems", tenant.namespace, checks.SYSTEM)
    mallory = as_user(world, MALLORY)

    status, body = annotate(mallory, tenant, {keys.SHUTDOWN: "I think", keys.REQUESTED_BY: MALLORY})
    assert status == 403, body
    assert body["reason"] == "Forbidden"
    assert "ValidatingAdmissionPolicy '" in body["message"]
    assert "denied request: " in body["message"]
    # Claiming to be a responder does not help: requested-by must name the caller.
    status, body = annotate(mallory, tenant, {keys.SHUTDOWN: "I think", keys.REQUESTED_BY: ALICE})
    assert status == 403, body

    assert keys.SHUTDOWN not in annotations(world, tenant)
    assert checks.versions(world, "aisystems", tenant.namespace, checks.SYSTEM) == versions  # nothing stored
    assert checks.phase(world, tenant.namespace) == "Healthy"
    assert checks.replicas(world, "Deployment", tenant.namespace, "chatbot-v7") == 3


def test_other_writes_pass_and_a_responder_is_let_through_to_the_operator(world: World, tenant: Tenant) -> None:
    guarded_system(world, tenant)
    status, body = relabel(as_user(world, MALLORY), tenant, "support")
    assert status == 200, body

    alice = as_user(world, ALICE)
    status, body = annotate(alice, tenant, {keys.SHUTDOWN: "PII in answers", keys.REQUESTED_BY: ALICE})
    assert status == 200, body
    wait_shut_down_by_alice(world, tenant)
