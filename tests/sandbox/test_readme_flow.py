"""The README's sandbox flow, as a new user types it: CRDs, policies and examples applied with kubectl."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_apply_crds_policies_examples_and_get_wide(kubectl) -> None:  # type: ignore[no-untyped-def]
    kubectl("apply", "-f", str(REPO / "crds"))
    kubectl("apply", "-f", str(REPO / "policies"), "-f", str(REPO / "examples"))
    out = kubectl("get", "ais", "-A", "-o", "wide").stdout
    header = out.splitlines()[0].split()
    assert header[:8] == ["NAMESPACE", "NAME", "PHASE", "SEVERITY", "INCIDENT", "TARGET", "MODE", "AGE"]
    for name in ("support-chatbot", "fraud-scorer", "content-moderator"):
        assert name in out
    categories = kubectl("get", "airlock", "-A").stdout
    assert "containmentpolicy.airlock.dev/llm-chatbot" in categories
    assert "aisystem.airlock.dev/support-chatbot" in categories
