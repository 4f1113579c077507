"""The sandbox enforces authority like a cluster with airlock's webhooks installed (``sandbox.admission``)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airlock.api import annotations as keys
from airlock.sandbox import admission
from airlock.sandbox.cluster import ClusterThread, SandboxCluster
from airlock.sandbox.world import Api, load_crds
from tests.admission import cases
from tests.fixtures.cluster import kubectl_binary

WHO_MAY = "allowed: group oncall-ml, user alice@example.com, serviceaccount ops/pager-bot"


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[tuple[ClusterThread, Api, Path]]:
    cluster = SandboxCluster()
    admission.install(cluster)
    thread = ClusterThread(cluster).start()
    try:
        api = Api(thread.url)
        load_crds(api)
        for name, responders in cases.POLICIES.items():
            body = cases.policy(responders)
            body["metadata"]["name"] = name
            api.create(body)
        for body in cases.SYSTEMS.values():
            api.create(body)
        api.create(cases.incident())
        yield thread, api, thread.write_kubeconfig(tmp_path / "kubeconfig")
    finally:
        thread.stop()
    assert thread.cluster.internal_errors == []


def kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [str(kubectl_binary()), f"--kubeconfig={kubeconfig}", f"--cache-dir={kubeconfig.parent / 'cache'}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


def annotations(api: Api, kind: str, name: str) -> dict[str, Any]:
    body = api.get(kind, "ml-prod", name)
    assert body is not None
    found: dict[str, Any] = body["metadata"].get("annotations") or {}
    return found


def test_kubectl_as_bob_is_refused_naming_who_may_and_alice_is_stamped(
    guarded: tuple[ClusterThread, Api, Path],
) -> None:
    _, api, kubeconfig = guarded
    refused = kubectl(
        kubeconfig,
        "--as",
        "bob@example.com",
        "-n",
        "ml-prod",
        "annotate",
        "ais",
        "chatbot",
        "airlock.dev/shutdown=pii leak",
    )
    assert refused.returncode != 0
    assert "Error from server (Forbidden)" in refused.stderr
    assert (
        'admission webhook "aisystems.authority.airlock.dev" denied the request: setting airlock.dev/shutdown: '
        f"bob@example.com may not shutdown; {WHO_MAY}"
    ) in refused.stderr
    assert keys.SHUTDOWN not in annotations(api, "AISystem", "chatbot")

    # Alice claims to be someone else: the stamp tells the truth anyway.
    done = kubectl(
        kubeconfig, "--as", "alice@example.com", "--as-group", "ml", "-n", "ml-prod",
        "annotate", "ais", "chatbot", "airlock.dev/shutdown=pii leak", "airlock.dev/requested-by=bob@example.com",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    found = annotations(api, "AISystem", "chatbot")
    assert found[keys.SHUTDOWN] == "pii leak"
    assert found[keys.REQUESTED_BY] == "alice@example.com"
    assert found[keys.REQUESTED_BY_GROUPS] == "ml,system:authenticated"


def test_lifting_a_shutdown_is_shutdown_authority(guarded: tuple[ClusterThread, Api, Path]) -> None:
    _, api, kubeconfig = guarded
    args = ("-n", "ml-prod", "annotate", "ais", "chatbot")
    assert kubectl(kubeconfig, "--as", "alice@example.com", *args, "airlock.dev/shutdown=x").returncode == 0
    refused = kubectl(kubeconfig, "--as", "bob@example.com", *args, "airlock.dev/shutdown-")
    assert f"removing airlock.dev/shutdown: bob@example.com may not shutdown; {WHO_MAY}" in refused.stderr
    assert (
        kubectl(kubeconfig, "--as", "carol", "--as-group", "oncall-ml", *args, "airlock.dev/shutdown-").returncode == 0
    )
    found = annotations(api, "AISystem", "chatbot")
    assert keys.SHUTDOWN not in found
    assert found[keys.REQUESTED_BY] == "carol"


def test_requested_by_cannot_be_edited_on_its_own(guarded: tuple[ClusterThread, Api, Path]) -> None:
    _, api, kubeconfig = guarded
    args = ("-n", "ml-prod", "annotate", "ais", "chatbot")
    assert kubectl(kubeconfig, "--as", "alice@example.com", *args, "airlock.dev/release=r1").returncode == 0
    forged = kubectl(kubeconfig, "--as", "mallory", *args, "--overwrite", "airlock.dev/requested-by=mallory")
    assert forged.returncode == 0, forged.stderr  # the write goes through, the forgery does not
    assert annotations(api, "AISystem", "chatbot")[keys.REQUESTED_BY] == "alice@example.com"


def test_incident_verbs_come_from_its_system(guarded: tuple[ClusterThread, Api, Path]) -> None:
    _, api, kubeconfig = guarded
    incident = cases.incident()["metadata"]["name"]
    args = ("-n", "ml-prod", "annotate", "aii", incident)
    refused = kubectl(kubeconfig, "--as", "bob@example.com", *args, "airlock.dev/approve=go")
    assert "bob@example.com may not approve; allowed: group oncall-ml" in refused.stderr
    assert kubectl(kubeconfig, "--as", "bob@example.com", *args, "airlock.dev/acknowledge=on it").returncode == 0
    assert annotations(api, "AIIncident", incident)[keys.REQUESTED_BY] == "bob@example.com"


def test_responders_are_for_admins(guarded: tuple[ClusterThread, Api, Path]) -> None:
    _, api, kubeconfig = guarded
    patch = json.dumps({"spec": {"responders": [cases.ONCALL]}})
    edit = ("-n", "ml-prod", "patch", "ais", "chatbot", "--type", "merge", "-p", patch)
    refused = kubectl(kubeconfig, "--as", "alice@example.com", *edit)
    assert "may not change spec.responders of AISystem chatbot" in refused.stderr
    assert "allowed: group airlock-admins" in refused.stderr
    assert kubectl(kubeconfig, "--as", "dana", "--as-group", "airlock-admins", *edit).returncode == 0
    system = api.get("AISystem", "ml-prod", "chatbot")
    assert system is not None
    assert [r["name"] for r in system["spec"]["responders"]] == ["ml-oncall"]


def test_everything_else_is_untouched(guarded: tuple[ClusterThread, Api, Path]) -> None:
    thread, api, kubeconfig = guarded
    edit = ("-n", "ml-prod", "patch", "ais", "chatbot", "--type", "merge", "-p", '{"spec":{"description":"new"}}')
    assert kubectl(kubeconfig, "--as", "mallory", *edit).returncode == 0
    # The operator's own writes are never judged.
    operator = cases.OPERATOR
    status = ("-n", "ml-prod", "annotate", "ais", "chatbot", "airlock.dev/drill=by-operator")
    assert kubectl(kubeconfig, "--as", operator, *status).returncode == 0
    assert keys.REQUESTED_BY not in annotations(api, "AISystem", "chatbot")
    assert [type(hook) for hook in thread.cluster.admission] == [admission.AuthorityHook]
