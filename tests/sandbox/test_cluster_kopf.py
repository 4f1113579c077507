"""A tiny real Kopf operator runs against the sandbox API server without errors."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kopf
import pytest
from kopf.testing import KopfRunner

from airlock.sandbox.cluster import ClusterThread
from tests.fixtures.cluster import SandboxApi

WIDGETS = "/apis/sandbox.airlock.dev/v1/namespaces/default/widgets"
CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.sandbox.airlock.dev"},
    "spec": {
        "group": "sandbox.airlock.dev",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
            }
        ],
    },
}


def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll ``check`` until it returns something truthy; fail with the last result."""
    deadline = time.monotonic() + timeout
    result = check()
    while not result and time.monotonic() < deadline:
        time.sleep(0.05)
        result = check()
    assert result, f"not reached within {timeout}s: {check}"
    return result


def operator_registry() -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return kopf.login_with_kubeconfig(**kwargs)

    @kopf.on.create("sandbox.airlock.dev", "v1", "widgets", id="created", registry=registry)
    def created(body: kopf.Body, patch: kopf.Patch, **_: Any) -> dict[str, Any]:
        kopf.info(body, reason="Created", message="the widget was seen")
        patch.status["phase"] = "Seen"
        return {"handled": True}

    @kopf.timer("sandbox.airlock.dev", "v1", "widgets", id="tick", interval=0.5, registry=registry)
    def tick(status: kopf.Status, patch: kopf.Patch, **_: Any) -> None:
        patch.status["ticks"] = int(status.get("ticks") or 0) + 1

    @kopf.on.delete("sandbox.airlock.dev", "v1", "widgets", registry=registry)
    def deleted(**_: Any) -> None:
        pass

    return registry


def test_kopf_operator_handles_create_timer_and_delete(
    sandbox: ClusterThread,
    sandbox_api: SandboxApi,
    kubeconfig: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    sandbox_api.ok("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", CRD)
    settings = kopf.OperatorSettings()
    settings.watching.server_timeout = 10
    args = ["run", "--standalone", "--all-namespaces", "--verbose"]

    with KopfRunner(args, registry=operator_registry(), settings=settings, timeout=10) as runner:
        sandbox_api.ok(
            "POST",
            WIDGETS,
            {"apiVersion": "sandbox.airlock.dev/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 1}},
        )

        def status() -> dict[str, Any]:
            found: dict[str, Any] = sandbox_api.ok("GET", f"{WIDGETS}/w1").get("status") or {}
            return found

        assert eventually(lambda: status().get("created") == {"handled": True})
        assert status()["phase"] == "Seen"
        assert eventually(lambda: int(status().get("ticks") or 0) >= 2)
        widget = sandbox_api.ok("GET", f"{WIDGETS}/w1")
        assert "kopf.zalando.org/KopfFinalizerMarker" in widget["metadata"]["finalizers"]

        events = eventually(lambda: sandbox_api.ok("GET", "/api/v1/namespaces/default/events")["items"])
        assert events[0]["reason"] == "Created"
        assert events[0]["involvedObject"]["name"] == "w1"

        status_code, _ = sandbox_api.delete(f"{WIDGETS}/w1")
        assert status_code == 202  # held by Kopf's finalizer until its deletion handler ran
        eventually(lambda: sandbox_api.get(f"{WIDGETS}/w1")[0] == 404)

    assert runner.exception is None
    problems = [
        record.getMessage()
        for record in caplog.records
        if record.levelno >= logging.WARNING and "OS signals are ignored" not in record.getMessage()
    ]
    assert problems == []  # e.g. no "Patching failed with inconsistencies", no API errors
    history = sandbox.history("widgets.sandbox.airlock.dev", "default", "w1")
    assert history[-1]["metadata"].get("finalizers") is None  # the last write removed the finalizer
