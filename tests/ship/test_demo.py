"""`make demo` is one of the README's two commands: it must tell the whole story and exit 0."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_the_demo_tells_the_whole_story(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "airlock", "demo", "--keep", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    for step in (
        "phase Healthy",
        "airlock guard in front of chatbot-v7",
        "SEV1 privacy — Service chatbot rerouted to the fallback, chatbot-v7 scaled to zero",
        "leaked values; from the first leaking answer: (a) the guard served the fallback after",
        "airlock guard serves chatbot-v7 again",
        "internal notice delivered to the on-call webhook (HMAC-signed)",
        "drafted, not sent",
        "reporting clock gdpr-art33: due",
        "reference DPA-2026-0042 recorded",
        "restored exactly; incident Resolved",
        "post-mortem drafted",
        "incident Closed",
        "DEMO OK",
    ):
        assert step in out, f"missing step {step!r}:\n{out[-3000:]}"
