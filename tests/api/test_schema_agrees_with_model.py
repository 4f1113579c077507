"""Property: whatever the model accepts, the CRD accepts too (so `kubectl apply` never blocks a valid plan).

Random specs are built from strategies for every field — durations, enums,
names, thresholds, severities, responders, templates — kept mostly valid by
construction; the model is the judge of validity, and its ``dump()`` must then
pass the generated schema (including the CEL rules, evaluated for real).
"""

from __future__ import annotations

from typing import Any

import pydantic
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from airlock.api import crd
from airlock.api.aisystem import AISystem, Mode, ProviderErrorPolicy
from airlock.api.common import Action, Audience, FailureMode, Response, Severity, Verb
from airlock.api.incident import AIIncident, HarmCategory, TriggerType
from airlock.api.matrix import NoDataPolicy, Op
from airlock.api.policy import ContainmentPolicy
from tests.api import schema_check

CRDS = crd.all_crds()
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

names = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,14}[a-z0-9])?", fullmatch=True)
label_keys = st.from_regex(r"[a-z]([a-z0-9_.-]{0,10}[a-z0-9])?", fullmatch=True)
free_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
units = st.sampled_from(["ms", "s", "m", "h", "d", "w"])
durations = st.lists(st.tuples(st.integers(0, 999), units), min_size=1, max_size=3).map(
    lambda parts: "".join(f"{n}{u}" for n, u in parts)
)
positive_durations = st.lists(st.tuples(st.integers(1, 999), units), min_size=1, max_size=2).map(
    lambda parts: "".join(f"{n}{u}" for n, u in parts)
)
values = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12) | st.integers(-1000, 1000)


def enum_values(enum: Any) -> st.SearchStrategy[str]:
    return st.sampled_from([member.value for member in enum])


def unique_subset(enum: Any, max_size: int) -> st.SearchStrategy[list[str]]:
    return st.lists(enum_values(enum), unique=True, max_size=max_size)


@st.composite
def severity_policies(draw: st.DrawFn) -> dict[str, Any]:
    response = draw(enum_values(Response))
    policy: dict[str, Any] = {"response": response}
    if response not in ("observe", "investigate") and draw(st.booleans()):
        policy["actions"] = draw(unique_subset(Action, 4))
    if response != "observe" and draw(st.booleans()):
        policy["ackWithin"] = draw(durations)
    if draw(st.booleans()):
        policy["notify"] = draw(unique_subset(Audience, 3))
    if draw(st.booleans()):
        policy["releaseApprovals"] = draw(st.integers(1, 5))
    return policy


@st.composite
def templates(draw: st.DrawFn, params: list[str] | None) -> str:
    """A query with placeholders the system can resolve, around text without template braces."""
    variables = ["namespace", "name", "target"] + [f"params.{key}" for key in (params or [])]
    if params is None:
        variables.append(f"params.{draw(label_keys)}")
    text = draw(st.text(st.characters(codec="utf-8", exclude_characters="{}", exclude_categories=["Cs"]), max_size=20))
    for _ in range(draw(st.integers(0, 3))):
        spaced = draw(st.sampled_from(["{{ %s }}", "{{%s}}", "{{  %s }}"]))
        text += spaced % draw(st.sampled_from(variables)) + draw(st.sampled_from(["", '"', "}", "[1m]", " x "]))
    return text or "up"


@st.composite
def monitors(draw: st.DrawFn, name: str, severities: list[str], params: list[str] | None) -> dict[str, Any]:
    monitor: dict[str, Any] = {
        "name": name,
        "failureMode": draw(enum_values(FailureMode)),
        "query": draw(templates(params)),
        "thresholds": draw(
            st.lists(
                st.fixed_dictionaries(
                    {"severity": st.sampled_from(severities), "op": enum_values(Op), "value": values},
                    optional={"for": durations},
                ),
                min_size=1,
                max_size=8,
            )
        ),
    }
    if draw(st.booleans()):
        monitor["match"] = draw(st.dictionaries(label_keys, templates(params), min_size=1, max_size=3))
    if draw(st.booleans()):
        monitor["interval"] = draw(positive_durations)
    if draw(st.booleans()):
        monitor["noData"] = draw(enum_values(NoDataPolicy))
    if draw(st.booleans()):
        monitor["baseline"] = {"offset": draw(positive_durations), "window": draw(positive_durations)}
    if draw(st.booleans()):
        monitor["description"] = draw(free_text)
    return monitor


@st.composite
def subjects(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["User", "Group", "ServiceAccount"]))
    subject = {"kind": kind, "name": draw(free_text.filter(bool))}
    if kind == "ServiceAccount":
        subject["namespace"] = draw(names)
    return subject


@st.composite
def responders(draw: st.DrawFn, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "subjects": draw(st.lists(subjects(), min_size=1, max_size=4)),
        "may": draw(st.lists(enum_values(Verb), min_size=1, max_size=5, unique=True)),
    }


@st.composite
def notice_templates(draw: st.DrawFn) -> dict[str, Any]:
    template: dict[str, Any] = {}
    if draw(st.booleans()):
        template["body"] = draw(free_text)
    else:
        template["configMapRef"] = {"name": draw(names), "key": draw(free_text.filter(bool))}
    if draw(st.booleans()):
        template["subject"] = draw(free_text)
    return template


@st.composite
def matrices(draw: st.DrawFn, params: list[str] | None) -> dict[str, Any]:
    """monitors, severities, responders and templates: what a policy and a system share."""
    severities = draw(st.dictionaries(enum_values(Severity), severity_policies(), min_size=1, max_size=4))
    monitor_names = draw(st.lists(names, unique=True, max_size=4))
    responder_names = draw(st.lists(names, unique=True, max_size=3))
    spec: dict[str, Any] = {
        "severities": severities,
        "monitors": [draw(monitors(name, sorted(severities), params)) for name in monitor_names],
        "responders": [draw(responders(name)) for name in responder_names],
    }
    if draw(st.booleans()):
        spec["templates"] = draw(st.dictionaries(enum_values(Audience), notice_templates(), max_size=3))
    return spec


@st.composite
def system_specs(draw: st.DrawFn) -> dict[str, Any]:
    params = draw(st.dictionaries(label_keys, free_text, max_size=3))
    spec = draw(matrices(sorted(params)))
    kind, api_version = draw(
        st.sampled_from([("Deployment", "apps/v1"), ("StatefulSet", "apps/v1"), ("Rollout", "argoproj.io/v1alpha1")])
    )
    spec["target"] = {"apiVersion": api_version, "kind": kind, "name": draw(names)}
    spec["params"] = params
    uses_reroute = any("reroute" in policy.get("actions", []) for policy in spec["severities"].values())
    if uses_reroute or draw(st.booleans()):
        spec["fallback"] = {
            "service": draw(names),
            "selector": draw(st.dictionaries(label_keys, free_text, min_size=1, max_size=2)),
        }
    if draw(st.booleans()):
        spec["mode"] = draw(enum_values(Mode))
    if draw(st.booleans()):
        spec["policyRef"] = {"name": draw(names)}
    if draw(st.booleans()):
        spec["onProviderError"] = draw(enum_values(ProviderErrorPolicy))
        spec["failClosedAfter"] = draw(durations)
    if draw(st.booleans()):
        spec["regulatory"] = {
            "euAiAct": {"highRisk": draw(st.booleans()), "memberStates": draw(st.lists(st.sampled_from(["DE", "FR"])))},
            "gdpr": {"personalData": draw(st.booleans())},
        }
    for field in ("description", "owner"):
        if draw(st.booleans()):
            spec[field] = draw(free_text)
    return spec


def accepted(model: type[pydantic.BaseModel], document: dict[str, Any]) -> dict[str, Any]:
    """The model's manifest form of ``document``; skip the example if the model rejects it."""
    try:
        instance = model.model_validate(document)
    except pydantic.ValidationError:
        assume(False)
        raise
    dumped: dict[str, Any] = instance.model_dump(by_alias=True, exclude_none=True, mode="json")
    assert model.model_validate(dumped) == instance
    return dumped


@SETTINGS
@given(system_specs())
def test_the_crd_accepts_every_aisystem_the_model_accepts(spec: dict[str, Any]) -> None:
    document = {"apiVersion": "airlock.dev/v1alpha1", "kind": "AISystem", "metadata": {"name": "s"}, "spec": spec}
    dumped = accepted(AISystem, document)
    assert schema_check.validate(schema_check.crd_for(CRDS, "AISystem"), dumped) == []


@SETTINGS
@given(matrices(None), st.one_of(st.none(), st.text(max_size=30)))
def test_the_crd_accepts_every_policy_the_model_accepts(spec: dict[str, Any], description: str | None) -> None:
    if description is not None:
        spec["description"] = description
    document = {
        "apiVersion": "airlock.dev/v1alpha1",
        "kind": "ContainmentPolicy",
        "metadata": {"name": "p"},
        "spec": spec,
    }
    dumped = accepted(ContainmentPolicy, document)
    assert schema_check.validate(schema_check.crd_for(CRDS, "ContainmentPolicy"), dumped) == []


incident_specs = st.fixed_dictionaries(
    {
        "system": names,
        "failureMode": enum_values(FailureMode),
        "severity": enum_values(Severity),
        "trigger": st.fixed_dictionaries(
            {"type": enum_values(TriggerType)},
            optional={"monitor": names, "value": values, "condition": free_text, "by": free_text, "reason": free_text},
        ),
    },
    optional={"drill": st.booleans(), "dryRun": st.booleans(), "harm": unique_subset(HarmCategory, 4)},
)


@SETTINGS
@given(incident_specs)
def test_the_crd_accepts_every_incident_the_model_accepts(spec: dict[str, Any]) -> None:
    document = {"apiVersion": "airlock.dev/v1alpha1", "kind": "AIIncident", "metadata": {"name": "i"}, "spec": spec}
    dumped = accepted(AIIncident, document)
    assert schema_check.validate(schema_check.crd_for(CRDS, "AIIncident"), dumped) == []
