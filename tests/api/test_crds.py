"""The generated CRDs: structural, named and printed as SPEC says, CEL that a real API server accepts, no drift."""

from __future__ import annotations

import difflib
import io
import pathlib
import re
from contextlib import redirect_stdout
from typing import Any

import jsonschema
import pytest
import yaml

from airlock.api import crd
from airlock.cli import crds as crds_cli
from airlock.cli import main as cli_main
from airlock.sandbox._k8s_schema import resolve_field_path
from tests.api import schema_check

CRDS = crd.all_crds()
ROOT = pathlib.Path(__file__).resolve().parents[2]
BY_KIND = {c["spec"]["names"]["kind"]: c for c in CRDS}

# Keywords a structural schema must not contain (or that Kubernetes rejects in a CRD).
FORBIDDEN = {
    "$ref", "$defs", "$schema", "definitions", "anyOf", "oneOf", "allOf", "not", "const", "title", "nullable",
    "propertyNames", "patternProperties", "uniqueItems", "additionalItems", "dependencies", "id",
}  # fmt: skip


def openapi(kind: str) -> dict[str, Any]:
    schema: dict[str, Any] = BY_KIND[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


@pytest.mark.parametrize(
    ("kind", "plural", "short", "scope"),
    [
        ("AISystem", "aisystems", "ais", "Namespaced"),
        ("ContainmentPolicy", "containmentpolicies", "cpol", "Cluster"),
        ("AIIncident", "aiincidents", "aii", "Namespaced"),
    ],
)
def test_names_and_scope(kind: str, plural: str, short: str, scope: str) -> None:
    definition = BY_KIND[kind]
    assert definition["apiVersion"] == "apiextensions.k8s.io/v1"
    assert definition["metadata"]["name"] == f"{plural}.airlock.dev"
    spec = definition["spec"]
    assert spec["group"] == "airlock.dev"
    assert spec["scope"] == scope
    assert spec["names"]["plural"] == plural
    assert spec["names"]["kind"] == kind
    assert spec["names"]["shortNames"] == [short]
    assert spec["names"]["categories"] == ["airlock"]
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}


def columns(kind: str) -> list[tuple[str, str, str]]:
    version = BY_KIND[kind]["spec"]["versions"][0]
    return [(c["name"], c["jsonPath"], c["type"]) for c in version["additionalPrinterColumns"] if not c.get("priority")]


def test_printer_columns() -> None:
    assert columns("AISystem") == [
        ("Phase", ".status.phase", "string"),
        ("Severity", ".status.severity", "string"),
        ("Incident", ".status.incident", "string"),
        ("Target", ".spec.target.name", "string"),
        ("Mode", ".spec.mode", "string"),
        ("Age", ".metadata.creationTimestamp", "date"),
    ]
    assert columns("AIIncident") == [
        ("System", ".spec.system", "string"),
        ("Severity", ".spec.severity", "string"),
        ("Phase", ".status.phase", "string"),
        ("TTC", ".status.timeToContainSeconds", "number"),
        ("Drill", ".spec.drill", "boolean"),
        ("Age", ".metadata.creationTimestamp", "date"),
    ]
    assert [name for name, _, _ in columns("ContainmentPolicy")] == ["Description", "Age"]


@pytest.mark.parametrize("kind", sorted(BY_KIND))
def test_printer_columns_point_at_fields_of_the_right_type(kind: str) -> None:
    schema = openapi(kind)
    for column in BY_KIND[kind]["spec"]["versions"][0]["additionalPrinterColumns"]:
        if column["jsonPath"] == ".metadata.creationTimestamp":
            continue
        node = resolve_field_path(schema, column["jsonPath"])
        assert node is not None, column
        expected = {"string": "string", "number": "number", "boolean": "boolean", "integer": "integer"}[column["type"]]
        assert node["type"] == expected, column


@pytest.mark.parametrize("kind", sorted(BY_KIND))
def test_schema_is_structural(kind: str) -> None:
    schema = openapi(kind)
    assert schema["properties"]["metadata"] == {"type": "object"}
    assert schema["required"] == ["spec"]
    for path, node in schema_check.walk(schema):
        assert not FORBIDDEN & set(node), (path, FORBIDDEN & set(node))
        assert "type" in node, path
        assert not ("properties" in node and "additionalProperties" in node), path
        assert node.get("additionalProperties", {}) is not False, path
        if node.get("x-kubernetes-preserve-unknown-fields"):
            assert node["type"] == "object", path
        for name, sub in node.get("properties", {}).items():
            if (path, name) != ("", "metadata"):
                assert sub.get("description"), f"{path}.{name} has no description"
        for name in node.get("required", []):
            assert name in node["properties"], (path, name)


@pytest.mark.parametrize("kind", sorted(BY_KIND))
def test_defaults_validate(kind: str) -> None:
    # The API server rejects a CRD whose defaults do not validate against their own schema.
    for path, node in schema_check.walk(openapi(kind)):
        if "default" in node:
            jsonschema.Draft4Validator(node).validate(node["default"])
            assert node["default"] is not None, path


@pytest.mark.parametrize("kind", sorted(BY_KIND))
def test_list_types(kind: str) -> None:
    for path, node in schema_check.walk(openapi(kind)):
        list_type = node.get("x-kubernetes-list-type")
        if list_type is None:
            continue
        assert node["type"] == "array", path
        assert list_type in {"atomic", "set", "map"}, path
        if list_type == "map":
            items = node["items"]
            for key in node["x-kubernetes-list-map-keys"]:
                assert key in items.get("required", []) or "default" in items["properties"][key], (path, key)


def test_named_lists_are_maps_by_name() -> None:
    for kind in ("AISystem", "ContainmentPolicy"):
        spec = openapi(kind)["properties"]["spec"]["properties"]
        for field in ("monitors", "responders"):
            assert spec[field]["x-kubernetes-list-type"] == "map"
            assert spec[field]["x-kubernetes-list-map-keys"] == ["name"]
    status = openapi("AISystem")["properties"]["status"]["properties"]
    assert status["conditions"]["x-kubernetes-list-map-keys"] == ["type"]
    assert status["containment"]["properties"]["saved"] == {
        "type": "object",
        "description": status["containment"]["properties"]["saved"]["description"],
        "x-kubernetes-preserve-unknown-fields": True,
    }


def test_status_is_complete() -> None:
    status = openapi("AISystem")["properties"]["status"]["properties"]
    assert {"observedGeneration", "phase", "severity", "incident", "monitors", "containment", "wouldContain",
            "lastHandledRelease", "conditions"} <= set(status)  # fmt: skip
    assert status["phase"]["enum"] == ["Healthy", "Degraded", "Contained", "ShutDown", "Unknown", "Invalid"]
    assert status["monitors"]["items"]["properties"]["state"]["enum"] == ["ok", "breached", "noData", "error"]
    incident = openapi("AIIncident")["properties"]["status"]["properties"]
    assert incident["phase"]["enum"] == ["Open", "Contained", "Resolved", "Closed"]
    assert incident["timeToContainSeconds"]["type"] == "number"


def test_defaults_are_kept() -> None:
    spec = openapi("AISystem")["properties"]["spec"]["properties"]
    assert spec["mode"]["default"] == "enforce"
    assert spec["onProviderError"]["default"] == "hold"
    monitor = spec["monitors"]["items"]["properties"]
    assert monitor["interval"]["default"] == "15s"
    assert monitor["noData"]["default"] == "gap"


def all_rules() -> list[tuple[str, str, dict[str, Any], dict[str, str]]]:
    found = []
    for kind in sorted(BY_KIND):
        for path, node in schema_check.walk(openapi(kind)):
            for rule in node.get("x-kubernetes-validations", []):
                found.append((kind, path, node, rule))
    return found


RULES = all_rules()


def test_there_are_cel_rules() -> None:
    assert len(RULES) >= 10


@pytest.mark.parametrize(
    ("kind", "path", "node", "rule"), RULES, ids=[f"{k}:{p}:{r['rule'][:30]}" for k, p, _, r in RULES]
)
def test_cel_rule_is_valid(kind: str, path: str, node: dict[str, Any], rule: dict[str, str]) -> None:
    assert set(rule) <= {"rule", "message", "messageExpression", "fieldPath", "reason", "optionalOldSelf"}
    assert rule.get("message"), "a rule without a message reports only its expression"
    schema_check.compile_rule(rule["rule"])  # standard CEL: parses with cel-python
    if "reason" in rule:
        assert rule["reason"] in schema_check.CEL_REASONS
    if "fieldPath" in rule:
        assert resolve_field_path(node, rule["fieldPath"]) is not None, rule["fieldPath"]
    # Kubernetes exposes properties under their escaped names (`namespace` → `__namespace__`).
    if "properties" in node:
        declared = {schema_check.escape(name) for name in node["properties"]}
        for name in re.findall(r"\bself\.([A-Za-z_][A-Za-z0-9_]*)", rule["rule"]):
            assert name in declared, f"self.{name} is not a property of {path} (escaped: {sorted(declared)})"


def test_escaping() -> None:
    assert schema_check.escape("namespace") == "__namespace__"
    assert schema_check.escape("for") == "__for__"
    assert schema_check.escape("a-b.c/d") == "a__dash__b__dot__c__slash__d"
    assert schema_check.escape("interval") == "interval"


def test_structural_conversion_refuses_what_it_cannot_express() -> None:
    with pytest.raises(crd.SchemaError, match="anyOf"):
        crd.structural({"anyOf": [{"type": "string"}, {"type": "integer"}]}, {})
    with pytest.raises(crd.SchemaError, match="needs a type"):
        crd.structural({"description": "x"}, {})
    with pytest.raises(crd.SchemaError, match="oneOf"):
        crd.structural({"type": "object", "oneOf": []}, {})
    with pytest.raises(crd.SchemaError, match="unresolvable"):
        crd.structural({"$ref": "#/$defs/Missing"}, {})
    loop = {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}}
    with pytest.raises(crd.SchemaError, match="recursion"):
        crd.structural({"$ref": "#/$defs/Node"}, loop)
    assert crd.structural({"type": "integer", "exclusiveMinimum": 0}, {}) == {
        "type": "integer",
        "minimum": 0,
        "exclusiveMinimum": True,
    }


def test_generation_is_deterministic() -> None:
    assert crds_cli.render_all(crd.all_crds()) == crds_cli.render_all(CRDS)


@pytest.mark.parametrize("directory", ["crds", "charts/airlock/crds"])
def test_committed_crds_match_the_models(directory: str) -> None:
    expected = {f"{c['metadata']['name']}.yaml": crds_cli.HEADER + crds_cli.render(c) for c in CRDS}
    folder = ROOT / directory
    actual = {path.name: path.read_text(encoding="utf-8") for path in folder.glob("*.yaml")}
    assert sorted(actual) == sorted(expected), "run `make crds`"
    for name, text in expected.items():
        diff = "".join(difflib.unified_diff(actual[name].splitlines(True), text.splitlines(True), name, "generated"))
        assert not diff, f"{directory}/{name} is stale: run `make crds`\n{diff[:2000]}"


def test_cli_prints_all_crds() -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli_main.main(["crds"]) == 0
    documents = list(yaml.safe_load_all(out.getvalue()))
    assert documents == CRDS


def test_cli_writes_one_file_per_kind(tmp_path: pathlib.Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b" / "c"
    with redirect_stdout(io.StringIO()):
        assert cli_main.main(["crds", "--write", str(first), "--write", str(second)]) == 0
    for folder in (first, second):
        names = sorted(path.name for path in folder.iterdir())
        assert names == [
            "aiincidents.airlock.dev.yaml",
            "aisystems.airlock.dev.yaml",
            "containmentpolicies.airlock.dev.yaml",
        ]
        text = (folder / "aisystems.airlock.dev.yaml").read_text(encoding="utf-8")
        assert text.startswith("# generated by `make crds` from operator/airlock/api — do not edit\n")
        assert yaml.safe_load(text) == BY_KIND["AISystem"]
