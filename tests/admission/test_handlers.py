"""Where the webhook handlers find the responders in force: the engine's caches first, the API server otherwise."""

from __future__ import annotations

import types
from collections.abc import AsyncIterator

import kopf
import pytest

from airlock.adapters import kube
from airlock.adapters.kubeconfig import ClusterConfig
from airlock.api.aisystem import AISystemSpec
from airlock.api.matrix import Responder
from airlock.api.policy import ContainmentPolicySpec
from airlock.domain import plan
from airlock.domain.errors import SpecError
from airlock.handlers import admission
from airlock.sandbox.cluster import ClusterThread
from airlock.sandbox.world import Api, load_crds
from tests.admission import cases


def names(responders: list[Responder]) -> list[str]:
    return [r.name for r in responders]


@pytest.fixture
async def client(sandbox: ClusterThread) -> AsyncIterator[kube.KubeClient]:
    api = Api(sandbox.url)
    load_crds(api)
    api.create(cases.policy(cases.POLICIES["mallorys"]))  # named llm-chatbot, but other responders than the cache's
    api.create(cases.system(policy="llm-chatbot", name="fraud"))
    async with kube.KubeClient(ClusterConfig(server=sandbox.url)) as kube_client:
        yield kube_client


def engine(**policies: ContainmentPolicySpec | SpecError) -> types.SimpleNamespace:
    return types.SimpleNamespace(policies=dict(policies), systems={})


async def test_a_cached_policy_needs_no_request() -> None:
    spec = ContainmentPolicySpec.model_validate({"responders": cases.POLICIES["llm-chatbot"]})
    memo = kopf.Memo(engine=engine(**{"llm-chatbot": spec}))  # no client: a request would fail
    assert names(await admission.policy_responders(memo, "llm-chatbot")) == ["security", "ml-oncall", "platform"]


async def test_an_uncached_or_invalid_policy_is_read_from_the_api(client: kube.KubeClient) -> None:
    memo = kopf.Memo(engine=engine(**{"llm-chatbot": SpecError("spec", "bad")}), client=client)
    assert names(await admission.policy_responders(memo, "llm-chatbot")) == ["mine"]
    assert await admission.policy_responders(kopf.Memo(client=client), "missing") == []


async def test_an_incidents_system_comes_from_the_plan_or_the_api(client: kube.KubeClient) -> None:
    spec = AISystemSpec.model_validate(cases.system()["spec"])
    cached = types.SimpleNamespace(plan=plan.build_plan("ml-prod", "chatbot", spec, None), body=cases.system())
    memo = kopf.Memo(engine=types.SimpleNamespace(policies={}, systems={("ml-prod", "chatbot"): cached}), client=client)
    assert names(await admission.incident_responders(memo, "ml-prod", cases.incident())) == [
        "ml-oncall",
        "support",
        "leads",
    ]
    # Not cached: the AISystem and its policy are read from the API server.
    found = await admission.incident_responders(memo, "ml-prod", cases.incident(of="fraud"))
    assert names(found) == ["mine", "ml-oncall", "support", "leads"]
    assert await admission.incident_responders(memo, "ml-prod", cases.incident(of="gone")) == []


async def test_without_a_client_the_webhook_fails_closed() -> None:
    with pytest.raises(kopf.AdmissionError) as info:
        await admission.policy_responders(kopf.Memo(), "llm-chatbot")
    assert info.value.code == 503
