"""The guard's configuration: closed enums, refused at start with the field named; the stricter mode wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from airlock.api import guard as guard_api
from airlock.api.aisystem import AISystemSpec
from airlock.api.guard import Detector, Mode
from airlock.cli import main as cli
from airlock.domain import detectors


def test_the_detector_and_mode_names_are_the_contracts() -> None:
    assert {d.value for d in Detector} == {"pii", "cross-customer", "prompt-injection", "canary", "refusal"}
    assert {m.value for m in Mode} == {"observe", "redact", "block"}
    assert {d.value for d in detectors.Detector} == {d.value for d in Detector}
    assert {m.value for m in detectors.Mode} == {m.value for m in Mode}


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("detectors: {piii: redact}", "guard.yaml: detectors.piii: unknown detector 'piii'; expected one of pii,"),
        (
            "detectors: {pii: redacted}",
            "guard.yaml: detectors.pii: unknown mode 'redacted'; expected one of observe, redact, block",
        ),
        ("detector: {pii: block}", "guard.yaml: detector: unknown field"),
        ("- pii", "guard.yaml: must be a mapping"),
        ("detectors: [pii]", "guard.yaml: detectors:"),
        ("detectors: {pii: block", "guard.yaml: not YAML"),
    ],
)
def test_a_bad_config_file_is_refused_at_start_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, says: str
) -> None:
    path = tmp_path / "guard.yaml"
    path.write_text(text)
    args = ["guard", "--upstream", "http://model:8000", "--system", "ml-prod/chatbot", "--config", str(path)]
    assert cli.main(args) == 2
    assert says.replace("guard.yaml", str(path)) in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--system", "chatbot"], "--system: expected NAMESPACE/NAME"),
        (["--system", "a/b", "--listen", "8080"], "--listen: expected HOST:PORT"),
        (["--system", "a/b", "--fallback-upstream", "fallback:8000"], "--fallback-upstream: expected an http://"),
        (["--system", "a/b", "--stale-after", "soon"], "invalid duration 'soon'"),
        (["--system", "a/b", "--stream-window", "10"], "--stream-window must be at least 64"),
        (["--system", "a/b", "--max-body-bytes", "0"], "--max-body-bytes and --max-answer-bytes must be positive"),
    ],
)
def test_bad_flags_are_refused(capsys: pytest.CaptureFixture[str], flags: list[str], says: str) -> None:
    assert cli.main(["guard", "--upstream", "http://model:8000", *flags]) == 2
    assert says in capsys.readouterr().err


def test_the_stricter_mode_wins_whichever_place_sets_it() -> None:
    file = guard_api.parse({"detectors": {"pii": "redact", "canary": "block"}})
    spec = guard_api.parse({"detectors": {"pii": "block", "canary": "observe", "refusal": "redact"}})
    assert guard_api.stricter(file, spec) == {
        Detector.PII: Mode.BLOCK,
        Detector.CROSS_CUSTOMER: Mode.OBSERVE,
        Detector.PROMPT_INJECTION: Mode.OBSERVE,
        Detector.CANARY: Mode.BLOCK,
        Detector.REFUSAL: Mode.REDACT,
    }
    assert guard_api.stricter(None, None) == dict.fromkeys(Detector, Mode.OBSERVE)


def test_spec_guard_is_part_of_the_aisystem() -> None:
    spec = AISystemSpec.model_validate(
        {
            "target": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "chatbot-v7"},
            "guard": {"detectors": {"cross-customer": "block"}},
        }
    )
    assert spec.guard is not None
    assert spec.guard.detectors == {Detector.CROSS_CUSTOMER: Mode.BLOCK}
    with pytest.raises(ValueError, match=r"guard\.detectors"):
        AISystemSpec.model_validate(
            {
                "target": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "chatbot-v7"},
                "guard": {"detectors": {"cross-customer": "shout"}},
            }
        )
