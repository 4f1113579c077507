"""Admission webhooks on the sandbox API server, called over real HTTPS.

A small local webhook (TLS with a certificate of its own CA) answers AdmissionReviews as
each test tells it to; the webhook configurations are installed through the API. The
tests assert on what a client of the API server sees (status, message, stored object,
``Warning`` headers) and on what the webhook received.
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from airlock.adapters.webhook import build_certificate
from airlock.sandbox._http_server import BackgroundServer, TrackingHTTPServer
from airlock.sandbox.cluster import ClusterThread, SandboxCluster
from tests.fixtures.cluster import Kubectl, SandboxApi

REG = "/apis/admissionregistration.k8s.io/v1"
MUTATING = f"{REG}/mutatingwebhookconfigurations"
VALIDATING = f"{REG}/validatingwebhookconfigurations"
CM = "/api/v1/namespaces/default/configmaps"
RULES = [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["configmaps"]}]
SERVICE_HOST = "hooks.webhooks.svc"

Answer = Callable[[dict[str, Any]], dict[str, Any]]


def allow(_: dict[str, Any]) -> dict[str, Any]:
    return {"allowed": True}


class TlsWebhook(BackgroundServer):
    """An HTTPS admission webhook: records every review, answers with the handler of its path."""

    thread_name = "test-webhook"

    def __init__(self, ca_dir: Path) -> None:
        super().__init__("127.0.0.1", 0)
        cert, key = build_certificate(["localhost", "127.0.0.1", SERVICE_HOST])
        (ca_dir / "tls.crt").write_bytes(cert)
        (ca_dir / "tls.key").write_bytes(key)
        self.ca_bundle = base64.b64encode(cert).decode()
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(ca_dir / "tls.crt", ca_dir / "tls.key")
        self.answers: dict[str, Answer] = {}
        self.reviews: list[tuple[str, dict[str, Any]]] = []
        self.delay = 0.0
        self._lock = threading.Lock()

    def _make_server(self, address: tuple[str, int]) -> TrackingHTTPServer:
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                path = self.path.split("?")[0]
                with hook._lock:
                    hook.reviews.append((self.path, review))
                if hook.delay:
                    time.sleep(hook.delay)
                response = {"uid": review["request"]["uid"], **hook.answers.get(path, allow)(review["request"])}
                body = json.dumps(
                    {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}
                )
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *_: Any) -> None:
                pass

        class Server(TrackingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # refused handshakes (a client with the wrong CA) are part of the tests

        server = Server(address, Handler)
        server.socket = self._context.wrap_socket(server.socket, server_side=True)
        return server

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def paths(self) -> list[str]:
        return [path.split("?")[0] for path, _ in self.reviews]


@pytest.fixture
def webhook(tmp_path: Path) -> Iterator[TlsWebhook]:
    with TlsWebhook(tmp_path) as hook:
        yield hook


def configuration(kind: str, name: str, *webhooks: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": name},
        "webhooks": list(webhooks),
    }


def hook_entry(
    name: str,
    client: dict[str, Any],
    *,
    mutating: bool = False,
    rules: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": name,
        "admissionReviewVersions": ["v1"],
        "sideEffects": "None",
        "clientConfig": client,
        "rules": rules if rules is not None else RULES,
        "timeoutSeconds": 5,
    }
    if mutating:
        entry["reinvocationPolicy"] = "Never"
    entry.update(extra)
    return entry


def by_url(hook: TlsWebhook, path: str, ca: str | None = None) -> dict[str, Any]:
    return {"url": hook.url + path, "caBundle": hook.ca_bundle if ca is None else ca}


def validating(api: SandboxApi, *entries: dict[str, Any], name: str = "checks") -> None:
    api.ok("POST", VALIDATING, configuration("ValidatingWebhookConfiguration", name, *entries))


def mutating(api: SandboxApi, *entries: dict[str, Any], name: str = "stamps") -> None:
    api.ok("POST", MUTATING, configuration("MutatingWebhookConfiguration", name, *entries))


def configmap(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": dict(data)}


def patch_answer(*operations: dict[str, Any], warnings: list[str] | None = None) -> Answer:
    def answer(_: dict[str, Any]) -> dict[str, Any]:
        response: dict[str, Any] = {
            "allowed": True,
            "patchType": "JSONPatch",
            "patch": base64.b64encode(json.dumps(list(operations)).encode()).decode(),
        }
        if warnings:
            response["warnings"] = warnings
        return response

    return answer


def test_the_review_is_what_the_api_server_sends(
    sandbox: ClusterThread, sandbox_api: SandboxApi, webhook: TlsWebhook
) -> None:
    validating(sandbox_api, hook_entry("check.example.com", by_url(webhook, "/check")))
    alice = SandboxApi(sandbox.url, token="user:alice:team-a")
    alice.ok("POST", CM, configmap("c", v="1"))
    alice.ok("PATCH", f"{CM}/c?dryRun=All", {"data": {"v": "2"}})
    (create_path, create), (_, update) = webhook.reviews
    assert create_path == "/check?timeout=5s"
    assert create["apiVersion"] == "admission.k8s.io/v1"
    request = create["request"]
    assert request["kind"] == request["requestKind"] == {"group": "", "version": "v1", "kind": "ConfigMap"}
    assert request["resource"] == request["requestResource"] == {"group": "", "version": "v1", "resource": "configmaps"}
    assert (request["name"], request["namespace"], request["operation"]) == ("c", "default", "CREATE")
    assert request["userInfo"] == {"username": "alice", "groups": ["team-a", "system:authenticated"]}
    assert request["object"]["data"] == {"v": "1"}
    assert request["oldObject"] is None
    assert request["dryRun"] is False
    assert request["options"] == {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
    assert len(request["uid"]) == 36
    request = update["request"]
    assert (request["operation"], request["dryRun"], request["options"]["kind"]) == ("UPDATE", True, "UpdateOptions")
    assert (request["oldObject"]["data"], request["object"]["data"]) == ({"v": "1"}, {"v": "2"})
    assert [(call.webhook, call.operation, call.outcome) for call in sandbox.cluster.webhook_calls] == [
        ("check.example.com", "CREATE", "allowed"),
        ("check.example.com", "UPDATE", "allowed"),
    ]


def test_a_refusal_carries_the_webhooks_code_and_reason(
    sandbox_api: SandboxApi, webhook: TlsWebhook, kubectl: Kubectl
) -> None:
    webhook.answers["/deny"] = lambda r: {
        "allowed": False,
        "status": {
            "message": f"{r['userInfo']['username']} may not",
            **({"code": 409, "reason": "Conflict"} if r["name"] == "coded" else {}),
        },
    }
    validating(sandbox_api, hook_entry("deny.example.com", by_url(webhook, "/deny")))
    status, body = sandbox_api.post(CM, configmap("plain"))
    assert (status, body["reason"]) == (403, "")
    assert body["message"] == 'admission webhook "deny.example.com" denied the request: system:admin may not'
    status, body = sandbox_api.post(CM, configmap("coded"))
    assert (status, body["reason"]) == (409, "Conflict")
    refused = kubectl("create", "--validate=false", "-f", "-", input=json.dumps(configmap("plain")), check=False)
    assert 'admission webhook "deny.example.com" denied the request: system:admin may not' in refused.stderr
    assert sandbox_api.get(f"{CM}/plain")[0] == 404


def test_a_mutating_webhook_patches_and_warns(sandbox_api: SandboxApi, webhook: TlsWebhook) -> None:
    webhook.answers["/stamp"] = patch_answer(
        {"op": "add", "path": "/metadata/annotations", "value": {"stamped-by": "hook"}}, warnings=["stamped, mind you"]
    )
    mutating(sandbox_api, hook_entry("stamp.example.com", by_url(webhook, "/stamp"), mutating=True))
    created = sandbox_api.ok("POST", CM, configmap("c"))
    assert created["metadata"]["annotations"] == {"stamped-by": "hook"}
    assert sandbox_api.last_headers.get_all("Warning") == ['299 - "stamped, mind you"']
    stored = sandbox_api.ok("GET", f"{CM}/c")
    assert stored["metadata"]["annotations"] == {"stamped-by": "hook"}


def test_validating_webhooks_see_the_mutated_object(sandbox_api: SandboxApi, webhook: TlsWebhook) -> None:
    webhook.answers["/stamp"] = patch_answer({"op": "add", "path": "/data/stamped", "value": "yes"})
    webhook.answers["/check"] = lambda r: {"allowed": r["object"]["data"].get("stamped") == "yes"}
    mutating(sandbox_api, hook_entry("stamp.example.com", by_url(webhook, "/stamp"), mutating=True))
    validating(sandbox_api, hook_entry("check.example.com", by_url(webhook, "/check")))
    sandbox_api.ok("POST", CM, configmap("c"))
    assert webhook.paths() == ["/stamp", "/check"]


def test_reinvocation_if_needed(sandbox_api: SandboxApi, webhook: TlsWebhook) -> None:
    webhook.answers["/first"] = lambda r: {"allowed": True}
    webhook.answers["/second"] = patch_answer({"op": "add", "path": "/data/second", "value": "x"})
    mutating(
        sandbox_api,
        hook_entry("a.first.example.com", by_url(webhook, "/first"), mutating=True, reinvocationPolicy="IfNeeded"),
        hook_entry("b.second.example.com", by_url(webhook, "/second"), mutating=True),
    )
    sandbox_api.ok("POST", CM, configmap("c"))
    # The second changed the object after the first ran: the first (IfNeeded) sees the result once more.
    assert webhook.paths() == ["/first", "/second", "/first"]
    assert webhook.reviews[-1][1]["request"]["object"]["data"] == {"second": "x"}
    sandbox_api.ok("PATCH", f"{MUTATING}/stamps", [{"op": "replace", "path": "/webhooks/0/reinvocationPolicy", "value": "Never"}],
                   content_type="application/json-patch+json")  # fmt: skip
    webhook.reviews.clear()
    sandbox_api.ok("POST", CM, configmap("d"))
    assert webhook.paths() == ["/first", "/second"]


def test_the_certificate_is_verified_against_the_ca_bundle(
    tmp_path: Path, sandbox_api: SandboxApi, webhook: TlsWebhook
) -> None:
    other_ca = base64.b64encode(build_certificate(["127.0.0.1"])[0]).decode()
    validating(sandbox_api, hook_entry("check.example.com", by_url(webhook, "/check", ca=other_ca)))
    status, body = sandbox_api.post(CM, configmap("c"))
    assert (status, body["reason"]) == (500, "InternalError")
    assert body["message"].startswith(
        'Internal error occurred: failed calling webhook "check.example.com": failed to call webhook: Post'
    )
    assert "tls: failed to verify certificate" in body["message"]
    assert webhook.reviews == []
    sandbox_api.ok("PATCH", f"{VALIDATING}/checks", [{"op": "add", "path": "/webhooks/0/failurePolicy", "value": "Ignore"}],
                   content_type="application/json-patch+json")  # fmt: skip
    sandbox_api.ok("POST", CM, configmap("c"))  # Ignore: the write goes on without the webhook


def test_a_service_is_reached_through_its_mapped_address_and_verified_by_its_name(
    tmp_path: Path, webhook: TlsWebhook
) -> None:
    cluster = SandboxCluster(service_endpoints={f"{SERVICE_HOST}:443": f"127.0.0.1:{webhook.port}"})
    with ClusterThread(cluster) as thread:
        api = SandboxApi(thread.url)
        service = {"namespace": "webhooks", "name": "hooks", "path": "/check", "port": 443}
        validating(api, hook_entry("check.example.com", {"service": service, "caBundle": webhook.ca_bundle}))
        api.ok("POST", CM, configmap("c"))
        assert webhook.paths() == ["/check"]
        assert cluster.webhook_calls[0].url == f"https://{SERVICE_HOST}:443/check"
        # A service the sandbox cannot reach fails closed.
        api.ok("PATCH", f"{VALIDATING}/checks", [{"op": "replace", "path": "/webhooks/0/clientConfig/service/name", "value": "nowhere"}],
               content_type="application/json-patch+json")  # fmt: skip
        status, body = api.post(CM, configmap("d"))
        assert status == 500
        assert 'service "webhooks/nowhere" port 443 has no address' in body["message"]


def test_a_webhook_that_is_down_or_slow_fails_closed(
    tmp_path: Path, sandbox_api: SandboxApi, webhook: TlsWebhook
) -> None:
    validating(sandbox_api, hook_entry("check.example.com", by_url(webhook, "/check"), timeoutSeconds=1))
    webhook.delay = 1.5
    started = time.monotonic()
    status, body = sandbox_api.post(CM, configmap("slow"))
    assert (status, body["reason"]) == (500, "InternalError")
    assert "context deadline exceeded" in body["message"]
    assert time.monotonic() - started < 3
    webhook.delay = 0
    webhook.stop()
    status, body = sandbox_api.post(CM, configmap("down"))
    assert status == 500
    assert "connect: " in body["message"]
    assert sandbox_api.get(f"{CM}/down")[0] == 404


def test_only_matching_writes_are_sent(sandbox_api: SandboxApi, webhook: TlsWebhook) -> None:
    sandbox_api.ok("POST", "/api/v1/namespaces", {"metadata": {"name": "watched", "labels": {"hooks": "on"}}})
    validating(
        sandbox_api,
        hook_entry(
            "check.example.com",
            by_url(webhook, "/check"),
            namespaceSelector={"matchLabels": {"hooks": "on"}},
            objectSelector={"matchExpressions": [{"key": "skip", "operator": "DoesNotExist"}]},
            matchConditions=[{"name": "not-admin", "expression": "request.userInfo.username != 'system:admin'"}],
        ),
    )
    alice = SandboxApi(sandbox_api.url, token="user:alice")
    watched = "/api/v1/namespaces/watched/configmaps"
    alice.ok("POST", watched, configmap("sent"))
    alice.ok("POST", CM, configmap("other-namespace"))
    alice.ok("POST", watched, {**configmap("labelled"), "metadata": {"name": "labelled", "labels": {"skip": "1"}}})
    sandbox_api.ok("POST", watched, configmap("by-admin"))
    alice.ok("DELETE", f"{watched}/sent")  # DELETE is not in the rules
    alice.ok("POST", "/api/v1/namespaces/watched/secrets", {"metadata": {"name": "s"}})
    assert [review["request"]["name"] for _, review in webhook.reviews] == ["sent"]


def test_a_delete_is_reviewed_with_the_old_object_only(sandbox_api: SandboxApi, webhook: TlsWebhook) -> None:
    sandbox_api.ok("POST", CM, configmap("c", v="1"))
    deletes = [{**RULES[0], "operations": ["DELETE"]}]
    webhook.answers["/deletes"] = lambda r: {"allowed": r["oldObject"]["data"] != {"v": "keep"}}
    validating(sandbox_api, hook_entry("deletes.example.com", by_url(webhook, "/deletes"), rules=deletes))
    sandbox_api.ok("POST", CM, configmap("keep", v="keep"))
    assert sandbox_api.delete(f"{CM}/keep")[0] == 403
    sandbox_api.ok("DELETE", f"{CM}/c")
    request = webhook.reviews[-1][1]["request"]
    assert (request["operation"], request["object"], request["oldObject"]["data"]) == ("DELETE", None, {"v": "1"})
    assert request["options"]["kind"] == "DeleteOptions"


def test_a_match_condition_that_errs_obeys_the_failure_policy(sandbox_api: SandboxApi, webhook: TlsWebhook) -> None:
    validating(
        sandbox_api,
        hook_entry(
            "check.example.com",
            by_url(webhook, "/check"),
            matchConditions=[{"name": "labelled", "expression": "object.metadata.labels.team == 'a'"}],
        ),
    )
    status, body = sandbox_api.post(CM, configmap("unlabelled"))
    assert status == 500
    assert "resulted in error" in body["message"]
    assert webhook.reviews == []


def test_dry_run_reaches_only_webhooks_without_side_effects(
    sandbox: ClusterThread, sandbox_api: SandboxApi, webhook: TlsWebhook
) -> None:
    # sideEffects "Some" is refused at apply time in admissionregistration/v1; preload bypasses that.
    sandbox.preload(
        configuration(
            "ValidatingWebhookConfiguration",
            "effects",
            hook_entry("effects.example.com", by_url(webhook, "/e"), sideEffects="Some"),
        )
    )
    status, body = sandbox_api.post(f"{CM}?dryRun=All", configmap("c"))
    assert (status, body["reason"]) == (400, "BadRequest")
    assert body["message"] == 'admission webhook "effects.example.com" does not support dry run'
    sandbox_api.ok("POST", CM, configmap("c"))
    assert webhook.paths() == ["/e"]


def test_webhook_configurations_are_checked_at_apply_and_never_sent_to_webhooks(
    sandbox_api: SandboxApi, webhook: TlsWebhook
) -> None:
    everything = [{"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["*"], "resources": ["*"]}]
    for broken, field in (
        ({"sideEffects": "Some"}, "sideEffects"),
        ({"clientConfig": {"url": "http://127.0.0.1:1/x"}}, "clientConfig.url"),
        ({"admissionReviewVersions": ["v1beta1"]}, "admissionReviewVersions"),
        (
            {"matchConditions": [{"name": "x", "expression": "object.metadata.name =="}]},
            "matchConditions[0].expression",
        ),
        ({"name": "short"}, "name"),
    ):
        entry = hook_entry("check.example.com", by_url(webhook, "/all"), rules=everything) | broken
        status, body = sandbox_api.post(VALIDATING, configuration("ValidatingWebhookConfiguration", "bad", entry))
        assert (status, body["reason"]) == (422, "Invalid"), broken
        assert f"webhooks[0].{field}" in body["message"]
    webhook.answers["/all"] = lambda _: {"allowed": False, "status": {"message": "no"}}
    validating(sandbox_api, hook_entry("all.example.com", by_url(webhook, "/all"), rules=everything))
    assert sandbox_api.post(CM, configmap("c"))[0] == 403
    sandbox_api.ok("DELETE", f"{VALIDATING}/checks")  # the lock-out can always be undone
    assert webhook.paths() == ["/all"]
