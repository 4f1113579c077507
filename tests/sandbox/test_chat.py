"""The synthetic model server's OpenAI-compatible chat: answers follow the injected failures."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from airlock.sandbox import chat
from airlock.sandbox.model import ModelServer

ASK = {"model": "chatbot", "messages": [{"role": "user", "content": "Where is my order?"}]}


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer(apps=[("ml-prod", "chatbot")]) as running:
        running.add_app("ml-prod", "chatbot-fallback", fallback=True)
        yield running


def post(
    server: ModelServer, body: dict[str, Any], app: str = "chatbot", path: str = "/v1/chat/completions"
) -> tuple[int, str]:
    request = urllib.request.Request(
        server.chat_url("ml-prod", app) + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def text_of(raw: str) -> str:
    return json.loads(raw)["choices"][0]["message"]["content"]  # type: ignore[no-any-return]


def test_healthy_answers_quote_nobody_else(server: ModelServer) -> None:
    for _ in range(5):
        status, raw = post(server, ASK)
        assert status == 200
        assert not any(value in raw for value in chat.LEAKED_VALUES)
        assert json.loads(raw)["usage"]["completion_tokens"] > 0


def test_privacy_makes_every_answer_leak_other_customers_data(server: ModelServer) -> None:
    server.inject(("ml-prod", "chatbot"), "privacy")
    texts = [text_of(post(server, ASK)[1]) for _ in range(3)]
    for customer, text in zip(chat.OTHER_CUSTOMERS, texts, strict=True):
        assert customer["email"] in text
        assert customer["iban"] in text
    server.heal(("ml-prod", "chatbot"))
    assert not any(value in text_of(post(server, ASK)[1]) for value in chat.LEAKED_VALUES)


def test_a_fallback_app_answers_safely_whatever_is_injected(server: ModelServer) -> None:
    server.inject(("ml-prod", "chatbot-fallback"), "privacy")
    _status, raw = post(server, ASK, app="chatbot-fallback")
    assert text_of(raw) == chat.FALLBACK_ANSWER
    assert json.loads(raw)["model"] == "chatbot-fallback"


def test_sudden_fails_that_share_of_requests(server: ModelServer) -> None:
    server.inject(("ml-prod", "chatbot"), "sudden", fraction=0.5)
    statuses = [post(server, ASK)[0] for _ in range(10)]
    assert statuses.count(500) == 5


def test_drift_turns_a_share_of_answers_into_refusals(server: ModelServer) -> None:
    server.inject(("ml-prod", "chatbot"), "drift", per_minute=60.0, floor=0.45)  # at the floor within a second
    time.sleep(1.0)
    texts = [text_of(post(server, ASK)[1]) for _ in range(10)]
    assert texts.count(chat.REFUSAL) == 5


def test_streams_split_the_same_answer_into_small_deltas_with_usage_on_request(server: ModelServer) -> None:
    server.inject(("ml-prod", "chatbot"), "privacy")
    status, raw = post(server, {**ASK, "stream": True, "stream_options": {"include_usage": True}})
    assert status == 200
    events = [json.loads(line[6:]) for line in raw.splitlines() if line.startswith("data: {")]
    deltas = [c["delta"].get("content", "") for e in events for c in e["choices"]]
    assert "maria.schmidt@example.de" in "".join(deltas)
    assert all(len(d) <= 8 for d in deltas)
    assert events[-1]["choices"] == []
    assert events[-1]["usage"]["completion_tokens"] > 0
    assert raw.rstrip().endswith("data: [DONE]")


def test_legacy_completions_and_unknown_apps(server: ModelServer) -> None:
    status, raw = post(server, {"model": "chatbot", "prompt": "hi"}, path="/v1/completions")
    assert status == 200
    assert json.loads(raw)["choices"][0]["text"]
    status, raw = post(server, ASK, app="nobody")
    assert status == 404
    assert "model_not_found" in raw
