"""``airlock backtest`` agrees with what the live operator did on the same Prometheus data.

The backtest claims to answer "what would this plan have done?" by replaying the
operator's own evaluation and decision code over range queries.  Here the claim is
checked against the real thing: the operator watches a model go healthy → SEV3
(investigate) → SEV1 (shutdown) → healthy, a responder releases it, and then the
backtest replays the very same window from the very same Prometheus.  Both must
tell the same story: one incident, opened at SEV3, raised to SEV1, contained with
the same actions, at the same times up to the two clocks' granularity.

The scenario runs once (module fixture); each test reads one part of the story.
The fairness gauge drives it: a gauge changes within one scrape (no rate window
to fill or drain), so each stage starts and ends at a known moment.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import math
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from airlock.adapters.prometheus import PrometheusProvider
from airlock.api.aisystem import AISystem
from airlock.cli import backtest as backtest_cli
from airlock.domain import backtest
from airlock.domain.plan import build_plan
from tests.integration import checks
from tests.integration.conftest import Tenant, World
from tests.integration.systems import ALICE, chatbot
from tests.integration.views import timestamp
from tests.integration.workloads import SELECT, monitor
from tests.integration.world import deployment, service, wait_for

pytestmark = pytest.mark.integration

TARGET = "chatbot-v7"
INTERVAL = 2.0  # the monitor's interval (seconds)
STEP = 2.0  # the backtest's step: the CLI's default, the shortest monitor interval
# Live evaluations happen at multiples of the monitor interval (scheduler.next_due), the
# backtest evaluates at `--from + k * step`: a change that becomes visible in Prometheus
# at V is seen live at some evaluation in [V, V + interval] and by the replay at a step in
# [V, V + step].  The two records of the same moment may therefore differ by up to one
# interval + one step (the operator's own API latency, milliseconds here, fits in the
# step's share).
TOLERANCE = INTERVAL + STEP
SEV3_VALUE = 0.7  # below the four-fifths rule (SEV3 < 0.8), above the SEV1 line (< 0.5)
SEV1_VALUE = 0.3
ACT_WITHIN = 8.0  # one scrape + one interval + slack
STAGE = STEP + 1  # each stage lasts long enough that at least one replay step lands in it


def _system(tenant: Tenant, sev1_below: float = 0.5) -> dict[str, Any]:
    fairness = monitor(
        "fairness",
        "fairness",
        f"min(fairness_disparity_ratio{{{SELECT}}})",
        [("SEV1", "<", sev1_below), ("SEV3", "<", 0.8)],
        interval=f"{INTERVAL:g}s",
    )
    return chatbot(
        tenant.namespace,
        tenant.app,
        monitors=[fairness],
        severities={
            "SEV1": {"response": "shutdown", "actions": ["reroute", "scaleToZero"], "notify": ["internal"]},
            "SEV3": {"response": "investigate", "notify": ["internal"]},
        },
        target=TARGET,
    )


def _iso(at: float) -> str:
    return datetime.datetime.fromtimestamp(at, datetime.UTC).isoformat()


def _visible(world: World, query: str, holds: Callable[[float], bool], what: str) -> float:
    """Wait until Prometheus shows the new gauge value; return the wall time it was first seen."""
    wait_for(
        what, lambda: (v := world.prometheus.query_value(query)) is not None and holds(v), timeout=5, interval=0.05
    )
    return time.time()


def _run_cli(manifest: Path, prometheus: str, start: float, end: float) -> dict[str, Any]:
    """``airlock backtest -o json`` as a user would run it."""
    command = [sys.executable, "-m", "airlock", "backtest", "-f", str(manifest), "--prometheus", prometheus]
    command += ["--from", _iso(start), "--to", _iso(end), "--step", f"{STEP:g}s", "-o", "json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def _replay(system: dict[str, Any], prometheus: str, start: float, end: float) -> backtest.Result:
    """The pure replay the CLI calls, over the same Prometheus (for the control runs)."""
    meta = system["metadata"]
    plan = build_plan(meta["namespace"], meta["name"], AISystem.model_validate(system).spec, None)
    grid = backtest.Grid.between(
        datetime.datetime.fromtimestamp(start, datetime.UTC), datetime.datetime.fromtimestamp(end, datetime.UTC), STEP
    )
    history = asyncio.run(backtest_cli.fetch(PrometheusProvider(prometheus), backtest.queries([plan]), grid))
    return backtest.replay(plan, history, namespace=meta["namespace"], name=meta["name"])


def _live(world: World, ns: str) -> dict[str, Any]:
    """What the live operator recorded on its AIIncident(s), in the backtest's terms."""
    found = checks.incidents(world, ns)
    assert len(found) == 1, f"live incidents: {[i['metadata']['name'] for i in found]}"
    incident = found[0]
    status = incident["status"]
    raised = [e for e in status["timeline"] if e["type"] == "SeverityRaised"]
    # spec.severity is patched on a raise; the first severity is in the raise's "SEV3 → SEV1: …".
    parts = [e["message"].split(" ") for e in raised]
    return {
        "count": len(found),
        "name": incident["metadata"]["name"],
        "severity": parts[0][0] if parts else incident["spec"]["severity"],
        "maxSeverity": incident["spec"]["severity"],
        "raised": [(timestamp(e["at"]), p[2].rstrip(":")) for e, p in zip(raised, parts, strict=True)],
        "actions": [a["action"] for a in status.get("actions") or []],
        "firstBreach": timestamp(incident["spec"]["trigger"]["sampleTime"]),
        "detectedAt": timestamp(status["detectedAt"]),
        "containedAt": timestamp(status["containedAt"]),
        "timeToContainSeconds": status["timeToContainSeconds"],
        "resolvedAt": timestamp(status["resolvedAt"]),
        "phase": status["phase"],
        "timeline": [e["type"] for e in status["timeline"]],
    }


@dataclass(frozen=True)
class Scenario:
    """What happened, as the test drove it, as the operator recorded it, and as the backtest replays it."""

    system: dict[str, Any]
    manifest: Path
    start: float  # the backtest window, whole seconds
    end: float
    sev3_at: float  # wall time of each stage's switch
    sev1_at: float
    heal_at: float
    live: dict[str, Any]
    reasons: list[str]
    report: dict[str, Any]  # `airlock backtest -o json` over [start, end]

    @property
    def replayed(self) -> dict[str, Any]:
        result: dict[str, Any] = self.report["systems"][0]
        return result


@pytest.fixture(scope="module")
def scenario(world: World, tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    api = world.api
    tenant = checks.new_tenant(world, "backtest")
    ns, app = tenant.namespace, (tenant.namespace, tenant.app)
    api.create(deployment(ns, TARGET, tenant.app, replicas=3))
    api.create(service(ns, "chatbot", {"app": tenant.app}))
    system = _system(tenant)
    api.create(system)
    checks.wait_phase(world, ns, "Healthy", timeout=10)
    query = checks.monitor(world, ns, "fairness")["query"]
    # Whole seconds, as `--from now-…` or a hand-written RFC 3339 time gives them (a
    # sub-second one: see the last test); after Healthy, so every step has data.
    start = float(math.ceil(time.time()))

    # Healthy for a while, then the SEV3 stage: an incident to investigate, nothing touched.
    time.sleep(STAGE)
    sev3_at = time.time()
    world.model.inject(app, "fairness", value=SEV3_VALUE)
    sev3_seen = _visible(world, query, lambda v: v < 0.8, "the SEV3 breach in Prometheus")
    checks.wait_incident(world, ns, timeout=ACT_WITHIN, severity="SEV3")
    assert checks.replicas(world, "Deployment", ns, TARGET) == 3
    time.sleep(STAGE)

    # The SEV1 stage: the operator shuts the model down at once.
    sev1_at = time.time()
    world.model.inject(app, "fairness", value=SEV1_VALUE)
    sev1_seen = _visible(world, query, lambda v: v < 0.5, "the SEV1 breach in Prometheus")
    checks.wait_phase(world, ns, "ShutDown", timeout=ACT_WITHIN)
    assert checks.replicas(world, "Deployment", ns, TARGET) == 0
    time.sleep(STAGE)

    # Healthy again; a responder releases as soon as the operator has evaluated the monitor ok.
    heal_at = time.time()
    world.model.heal(app)
    heal_seen = _visible(world, query, lambda v: v >= 0.8, "the model healthy again in Prometheus")
    wait_for(
        "the monitor evaluated ok after the heal",
        lambda: (
            (mon := checks.monitor(world, ns, "fairness")).get("state") == "ok"
            and timestamp(mon.get("lastEvaluated") or "1970-01-01T00:00:00Z") > heal_seen
        ),
        timeout=ACT_WITHIN,
        interval=0.05,
    )
    api.annotate("AISystem", ns, checks.SYSTEM, {"airlock.dev/release": "fixed-1", "airlock.dev/requested-by": ALICE})
    wait_for(
        "release handled and system Healthy",
        lambda: (s := checks.status(world, ns)).get("lastHandledRelease") == "fixed-1" and s.get("phase") == "Healthy",
        timeout=ACT_WITHIN,
    )
    assert checks.replicas(world, "Deployment", ns, TARGET) == 3
    time.sleep(STAGE)  # healthy history after the release, so the replay sees the all-clear
    end = float(math.floor(time.time()))

    manifest = tmp_path_factory.mktemp("backtest") / "aisystem.yaml"
    manifest.write_text(yaml.safe_dump(system))
    found = Scenario(
        system=system,
        manifest=manifest,
        start=start,
        end=end,
        sev3_at=sev3_at,
        sev1_at=sev1_at,
        heal_at=heal_at,
        live=_live(world, ns),
        reasons=checks.reasons(world, ns),
        report=_run_cli(manifest, world.prometheus.url, start, end),
    )
    print(
        f"\nwindow {_iso(start)} → {_iso(end)}; stages switched (seen in Prometheus after): "
        f"SEV3 {_iso(sev3_at)} ({sev3_seen - sev3_at:.2f}s), SEV1 {_iso(sev1_at)} ({sev1_seen - sev1_at:.2f}s), "
        f"heal {_iso(heal_at)} ({heal_seen - heal_at:.2f}s)"
    )
    print(f"live:     {json.dumps({k: v for k, v in found.live.items() if k != 'timeline'})}")
    print(f"backtest: {json.dumps(found.replayed['incidents'])}  timeline |{found.replayed['timeline']}|")
    return found


def _close(live: float, replayed: str, what: str) -> None:
    bt = timestamp(replayed)
    assert abs(live - bt) <= TOLERANCE, f"{what}: live {_iso(live)} vs backtest {replayed} (±{TOLERANCE:g}s allowed)"


def test_the_operator_opened_raised_contained_and_released_one_incident(scenario: Scenario) -> None:
    live = scenario.live
    assert (live["severity"], live["maxSeverity"]) == ("SEV3", "SEV1")
    assert live["phase"] in ("Resolved", "Closed")  # closed too, when no post-mortem is due
    story = ["Detected", "SeverityRaised", "Contained", "Resolved"]
    assert [t for t in live["timeline"] if t in story] == story, live["timeline"]
    assert {"IncidentOpened", "SeverityRaised", "Contained", "Released"} <= set(scenario.reasons)


def test_backtest_opens_the_same_incidents_with_the_same_severities_and_actions(scenario: Scenario) -> None:
    report, live = scenario.report, scenario.live
    assert (report["step"], report["queries"], report["release"]) == (f"{STEP:g}s", 1, "all-clear")
    replayed = scenario.replayed["incidents"]
    assert len(replayed) == live["count"] == 1, f"backtest {replayed} vs live {live['name']}"
    (bt,) = replayed
    assert bt["severity"] == live["severity"] == "SEV3"
    assert bt["maxSeverity"] == live["maxSeverity"] == "SEV1"
    assert [r["severity"] for r in bt["raised"]] == [s for _, s in live["raised"]] == ["SEV1"]
    assert bt["actions"] == live["actions"] == ["reroute", "scaleToZero"]
    assert (bt["response"], bt["failureMode"], bt["monitor"]) == ("shutdown", "fairness", "fairness")
    result = scenario.replayed
    assert (result["containments"], result["releases"], result["flaps"]) == (1, 1, 0)


def test_backtest_dates_breach_raise_and_containment_like_the_operator(scenario: Scenario) -> None:
    live = scenario.live
    (bt,) = scenario.replayed["incidents"]
    _close(live["firstBreach"], bt["firstBreach"], "breach start (trigger.sampleTime vs firstBreach)")
    _close(live["detectedAt"], bt["firstBreach"], "detectedAt vs firstBreach")
    _close(live["raised"][0][0], bt["raised"][0]["at"], "severity raised to SEV1")
    _close(live["containedAt"], bt["containedAt"], "containedAt")
    # Both measure from the incident's first breach (the SEV3 one) to the containment.
    ttc = (live["timeToContainSeconds"], bt["timeToContainSeconds"])
    assert abs(ttc[0] - ttc[1]) <= TOLERANCE, f"time to contain: live {ttc[0]}s vs backtest {ttc[1]}s"
    # Each in its own stage (the tolerance alone would let a SEV3 step pass for the SEV1 one).
    assert scenario.sev3_at <= timestamp(bt["firstBreach"]) < scenario.sev1_at
    assert scenario.sev1_at <= timestamp(bt["raised"][0]["at"]) == timestamp(bt["containedAt"]) < scenario.heal_at
    # The backtest assumes the release at the first all-clear step; the live responder released
    # once the operator had evaluated the monitor ok, so the live release can only be later.
    assert scenario.heal_at <= timestamp(bt["resolvedAt"]) <= live["resolvedAt"] + STEP
    _close(live["resolvedAt"], bt["resolvedAt"], "resolvedAt (release)")


def test_backtest_of_the_healthy_stretch_opens_nothing(world: World, scenario: Scenario) -> None:
    calm = _replay(scenario.system, world.prometheus.url, scenario.start, float(math.floor(scenario.sev3_at)))
    assert calm.incidents == []
    assert calm.containments == 0
    assert set(calm.timeline()) == {"."}


def test_backtest_reads_the_plan_not_the_operators_record(world: World, scenario: Scenario) -> None:
    url = world.prometheus.url
    # The pure replay of the real plan is what the CLI reported.
    same = _replay(scenario.system, url, scenario.start, scenario.end)
    assert [i.dump() for i in same.incidents] == scenario.replayed["incidents"]
    # The same history under a plan whose SEV1 line the data never crossed: SEV3 only, no actions.
    system = _system(Tenant(scenario.system["metadata"]["namespace"], scenario.system["spec"]["params"]["app"]), 0.2)
    (only,) = _replay(system, url, scenario.start, scenario.end).incidents
    assert (only.severity.value, only.max_severity.value, only.actions, only.contained_at) == ("SEV3", "SEV3", [], None)


def test_backtest_from_a_sub_second_time_finds_the_same_incident(world: World, scenario: Scenario) -> None:
    # The same window from a sub-second `--from` (an RFC 3339 time copied from a status
    # field, say): the CLI cuts it to whole seconds, the story must not change.
    report = _run_cli(scenario.manifest, world.prometheus.url, scenario.start + 0.5, scenario.end)
    found = report["systems"][0]["incidents"]
    assert [(i["severity"], i["maxSeverity"], i["actions"]) for i in found] == [
        ("SEV3", "SEV1", scenario.live["actions"])
    ]
