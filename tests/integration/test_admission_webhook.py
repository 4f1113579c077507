"""The operator's own admission webhook, called by the sandbox API server over HTTPS.

The world runs ``airlock run --webhook-port`` and registers ``policies/admission/webhook.yaml``
(chart-rendered, ``url:`` + the CA the operator dumped): a refusal comes from the operator
through the API server, a responder's request is stamped with who asked, writes that touch
no control annotation never wait for the webhook, and an operator outage fails closed for
exactly the control writes.
"""

from __future__ import annotations

from typing import Any

import pytest

from airlock.api import annotations as keys
from airlock.sandbox.cluster import WebhookCall
from airlock.sandbox.world import AdmissionMode
from tests.integration import checks
from tests.integration.admission import (
    BOB,
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
    return AdmissionMode.WEBHOOK


def calls(world: World, tenant: Tenant) -> list[WebhookCall]:
    """The AdmissionReviews the API server sent about this tenant's objects."""
    found: list[WebhookCall] = world.cluster.call(lambda: list(world.cluster.cluster.webhook_calls))
    return [call for call in found if call.namespace == tenant.namespace]


def refused_by_the_webhook(status: int, body: Any) -> bool:
    message = str((body or {}).get("message", ""))
    return status == 403 and message.startswith('admission webhook "') and "denied the request: " in message


def test_a_non_responder_is_refused_and_a_responder_is_stamped(world: World, tenant: Tenant) -> None:
    guarded_system(world, tenant)
    status, body = annotate(as_user(world, MALLORY), tenant, {keys.SHUTDOWN: "I think"})
    assert refused_by_the_webhook(status, body), (status, body)
    assert ALICE in body["message"] or "oncall-ml" in body["message"]  # the refusal names who may
    assert keys.SHUTDOWN not in annotations(world, tenant)

    # Alice sets only the control annotation (and claims to be Bob): the webhook stamps who asked.
    status, body = annotate(as_user(world, ALICE), tenant, {keys.SHUTDOWN: "PII in answers", keys.REQUESTED_BY: BOB})
    assert status == 200, body
    assert body["metadata"]["annotations"][keys.REQUESTED_BY] == ALICE
    wait_shut_down_by_alice(world, tenant)
    outcomes = {(call.user, call.webhook): call.outcome for call in calls(world, tenant)}
    assert outcomes[(MALLORY, "aisystems.authority.airlock.dev")] == "denied"
    assert outcomes[(ALICE, "aisystems.authority.airlock.dev")] == "allowed"


def test_writes_that_change_no_control_annotation_never_reach_the_webhook(world: World, tenant: Tenant) -> None:
    guarded_system(world, tenant)
    assert calls(world, tenant) == []  # creating the system and the operator's own writes
    for who in (MALLORY, ALICE):
        status, body = relabel(as_user(world, who), tenant, who.split("@")[0])
        assert status == 200, body
    status, body = annotate(as_user(world, MALLORY), tenant, {"example.com/note": "hello"})
    assert status == 200, body
    assert calls(world, tenant) == []
    status, body = annotate(as_user(world, ALICE), tenant, {keys.DRILL: "tabletop-1"})
    assert status == 200, body
    assert {call.webhook for call in calls(world, tenant)} >= {
        "aisystems.requested-by.airlock.dev",
        "aisystems.authority.airlock.dev",
    }


def test_with_the_operator_down_control_writes_fail_closed_and_others_pass(world: World, tenant: Tenant) -> None:
    guarded_system(world, tenant)
    world.operator.stop()
    try:
        status, body = annotate(as_user(world, ALICE), tenant, {keys.SHUTDOWN: "PII in answers"})
        assert (status, body["reason"]) == (500, "InternalError"), body
        assert "failed calling webhook" in body["message"]
        assert keys.SHUTDOWN not in annotations(world, tenant)
        status, body = relabel(as_user(world, MALLORY), tenant, "outage")
        assert status == 200, body
        path = world.api.path("Deployment", tenant.namespace, "chatbot-v7")
        status, body = world.api.request(
            "PATCH", path, {"metadata": {"labels": {"x": "y"}}}, "application/merge-patch+json"
        )
        assert status == 200, body
    finally:
        world.restart_operator()
    checks.wait_phase(world, tenant.namespace, "Healthy", timeout=20)
    status, body = annotate(as_user(world, ALICE), tenant, {keys.SHUTDOWN: "PII in answers"})
    assert status == 200, body
    wait_shut_down_by_alice(world, tenant)
