"""``airlock backtest`` end to end: a real Prometheus holding a backfilled history with known breach windows."""

from __future__ import annotations

import asyncio
import copy
import datetime
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from airlock.adapters.prometheus import PrometheusProvider
from airlock.sandbox.history import model_history, openmetrics_history, windows
from tests.domain.builders import PII_LEAK, spec_dict
from tests.fixtures.prometheus import PrometheusFactory

HOUR = 3600.0


def _at(text: str | None) -> float:
    assert text is not None
    return datetime.datetime.fromisoformat(text).timestamp()


def _manifest(tmp_path: Path) -> Path:
    path = tmp_path / "aisystem.yaml"
    body: dict[str, Any] = {
        "apiVersion": "airlock.dev/v1alpha1",
        "kind": "AISystem",
        "metadata": {"name": "support-chatbot", "namespace": "ml-prod"},
        "spec": spec_dict(monitors=[copy.deepcopy(PII_LEAK)]),
    }
    path.write_text(yaml.safe_dump(body))
    return path


@pytest.mark.integration
def test_backtest_finds_exactly_the_backfilled_breach_windows(
    prometheus_factory: PrometheusFactory, tmp_path: Path
) -> None:
    t0 = float(int(time.time() // 60 * 60) - 4 * HOUR)
    # PII detections: SEV1 level (1/s > 0.5) for 20 minutes at t0+1h; SEV3 level (0.2/s, for: 2m) for 10 at t0+2h.
    pii = windows(0.0, (t0 + HOUR, t0 + HOUR + 1200, 1.0), (t0 + 2 * HOUR, t0 + 2 * HOUR + 600, 0.2))
    prom = prometheus_factory()
    prom.backfill(openmetrics_history(model_history("ml-prod", "chatbot", pii_rate=pii), t0, t0 + 3 * HOUR, 15))
    prom.start()

    start, end = (datetime.datetime.fromtimestamp(t, datetime.UTC).isoformat() for t in (t0, t0 + 3 * HOUR))
    command = [sys.executable, "-m", "airlock", "backtest", "-f", str(_manifest(tmp_path)), "--prometheus", prom.url]
    command += ["--from", start, "--to", end, "--output", "json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)

    assert report["step"] == "15s"  # the monitor's interval
    assert report["queries"] == 1
    (system,) = report["systems"]
    first, second = system["incidents"]

    # rate(...[1m]) needs up to a minute to cross a threshold and to fall back to 0.
    assert first["severity"] == first["maxSeverity"] == "SEV1"
    assert (first["response"], first["actions"]) == ("shutdown", ["reroute", "scaleToZero"])
    assert t0 + HOUR <= _at(first["firstBreach"]) <= t0 + HOUR + 60
    assert _at(first["containedAt"]) == _at(first["openedAt"])
    assert first["timeToContainSeconds"] == 0  # for: 0s
    assert t0 + HOUR + 1200 <= _at(first["resolvedAt"]) <= t0 + HOUR + 1200 + 75

    assert second["severity"] == second["maxSeverity"] == "SEV3"
    assert (second["response"], second["actions"], second["containedAt"]) == ("investigate", [], None)
    breach = _at(second["firstBreach"])
    assert t0 + 2 * HOUR <= breach <= t0 + 2 * HOUR + 60
    assert _at(second["openedAt"]) == breach + 120  # for: 2m
    assert t0 + 2 * HOUR + 600 <= _at(second["resolvedAt"]) <= t0 + 2 * HOUR + 600 + 75

    assert (system["containments"], system["releases"], system["flaps"]) == (1, 1, 0)
    assert "#" in system["timeline"]
    assert "3" in system["timeline"]


@pytest.mark.integration
def test_range_queries_answer_on_the_exact_start_not_a_rounded_one(prometheus_factory: PrometheusFactory) -> None:
    prom = prometheus_factory()
    prom.start()
    provider = PrometheusProvider(prom.url)
    start = datetime.datetime.fromtimestamp(float(int(time.time())) - 59.5, datetime.UTC)  # …:00.5
    end = start + datetime.timedelta(seconds=10)

    # `time()` is its evaluation time: each point must be at, and say, start + k * step.
    for step in (2.0, 2.5):  # a fractional step too, as the post-mortem evidence query asks for
        (series,) = asyncio.run(provider.range("time()", start, end, step))
        expected = [start + datetime.timedelta(seconds=k * step) for k in range(int(10 // step) + 1)]
        assert [at for at, _ in series.points] == expected
        assert [value for _, value in series.points] == [at.timestamp() for at in expected]
