"""``unanswered``: a fresh draft asks everything, a filled one nothing, a half-done one the rest."""

from __future__ import annotations

from airlock.domain import postmortem
from airlock.domain.postmortem import PLACEHOLDER, QUESTIONS
from tests.postmortem.builders import privacy

ANSWERS = {
    postmortem.DATA: "A retrieval index rebuilt on 2026-11-25 included the raw CRM export (names, e-mail addresses).",
    postmortem.MONITORING_GAP: "No scanner ran on retrieved passages; only on final answers, after the fact.",
    postmortem.INCENTIVE: "The index rebuild was a launch blocker; the data review was skipped to make the date.",
    postmortem.NEAR_MISSES: "SEV3 on 2026-11-12: one e-mail address in an answer, closed as a one-off.",
    postmortem.VERSIONS: "chatbot-v7 (gpt-x-2026-10), system prompt rev 41, retrieval index 2026-11-25.",
    postmortem.AFFECTED: "312 customers in DE and FR whose e-mail appeared in other customers' answers.",
}
ROW = "| Drop raw CRM fields from the retrieval export | data-platform | 2026-12-15 |"


def fresh() -> str:
    case = privacy()
    return postmortem.draft(case.incident, case.system, case.evidence)


def answer(text: str, question: str, answer: str) -> str:
    """Replace the placeholder under ``question``, as a person editing the draft would."""
    start = text.index(f"### {question}\n")
    at = text.index(PLACEHOLDER, start)
    return text[:at] + answer + text[at + len(PLACEHOLDER) :]


def fill_actions(text: str, row: str = ROW) -> str:
    return text.replace(f"| {PLACEHOLDER} |  |  |", row)


def filled() -> str:
    text = fresh()
    for question, reply in ANSWERS.items():
        text = answer(text, question, reply)
    return fill_actions(text)


def test_fresh_draft_asks_every_question() -> None:
    assert postmortem.unanswered(fresh()) == list(QUESTIONS)


def test_filled_draft_asks_nothing() -> None:
    text = filled()
    assert PLACEHOLDER not in text.split("## AI-specific questions")[1]
    assert postmortem.unanswered(text) == []


def test_partially_filled() -> None:
    text = answer(fresh(), postmortem.DATA, ANSWERS[postmortem.DATA])
    text = answer(text, postmortem.INCENTIVE, ANSWERS[postmortem.INCENTIVE])
    assert postmortem.unanswered(text) == [
        postmortem.MONITORING_GAP,
        postmortem.NEAR_MISSES,
        postmortem.VERSIONS,
        postmortem.AFFECTED,
        postmortem.CORRECTIVE,
    ]


def test_an_emptied_placeholder_is_not_an_answer() -> None:
    text = answer(fresh(), postmortem.DATA, "   ")
    assert postmortem.DATA in postmortem.unanswered(text)


def test_prompts_do_not_count_as_answers() -> None:
    text = answer(fresh(), postmortem.DATA, "> just another prompt line")
    assert postmortem.DATA in postmortem.unanswered(text)


def test_text_next_to_a_kept_placeholder_counts() -> None:
    text = fresh().replace(f"### {postmortem.VERSIONS}\n", f"### {postmortem.VERSIONS}\n\nModel v7, prompt rev 41.\n")
    assert postmortem.VERSIONS not in postmortem.unanswered(text)


def test_corrective_actions_need_a_row() -> None:
    text = filled().replace(ROW, f"| {PLACEHOLDER} |  |  |")
    assert postmortem.unanswered(text) == [postmortem.CORRECTIVE]
    blank_row = filled().replace(ROW, "|  |  |  |")
    assert postmortem.unanswered(blank_row) == [postmortem.CORRECTIVE]
    owner_only = filled().replace(ROW, f"| {PLACEHOLDER} | data-platform |  |")
    assert postmortem.unanswered(owner_only) == []
    prose = filled().replace(ROW, "No action: the feature was removed for good.")
    assert postmortem.unanswered(prose) == []


def test_answers_with_sub_headings_code_and_lists() -> None:
    rich = "#### Timeline of the data\n\n```promql\n# not a heading\nsum(rate(x[5m]))\n```\n\n- first\n- second"
    text = answer(fresh(), postmortem.DATA, rich)
    assert postmortem.DATA not in postmortem.unanswered(text)
    # A code block that is only a fence pair, or only comments outside of fences, is still no answer.
    empty_fence = answer(fresh(), postmortem.DATA, "```\n```")
    assert postmortem.DATA in postmortem.unanswered(empty_fence)


def test_a_deleted_question_is_unanswered_and_an_answer_elsewhere_does_not_leak() -> None:
    text = filled()
    start = text.index(f"### {postmortem.NEAR_MISSES}\n")
    end = text.index(f"### {postmortem.VERSIONS}\n")
    assert postmortem.unanswered(text[:start] + text[end:]) == [postmortem.NEAR_MISSES]
    # Text under the next question does not answer the one before it.
    only_next = answer(fresh(), postmortem.MONITORING_GAP, "A gap.")
    assert postmortem.DATA in postmortem.unanswered(only_next)


def test_plain_text_without_any_structure() -> None:
    assert postmortem.unanswered("") == list(QUESTIONS)
    assert postmortem.unanswered("just notes, no headings") == list(QUESTIONS)
