"""airlock guard end to end: leaking answers -> the guard's metrics in a real Prometheus -> monitor breach ->
containment by the real operator -> the guard answers from the fallback; the customer never sees the leak.

One world for the module (sandbox API server, Prometheus scraping the model server and the guard, the
operator), one guard process in front of the synthetic model's OpenAI-compatible chat.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airlock.sandbox import world as sandbox_world
from airlock.sandbox.chat import LEAKED_VALUES
from airlock.sandbox.guarded import ChatClient, GuardProcess
from airlock.sandbox.world import World, deployment, service, wait_for

pytestmark = pytest.mark.integration

NS, NAME, APP = "guarded", "support-chatbot", "chatbot"
ONCALL = "alice@example.com"
LEAKS = 'airlock_guard_detections_total{namespace="guarded",system="support-chatbot",detector="cross-customer"}'


def system() -> dict[str, Any]:
    return {
        "apiVersion": "airlock.dev/v1alpha1",
        "kind": "AISystem",
        "metadata": {"name": NAME, "namespace": NS},
        "spec": {
            "target": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "chatbot-v7"},
            "fallback": {"service": "chatbot", "selector": {"app": "chatbot-fallback"}},
            "monitors": [
                {
                    "name": "pii-leak",
                    "failureMode": "privacy",
                    "query": (
                        "sum by (namespace, system) "
                        '(rate(airlock_guard_detections_total{detector="cross-customer",direction="response"}[5s]))'
                    ),
                    "match": {"namespace": "{{ namespace }}", "system": "{{ name }}"},
                    "interval": "1s",
                    "thresholds": [{"severity": "SEV1", "op": ">", "value": 0.5}],
                }
            ],
            "severities": {"SEV1": {"response": "shutdown", "actions": ["reroute", "scaleToZero"]}},
            "responders": [
                {"name": "oncall", "subjects": [{"kind": "User", "name": ONCALL}], "may": ["shutdown", "release"]}
            ],
            "guard": {"detectors": {"cross-customer": "redact"}},
        },
    }


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, GuardProcess]]:
    directory: Path = tmp_path_factory.mktemp("guarded")
    guard = GuardProcess(
        kubeconfig=directory / "kubeconfig",
        system=f"{NS}/{NAME}",
        upstream="",
        log_path=directory / "guard.log",
        config={"detectors": {"pii": "redact"}},
    )
    with sandbox_world.running_world(directory, scrape_targets=[guard.metrics_target]) as world:
        api = world.api
        api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        world.model.add_app(NS, APP)
        world.model.add_app(NS, "chatbot-fallback", fallback=True)
        api.create(deployment(NS, "chatbot-v7", APP, replicas=3))
        api.create(service(NS, "chatbot", {"app": APP}))
        api.apply(system())
        guard.upstream = world.model.chat_url(NS, APP)
        guard.fallback = world.model.chat_url(NS, "chatbot-fallback")
        guard.start()
        try:
            wait_for("the guard ready", guard.ready, timeout=30)
            yield world, guard
        finally:
            guard.stop()
            print("---- guard log (tail) ----")
            print(guard.log_tail())


def phase(world: World) -> str | None:
    return ((world.api.get("AISystem", NS, NAME) or {}).get("status") or {}).get("phase")


def test_leaking_answers_are_redacted_contain_the_system_and_move_the_guard_to_the_fallback_and_back(
    guarded: tuple[World, GuardProcess],
) -> None:
    world, guard = guarded
    wait_for("phase Healthy", lambda: phase(world) == "Healthy", timeout=60)
    with ChatClient(guard.url, interval=0.1) as client:
        wait_for("healthy answers", lambda: len(client.seen()) >= 5, timeout=15)
        assert {a.route for a in client.seen()} == {"upstream"}
        assert not any("[REDACTED:" in a.text for a in client.seen())

        world.model.inject((NS, APP), "privacy")
        wait_for("phase ShutDown", lambda: phase(world) == "ShutDown", timeout=30)
        # The breach came from the guard's series, as Prometheus scraped them.
        assert world.prometheus.query_value(f"sum({LEAKS})") > 0
        status = (world.api.get("AISystem", NS, NAME) or {})["status"]
        assert status["monitors"][0]["state"] == "breached"
        assert (world.api.get("Deployment", NS, "chatbot-v7") or {})["spec"]["replicas"] == 0

        contained = wait_for("an answer from the fallback", lambda: [a for a in client.seen() if a.route == "fallback"])
        answers = client.seen()
        leaking = [a for a in answers if "[REDACTED:" in a.text]
        assert leaking, "the model leaked, the guard redacted"
        assert any(a.streamed for a in leaking)
        assert any(not a.streamed for a in leaking)
        # With redact set, the customer received none of the other customers' data, streamed or not.
        assert [v for a in answers for v in LEAKED_VALUES if v in a.text] == []
        after = [a for a in answers if a.at > contained[0].at]
        assert {a.route for a in after} <= {"fallback"}

    metrics = guard.metrics()
    assert 'airlock_guard_requests_total{namespace="guarded",outcome="fallback",system="support-chatbot"}' in metrics
    assert 'airlock_guard_route{namespace="guarded",route="fallback",system="support-chatbot"} 1.0' in metrics

    # Fixed and released: the guard serves the model again, without a restart.
    world.model.heal((NS, APP))
    wait_for(
        "monitor ok",
        lambda: ((world.api.get("AISystem", NS, NAME) or {})["status"]["monitors"] or [{}])[0].get("state") == "ok",
        timeout=30,
    )
    world.api.annotate("AISystem", NS, NAME, {"airlock.dev/release": "fixed", "airlock.dev/requested-by": ONCALL})
    wait_for("phase Healthy", lambda: phase(world) == "Healthy", timeout=30)
    with ChatClient(guard.url, interval=0.1) as client:
        wait_for("an answer from the model", lambda: [a for a in client.seen() if a.route == "upstream"], timeout=15)
        assert not any(a.route == "fallback" for a in client.seen())
        assert not any("[REDACTED:" in a.text for a in client.seen())
