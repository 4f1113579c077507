"""The Argo CD health checks in ``deploy/argocd/health/``, run by a real Lua interpreter (lupa).

Argo CD runs them with gopher-lua (Lua 5.1) and a global ``obj``; the scripts use
only what Lua 5.1 and later have in common.
"""

from __future__ import annotations

import pathlib
from typing import Any

import lupa
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
HEALTH = ROOT / "deploy" / "argocd" / "health"


def health(kind: str, obj: dict[str, Any]) -> dict[str, str]:
    lua = lupa.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute((HEALTH / f"airlock.dev_{kind}" / "health.lua").read_text())
    return {"status": str(result.status), "message": str(result.message)}


def system(status: dict[str, Any] | None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "airlock.dev/v1alpha1",
        "kind": "AISystem",
        "metadata": {"name": "support-chatbot", "namespace": "ml-prod"},
        "spec": {"target": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "chatbot-v7"}},
    }
    if status is not None:
        obj["status"] = status
    return obj


def incident(phase: str | None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "airlock.dev/v1alpha1",
        "kind": "AIIncident",
        "metadata": {"name": "support-chatbot-20261126-133012", "namespace": "ml-prod"},
        "spec": {"system": "support-chatbot", "failureMode": "privacy", "severity": "SEV1", "drill": False},
    }
    if phase is not None:
        obj["status"] = {"phase": phase, "timeline": [{"type": "Detected", "message": "pii-leak"}]}
    return obj


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (None, "Progressing"),
        ({}, "Progressing"),
        ({"phase": "Unknown"}, "Progressing"),
        ({"phase": "Healthy", "conditions": [{"type": "Ready", "status": "True", "message": "ok"}]}, "Healthy"),
        ({"phase": "Degraded"}, "Degraded"),
        ({"phase": "Invalid"}, "Degraded"),
        ({"phase": "Contained"}, "Degraded"),
        ({"phase": "ShutDown"}, "Degraded"),
    ],
)
def test_aisystem_health(status: dict[str, Any] | None, expected: str) -> None:
    assert health("AISystem", system(status))["status"] == expected


def test_aisystem_message_says_why() -> None:
    contained = system(
        {
            "phase": "ShutDown",
            "severity": "SEV1",
            "containment": {
                "active": True,
                "actions": ["reroute", "scaleToZero"],
                "reason": "monitor pii-leak > 0.5 (0.8)",
            },
        }
    )
    assert health("AISystem", contained) == {"status": "Degraded", "message": "ShutDown: monitor pii-leak > 0.5 (0.8)"}
    invalid = system(
        {
            "phase": "Invalid",
            "conditions": [
                {"type": "Ready", "status": "False", "message": "not ready"},
                {"type": "Stalled", "status": "True", "message": "unknown variable params.ap in monitor pii-leak"},
            ],
        }
    )
    assert health("AISystem", invalid)["message"] == "Invalid: unknown variable params.ap in monitor pii-leak"


@pytest.mark.parametrize(
    ("phase", "expected"),
    [
        (None, "Progressing"),
        ("Open", "Degraded"),
        ("Contained", "Degraded"),
        ("Resolved", "Healthy"),
        ("Closed", "Healthy"),
    ],
)
def test_aiincident_health(phase: str | None, expected: str) -> None:
    assert health("AIIncident", incident(phase))["status"] == expected


def test_aiincident_message_names_severity_and_drill() -> None:
    assert health("AIIncident", incident("Open"))["message"] == "SEV1 privacy incident Open"
    drill = incident("Contained")
    drill["spec"]["drill"] = True
    assert (
        health("AIIncident", drill)["message"]
        == "SEV1 privacy drill incident Contained: waiting for an acknowledgement"
    )


def test_a_drill_never_degrades_the_application() -> None:
    drill = incident("Open")
    drill["spec"]["drill"] = True
    assert health("AIIncident", drill)["status"] == "Progressing"
    drill["status"]["phase"] = "Closed"
    assert health("AIIncident", drill)["status"] == "Healthy"


def test_example_application_values_satisfy_the_chart_schema() -> None:
    import helm_python as helm
    import yaml

    application = yaml.safe_load((ROOT / "deploy" / "argocd" / "application.yaml").read_text())
    source = application["spec"]["source"]
    assert source["path"] == "charts/airlock"
    assert "RespectIgnoreDifferences=true" not in application["spec"]["syncPolicy"]["syncOptions"]  # airlock's own app
    helm.Chart.load(ROOT / source["path"]).validate_schema(source["helm"]["valuesObject"])


def test_readme_tells_model_applications_to_respect_ignore_differences() -> None:
    text = (ROOT / "deploy" / "argocd" / "README.md").read_text()
    for needle in (
        "RespectIgnoreDifferences=true",
        "managedFieldsManagers: [airlock]",
        "/spec/replicas",
        "/spec/paused",
    ):
        assert needle in text
    assert "jsonPointers: [/spec/selector]" in text
    assert '.metadata.annotations["airlock.dev/saved-state"]' in text


def test_readme_yaml_snippets_parse() -> None:
    import re

    import yaml

    text = (ROOT / "deploy" / "argocd" / "README.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) >= 3
    for block in blocks:
        lines = block.splitlines()
        indent = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
        doc = yaml.safe_load("\n".join(line[indent:] for line in lines))
        assert doc
    ignore = yaml.safe_load(blocks[1])["spec"]["ignoreDifferences"]
    assert {(rule["group"], rule["kind"]) for rule in ignore} == {
        ("apps", "Deployment"),
        ("apps", "StatefulSet"),
        ("argoproj.io", "Rollout"),
        ("", "Service"),
        ("keda.sh", "ScaledObject"),
    }
