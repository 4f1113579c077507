"""The generated CRDs meet a real API server's rules for CRDs: structural schemas and the CEL cost budget.

A real API server refuses a CRD before any object exists when its schema is not structural,
its list types or defaults are inconsistent, or the estimated cost of its CEL rules is over
budget (10,000,000 per rule; 100,000,000 for the CRD, each rule's cost multiplied by how many
times it can run). The checker (``airlock.sandbox._k8s_schema.crd_problems`` with the estimate
in ``_k8s_celcost``) is the one the sandbox applies to every CRD written to it; the second half
of this module shows it refusing what a real server refuses, so a green run means something.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from airlock.api import crd
from airlock.sandbox import _k8s_celcost as celcost
from airlock.sandbox import _k8s_schema as schemas
from tests.api import schema_check

CRDS = crd.all_crds()
BY_KIND = {c["spec"]["names"]["kind"]: c for c in CRDS}
# Where an object keeps fields the schema does not name (the saved state of any target kind).
PRESERVED = {"AISystem": {"status.containment.saved"}, "ContainmentPolicy": set(), "AIIncident": set()}
# The bounds every CEL rule's cost relies on (also in the README's testing section).
BOUNDS = {
    "spec.monitors": ("maxItems", 64),
    "spec.monitors[].thresholds": ("maxItems", 8),
    "spec.monitors[].interval": ("maxLength", 32),
    "spec.monitors[].baseline.offset": ("maxLength", 32),
    "spec.monitors[].baseline.window": ("maxLength", 32),
    "spec.severities": ("maxProperties", 4),
    "spec.severities[*].actions": ("maxItems", 4),
    "spec.responders": ("maxItems", 32),
    "spec.responders[].subjects": ("maxItems", 64),
    "spec.templates": ("maxProperties", 3),
    "spec.notifications.channels": ("maxItems", 16),
}


def openapi(kind: str) -> dict[str, Any]:
    schema: dict[str, Any] = BY_KIND[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


@pytest.mark.parametrize("kind", sorted(BY_KIND))
def test_a_real_api_server_would_accept_the_crd(kind: str) -> None:
    assert schemas.crd_problems(BY_KIND[kind]) == []


@pytest.mark.parametrize("kind", sorted(BY_KIND))
def test_every_rule_is_bounded_and_within_budget(kind: str) -> None:
    cost = celcost.estimate_schema(openapi(kind))
    assert bool(cost.rules) == (kind != "AIIncident"), f"{kind}: {len(cost.rules)} rules"
    for rule in cost.rules:
        assert rule.unbounded == [], f"{kind} {rule.path}: {rule.rule!r} depends on unbounded {rule.unbounded}"
        assert rule.cost <= celcost.PER_EXPRESSION_LIMIT, (rule.path, rule.rule, rule.cost)
    assert cost.total <= celcost.PER_CRD_LIMIT
    # Far inside the budget: a change that multiplies a rule's reach shows up here first.
    assert cost.total < celcost.PER_CRD_LIMIT // 1000, cost.total


@pytest.mark.parametrize("kind", ["AISystem", "ContainmentPolicy"])
def test_the_documented_bounds_hold(kind: str) -> None:
    nodes = dict(schema_check.walk(openapi(kind)))
    for path, (keyword, value) in BOUNDS.items():
        assert nodes[path].get(keyword) == value, (kind, path, keyword)


@pytest.mark.parametrize("kind", sorted(BY_KIND))
def test_unknown_fields_are_kept_only_where_intended(kind: str) -> None:
    preserved = {
        path for path, node in schema_check.walk(openapi(kind)) if node.get("x-kubernetes-preserve-unknown-fields")
    }
    assert preserved == PRESERVED[kind]


@pytest.mark.parametrize("kind", sorted(BY_KIND))
def test_map_lists_are_keyed_by_required_scalars(kind: str) -> None:
    for path, node in schema_check.walk(openapi(kind)):
        if node.get("x-kubernetes-list-type") == "map":
            items = node["items"]
            for key in node["x-kubernetes-list-map-keys"]:
                assert items["properties"][key]["type"] in ("string", "integer"), (path, key)
                assert key in items.get("required", []), (path, key)


# -- the checker refuses what a real API server refuses ----------------------------------------------


def _crd(spec_schema: dict[str, Any]) -> dict[str, Any]:
    document = copy.deepcopy(BY_KIND["ContainmentPolicy"])
    document["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"] = spec_schema
    return document


def _problems(spec_schema: dict[str, Any]) -> list[str]:
    return schemas.crd_problems(_crd(spec_schema))


def test_iterating_an_unbounded_list_is_over_budget() -> None:
    names = {"type": "array", "items": {"type": "string"}}
    rule = {"rule": "self.names.all(n, n.matches('^[a-z]+$'))", "message": "lower case"}
    schema = {"type": "object", "properties": {"names": names}, "x-kubernetes-validations": [rule]}
    cost, unbounded = celcost.estimate_rule(rule["rule"], schema, "spec")
    assert unbounded == ["spec.names", "spec.names[]"]
    assert cost > celcost.PER_EXPRESSION_LIMIT
    problems = _problems(schema)
    assert any("estimated rule cost exceeds budget" in p for p in problems), problems
    # Bounded, the same rule is cheap and nothing is unbounded.
    names.update(maxItems=16)
    names["items"]["maxLength"] = 63
    cost, unbounded = celcost.estimate_rule(rule["rule"], schema, "spec")
    assert unbounded == []
    assert cost < 1000
    assert _problems(schema) == []


def test_a_rule_under_an_unbounded_list_runs_too_often() -> None:
    item = {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 253}},
        "x-kubernetes-validations": [{"rule": "self.name.startsWith('a')", "message": "starts with a"}],
    }
    outer = {"type": "array", "items": {"type": "array", "items": item}}
    schema = {"type": "object", "properties": {"groups": outer}}
    (rule,) = celcost.estimate_schema(schema).rules
    assert rule.cardinality > 10**9  # unbounded lists in unbounded lists: the rule may run that often
    assert any("estimated rule cost total for entire OpenAPIv3 schema exceeds budget" in p for p in _problems(schema))


def test_a_regex_over_an_unbounded_string_is_flagged() -> None:
    schema = {"type": "object", "properties": {"query": {"type": "string"}}}
    _, unbounded = celcost.estimate_rule("self.query.matches('^sum')", schema, "spec")
    assert unbounded == ["spec.query"]
    _, unbounded = celcost.estimate_rule("self.query == 'x'", schema, "spec")
    assert unbounded == []  # compared with a literal: bounded by the literal


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        ({"type": "object", "properties": {"x": {"description": "untyped"}}}, "type: Required value"),
        (
            {"type": "object", "properties": {"x": {"type": "object", "properties": {}, "additionalProperties": {"type": "string"}}}},
            "additionalProperties and properties are mutual exclusive",
        ),
        (
            {"type": "object", "properties": {"x": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
             "items": {"type": "object", "properties": {"name": {"type": "string"}}}}}},
            "must have a default or be a required property",
        ),
        (
            {"type": "object", "properties": {"x": {"type": "array", "x-kubernetes-list-type": "set",
             "items": {"type": "object", "properties": {"a": {"type": "string"}}}}}},
            "must be a scalar or an atomic object in a list of type set",
        ),
        ({"type": "object", "properties": {"x": {"type": "string", "enum": ["a", "b"], "default": "c"}}}, ".default: Invalid value"),
        (
            {"type": "object", "properties": {"x": {"type": "object", "properties": {"a": {"type": "string"}}, "default": {"b": "1"}}}},
            "must not have unknown fields (b)",
        ),
        (
            {"type": "object", "properties": {"x": {"type": "array", "items": {"type": "string", "maxLength": 8,
             "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "immutable"}]}, "maxItems": 4}}},
            "oldSelf cannot be used on the uncorrelatable portion of the schema",
        ),
        ({"type": "object", "x-kubernetes-validations": [{"rule": "self.a ==", "message": "m"}]}, "compilation failed"),
        ({"type": "object", "x-kubernetes-validations": [{"rule": "true", "message": "m", "reason": "Nope"}]}, "Unsupported value"),
        ({"type": "object", "x-kubernetes-validations": [{"rule": "true", "message": "m", "fieldPath": ".missing"}]}, "fieldPath must be a valid path"),
        ({"type": "object", "properties": {"x": {"type": "array", "uniqueItems": True, "items": {"type": "string"}}}}, "uniqueItems cannot be set to true"),
    ],
    ids=[
        "untyped", "properties-and-additional", "map-key-optional", "set-of-objects", "default-not-in-enum",
        "default-unknown-field", "old-self-in-atomic-list", "cel-syntax", "cel-reason", "cel-field-path", "unique-items",
    ],
)  # fmt: skip
def test_structural_problems_are_refused(schema: dict[str, Any], problem: str) -> None:
    problems = _problems(schema)
    assert any(problem in p for p in problems), problems


def test_metadata_may_only_restrict_name() -> None:
    document = copy.deepcopy(BY_KIND["AIIncident"])
    root = document["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    root["properties"]["metadata"] = {"type": "object", "properties": {"labels": {"type": "object"}}}
    assert any("only name and generateName may be restricted" in p for p in schemas.crd_problems(document))
