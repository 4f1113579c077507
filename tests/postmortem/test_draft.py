"""The post-mortem draft of every failure mode (golden files), and what it must always say.

``draft`` is pure, so these tests need no cluster.  The golden files under
``tests/postmortem/golden/`` were read as the people running the post-mortem
read them; regenerate them deliberately with ``AIRLOCK_UPDATE_GOLDEN=1 pytest
tests/postmortem`` and read the diff before committing it.
"""

from __future__ import annotations

import datetime
import os
import re
from pathlib import Path

import pytest

from airlock.api.common import FailureMode
from airlock.api.matrix import Op
from airlock.domain import postmortem
from tests.postmortem.builders import CASES, T0, Case, drift, fairness, orphan, privacy

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("AIRLOCK_UPDATE_GOLDEN") == "1"


def render(case: Case) -> str:
    return postmortem.draft(case.incident, case.system, case.evidence)


RENDERED = {f"{name}.md": render(build()) for name, build in CASES.items()}


@pytest.mark.parametrize("golden", sorted(RENDERED))
def test_matches_golden(golden: str) -> None:
    path = GOLDEN / golden
    if UPDATE:
        path.parent.mkdir(exist_ok=True)
        path.write_text(RENDERED[golden], encoding="utf-8")
    assert path.exists(), f"{path} missing: run with AIRLOCK_UPDATE_GOLDEN=1 and read the result"
    assert RENDERED[golden] == path.read_text(encoding="utf-8"), (
        f"{golden} changed: if intended, regenerate with AIRLOCK_UPDATE_GOLDEN=1 and read the diff"
    )


def test_every_failure_mode_has_a_golden_case() -> None:
    assert {mode.value for mode in FailureMode} <= set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_deterministic_and_tidy(name: str) -> None:
    text = RENDERED[f"{name}.md"]
    assert render(CASES[name]()) == text
    assert text.endswith("\n")
    assert not text.endswith("\n\n")
    assert "\n\n\n" not in text
    assert not [line for line in text.splitlines() if line != line.rstrip()], "trailing whitespace"
    # Every fence closes.
    assert sum(1 for line in text.splitlines() if line.startswith("```")) % 2 == 0
    # Times are RFC 3339 in UTC, never a local zone or Python's +00:00.
    assert "+00:00" not in text
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z", text)


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_fresh_draft_asks_every_question(name: str) -> None:
    text = RENDERED[f"{name}.md"]
    for question in postmortem.QUESTIONS:
        assert f"\n### {question}\n" in text
    assert postmortem.unanswered(text) == list(postmortem.QUESTIONS)
    assert "| Action | Owner | Due |" in text


def test_privacy_draft_holds_the_record() -> None:
    text = RENDERED["privacy.md"]
    # Header.
    assert "| Incident | ml-prod/support-chatbot-20261126-133001 |" in text
    assert "| Failure mode | privacy (privacy: personal data exposed in outputs) |" in text
    assert "| Severity | SEV1 |" in text
    assert "| Phase | Resolved |" in text
    assert "| Drill | no |" in text
    assert "| Dry run | no |" in text
    assert "fundamental rights" in text
    # Key times: detect 1 s after the breach sample, contain 2.1 s, acknowledge 3 min 59 s, resolve 5 h 16 min.
    assert "| Detected | 2026-11-26T13:30:01Z | time to detect: 1 s (from the breach sample) |" in text
    assert "time to contain: 2.1 s (from the breach sample)" in text
    assert "time to acknowledge: 3 min 59 s (from detection)" in text
    assert "time to resolve: 5 h 16 min (from detection)" in text
    # Timeline, actions and who authorized them.
    assert "| 2026-11-26T13:30:02.100Z | Contained | airlock | reroute, scaleToZero on Deployment chatbot-v7 |" in text
    assert "| applied | airlock (pre-authorized by the plan) |" in text
    # Notices and regulatory deadlines.
    assert "| regulator | opened | sent | 1 | email | 2026-11-27T13:30:00Z |  |" in text
    assert (
        "GDPR Art. 33 personal-data breach notification (`gdpr-art33`) | 2026-11-29T13:30:01Z | submitted | DPA-2026-1142 |"
        in text
    )
    assert "| eu-ai-act-art73" not in text
    assert "(`eu-ai-act-art73`) | 2026-12-11T13:30:01Z | pending |" in text
    # Failure-mode prompts: data categories, GDPR.
    assert "which categories of personal data appeared in outputs" in text
    assert "This system declares personal data: GDPR applies" in text


def test_evidence_chart_and_the_first_breaching_sample() -> None:
    text = RENDERED["privacy.md"]
    section = text[text.index("## Monitor evidence") : text.index("## Notices")]
    assert "### Monitor pii-leak" in section
    assert "Customer PII detected in answers by the output scanner." in section
    assert "- Condition: `> 0.5`" in section
    assert "- Samples: 40 from 2026-11-26T13:25:00Z to 2026-11-26T13:34:45Z; min 0, max 0.8, last 0" in section
    # Sample 20 (13:30:00) is the first past 0.5; detection came 1 s later.
    assert "- First sample past the threshold: 2026-11-26T13:30:00Z (1 s before detection)" in section
    block = section[section.index("```text\n") + 8 : section.index("\n```\n", section.index("```text"))]
    assert block == postmortem.chart(CASES["privacy"]().evidence[0].points, threshold=0.5)


def test_escalated_actions_name_the_approver() -> None:
    text = RENDERED["drift.md"]
    assert "| applied | airlock; approved by carol@example.com |" in text
    assert "| Closed | 2026-12-05T13:30:00Z |  |" in text
    assert "| Post-mortem | complete: https://wiki.example.com/pm/chatbot-drift-2026-11 |" in text
    # The drift prompts name the baseline window and the segments.
    assert "compares with a 1d baseline window ending 7d earlier" in text
    assert "which segments (locale, channel" in text


def test_manual_containment_names_the_responder_and_failures_are_kept() -> None:
    adversarial = RENDERED["adversarial.md"]
    assert (
        "| isolate | the model's pods cut off from the network, kept for forensics | applied | dana@example.com |"
        in adversarial
    )
    assert "manual shutdown \\| exfiltration via tools" in adversarial  # a pipe in a message stays in its cell
    assert (
        "| internal | severity-SEV1 | failed | 5 | pagerduty |  | HTTP 503 from events.pagerduty.com |" in adversarial
    )
    assert "prompt-injection or jailbreak pattern" in adversarial
    safety = RENDERED["safety.md"]
    assert "| failed: rollouts.argoproj.io is forbidden |" in safety
    assert "| Acknowledged | never |  |" in safety  # resolved without anyone acknowledging


def test_dry_run_and_drill_are_flagged() -> None:
    dry = RENDERED["fairness.md"]
    assert "> **DRY RUN**" in dry
    assert "| Dry run | yes |" in dry
    assert "No containment action was taken (none is, in a dry run)." in dry
    assert "Which groups were treated worse" in dry
    drill = RENDERED["drill.md"]
    assert "> **DRILL**" in drill
    assert "| Drill | yes |" in drill
    assert "## Drill findings" in drill
    assert "- Gap: no DPO among the responders" in drill
    assert "- Time to acknowledge: 7 min" in drill
    assert "No monitor evidence attached" in drill


def test_a_deleted_system_and_a_manual_trigger() -> None:
    text = RENDERED["orphan.md"]
    assert "The AISystem sales-bot no longer exists" in text
    assert "| Trigger | manual: answers recommend a competitor's product |" in text
    assert "| Triggered by | alice@example.com |" in text
    assert "| Acknowledged | not yet |  |" in text  # still open: not yet, rather than never


def test_cost_draft_asks_about_spend() -> None:
    text = RENDERED["cost.md"]
    assert "What did it cost in total, against the budget?" in text
    assert "Was there a budget alert, rate limit or per-tenant quota" in text
    assert "| Contained | 2026-11-26T13:45:01Z | time to contain: 25 min 1 s (from the breach sample) |" in text


def test_evidence_without_samples_or_condition() -> None:
    case = orphan()
    empty = postmortem.Evidence("error-burst", "up == 0", None, None, [])
    text = postmortem.draft(case.incident, case.system, [empty])
    assert "- Samples: none in the window (the query returned no data)" in text
    assert "no data" in text
    assert "- Condition" not in text
    assert "threshold" not in text.split("## Monitor evidence")[1].split("##")[0]


def test_a_query_with_backticks_stays_inline_code() -> None:
    case = fairness()
    odd = postmortem.Evidence("approval-gap", "label_replace(x, `a`, 'b', '', '')", "> 0.1", 0.1, [(T0, 0.2)])
    text = postmortem.draft(case.incident, case.system, [odd])
    assert "- Query: `` label_replace(x, `a`, 'b', '', '') ``" not in text
    assert "- Query: ``label_replace(x, `a`, 'b', '', '')``" in text
    assert "- First sample past the threshold: 2026-11-26T13:30:00Z (0 s before detection)" in text


def test_breach_after_detection_and_no_breach() -> None:
    case = privacy()
    late = [(T0 + datetime.timedelta(minutes=5), 0.9)]
    text = postmortem.draft(case.incident, case.system, [postmortem.Evidence("pii-leak", "q", "> 0.5", 0.5, late)])
    assert "(4 min 59 s after detection)" in text
    calm = [(T0, 0.1)]
    text = postmortem.draft(case.incident, case.system, [postmortem.Evidence("pii-leak", "q", "> 0.5", 0.5, calm)])
    assert "- No sample in the window is past the threshold" in text


def test_config_map_convention() -> None:
    assert postmortem.config_map_name("support-chatbot-20261126-133012") == "support-chatbot-20261126-133012-postmortem"
    assert postmortem.CONFIG_MAP_KEY == "postmortem.md"
    long = postmortem.config_map_name("a" * 253)
    assert len(long) == 253
    assert long.endswith("-postmortem")


def test_parse_condition() -> None:
    assert postmortem.parse_condition("> 0.5") == (Op.GT, 0.5)
    assert postmortem.parse_condition("<= -1e3") == (Op.LE, -1000.0)
    assert postmortem.parse_condition("between 1 and 2") is None
    assert postmortem.parse_condition(None) is None


def test_drift_case_crosses_its_threshold() -> None:
    # The golden's chart must show the breach it is about.
    evidence = drift().evidence[0]
    assert min(v for _, v in evidence.points) < -0.15
