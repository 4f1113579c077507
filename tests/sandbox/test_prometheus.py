"""The sandbox Prometheus: start, scrape, query, outages, live reconfiguration and backfill.

These run the real ``prometheus``/``promtool`` binaries. Scrape-dependent tests share one
module-scoped instance (the first scrape costs ~5 s) and each uses its own app on the
shared model server so injections do not leak between tests.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from airlock.sandbox.history import (
    Series,
    drift,
    integrate,
    model_history,
    openmetrics_history,
    ramp,
    windows,
)
from airlock.sandbox.model import ModelServer
from airlock.sandbox.prometheus import (
    PrometheusError,
    PrometheusNotInstalled,
    PrometheusProcess,
    PrometheusQueryError,
    PrometheusUnavailable,
)
from tests.fixtures.prometheus import PrometheusFactory

# -- live scraping ---------------------------------------------------------------------


def test_scrapes_the_model_server_keeping_its_labels(
    prometheus_module: PrometheusProcess, model_server_module: ModelServer
) -> None:
    assert prometheus_module.running
    assert prometheus_module.targets_health() == {model_server_module.target: "up"}
    up = prometheus_module.query('up{job="model"}')
    assert [(s["metric"]["instance"], s["value"][1]) for s in up] == [(model_server_module.target, "1")]
    # honor_labels: the namespace/app labels come from the model server, untouched.
    info = prometheus_module.wait_for('model_info{namespace="ml-prod", app="chatbot"}')
    assert info[0]["metric"]["version"] == "v1"
    assert prometheus_module.query_value("scalar(vector(42))") == 42


def test_injected_failure_is_visible_as_a_rate_within_seconds(
    prometheus_module: PrometheusProcess, model_server_module: ModelServer
) -> None:
    # A fresh app: new series appear at the next scrape, no reload needed.
    model_server_module.add_app("ml-prod", "pii-leaker")
    selector = 'pii_detections_total{namespace="ml-prod", app="pii-leaker"}'
    prometheus_module.wait_for(selector, timeout=10)
    assert prometheus_module.query(f"rate({selector}[5s]) > 0") == []

    model_server_module.inject("ml-prod/pii-leaker", "privacy", rate=2)
    injected = time.monotonic()
    prometheus_module.wait_for(f"rate({selector}[5s]) > 0", timeout=10)
    visible_after = time.monotonic() - injected
    assert visible_after < 5
    # With a few more scrapes the rate converges on the injected 2/s.
    prometheus_module.wait_for(
        f"rate({selector}[3s])", lambda r: bool(r) and abs(float(r[0]["value"][1]) - 2) < 0.05, timeout=10
    )
    model_server_module.heal("ml-prod/pii-leaker")


def test_query_errors(prometheus_module: PrometheusProcess) -> None:
    with pytest.raises(PrometheusQueryError, match="parse error"):
        prometheus_module.query("rate(")
    with pytest.raises(PrometheusQueryError, match="expected one"):
        prometheus_module.query_value('{__name__=~"model_requests_total"}')
    assert prometheus_module.query_value("absent_metric_xyz") is None
    with pytest.raises(TimeoutError, match="absent_metric_xyz"):
        prometheus_module.wait_for("absent_metric_xyz", timeout=0.3)


# -- lifecycle ------------------------------------------------------------------------


def test_set_targets_kill_and_restart(prometheus_factory: PrometheusFactory, model_server: ModelServer) -> None:
    prom = prometheus_factory().start()
    assert prom.targets_health() == {}
    port, config = prom.port, prom.config_path.read_text()
    assert "honor_labels: true" in config
    assert "scrape_interval: 1s" in config

    prom.set_targets([model_server.target])  # rewrite the config + POST /-/reload
    prom.wait_for_scrape(timeout=20)
    assert prom.query_value("sum(up)") == 1

    first_pid = prom.pid
    prom.kill()  # an outage: no graceful shutdown
    assert not prom.running
    with pytest.raises(PrometheusUnavailable):
        prom.query("up")
    with pytest.raises(TimeoutError):
        prom.wait_for("up", timeout=0.3)

    # While it is down, history can be added; it shows up after the restart.
    now = float(int(time.time()))
    series = [Series("backfilled_total", {"app": "chatbot"}, "counter", 1.0)]
    prom.backfill(openmetrics_history(series, now - 7200, now - 3600, 60))

    prom.restart()
    assert prom.port == port
    assert prom.pid != first_pid
    assert prom.query_value("vector(1)") == 1  # queries work again right away
    prom.wait_for_scrape(timeout=20)  # …and scraping resumes (~5 s)
    assert prom.query_value("sum(up)") == 1
    assert prom.query_value("backfilled_total", time=now - 3600) == 3600

    prom.stop()
    assert not prom.running
    prom.stop()  # idempotent


def test_backfill_refuses_a_running_server(prometheus_module: PrometheusProcess) -> None:
    with pytest.raises(PrometheusError, match="stopped"):
        prometheus_module.backfill("# EOF\n")


def test_bad_backfill_input_reports_promtool_error(prometheus_factory: PrometheusFactory) -> None:
    with pytest.raises(PrometheusError, match="promtool"):
        prometheus_factory().backfill("this is not openmetrics\n")


def test_missing_binary_says_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PrometheusNotInstalled, match="apt-get install -y --no-install-recommends prometheus"):
        PrometheusProcess()


# -- history and backfill -------------------------------------------------------------


def test_history_rendering_is_openmetrics() -> None:
    series = [
        Series("answer_total", {"app": "a"}, "counter", 2.0, help="Answers."),
        Series("fairness_disparity_ratio", {"app": "a"}, "gauge", windows(1.0, (120, 180, 0.5))),
    ]
    lines = openmetrics_history(series, 0, 180, 60).splitlines()
    assert lines == [
        "# TYPE answer counter",
        "# HELP answer Answers.",
        'answer_total{app="a"} 0.0 0',
        'answer_total{app="a"} 120.0 60',
        'answer_total{app="a"} 240.0 120',
        'answer_total{app="a"} 360.0 180',
        "# TYPE fairness_disparity_ratio gauge",
        'fairness_disparity_ratio{app="a"} 1.0 0',
        'fairness_disparity_ratio{app="a"} 1.0 60',
        'fairness_disparity_ratio{app="a"} 0.5 120',
        'fairness_disparity_ratio{app="a"} 1.0 180',
        "# EOF",
    ]
    with pytest.raises(ValueError, match="_total"):
        Series("answers", {}, "counter", 1.0)


def test_integration_is_exact_across_window_edges_and_ramps() -> None:
    # Window edges off the sampling grid, and a ramp hitting its floor mid-step.
    assert integrate(windows(1.0, (10.5, 20.25, 3.0)), 0, 30) == pytest.approx(30 + 2 * 9.75)
    assert integrate(ramp(1.0, 0, -0.1, floor=0.0), 0, 20) == pytest.approx(5.0)
    assert integrate(20 * drift(0, per_minute=6.0, until=5), 0, 10) == pytest.approx(20 * (5 * 0.65 + 5 * 0.9))
    assert integrate(lambda t: 2 * t, 0, 10, substeps=4) == pytest.approx(100)


def test_backfilled_drift_is_queryable_at_past_times(prometheus_factory: PrometheusFactory) -> None:
    now = float(int(time.time()) // 60 * 60)
    start, drift_start, fixed = now - 3 * 86400, now - 2 * 86400, now - 86400
    per_minute = 0.0002  # 0.9 → 0.612 over the day of drift
    helpful = drift(drift_start, per_minute=per_minute, until=fixed)
    unfair = windows(1.0, (drift_start, fixed, 0.6))
    series = model_history("ml-prod", "chatbot", helpful_ratio=helpful, fairness_ratio=unfair)
    prom = prometheus_factory()
    prom.backfill(openmetrics_history(series, start, now - 60, 60))
    prom.start()  # the new blocks are loaded when the TSDB opens

    def expected_ratio(t: float) -> float:
        # rate(...[5m]) averages the last 5 minutes; the ratio is linear there.
        return helpful(t - 150) if drift_start + 300 <= t <= fixed else helpful(t)

    ratio = 'sum(rate(answer_helpful_total{app="chatbot"}[5m])) / sum(rate(answer_total{app="chatbot"}[5m]))'
    for at in (start + 3600, drift_start + 6 * 3600, drift_start + 20 * 3600, fixed + 3600):
        assert prom.query_value(ratio, time=at) == pytest.approx(expected_ratio(at), abs=1e-6), at

    fairness = 'avg_over_time(fairness_disparity_ratio{app="chatbot"}[1h])'
    assert prom.query_value(fairness, time=drift_start - 3600) == 1.0
    assert prom.query_value(fairness, time=drift_start + 7200) == pytest.approx(0.6)
    # Average of the helpful ratio over the first 12 h of drift: the ratio at 6 h.
    avg = prom.query_value(f"avg_over_time(({ratio})[12h:5m])", time=drift_start + 12 * 3600)
    assert avg == pytest.approx(helpful(drift_start + 6 * 3600 - 150), abs=1e-3)

    result = prom.query_range(ratio, start + 3600, now - 3600, 3600)
    points = [(float(t), float(v)) for t, v in result[0]["values"]]
    assert len(points) == 71  # hourly over 70 h, both ends included
    for t, v in points:
        assert v == pytest.approx(expected_ratio(t), abs=1e-6), t
    assert min(v for _, v in points) == pytest.approx(0.9 - per_minute * (24 * 60 - 2.5), abs=1e-6)
