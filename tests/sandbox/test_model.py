"""The synthetic model server: healthy metrics, each failure mode, and its control API.

Time is injected (a fake clock) so rates can be checked exactly without sleeping; only the
HTTP tests run a real server, and none needs Prometheus.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from http.client import HTTPConnection, HTTPException
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from airlock.sandbox.model import CONTENT_TYPE, FAILURES, Baseline, ModelFleet, ModelServer, parse_app

APP = ("ml-prod", "chatbot")


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Parse exposition text (validating it) into {(sample name, labels): value}."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(text: str, name: str, namespace: str = "ml-prod", app: str = "chatbot", **labels: str) -> float:
    key = (name, frozenset({"namespace": namespace, "app": app, **labels}.items()))
    return samples(text)[key]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fleet(clock: FakeClock) -> ModelFleet:
    return ModelFleet([APP], clock=clock)


def test_healthy_app_metrics(fleet: ModelFleet, clock: FakeClock) -> None:
    clock.advance(10)
    text = fleet.render()
    assert value(text, "model_requests_total", code="200") == 200  # 20 req/s
    assert value(text, "model_requests_total", code="500") == 0
    assert value(text, "answer_total") == 200
    assert value(text, "answer_helpful_total") == pytest.approx(180)  # ratio 0.9
    assert value(text, "llm_tokens_total") == 20_000  # 2000 tokens/s
    for counter in ("pii_detections_total", "prompt_injection_detections_total", "harmful_output_total"):
        assert value(text, counter) == 0
    assert value(text, "fairness_disparity_ratio") == 1.0
    assert value(text, "model_info", version="v1") == 1.0
    # The histogram is consistent: cumulative buckets ending at the request count.
    buckets = [value(text, "model_request_duration_seconds_bucket", le=le) for le in ("0.1", "0.5", "2.5", "+Inf")]
    assert buckets == sorted(buckets)
    assert buckets[-1] == value(text, "model_request_duration_seconds_count") == 200
    assert value(text, "model_request_duration_seconds_sum") > 0


def test_counters_are_integrated_lazily_between_renders(fleet: ModelFleet, clock: FakeClock) -> None:
    clock.advance(2.5)
    first = value(fleet.render(), "model_requests_total", code="200")
    assert value(fleet.render(), "model_requests_total", code="200") == first  # no time passed, no change
    clock.advance(0.5)
    assert value(fleet.render(), "model_requests_total", code="200") == first + 10
    clock.advance(-5)  # a clock stepping back never makes a counter go down
    assert value(fleet.render(), "model_requests_total", code="200") == first + 10


# failure → (params, metric sample to watch, extra labels, expected value after 10 s)
FAILURE_CASES: dict[str, tuple[dict[str, float], str, dict[str, str], float]] = {
    "sudden": ({}, "model_requests_total", {"code": "500"}, 100.0),  # default 50% of 20 req/s
    "adversarial": ({}, "prompt_injection_detections_total", {}, 20.0),  # default 2/s
    "privacy": ({"rate": 2}, "pii_detections_total", {}, 20.0),
    "safety": ({"rate": 3}, "harmful_output_total", {}, 30.0),
    "fairness": ({"value": 0.6}, "fairness_disparity_ratio", {}, 0.6),
    "cost": ({}, "llm_tokens_total", {}, 200_000.0),  # default factor 10
    "latency": ({"factor": 10}, "model_request_duration_seconds_bucket", {"le": "0.5"}, 0.0),
}


@pytest.mark.parametrize("failure", sorted(FAILURE_CASES))
def test_failure_injection_and_heal(failure: str, fleet: ModelFleet, clock: FakeClock) -> None:
    params, name, labels, expected = FAILURE_CASES[failure]
    settings = fleet.inject("ml-prod/chatbot", failure, **params)
    assert not settings["healthy"]
    assert settings["failures"][failure]["since"] == clock.now
    clock.advance(10)
    assert value(fleet.render(), name, **labels) == pytest.approx(expected)

    before = fleet.render()
    assert fleet.heal(APP)["healthy"]
    clock.advance(10)
    after = fleet.render()
    healthy_delta = {
        "model_requests_total": 0.0,
        "prompt_injection_detections_total": 0.0,
        "pii_detections_total": 0.0,
        "harmful_output_total": 0.0,
        "llm_tokens_total": 20_000.0,
        "model_request_duration_seconds_bucket": 150.0,  # 6/8 of 200 healthy requests take <= 0.5 s
    }
    if name == "fairness_disparity_ratio":
        assert value(after, name) == 1.0
    else:
        assert value(after, name, **labels) - value(before, name, **labels) == pytest.approx(healthy_delta[name])


def test_sudden_keeps_request_rate_and_drops_answers(fleet: ModelFleet, clock: FakeClock) -> None:
    fleet.inject(APP, "sudden", fraction=0.25)
    clock.advance(10)
    text = fleet.render()
    assert value(text, "model_requests_total", code="200") == 150
    assert value(text, "model_requests_total", code="500") == 50
    assert value(text, "answer_total") == 150  # failed requests give no answer


def test_drift_lowers_helpful_ratio_linearly_to_the_floor(fleet: ModelFleet, clock: FakeClock) -> None:
    clock.advance(10)
    fleet.inject(APP, "drift", per_minute=0.3)
    assert fleet.helpful_ratio(APP) == pytest.approx(0.9)
    clock.advance(60)
    assert fleet.helpful_ratio(APP) == pytest.approx(0.6)
    # 10 s at 0.9, then 60 s falling from 0.9 to 0.6 (average 0.75), all at 20 answers/s.
    assert value(fleet.render(), "answer_helpful_total") == pytest.approx(20 * (10 * 0.9 + 60 * 0.75))

    clock.advance(240)  # the ratio reached 0 after 180 s of drift and stays there
    assert fleet.helpful_ratio(APP) == 0.0
    helpful = value(fleet.render(), "answer_helpful_total")
    assert helpful == pytest.approx(20 * (10 * 0.9 + 180 * 0.45))
    clock.advance(60)
    assert value(fleet.render(), "answer_helpful_total") == pytest.approx(helpful)

    fleet.heal(APP, "drift")
    assert fleet.helpful_ratio(APP) == pytest.approx(0.9)


def test_drift_floor_and_rendering_mid_drift_are_exact(fleet: ModelFleet, clock: FakeClock) -> None:
    fleet.inject(APP, "drift", per_minute=0.6, floor=0.3)
    for _ in range(12):  # rendering every 5 s must add up to the same integral as once
        clock.advance(5)
        fleet.render()
    # 0.9 → 0.3 over the first 60 s (average 0.6), then 0.3: never below the floor.
    assert value(fleet.render(), "answer_helpful_total") == pytest.approx(20 * 60 * 0.6)
    clock.advance(60)
    assert fleet.helpful_ratio(APP) == pytest.approx(0.3)


def test_failures_combine_and_heal_one_at_a_time(fleet: ModelFleet, clock: FakeClock) -> None:
    fleet.inject(APP, "privacy", rate=1)
    fleet.inject(APP, "adversarial", rate=4)
    clock.advance(5)
    fleet.heal(APP, "privacy")
    clock.advance(5)
    text = fleet.render()
    assert value(text, "pii_detections_total") == 5
    assert value(text, "prompt_injection_detections_total") == 40
    assert set(fleet.describe(APP)["failures"]) == {"adversarial"}


def test_reinjecting_retunes_from_now(fleet: ModelFleet, clock: FakeClock) -> None:
    fleet.inject(APP, "privacy", rate=1)
    clock.advance(10)
    fleet.inject(APP, "privacy", rate=3)
    clock.advance(10)
    assert value(fleet.render(), "pii_detections_total") == 40


def test_invalid_control_requests(fleet: ModelFleet) -> None:
    with pytest.raises(ValueError, match="unknown failure"):
        fleet.inject(APP, "meltdown")
    with pytest.raises(ValueError, match=r"unknown parameter.*ratee"):
        fleet.inject(APP, "privacy", ratee=2)
    with pytest.raises(KeyError, match="unknown app"):
        fleet.inject("ml-prod/nope", "privacy")
    fleet.add_app("ml-dev", "chatbot")
    with pytest.raises(KeyError, match="ambiguous"):
        fleet.inject("chatbot", "privacy")
    with pytest.raises(ValueError, match="NAMESPACE/NAME"):
        parse_app("chatbot")


def test_failure_modes_are_all_covered() -> None:
    assert set(FAILURES) == set(FAILURE_CASES) | {"drift"}


def test_apps_added_at_runtime_start_from_zero_in_fixed_order(fleet: ModelFleet, clock: FakeClock) -> None:
    clock.advance(10)
    fleet.add_app("ml-dev", "summarizer", version="v7")
    fleet.add_app("ml-prod", "chatbot")  # existing: no reset
    clock.advance(1)
    text = fleet.render()
    assert value(text, "answer_total") == 220
    assert value(text, "answer_total", namespace="ml-dev", app="summarizer") == 20
    assert value(text, "model_info", namespace="ml-dev", app="summarizer", version="v7") == 1
    answers = [line for line in text.splitlines() if line.startswith("answer_total{")]
    assert ['app="chatbot"' in answers[0], 'app="summarizer"' in answers[1]] == [True, True]
    assert fleet.apps == [APP, ("ml-dev", "summarizer")]

    fleet.set_version("ml-dev/summarizer", "v8")
    assert value(fleet.render(), "model_info", namespace="ml-dev", app="summarizer", version="v8") == 1


def test_custom_baseline(clock: FakeClock) -> None:
    fleet = ModelFleet([APP], clock=clock, baseline=Baseline(request_rate=5, helpful_ratio=0.5))
    clock.advance(4)
    text = fleet.render()
    assert value(text, "answer_total") == 20
    assert value(text, "answer_helpful_total") == 10


def test_rendering_a_thousand_apps_is_cheap(clock: FakeClock) -> None:
    fleet = ModelFleet([(f"ns-{i:04d}", "chatbot") for i in range(1000)], clock=clock)
    fleet.inject(("ns-0500", "chatbot"), "privacy")
    clock.advance(1)
    started = time.perf_counter()
    text = fleet.render()
    elapsed = time.perf_counter() - started
    assert elapsed < 0.5, f"rendering 1000 apps took {elapsed:.3f}s"
    assert sum(1 for line in text.splitlines() if line.startswith("answer_total{")) == 1000
    pii = {line.split(",", 1)[0]: line.rsplit(" ", 1)[1] for line in text.splitlines() if line.startswith("pii_")}
    assert pii['pii_detections_total{namespace="ns-0500"'] == "1.0"
    assert pii['pii_detections_total{namespace="ns-0501"'] == "0.0"


# -- over HTTP ------------------------------------------------------------------------


def http(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, str, str]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def test_http_metrics_and_control(clock: FakeClock) -> None:
    with ModelServer(apps=[APP], clock=clock) as server:
        assert server.target.startswith("127.0.0.1:")
        assert server.url == f"http://{server.target}"

        status, content_type, text = http("GET", f"{server.url}/metrics")
        assert (status, content_type) == (200, CONTENT_TYPE)
        assert value(text, "answer_total") == 0

        status, _, body = http(
            "POST",
            f"{server.url}/control",
            {"action": "inject", "app": "ml-prod/chatbot", "failure": "privacy", "params": {"rate": 2}},
        )
        assert status == 200, body
        assert json.loads(body)["failures"]["privacy"]["rate"] == 2
        clock.advance(10)
        assert value(http("GET", f"{server.url}/metrics")[2], "pii_detections_total") == 20

        status, _, body = http("GET", f"{server.url}/control")
        assert json.loads(body)["apps"][0]["failures"]["privacy"]["rate"] == 2

        assert http("POST", f"{server.url}/control", {"action": "heal", "app": "ml-prod/chatbot"})[0] == 200
        assert server.fleet.describe(APP)["healthy"]

        status, _, body = http("POST", f"{server.url}/control", {"action": "add_app", "app": "ml-dev/summarizer"})
        assert status == 200, body
        # The in-process conveniences act on the same state as the endpoint.
        server.inject("ml-dev/summarizer", "cost", factor=3)
        clock.advance(1)
        assert value(server.render(), "llm_tokens_total", namespace="ml-dev", app="summarizer") == 6000
        server.heal("ml-dev/summarizer")

        status, _, body = http("POST", f"{server.url}/control", {"action": "inject", "app": "ml-prod/chatbot"})
        assert status == 400
        status, _, body = http(
            "POST", f"{server.url}/control", {"action": "inject", "app": "ml-prod/chatbot", "failure": "meltdown"}
        )
        assert (status, "unknown failure" in json.loads(body)["error"]) == (400, True)
        assert http("POST", f"{server.url}/control", {"action": "heal", "app": "x/y"})[0] == 400
        assert http("GET", f"{server.url}/nope")[0] == 404
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.port


def test_http_metrics_with_the_real_clock() -> None:
    with ModelServer() as server:
        time.sleep(0.2)
        text = http("GET", f"{server.url}/metrics")[2]
        assert 0 < value(text, "model_requests_total", code="200") < 20


def test_standalone_command() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "airlock.sandbox.model", "--port", "0", "--app", "ml-prod/chatbot", "--app", "a/b"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "serving 2 app(s) on http://127.0.0.1:" in line
        url = line.split(" on ", 1)[1].split("/metrics", 1)[0]
        text = http("GET", f"{url}/metrics")[2]
        assert value(text, "model_info", namespace="a", app="b", version="v1") == 1
        assert http("POST", f"{url}/control", {"app": "a/b", "failure": "safety"})[0] == 200
    finally:
        proc.terminate()
        assert proc.wait(timeout=5) == 0


def test_stop_drops_keep_alive_connections_and_restart_keeps_the_port() -> None:
    server = ModelServer().start()
    port = server.port
    conn = HTTPConnection("127.0.0.1", port, timeout=5)

    def scrape() -> bytes:
        conn.request("GET", "/metrics")
        return conn.getresponse().read()

    try:
        assert scrape()
        server.stop()  # a scraper's persistent connection must not keep the "outage" serving
        with pytest.raises((HTTPException, OSError)):
            scrape()
    finally:
        conn.close()
    server.start()
    try:
        assert server.port == port
        assert http("GET", f"{server.url}/healthz")[0] == 200
    finally:
        server.stop()
