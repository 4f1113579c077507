"""``airlock postmortem INCIDENT`` against the sandbox API server: the stored draft, or why there is none."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airlock.cli.main import main
from airlock.domain import drafts, postmortem
from airlock.sandbox.cluster import ClusterThread
from airlock.sandbox.world import Api, load_crds
from tests.postmortem.builders import privacy

NAMESPACE = "ml-prod"


@pytest.fixture
def api(sandbox: ClusterThread) -> Api:
    api = Api(sandbox.url)
    load_crds(api)
    api.call("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    return api


@pytest.fixture
def draft() -> str:
    case = privacy()
    return postmortem.draft(case.incident, case.system, case.evidence)


def create_incident(api: Api, phase: str, name: str = "support-chatbot-20261126-133001") -> str:
    incident = privacy().incident
    body: dict[str, Any] = incident.dump()
    body["metadata"] = {"name": name, "namespace": NAMESPACE}
    status = body.pop("status")
    api.create(body)
    api.patch("AIIncident", NAMESPACE, name, {"status": {**status, "phase": phase}}, sub="status")
    return name


def create_draft(api: Api, incident: str, text: str, key: str = postmortem.CONFIG_MAP_KEY) -> None:
    api.call(
        "POST",
        f"/api/v1/namespaces/{NAMESPACE}/configmaps",
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{incident}-postmortem", "namespace": NAMESPACE},
            "data": {key: text},
        },
    )


def airlock(kubeconfig: Path, *args: str) -> list[str]:
    return ["postmortem", *args, "--kubeconfig", str(kubeconfig)]


def test_prints_the_stored_draft(api: Api, kubeconfig: Path, draft: str, capsys: pytest.CaptureFixture[str]) -> None:
    name = create_incident(api, "Resolved")
    create_draft(api, name, draft)
    assert main(airlock(kubeconfig, name, "-n", NAMESPACE)) == 0
    out, err = capsys.readouterr()
    assert out == draft
    assert err == ""


def test_prints_the_draft_the_incident_names(
    api: Api, kubeconfig: Path, draft: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # As the operator stores it: an immutable ConfigMap named by its content, recorded in status.drafts.
    name = create_incident(api, "Resolved")
    create_draft(api, name, "an older draft, not the current one")
    current = drafts.name(name, drafts.POSTMORTEM, {postmortem.CONFIG_MAP_KEY: draft})
    api.call(
        "POST",
        f"/api/v1/namespaces/{NAMESPACE}/configmaps",
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": current, "namespace": NAMESPACE},
            "data": {postmortem.CONFIG_MAP_KEY: draft},
            "immutable": True,
        },
    )
    api.patch("AIIncident", NAMESPACE, name, {"status": {"drafts": {"postmortem": current}}}, sub="status")
    assert main(airlock(kubeconfig, name, "-n", NAMESPACE)) == 0
    assert capsys.readouterr().out == draft


def test_writes_the_draft_to_a_file(
    api: Api, kubeconfig: Path, draft: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = create_incident(api, "Resolved")
    create_draft(api, name, draft)
    target = tmp_path / "pm.md"
    assert main(airlock(kubeconfig, name, "-n", NAMESPACE, "-o", str(target))) == 0
    assert target.read_text(encoding="utf-8") == draft
    out, err = capsys.readouterr()
    assert out == ""
    assert f"wrote {target}; 7 of 7 AI-specific questions still to answer" in err


def test_an_open_incident_has_no_draft_yet(api: Api, kubeconfig: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = create_incident(api, "Open")
    assert main(airlock(kubeconfig, name, "-n", NAMESPACE)) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert f"incident {name} is Open: the post-mortem is drafted when it is resolved" in err


def test_a_contained_incident_has_no_draft_yet(api: Api, kubeconfig: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = create_incident(api, "Contained")
    assert main(airlock(kubeconfig, name, "-n", NAMESPACE)) == 1
    assert f"incident {name} is Contained: the post-mortem is drafted when it is resolved" in capsys.readouterr().err


def test_a_resolved_incident_without_its_configmap_says_so(
    api: Api, kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = create_incident(api, "Resolved")
    assert main(airlock(kubeconfig, name, "-n", NAMESPACE)) == 1
    err = capsys.readouterr().err
    assert f"incident {name} is Resolved but its post-mortem draft, ConfigMap {name}-postmortem" in err
    assert "does not exist" in err


def test_a_configmap_without_the_key(api: Api, kubeconfig: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = create_incident(api, "Resolved")
    create_draft(api, name, "# something else", key="notes.md")
    assert main(airlock(kubeconfig, name, "-n", NAMESPACE)) == 1
    assert f"ConfigMap {name}-postmortem in namespace {NAMESPACE} has no postmortem.md" in capsys.readouterr().err


def test_an_unknown_incident(api: Api, kubeconfig: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(airlock(kubeconfig, "nope", "-n", NAMESPACE)) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert f"AIIncident nope not found in namespace {NAMESPACE}" in err


def test_the_namespace_defaults_to_the_kubeconfig_context(
    api: Api, sandbox: ClusterThread, tmp_path: Path, draft: str, capsys: pytest.CaptureFixture[str]
) -> None:
    name = create_incident(api, "Closed")
    create_draft(api, name, draft)
    config = sandbox.write_kubeconfig(tmp_path / "ml-prod", namespace=NAMESPACE)
    assert main(airlock(config, name)) == 0
    assert capsys.readouterr().out == draft


def test_as_a_command_line_program(api: Api, kubeconfig: Path, draft: str) -> None:
    name = create_incident(api, "Resolved")
    create_draft(api, name, draft)
    ok = subprocess.run(
        [sys.executable, "-m", "airlock", *airlock(kubeconfig, name, "-n", NAMESPACE)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        check=False,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == draft
    missing = subprocess.run(
        [sys.executable, "-m", "airlock", *airlock(kubeconfig, "nope", "-n", NAMESPACE)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert missing.returncode == 1
    assert "airlock postmortem: AIIncident nope not found" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_usage_is_listed() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "airlock", "postmortem", "--help"], capture_output=True, text=True, check=True
    )
    assert "INCIDENT" in result.stdout
    assert "--output" in result.stdout
    assert "--kubeconfig" in result.stdout
