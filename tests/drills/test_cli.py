"""``airlock drill`` and ``airlock drill report`` against the sandbox API server, as a responder runs them.

The operator's drill handling is another piece of work: until it lands, the
happy path runs against a stand-in (:class:`StandInOperator`) that does what
the operator is specified to do with ``airlock.dev/drill`` — open a drill
AIIncident from :func:`airlock.domain.drills.rehearse` and echo the value in
``status.lastHandledDrill`` — and the real-operator test is skipped.
"""

from __future__ import annotations

import datetime
import itertools
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from airlock.api import annotations as keys
from airlock.api.aisystem import AISystem
from airlock.api.common import Severity
from airlock.api.incident import Trigger, TriggerType
from airlock.api.policy import ContainmentPolicy
from airlock.cli.main import main
from airlock.domain import drills, incidents
from airlock.domain.plan import build_plan
from airlock.sandbox import admission
from airlock.sandbox.cluster import ClusterThread, SandboxCluster
from airlock.sandbox.world import Api, World, deployment, load_crds, running_world, service, wait_for
from tests.drills.plans import T0, drill_incident, manifest

NS = "ml-prod"
SYSTEM = "support-chatbot"
ALICE = "alice@example.com"  # ml-oncall: may drill
BOB = "bob@example.com"  # no responder
CAROL = "carol@example.com"  # group oncall-security: may acknowledge, not drill


def airlock(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run the CLI in-process; returns the exit code and stdout + stderr, as a person reads them.

    The transcript is printed for a failing test's report; the previous one is dropped first.
    """
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    print(f"$ airlock {' '.join(args)}  # exit {code}\n{out}{err}")
    return code, out + err


def populate(api: Api) -> None:
    """The shipped support chatbot, its policy and its workload in ml-prod."""
    load_crds(api)
    api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    api.create(manifest("policies/llm-chatbot.yaml"))
    api.create(manifest("examples/support-chatbot.yaml"))
    api.create(deployment(NS, "chatbot-v7", "chatbot"))
    api.create(service(NS, "chatbot", {"app": "chatbot"}))


def drill_annotation(api: Api) -> str | None:
    body = api.get("AISystem", NS, SYSTEM) or {}
    value: str | None = (body.get("metadata", {}).get("annotations") or {}).get(keys.DRILL)
    return value


@pytest.fixture
def api(sandbox: ClusterThread) -> Api:
    found = Api(sandbox.url)
    populate(found)
    return found


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[tuple[ClusterThread, Api]]:
    """A sandbox with airlock's admission webhook in force (a refusal is a 403)."""
    cluster = SandboxCluster()
    admission.install(cluster)
    thread = ClusterThread(cluster).start()
    try:
        found = Api(thread.url)
        populate(found)
        yield thread, found
    finally:
        thread.stop()
    assert thread.cluster.internal_errors == []


# ---------------------------------------------------------------- airlock drill report


def preload_drills(sandbox: ClusterThread) -> None:
    def at(minutes: float) -> datetime.datetime:
        return T0 + datetime.timedelta(minutes=minutes)

    gap = "internal notices at SEV1 are only drafted: no channel carries the internal audience at that severity"
    objects = [
        drill_incident(SYSTEM, at=at(0), scenario="drift", acknowledged_after=30),
        drill_incident(SYSTEM, at=at(60), scenario="privacy", acknowledged_after=150, gaps=(gap,)),
        drill_incident("fraud-scorer", namespace="payments", at=at(5), scenario="manual"),
        drill_incident(SYSTEM, at=at(30), drill=False, acknowledged_after=5),  # a real incident: not a drill
    ]
    sandbox.preload({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "payments"}})
    sandbox.preload(*(incident.dump() for incident in objects))


def test_report_lists_the_drills_of_the_namespace(
    sandbox: ClusterThread, api: Api, kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    preload_drills(sandbox)
    code, out = airlock(capsys, "drill", "report", "--kubeconfig", str(kubeconfig), "-n", NS)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["SYSTEM", "DRILLS", "LAST", "DRILL", "SCENARIO", "TIME", "TO", "ACK", "MEDIAN", "ACK", "GAPS"]  # fmt: skip
    assert lines[1].split() == [SYSTEM, "2", "2026-11-26", "14:30:12Z", "privacy", "2m30s", "1m30s", "1"]
    assert "fraud-scorer" not in out
    assert f"gaps found by the last drill of {SYSTEM} ({SYSTEM}-drill-20261126-143012):" in out
    assert "  - internal notices at SEV1 are only drafted" in out


def test_report_across_namespaces_shows_unacknowledged_drills(
    sandbox: ClusterThread, api: Api, kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    preload_drills(sandbox)
    code, out = airlock(capsys, "drill", "report", "--kubeconfig", str(kubeconfig), "-A")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("NAMESPACE   SYSTEM")
    assert lines[1].split()[:2] == [NS, SYSTEM]
    assert lines[2].split() == ["payments", "fraud-scorer", "1", "2026-11-26", "13:35:12Z", "manual", "not", "acknowledged", "-", "0"]  # fmt: skip


def test_report_as_json(sandbox: ClusterThread, api: Api, kubeconfig: Path, capsys: pytest.CaptureFixture[str]) -> None:
    preload_drills(sandbox)
    code, out = airlock(capsys, "drill", "report", "--kubeconfig", str(kubeconfig), "-A", "-o", "json")
    assert code == 0
    found = json.loads(out)
    assert [(s["namespace"], s["system"], s["drills"], s["acknowledged"]) for s in found] == [
        (NS, SYSTEM, 2, True),
        ("payments", "fraud-scorer", 1, False),
    ]
    assert found[0]["lastTimeToAcknowledgeSeconds"] == 150
    assert found[0]["medianTimeToAcknowledgeSeconds"] == 90


def test_report_without_drills_says_how_to_run_one(
    api: Api, kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = airlock(capsys, "drill", "report", "--kubeconfig", str(kubeconfig), "-n", NS)
    assert code == 0
    assert out == f"No drills found in namespace {NS}. Run one: airlock drill SYSTEM --scenario privacy\n"
    code, out = airlock(capsys, "drill", "report", "--kubeconfig", str(kubeconfig), "-o", "json")
    assert (code, json.loads(out)) == (0, [])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("drill", "report", "-A", "-n", NS), "give -n NAMESPACE or -A, not both"),
        (("drill", "report", "--scenario", "privacy"), "--scenario is for running a drill"),
        (("drill", SYSTEM), "--scenario is required: one of sudden, drift, adversarial, privacy, manual"),
        (("drill", SYSTEM, "--scenario", "privacy", "-A"), "-A is for the report"),
        (("drill", SYSTEM, "--scenario", "privacy", "-o", "json"), "-o is for the report"),
    ],
)
def test_usage_errors_exit_2(args: tuple[str, ...], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = airlock(capsys, *args)
    assert code == 2
    assert f"airlock drill: {message}" in out


def test_an_unknown_scenario_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["drill", SYSTEM, "--scenario", "fire"])
    assert exited.value.code == 2
    assert "invalid choice: 'fire'" in capsys.readouterr().err


# ---------------------------------------------------------------- airlock drill SYSTEM


def test_someone_without_the_drill_verb_is_refused_by_the_api_server(
    guarded: tuple[ClusterThread, Api], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    thread, api = guarded
    for who, groups in ((BOB, ()), (CAROL, ("oncall-security",))):
        config = thread.write_kubeconfig(tmp_path / who, user=who, groups=groups, namespace=NS)
        code, out = airlock(capsys, "drill", SYSTEM, "--scenario", "privacy", "--kubeconfig", str(config))
        assert code == 1
        assert "airlock drill: REFUSED by the API server:" in out
        assert f"setting airlock.dev/drill: {who} may not drill; allowed: group oncall-ml" in out
        assert drill_annotation(api) is None


def test_without_the_operator_the_drill_times_out_and_the_request_stays(
    guarded: tuple[ClusterThread, Api], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    thread, api = guarded
    config = thread.write_kubeconfig(tmp_path / "alice", user=ALICE, namespace=NS)
    code, out = airlock(
        capsys, "drill", SYSTEM, "--scenario", "privacy", "--timeout", "0.5", "--kubeconfig", str(config)
    )
    assert code == 3
    value = drill_annotation(api)
    assert value is not None
    assert value.startswith("privacy/")
    assert drills.parse_value(value) is drills.Scenario.PRIVACY
    assert f"drill privacy on {SYSTEM} (namespace {NS}) requested by {ALICE}" in out
    assert f"TIMED OUT after 0.5s waiting for airlock to run drill '{value}'." in out
    assert "airlock never wrote this system's status: is the operator running?" in out
    annotations = (api.get("AISystem", NS, SYSTEM) or {})["metadata"]["annotations"]
    assert annotations[keys.REQUESTED_BY] == ALICE


def test_without_a_webhook_the_plan_refuses_and_the_request_is_withdrawn(
    sandbox: ClusterThread, api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = sandbox.write_kubeconfig(tmp_path / "bob", user=BOB, namespace=NS)
    code, out = airlock(capsys, "drill", SYSTEM, "--scenario", "drift", "--timeout", "0.3", "--kubeconfig", str(config))
    assert code == 1
    assert f"REFUSED: {BOB} may not drill; allowed: group oncall-ml" in out
    assert "Nothing ran." in out
    assert "Your request was withdrawn (airlock.dev/drill removed); nothing changed." in out
    annotations = (api.get("AISystem", NS, SYSTEM) or {})["metadata"].get("annotations") or {}
    assert keys.DRILL not in annotations
    # The withdrawal is Bob's own write: requested-by keeps naming him (as an admission policy insists).
    assert annotations[keys.REQUESTED_BY] == BOB


def test_an_unknown_system_is_an_error(api: Api, kubeconfig: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = airlock(capsys, "drill", "nope", "--scenario", "sudden", "-n", NS, "--kubeconfig", str(kubeconfig))
    assert code == 1
    assert f"airlock drill: AISystem nope not found in namespace {NS}" in out


@dataclass
class StandInOperator:
    """Does with airlock.dev/drill what the operator is specified to do, from the pure domain functions."""

    api: Api
    stop: threading.Event = field(default_factory=threading.Event)
    errors: list[BaseException] = field(default_factory=list)
    handled: list[str] = field(default_factory=list)

    def run(self) -> None:
        try:
            while not self.stop.wait(0.05):
                self.tick()
        except BaseException as error:
            self.errors.append(error)

    def tick(self) -> None:
        body = self.api.get("AISystem", NS, SYSTEM) or {}
        system = AISystem.model_validate(body)
        value = system.metadata.annotations.get(keys.DRILL)
        last = system.status.last_handled_drill if system.status else None
        if value is None or value == last:
            return
        policy = ContainmentPolicy.model_validate(self.api.get("ContainmentPolicy", None, "llm-chatbot"))
        plan = build_plan(NS, SYSTEM, system.spec, policy.spec)
        env = drills.Environment(
            target_exists=self.api.get("Deployment", NS, system.spec.target.name) is not None,
            fallback_service_exists=self.api.get("Service", NS, "chatbot") is not None,
        )
        rehearsal = drills.rehearse(plan, drills.parse_value(value), env)
        now = datetime.datetime.now(datetime.UTC)
        trigger = Trigger(type=TriggerType.DRILL, by=ALICE, reason=f"drill {value}")
        incident = incidents.open_incident(
            system=SYSTEM,
            namespace=NS,
            severity=Severity(rehearsal.severity),
            failure_mode=rehearsal.failure_mode,
            trigger=trigger,
            detected=now,
            now=now,
            drill=True,
        )
        assert incident.status is not None
        incident.status.drill = rehearsal.record()
        dumped = incident.dump()
        status = dumped.pop("status")
        self.api.create(dumped)
        self.api.patch("AIIncident", NS, incident.metadata.name or "", {"status": status}, sub="status")
        self.api.patch(
            "AISystem", NS, SYSTEM, {"status": {"phase": "Healthy", "lastHandledDrill": value}}, sub="status"
        )
        self.handled.append(value)


@pytest.fixture
def stand_in(api: Api) -> Iterator[StandInOperator]:
    operator = StandInOperator(api)
    thread = threading.Thread(target=operator.run, daemon=True)
    thread.start()
    try:
        yield operator
    finally:
        operator.stop.set()
        thread.join(5)
    assert operator.errors == []


def test_a_drill_prints_the_decision_who_was_paged_the_gaps_and_how_to_acknowledge(
    sandbox: ClusterThread,
    stand_in: StandInOperator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = sandbox.write_kubeconfig(tmp_path / "alice", user=ALICE, namespace=NS)
    code, out = airlock(
        capsys, "drill", SYSTEM, "--scenario", "privacy", "--timeout", "10", "--kubeconfig", str(config)
    )
    assert code == 0
    (value,) = stand_in.handled
    incident = next(i for i in stand_in.api.list("AIIncident", NS) if value in i["spec"]["trigger"].get("reason", ""))
    name = incident["metadata"]["name"]
    assert name.startswith(f"{SYSTEM}-drill-")
    assert f"incident   {name} (SEV1 privacy, drill)" in out
    assert "decision   SEV1 privacy: shutdown at once — reroute, scaleToZero; notify internal, regulator, users" in out
    assert "action     reroute      not applied: drill" in out
    assert "action     scaleToZero  not applied: drill" in out
    assert "notify     internal, regulator, users (drafted as DRILL)" in out
    assert "paged      ml-oncall (Group oncall-ml, User alice@example.com, ServiceAccount ops/pager-bot)" in out
    assert "gap        internal notices at SEV1 are only drafted" in out
    assert f"acknowledge  airlock ack {name} -n {NS}" in out
    # Nothing was touched.
    assert (stand_in.api.get("Deployment", NS, "chatbot-v7") or {})["spec"]["replicas"] == 3
    assert (stand_in.api.get("Service", NS, "chatbot") or {})["spec"]["selector"] == {"app": "chatbot"}


_counter = itertools.count(1)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with running_world(tmp_path_factory.mktemp("drill-world")) as world:
        yield world


@pytest.mark.integration
def test_the_operator_runs_a_drill_without_touching_the_workload(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    n = next(_counter)
    namespace, app = f"drill{n}-ml", f"drill{n}-bot"
    api = world.api
    api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    world.model.add_app(namespace, app)
    api.create(deployment(namespace, "chatbot-v7", app, replicas=3))
    api.create(service(namespace, "chatbot", {"app": app}))
    body: dict[str, Any] = manifest("examples/support-chatbot.yaml")
    body["metadata"]["namespace"] = namespace
    body["spec"].pop("policyRef")
    body["spec"]["params"] = {"app": app}
    api.create(body)
    # Any reconciled phase will do: a drill does not need the metrics the example's monitors read.
    wait_for("system reconciled", lambda: ((api.get("AISystem", namespace, SYSTEM) or {}).get("status") or {}).get("phase"))  # fmt: skip
    config = world.cluster.write_kubeconfig(tmp_path / "alice", user=ALICE, namespace=namespace)

    code, out = airlock(
        capsys, "drill", SYSTEM, "--scenario", "privacy", "--timeout", "20", "--kubeconfig", str(config)
    )
    assert code == 0
    assert "decision   SEV1 privacy: shutdown at once — reroute, scaleToZero" in out
    assert "action     scaleToZero  not applied: drill" in out
    assert "paged      ml-oncall (Group oncall-ml, User alice@example.com, ServiceAccount ops/pager-bot)" in out
    (incident,) = [i for i in api.list("AIIncident", namespace) if i["spec"].get("drill")]
    assert f"acknowledge  airlock ack {incident['metadata']['name']} -n {namespace}" in out
    assert (api.get("Deployment", namespace, "chatbot-v7") or {})["spec"]["replicas"] == 3
    assert (api.get("Service", namespace, "chatbot") or {})["spec"]["selector"] == {"app": app}

    code, out = airlock(capsys, "drill", "report", "--kubeconfig", str(config))
    assert code == 0
    assert out.splitlines()[1].split()[:2] == [SYSTEM, "1"]
