"""One scenario per failure mode the model server can inject, classified end to end.

Every scenario is its own namespace, model app and AISystem with the same
classification matrix; what differs is the signal and its measured magnitude.
The fleet is set up and broken at once (module fixture) so the scenarios run
side by side: each test then follows its own system to the incident a
responder would read — failure mode, severity, response — and what was done.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.integration import checks
from tests.integration.checks import new_tenant
from tests.integration.conftest import Tenant, World
from tests.integration.systems import chatbot
from tests.integration.workloads import SELECT, monitor
from tests.integration.world import deployment, service, wait_for

pytestmark = pytest.mark.integration

TARGET = "chatbot-v7"
# A breach is visible in Prometheus within a scrape or two (1 s, rate windows of 3–5 s)
# and evaluated within one monitor interval (1 s).
CLASSIFIED_WITHIN = 8.0

SEVERITIES: dict[str, Any] = {
    "SEV1": {"response": "shutdown", "actions": ["reroute", "scaleToZero"], "notify": ["internal"]},
    "SEV2": {"response": "contain", "actions": ["pauseRollout"], "notify": ["internal"]},
    "SEV3": {"response": "investigate", "notify": ["internal"]},
    "SEV4": {"response": "observe"},
}


def _ratio(numerator: str, denominator: str, window: str) -> str:
    return f"sum(rate({numerator}[{window}])) / sum(rate({denominator}[{window}]))"


@dataclass(frozen=True)
class Case:
    mode: str  # the failure injected, and the failureMode expected on the incident
    params: dict[str, float]
    monitor: dict[str, Any]
    severity: str  # what this magnitude must classify as
    phase: str  # and what the response makes of it
    replicas: int = 3
    paused: bool = False

    @property
    def label(self) -> str:
        return f"fm-{self.mode}"


CASES = [
    Case(
        "sudden",
        {"fraction": 0.5},
        monitor(
            "error-ratio",
            "sudden",
            _ratio(f'model_requests_total{{{SELECT},code="500"}}', f"model_requests_total{{{SELECT}}}", "3s"),
            [("SEV1", ">", 0.3), ("SEV3", ">", 0.05)],
        ),
        severity="SEV1",
        phase="ShutDown",
        replicas=0,
    ),
    Case(
        # Quality falls a full point a minute down to 0.3: live data, no baseline window to wait for.
        "drift",
        {"per_minute": 60.0, "floor": 0.3},
        monitor(
            "helpful-ratio",
            "drift",
            _ratio(f"answer_helpful_total{{{SELECT}}}", f"answer_total{{{SELECT}}}", "5s"),
            [("SEV2", "<", 0.7), ("SEV3", "<", 0.85)],
        ),
        severity="SEV2",
        phase="Contained",
        paused=True,
    ),
    Case(
        "adversarial",
        {"rate": 2.0},
        monitor(
            "prompt-injection",
            "adversarial",
            f"sum(rate(prompt_injection_detections_total{{{SELECT}}}[3s]))",
            [("SEV2", ">", 1.0), ("SEV3", ">", 0)],
        ),
        severity="SEV2",
        phase="Contained",
        paused=True,
    ),
    Case(
        # A trickle of PII: below the SEV1 line, so investigate — magnitude decides, not the mode alone.
        "privacy",
        {"rate": 0.2},
        monitor(
            "pii-leak",
            "privacy",
            f"sum(rate(pii_detections_total{{{SELECT}}}[3s]))",
            [("SEV1", ">", 0.5), ("SEV3", ">", 0)],
        ),
        severity="SEV3",
        phase="Degraded",
    ),
    Case(
        "safety",
        {"rate": 1.0},
        monitor(
            "harmful-output",
            "safety",
            f"sum(rate(harmful_output_total{{{SELECT}}}[3s]))",
            [("SEV1", ">", 0.5), ("SEV3", ">", 0)],
        ),
        severity="SEV1",
        phase="ShutDown",
        replicas=0,
    ),
    Case(
        # The four-fifths rule fails (0.5 < 0.8) but not catastrophically (not < 0.3).
        "fairness",
        {"value": 0.5},
        monitor(
            "disparity",
            "fairness",
            f"min(fairness_disparity_ratio{{{SELECT}}})",
            [("SEV1", "<", 0.3), ("SEV2", "<", 0.8)],
        ),
        severity="SEV2",
        phase="Contained",
        paused=True,
    ),
    Case(
        # Ten times the usual token spend (2 000/s): worth a look, not yet worth shutting down.
        "cost",
        {"factor": 10.0},
        monitor(
            "token-spend",
            "cost",
            f"sum(rate(llm_tokens_total{{{SELECT}}}[3s]))",
            [("SEV2", ">", 50_000), ("SEV3", ">", 5_000)],
        ),
        severity="SEV3",
        phase="Degraded",
    ),
]


@dataclass
class Fleet:
    tenants: dict[str, Tenant] = field(default_factory=dict)
    broken_at: dict[str, float] = field(default_factory=dict)


def _deploy(world: World, tenant: Tenant, monitors: list[dict[str, Any]]) -> None:
    world.api.create(deployment(tenant.namespace, TARGET, tenant.app, replicas=3))
    world.api.create(service(tenant.namespace, "chatbot", {"app": tenant.app}))
    world.api.create(chatbot(tenant.namespace, tenant.app, monitors=monitors, severities=SEVERITIES, target=TARGET))


BASELINE_MONITOR = monitor(
    "helpful-vs-baseline",
    "drift",
    _ratio(f"answer_helpful_total{{{SELECT}}}", f"answer_total{{{SELECT}}}", "5s"),
    [("SEV3", "<", -0.2)],
    # The same ratio 8–12 s ago: long enough to be "before", short enough for a test.
    baseline={"offset": "8s", "window": "4s"},
)


@pytest.fixture(scope="module")
def fleet(world: World) -> Fleet:
    """Every scenario's system, seen healthy, then broken at the same moment."""
    result = Fleet()
    # The baseline scenario first: its history (and so its baseline) starts accumulating now.
    result.tenants["baseline"] = new_tenant(world, "fm-baseline")
    _deploy(world, result.tenants["baseline"], [BASELINE_MONITOR])
    for case in CASES:
        tenant = result.tenants[case.mode] = new_tenant(world, case.label)
        _deploy(world, tenant, [case.monitor])
    for case in CASES:
        checks.wait_phase(world, result.tenants[case.mode].namespace, "Healthy", timeout=10)
    for case in CASES:
        tenant = result.tenants[case.mode]
        world.model.inject((tenant.namespace, tenant.app), case.mode, **case.params)
        result.broken_at[case.mode] = time.monotonic()
    return result


@pytest.mark.parametrize("case", CASES, ids=[c.mode for c in CASES])
def test_failure_mode_is_classified_and_answered(world: World, fleet: Fleet, case: Case) -> None:
    ns = fleet.tenants[case.mode].namespace
    remaining = fleet.broken_at[case.mode] + CLASSIFIED_WITHIN - time.monotonic()

    checks.wait_incident(world, ns, timeout=max(remaining, 0.5), severity=case.severity)
    status = checks.wait_phase(world, ns, case.phase, timeout=2)
    incident = checks.incident(world, ns)
    assert incident is not None

    assert incident["spec"]["failureMode"] == case.mode
    assert incident["spec"]["trigger"]["type"] == "monitor"
    assert incident["spec"]["trigger"]["monitor"] == case.monitor["name"]
    assert status["severity"] == case.severity
    assert status["incident"] == incident["metadata"]["name"]
    [mon] = status["monitors"]
    assert mon["state"] == "breached"
    assert mon["severity"] == case.severity
    assert mon["failureMode"] == case.mode
    assert "IncidentOpened" in checks.reasons(world, ns)
    # The response the matrix pre-agreed for this severity, carried out on the workload.
    target = world.api.get("Deployment", ns, TARGET) or {}
    assert target["spec"]["replicas"] == case.replicas
    assert bool(target["spec"].get("paused")) is case.paused
    if case.phase == "Degraded":
        assert incident["status"]["phase"] == "Open"
        assert "containment" not in status
    else:
        assert incident["status"]["phase"] == "Contained"
        assert incident["status"]["timeToContainSeconds"] < CLASSIFIED_WITHIN


def test_drift_against_a_baseline_window(world: World, fleet: Fleet) -> None:
    tenant = fleet.tenants["baseline"]
    ns = tenant.namespace

    # Needs 8–12 s of history before there is anything to compare with; until then: no data.
    def compared() -> dict[str, Any] | None:
        mon = checks.monitor(world, ns, "helpful-vs-baseline")
        return mon if mon.get("state") == "ok" and mon.get("baseline") is not None else None

    healthy = wait_for("a baseline to compare with", compared, timeout=25)
    assert healthy["current"] == pytest.approx(0.9, abs=0.02)
    assert healthy["baseline"] == pytest.approx(0.9, abs=0.02)
    assert abs(healthy["value"]) < 0.05
    assert checks.phase(world, ns) == "Healthy"

    world.model.inject((ns, tenant.app), "drift", per_minute=60.0, floor=0.3)

    # The baseline window (offset 8 s) catches up with the drift a few seconds later, so the
    # breached status is read while it lasts, not after the incident has been looked at.
    mon = wait_for(
        "the monitor breached against its baseline",
        lambda: (m := checks.monitor(world, ns, "helpful-vs-baseline")).get("state") == "breached" and m,
        timeout=CLASSIFIED_WITHIN,
        interval=0.05,
    )
    incident = checks.wait_incident(world, ns, timeout=CLASSIFIED_WITHIN, severity="SEV3")
    assert incident["spec"]["failureMode"] == "drift"
    assert mon["baseline"] == pytest.approx(0.9, abs=0.02)  # the window before the drift began
    assert mon["current"] < 0.75
    # value is the relative change against the baseline, not the raw ratio.
    assert mon["value"] == pytest.approx((mon["current"] - mon["baseline"]) / mon["baseline"], abs=1e-6)
    assert mon["value"] < -0.2
    assert incident["spec"]["trigger"]["value"] < -0.2
    assert checks.phase(world, ns) == "Degraded"  # SEV3: investigate, nothing touched
