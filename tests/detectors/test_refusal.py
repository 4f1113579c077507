"""Refusal: whether an answer declines, in several phrasings and languages; at most one finding."""

from __future__ import annotations

import pytest

from airlock.domain.detectors import Detector, refusal


@pytest.mark.parametrize(
    "answer",
    [
        "I'm sorry, but I can't help with that.",
        "I can’t share other customers’ information.",
        "I cannot provide details about another account.",
        "Unfortunately, I am unable to assist with this request.",
        "I'm not able to help with that, but our team can.",
        "As an AI, I cannot access personal records.",
        "I must decline to answer that.",
        "That's not something I can help with.",
        "Es tut mir leid, aber ich kann Ihnen dabei nicht helfen.",
        "Je suis désolé, mais je ne peux pas vous aider avec cela.",
        "Lo siento, pero no puedo ayudarte con eso.",
        "Mi dispiace, ma non posso aiutarti con questa richiesta.",
        "Het spijt me, maar ik kan je daar niet mee helpen.",
        "Desculpe, mas não posso ajudar com isso.",
    ],
)
def test_refusals(answer: str) -> None:
    (finding,) = refusal.find(answer)
    assert (finding.detector, finding.kind) == (Detector.REFUSAL, "refusal")
    assert 0 <= finding.start < finding.end <= len(answer)


@pytest.mark.parametrize(
    "answer",
    [
        "Sure! Your order ships tomorrow.",
        "I can't wait for you to try the new version!",
        "I can't help but notice your order is late, so I've upgraded shipping for free.",
        "Sorry for the delay — your refund was issued today.",
        "Ich kann Ihnen gerne helfen: die Bestellung ist unterwegs.",
        "Je peux vous aider : votre colis arrive demain.",
    ],
)
def test_answers_that_are_not_refusals(answer: str) -> None:
    assert refusal.find(answer) == []


def test_only_the_opening_counts_and_one_finding_at_most() -> None:
    helpful = "Here is how to reset your router. " * 12 + "I can't help with third-party routers, though."
    assert refusal.find(helpful) == []
    twice = "I can't help with that. I cannot provide it. I'm unable to assist."
    assert len(refusal.find(twice)) == 1
