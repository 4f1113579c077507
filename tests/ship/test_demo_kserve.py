"""`airlock demo --stack kserve`: the same story on a KServe InferenceService behind a Gateway API HTTPRoute."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_the_kserve_demo_reroutes_stops_and_restores(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "airlock", "demo", "--stack", "kserve", "--keep", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    for step in (
        "phase Healthy",
        "HTTPRoute chatbot rerouted (llama-pool=0, chatbot-fallback=1 | llama-pool=0, chatbot-fallback=1)",
        'stopped with KServe\'s own serving.kserve.io/stop: "true" (phase ShutDown)',
        "released: HTTPRoute weights restored exactly (llama-pool=100, chatbot-fallback=0 | llama-pool=(default), "
        "chatbot-fallback=0)",
        "incident Resolved",
        "DEMO OK (kserve)",
    ):
        assert step in out, f"missing step {step!r}:\n{out[-3000:]}"
