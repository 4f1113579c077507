"""The Kopf admission webhook over real HTTPS: ``airlock run --webhook-port`` against the sandbox cluster.

AdmissionReview v1 requests are POSTed to the paths ``policies/admission/webhook.yaml``
configures, the way the API server sends them: the mutating webhook first, its
JSONPatch applied, then the validating one.  The responders come from the
operator's caches or the API server, as in production; the verdicts must be
the pure function's on the whole corpus.
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import ssl
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonpatch
import pytest

from airlock.api import annotations as keys
from airlock.domain import authority
from airlock.domain.authority import Kind
from airlock.sandbox.cluster import ClusterThread
from airlock.sandbox.world import Api, OperatorProcess, load_crds
from tests.admission import cases
from tests.admission.cases import ALICE, BOB, CASES, Case

PLURALS = {Kind.AISYSTEM: "aisystems", Kind.AIINCIDENT: "aiincidents", Kind.CONTAINMENT_POLICY: "containmentpolicies"}
VALIDATE = {Kind.AISYSTEM: "/validate-aisystem", Kind.AIINCIDENT: "/validate-aiincident",
            Kind.CONTAINMENT_POLICY: "/validate-containmentpolicy"}  # fmt: skip
STAMP = {Kind.AISYSTEM: "/stamp-aisystem", Kind.AIINCIDENT: "/stamp-aiincident"}
OVER_HTTP = [c for c in CASES if c.operation != "DELETE"]  # the webhook configurations never send DELETE


def free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Webhook:
    def __init__(self, port: int, ca: Path) -> None:
        self.url = f"https://127.0.0.1:{port}"
        self.ca = ca
        self._context: ssl.SSLContext | None = None

    @property
    def context(self) -> ssl.SSLContext:
        if self._context is None:
            # Verify the operator's self-signed certificate with the CA it dumped (--webhook-ca-dump).
            self._context = ssl.create_default_context(cafile=str(self.ca))
        return self._context

    def post(self, path: str, review: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
        request = urllib.request.Request(
            self.url + path,
            data=json.dumps(review).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=timeout, context=self.context) as response:
            assert response.status == 200
            answer: dict[str, Any] = json.loads(response.read())
        return answer


def review(case: Case, new: dict[str, Any] | None = None) -> dict[str, Any]:
    """An AdmissionReview v1 request as the API server sends it."""
    obj = case.new if new is None else new
    meta = (obj or case.old or {}).get("metadata", {})
    gvk = {"group": "airlock.dev", "version": "v1alpha1", "kind": case.kind.value}
    gvr = {"group": "airlock.dev", "version": "v1alpha1", "resource": PLURALS[case.kind]}
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": gvk,
            "resource": gvr,
            "requestKind": gvk,
            "requestResource": gvr,
            "name": meta.get("name"),
            **({"namespace": meta["namespace"]} if meta.get("namespace") else {}),
            "operation": case.operation,
            "userInfo": {"username": case.user, "uid": "u-1", "groups": list(case.groups)},
            "object": obj,
            "oldObject": case.old,
            "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": f"{case.operation.title()}Options"},
        },
    }


@pytest.fixture(scope="module")
def webhook(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Webhook]:
    tmp = tmp_path_factory.mktemp("webhook")
    cluster = ClusterThread().start()
    operator: OperatorProcess | None = None
    try:
        api = Api(cluster.url)
        load_crds(api)
        for name, responders in cases.POLICIES.items():
            body = cases.policy(responders)
            body["metadata"]["name"] = name
            api.create(body)
        for body in cases.SYSTEMS.values():
            api.create(body)
        kubeconfig = cluster.write_kubeconfig(tmp / "kubeconfig")
        port, ca = free_port(), tmp / "ca.pem"
        extra = ["--webhook-port", str(port), "--webhook-addr", "127.0.0.1", "--webhook-host", "localhost"]
        extra += ["--webhook-ca-dump", str(ca), "--admin-group", "airlock-admins", "--admin-group", "system:masters"]
        # Nothing listens there: the monitors are in error, which no admission decision reads.
        operator = OperatorProcess(kubeconfig, "http://127.0.0.1:9", tmp / "operator.log", extra).start()
        hook = Webhook(port, ca)
        deadline = time.monotonic() + 20
        while True:
            try:
                if ca.exists():
                    hook.post(VALIDATE[Kind.AISYSTEM], review(OVER_HTTP[0]), timeout=2)
                    break
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() > deadline or not operator.alive():
                pytest.fail(f"the webhook did not come up:\n{operator.log_tail()}")
            time.sleep(0.05)
        yield hook
    finally:
        if operator is not None:
            operator.stop()
        cluster.stop()


def _patch(answer: dict[str, Any]) -> list[dict[str, Any]]:
    response = answer["response"]
    if "patch" not in response:
        return []
    assert response["patchType"] == "JSONPatch"
    ops: list[dict[str, Any]] = json.loads(base64.b64decode(response["patch"]))
    return ops


@pytest.mark.parametrize("case", OVER_HTTP, ids=[c.id for c in OVER_HTTP])
def test_the_webhooks_decide_as_the_pure_function(webhook: Webhook, case: Case) -> None:
    changes, verdict = cases.webhook_pipeline(case)
    new = case.new
    if case.kind in STAMP:
        answer = webhook.post(STAMP[case.kind], review(case))
        assert answer["response"]["allowed"] is True
        ops = _patch(answer)
        assert bool(ops) == bool(changes)
        new = jsonpatch.apply_patch(case.new, ops) if ops else case.new
        expected = authority.with_annotations(case.new, changes) if changes else case.new
        assert authority.annotations_of(new) == authority.annotations_of(expected)
    answer = webhook.post(VALIDATE[case.kind], review(case, new))
    response = answer["response"]
    assert answer["apiVersion"] == "admission.k8s.io/v1"
    assert response["allowed"] is verdict.allowed, response
    if not verdict.allowed:
        # reason: kubectl prints "Error from server (Forbidden): …" only when the webhook says so.
        assert response["status"] == {"code": 403, "reason": "Forbidden", "message": verdict.reason}


def test_allowed(webhook: Webhook) -> None:
    (case,) = [c for c in CASES if c.id == "user-responder-sets-shutdown"]
    sent = review(case)
    answer = webhook.post("/validate-aisystem", sent)
    assert answer["kind"] == "AdmissionReview"
    assert answer["response"] == {"uid": sent["request"]["uid"], "allowed": True}


def test_denied_with_403_naming_who_may(webhook: Webhook) -> None:
    (case,) = [c for c in CASES if c.id == "responder-without-the-verb-sets-shutdown"]
    response = webhook.post("/validate-aisystem", review(case))["response"]
    assert response["allowed"] is False
    assert response["status"]["code"] == 403
    assert response["status"]["reason"] == "Forbidden"
    assert response["status"]["message"] == (
        f"setting airlock.dev/shutdown: {BOB} may not shutdown; "
        "allowed: group oncall-ml, user alice@example.com, serviceaccount ops/pager-bot"
    )


def test_spoofed_requested_by_is_overwritten_by_a_jsonpatch(webhook: Webhook) -> None:
    (case,) = [c for c in CASES if c.id == "spoofed-requested-by-names-a-responder"]
    assert authority.annotations_of(case.new)[keys.REQUESTED_BY] == ALICE
    response = webhook.post("/stamp-aisystem", review(case))["response"]
    assert response["allowed"] is True
    assert response["patchType"] == "JSONPatch"
    ops = json.loads(base64.b64decode(response["patch"]))
    assert sorted(ops, key=lambda op: op["path"]) == [
        {"op": "replace", "path": "/metadata/annotations/airlock.dev~1requested-by", "value": BOB},
        {
            "op": "add",
            "path": "/metadata/annotations/airlock.dev~1requested-by-groups",
            "value": "system:authenticated",
        },
    ]


def test_incident_verbs_come_from_the_systems_responders(webhook: Webhook) -> None:
    (case,) = [c for c in CASES if c.id == "support-may-not-approve"]
    response = webhook.post("/validate-aiincident", review(case))["response"]
    assert response["status"]["code"] == 403
    assert response["status"]["reason"] == "Forbidden"
    assert "allowed: group oncall-ml, user alice@example.com" in response["status"]["message"]
