"""Bad manifests are rejected by the model *and* by the CRD, naming the field; shipped ones pass both."""

from __future__ import annotations

import copy
import re
from typing import Any

import pydantic
import pytest

from airlock.api import crd, errors
from airlock.api.aisystem import AISystem
from airlock.api.policy import ContainmentPolicy
from airlock.domain import plan
from airlock.domain.errors import SpecError
from airlock.sandbox._k8s_schema import ResourceSchema
from tests.api import manifests, schema_check

CRDS = crd.all_crds()
INVALID = manifests.invalid_cases()
SHIPPED = manifests.shipped_documents()


def model_errors(document: dict[str, Any]) -> list[str]:
    try:
        manifests.MODELS[document["kind"]].model_validate(document)
    except pydantic.ValidationError as exc:
        return errors.describe(exc)
    return []


def schema_errors(document: dict[str, Any]) -> list[str]:
    return schema_check.validate(schema_check.crd_for(CRDS, document["kind"]), document)


def sandbox_errors(document: dict[str, Any]) -> list[str]:
    """What the sandbox API server answers to ``kubectl apply`` (strict field validation) of the document."""
    crd_document = schema_check.crd_for(CRDS, document["kind"])
    schema = ResourceSchema(crd_document["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    obj = copy.deepcopy(document)
    unknown = [f'{path}: unknown field "{path}"' for path in schema.normalize(obj)]
    # The API server's CEL errors name map entries as spec.severities[SEV1], its schema errors as .SEV1.
    return unknown + [re.sub(r"\[([^\]0-9][^\]]*)\]", r".\1", str(problem)) for problem in schema.validate(obj)]


def test_the_invalid_corpus_is_big_enough() -> None:
    assert len(INVALID) >= 35
    kinds = {case.documents[-1]["kind"] for case in INVALID}
    assert kinds == {"AISystem", "ContainmentPolicy", "AIIncident"}


@pytest.mark.parametrize("case", [c for c in INVALID if c.only != "operator"], ids=lambda c: c.id)
def test_the_model_rejects_it_naming_the_field(case: manifests.Invalid) -> None:
    (document,) = case.documents
    found = model_errors(document)
    assert found, "the model accepted it"
    for expected in case.expect:
        assert any(expected in line for line in found), f"{expected!r} not in {found}"


@pytest.mark.parametrize("case", [c for c in INVALID if c.only is None], ids=lambda c: c.id)
def test_the_crd_rejects_it_naming_the_field(case: manifests.Invalid) -> None:
    (document,) = case.documents
    found = schema_errors(document)
    assert found, "the CRD schema accepted it"
    for expected in case.expect:
        assert any(expected in line for line in found), f"{expected!r} not in {found}"


@pytest.mark.parametrize("case", [c for c in INVALID if c.only is None], ids=lambda c: c.id)
def test_the_sandbox_api_server_rejects_it_naming_the_field(case: manifests.Invalid) -> None:
    (document,) = case.documents
    found = sandbox_errors(document)
    assert found, "the sandbox accepted it"
    for expected in case.expect:
        assert any(expected in line for line in found), f"{expected!r} not in {found}"


@pytest.mark.parametrize("case", [c for c in INVALID if c.only == "model"], ids=lambda c: c.id)
def test_model_only_cases_really_pass_the_crd(case: manifests.Invalid) -> None:
    # If the schema learns to catch one of these, drop its `only: model`.
    (document,) = case.documents
    assert schema_errors(document) == []


@pytest.mark.parametrize("case", [c for c in INVALID if c.only == "operator"], ids=lambda c: c.id)
def test_operator_only_cases_fail_at_merge(case: manifests.Invalid) -> None:
    policy_doc, system_doc = case.documents
    for document in case.documents:
        assert model_errors(document) == []
        assert schema_errors(document) == []
    policy = ContainmentPolicy.model_validate(policy_doc)
    system = AISystem.model_validate(system_doc)
    with pytest.raises(SpecError) as info:
        plan.build_plan(system.metadata.namespace or "default", system.metadata.name or "", system.spec, policy.spec)
    for expected in case.expect:
        assert expected in str(info.value)


def test_shipped_manifests_exist() -> None:
    kinds = {document["kind"] for _, document in SHIPPED}
    assert {"AISystem", "ContainmentPolicy"} <= kinds
    names = {document["metadata"]["name"] for _, document in SHIPPED if document["kind"] == "ContainmentPolicy"}
    assert {"llm-chatbot", "fraud-model", "content-moderation"} <= names


@pytest.mark.parametrize(("where", "document"), SHIPPED, ids=[where for where, _ in SHIPPED])
def test_shipped_manifests_pass_model_and_crd(where: str, document: dict[str, Any]) -> None:
    assert model_errors(document) == []
    assert schema_errors(document) == []
    assert sandbox_errors(document) == []


def test_shipped_systems_merge_with_their_policies() -> None:
    policies = {
        document["metadata"]["name"]: ContainmentPolicy.model_validate(document).spec
        for _, document in SHIPPED
        if document["kind"] == "ContainmentPolicy"
    }
    systems = [AISystem.model_validate(document) for _, document in SHIPPED if document["kind"] == "AISystem"]
    assert systems
    for system in systems:
        ref = system.spec.policy_ref
        policy = policies[ref.name] if ref is not None else None
        built = plan.build_plan(system.metadata.namespace or "", system.metadata.name or "", system.spec, policy)
        assert built.monitors, system.metadata.name


def test_non_airlock_documents_are_skipped_by_kind() -> None:
    assert not manifests.is_ours({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy"})
    assert not manifests.is_ours({"apiVersion": "airlock.dev/v1alpha1", "kind": "Unknown"})
    assert manifests.is_ours({"apiVersion": "airlock.dev/v1alpha1", "kind": "ContainmentPolicy"})
