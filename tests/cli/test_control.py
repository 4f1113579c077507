"""The control verbs and the runbook as an on-call engineer runs them: the real console script
(``python -m airlock``) and the real kubectl plugin mechanism, one kubeconfig per person, against the
sandbox API server, a real Prometheus and the real operator.

No admission webhook is installed here, so a refusal comes from the operator's defense in depth
(an ``UnauthorizedRequest`` Event), which is the harder case for the CLI to report.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airlock.sandbox import admission
from airlock.sandbox.cluster import ClusterThread, SandboxCluster
from airlock.sandbox.world import Api, World, deployment, load_crds, running_world, service, wait_for

pytestmark = pytest.mark.integration

ALICE = "alice@example.com"  # a responder by name
CAROL = "carol@example.com"  # a responder through group oncall-ml
BOB = "bob@example.com"  # not a responder
BIN = Path(sys.executable).parent
_counter = itertools.count(1)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with running_world(tmp_path_factory.mktemp("cli-world")) as world:
        yield world


@dataclass
class Tenant:
    namespace: str
    app: str
    alice: Path
    carol: Path
    bob: Path


def system(namespace: str, app: str) -> dict[str, Any]:
    return {
        "apiVersion": "airlock.dev/v1alpha1",
        "kind": "AISystem",
        "metadata": {"name": "chatbot", "namespace": namespace},
        "spec": {
            "description": "Tier-one support chatbot",
            "owner": "support-ml",
            "target": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "chatbot-v7"},
            "fallback": {"service": "chatbot", "selector": {"app": f"{app}-fallback"}},
            "params": {"app": app},
            "monitors": [
                {
                    "name": "pii-leak",
                    "failureMode": "privacy",
                    "query": 'sum(rate(pii_detections_total{namespace="{{ namespace }}",app="{{ params.app }}"}[3s]))',
                    "interval": "1s",
                    "thresholds": [{"severity": "SEV1", "op": ">", "value": 0.5, "for": "0s"}],
                }
            ],
            "severities": {
                "SEV1": {"response": "shutdown", "actions": ["reroute", "scaleToZero"], "notify": ["internal"]}
            },
            "responders": [
                {
                    "name": "ml-oncall",
                    "subjects": [{"kind": "User", "name": ALICE}, {"kind": "Group", "name": "oncall-ml"}],
                    "may": ["acknowledge", "approve", "shutdown", "release"],
                }
            ],
        },
    }


def status(world: World, tenant: Tenant) -> dict[str, Any]:
    found: dict[str, Any] = (world.api.get("AISystem", tenant.namespace, "chatbot") or {}).get("status") or {}
    return found


def replicas(world: World, tenant: Tenant) -> int:
    value: int = (world.api.get("Deployment", tenant.namespace, "chatbot-v7") or {})["spec"]["replicas"]
    return value


def annotations(world: World, kind: str, tenant: Tenant, name: str) -> dict[str, str]:
    found: dict[str, str] = (world.api.get(kind, tenant.namespace, name) or {})["metadata"].get("annotations") or {}
    return found


@pytest.fixture
def tenant(world: World, tmp_path: Path) -> Tenant:
    n = next(_counter)
    namespace, app = f"cli{n}-ml", f"cli{n}-bot"
    api = world.api
    api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    world.model.add_app(namespace, app)
    api.create(deployment(namespace, "chatbot-v7", app, replicas=3))
    api.create(service(namespace, "chatbot", {"app": app}))
    api.create(system(namespace, app))
    # Each kubeconfig's context defaults to the tenant's namespace, so `-n` is optional (as with kubectl).
    cluster = world.cluster
    found = Tenant(
        namespace,
        app,
        alice=cluster.write_kubeconfig(tmp_path / "alice", user=ALICE, namespace=namespace),
        carol=cluster.write_kubeconfig(tmp_path / "carol", user=CAROL, groups=["oncall-ml"], namespace=namespace),
        bob=cluster.write_kubeconfig(tmp_path / "bob", user=BOB, groups=["marketing"], namespace=namespace),
    )
    wait_for("system Healthy", lambda: status(world, found).get("phase") == "Healthy", timeout=30)
    return found


def airlock(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The console script as a person runs it; stdout and stderr together, as they read it."""
    command = [sys.executable, "-m", "airlock", *args, "--kubeconfig", str(kubeconfig), "--timeout", "20"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    result.stdout += result.stderr
    print(f"$ airlock {' '.join(args)}  # exit {result.returncode}\n{result.stdout}")
    return result


def test_a_responder_shuts_down_acknowledges_and_releases(world: World, tenant: Tenant) -> None:
    ns = tenant.namespace

    shut = airlock(tenant.alice, "shutdown", "chatbot", "--reason", "PII in answers")
    assert shut.returncode == 0
    assert re.search(r"^ShutDown in \d+\.\ds", shut.stdout, re.MULTILINE), shut.stdout
    assert "reroute       Service chatbot -> app=" in shut.stdout
    assert "scaleToZero   Deployment chatbot-v7 -> 0 replicas (was 3)" in shut.stdout
    assert replicas(world, tenant) == 0
    incident = status(world, tenant)["incident"]
    assert f"incident   {incident} (SEV1" in shut.stdout
    stamped = annotations(world, "AISystem", tenant, "chatbot")
    assert stamped["airlock.dev/shutdown"] == "PII in answers"
    assert stamped["airlock.dev/requested-by"] == ALICE

    # Carol is a responder through her group: the groups travel with the request.
    acked = airlock(tenant.carol, "ack", incident, "-n", ns)
    assert acked.returncode == 0
    assert f"is acknowledged by {CAROL}" in acked.stdout
    assert (world.api.get("AIIncident", ns, incident) or {})["status"]["acknowledgedBy"] == CAROL

    released = airlock(tenant.alice, "release", "chatbot")
    assert released.returncode == 0
    assert re.search(r"^Released in \d+\.\ds: phase (Healthy|Unknown)\.$", released.stdout, re.MULTILINE)
    assert "restored   Deployment chatbot-v7: 3 replicas" in released.stdout
    assert replicas(world, tenant) == 3
    assert (world.api.get("Service", ns, "chatbot") or {})["spec"]["selector"] == {"app": tenant.app}
    assert "airlock.dev/shutdown" not in annotations(world, "AISystem", tenant, "chatbot")
    assert (world.api.get("AIIncident", ns, incident) or {})["status"]["phase"] == "Resolved"


def test_release_is_refused_while_the_breach_lasts_and_takes_two_responders_after_the_fix(
    world: World, tenant: Tenant
) -> None:
    # The two-person rule on SEV1 (releaseApprovals: 2), as fraud-model's policy has it.
    severities = {"SEV1": {"response": "shutdown", "actions": ["reroute", "scaleToZero"], "releaseApprovals": 2}}
    world.api.patch("AISystem", tenant.namespace, "chatbot", {"spec": {"severities": severities}})
    world.model.inject((tenant.namespace, tenant.app), "privacy", rate=2.0)
    wait_for("automatic ShutDown", lambda: status(world, tenant).get("phase") == "ShutDown", timeout=20)

    refused = airlock(tenant.alice, "release", "chatbot")
    assert refused.returncode == 1
    assert "REFUSED by airlock" in refused.stdout
    assert "monitor still breaching at a containing level: pii-leak (SEV1" in refused.stdout
    assert "chatbot stays ShutDown; nothing was restored." in refused.stdout
    assert replicas(world, tenant) == 0

    world.model.heal((tenant.namespace, tenant.app))
    wait_for("pii-leak ok", lambda: status(world, tenant)["monitors"][0]["state"] == "ok", timeout=20)
    first = airlock(tenant.alice, "release", "chatbot")
    assert first.returncode == 0
    assert "Release approval recorded in" in first.stdout
    assert f"1 of 2 release approvals ({ALICE})" in first.stdout
    assert "chatbot stays ShutDown until then" in first.stdout
    assert replicas(world, tenant) == 0

    second = airlock(tenant.carol, "release", "chatbot")
    assert second.returncode == 0, second.stdout
    assert "Released in" in second.stdout
    assert replicas(world, tenant) == 3


def test_someone_not_in_the_responders_is_refused_and_nothing_changes(world: World, tenant: Tenant) -> None:
    refused = airlock(tenant.bob, "shutdown", "chatbot", "--reason", "looks odd to me")
    assert refused.returncode == 1
    assert f"REFUSED by airlock: airlock.dev/shutdown ignored: {BOB} may not shutdown" in refused.stdout
    assert ALICE in refused.stdout  # the refusal says who may
    assert "withdrawn" in refused.stdout
    events = world.api.events(tenant.namespace, "chatbot")
    assert any(e["reason"] == "UnauthorizedRequest" and BOB in e["message"] for e in events)
    # The refused request does not linger under Bob's name, waiting for someone else's requested-by.
    assert "airlock.dev/shutdown" not in annotations(world, "AISystem", tenant, "chatbot")
    assert replicas(world, tenant) == 3
    assert status(world, tenant)["phase"] not in ("ShutDown", "Contained")


def test_kubectl_airlock_runbook_through_the_kubectl_plugin_mechanism(world: World, tenant: Tenant) -> None:
    kubectl = BIN / "kubectl"
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "KUBECONFIG": str(tenant.alice)}
    text = subprocess.run(
        [str(kubectl), "airlock", "runbook", "chatbot", "-n", tenant.namespace],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert text.returncode == 0, text.stderr
    print(text.stdout)
    assert text.stdout.startswith(f"RUNBOOK chatbot ({tenant.namespace}): Tier-one support chatbot\n")
    assert re.search(r"^NOW: (Healthy|Unknown)", text.stdout, re.MULTILINE)  # Unknown: a scrape gap of a new app
    assert f'kubectl airlock shutdown chatbot -n {tenant.namespace} --reason "<what you see>"' in text.stdout
    assert "shutdown, release, ack, approve  group oncall-ml; user alice@example.com" in text.stdout
    assert len(text.stdout.splitlines()) <= 45

    page = subprocess.run(
        [str(kubectl), "airlock", "runbook", "chatbot", "--output", "markdown"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert page.returncode == 0, page.stderr
    assert page.stdout.startswith(f"# Runbook: chatbot ({tenant.namespace})\n")
    assert "| **shutdown** | oncall-ml | alice@example.com | - |" in page.stdout


def test_usage_errors_exit_2() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "airlock", "shutdown", "chatbot"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert "--reason" in result.stderr


def test_with_the_admission_webhook_a_refusal_is_the_api_servers_403(tmp_path: Path) -> None:
    """With airlock's admission installed, the API server refuses before anything is stored; no operator needed."""
    sandbox = SandboxCluster()
    admission.install(sandbox)
    with ClusterThread(sandbox) as cluster:
        api = Api(cluster.url)
        load_crds(api)
        api.create(deployment("ml-prod", "chatbot-v7", "bot", replicas=3))
        api.create(system("ml-prod", "bot"))
        bob = cluster.write_kubeconfig(tmp_path / "bob", user=BOB, groups=["marketing"], namespace="ml-prod")
        alice = cluster.write_kubeconfig(tmp_path / "alice", user=ALICE, namespace="ml-prod")

        refused = airlock(bob, "shutdown", "chatbot", "--reason", "looks odd to me")
        assert refused.returncode == 1
        assert "REFUSED by the API server: admission webhook" in refused.stdout
        assert f"{BOB} may not shutdown; allowed: user {ALICE}, group oncall-ml" in refused.stdout
        assert "airlock.dev/shutdown" not in (
            (api.get("AISystem", "ml-prod", "chatbot") or {})["metadata"].get("annotations") or {}
        )

        accepted = airlock(alice, "shutdown", "chatbot", "--reason", "PII in answers", "--no-wait")
        assert accepted.returncode == 0, accepted.stdout
        stamped = (api.get("AISystem", "ml-prod", "chatbot") or {})["metadata"]["annotations"]
        assert stamped["airlock.dev/shutdown"] == "PII in answers"
        assert stamped["airlock.dev/requested-by"] == ALICE


def test_as_and_as_group_impersonate_like_kubectl(world: World, tenant: Tenant) -> None:
    # An admin kubeconfig acting as carol of oncall-ml: the identity the API server reports is carol's.
    result = airlock(
        world.kubeconfig, "shutdown", "chatbot", "-n", tenant.namespace, "--reason", "impersonated",
        "--as", CAROL, "--as-group", "oncall-ml",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout
    assert f"requested by {CAROL}" in result.stdout
    assert status(world, tenant)["containment"]["by"] == CAROL
    assert airlock(world.kubeconfig, "shutdown", "chatbot", "--as-group", "x").returncode == 2


def test_a_responder_who_may_not_list_events_still_gets_airlocks_answer(world: World, tenant: Tenant) -> None:
    """Get and patch on the AISystem are enough: the verdict is in status.requests (issue: 403 on events)."""
    cluster = world.cluster.cluster
    events = f"get /api/v1/namespaces/{tenant.namespace}/events"
    world.cluster.call(lambda: cluster[events] << 403 << {"kind": "Status", "reason": "Forbidden", "code": 403})
    with pytest.raises(AssertionError, match="403"):
        world.api.call(
            "GET", f"/api/v1/namespaces/{tenant.namespace}/events?fieldSelector=involvedObject.name%3Dchatbot"
        )
    refused = airlock(tenant.bob, "shutdown", "chatbot", "--reason", "looks odd to me")
    assert refused.returncode == 1, refused.stdout
    assert f"REFUSED by airlock: airlock.dev/shutdown ignored: {BOB} may not shutdown" in refused.stdout
    assert "withdrawn" in refused.stdout
    done = airlock(tenant.alice, "shutdown", "chatbot", "--reason", "PII in answers")
    assert done.returncode == 0, done.stdout
    assert "ShutDown in" in done.stdout
    assert replicas(world, tenant) == 0


async def test_a_failed_withdrawal_says_what_is_left_and_how_to_remove_it() -> None:
    """Never "withdrawn; nothing changed" when the withdrawal itself was refused."""
    from airlock.adapters import kube
    from airlock.cli.control import Session
    from airlock.domain import authority

    class Refusing:
        async def patch(self, *args: Any, **kwargs: Any) -> None:
            raise kube.ApiError(403, "Forbidden", "ValidatingAdmissionPolicy 'x' denied request: no")

    session = Session(api=Refusing(), namespace="ml-prod", caller=authority.Caller(BOB), timeout=1)  # type: ignore[arg-type]
    lines = await session.withdraw(kube.AISYSTEMS, "chatbot", "airlock.dev/shutdown", "looks odd")
    text = "\n".join(lines)
    assert "withdrawn;" not in text
    assert "NOT WITHDRAWN: airlock.dev/shutdown='looks odd' is still on AISystem chatbot" in text
    assert "denied request: no" in text
    assert "it will never take effect" in text
    assert "kubectl annotate ais chatbot -n ml-prod airlock.dev/shutdown- airlock.dev/requested-by=" in text
