"""A drill of a system that reroutes through an HTTPRoute: a route reroute cannot use is a gap, named."""

from __future__ import annotations

from airlock.api.aisystem import AISystem
from airlock.api.common import Action
from airlock.api.policy import ContainmentPolicy
from airlock.domain import drills
from airlock.domain.drills import Scenario
from airlock.domain.plan import Plan, build_plan
from tests.drills.plans import manifest


def kserve_plan() -> Plan:
    system = AISystem.model_validate(manifest("examples/kserve-chatbot.yaml"))
    policy = ContainmentPolicy.model_validate(manifest("policies/vllm-runtime.yaml"))
    return build_plan(system.metadata.namespace or "", system.metadata.name or "", system.spec, policy.spec)


def test_a_route_without_the_fallback_is_a_gap_naming_why() -> None:
    why = "fallback InferencePool llm-fallback is not a backend of HTTPRoute llm (its backends: none)"
    env = drills.Environment(target_exists=True, fallback_service_exists=False, fallback_problem=why)
    found = drills.rehearse(kserve_plan(), Scenario.MANUAL, env)
    assert found.actions == [Action.REROUTE, Action.SCALE_TO_ZERO]
    assert [gap for gap in found.gaps if "reroute" in gap] == [
        f"reroute through HTTPRoute llm -> InferencePool llm-fallback would fail: {why}; fix the route or spec.fallback"
    ]


def test_a_usable_route_is_no_gap() -> None:
    found = drills.rehearse(kserve_plan(), Scenario.MANUAL, drills.Environment(True, True))
    assert [gap for gap in found.gaps if "reroute" in gap or "fallback" in gap] == []  # (no channel: another gap)
