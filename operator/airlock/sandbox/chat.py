"""The synthetic model server's OpenAI-compatible chat: answers that misbehave on cue.

The sandbox's model server (:mod:`airlock.sandbox.model`) serves each app's
``/v1/chat/completions`` and ``/v1/completions`` under ``/apps/<namespace>/<app>/``, so
``airlock guard --upstream http://…/apps/ml-prod/chatbot`` sees one model.  What it
answers follows the app's injected failures, the same switches its synthetic metrics
follow:

* healthy: a plain support answer that quotes back only what the asker wrote;
* ``privacy``: every answer also quotes *other* customers' personal data (name, e-mail,
  phone, IBAN, card) — the seed incident the guard's ``cross-customer`` detector is for;
* ``drift``: a share of answers (1 − the app's helpful ratio) are refusals;
* ``sudden``: that share of requests is answered with HTTP 500.

Deterministic: the n-th answer of an app is always the same, no randomness, so the demo
and the tests can check exactly what a client must (not) receive.

Streams are sent as server-sent events, one small delta per event (so values straddle
event boundaries, as real token streams do), with the usage chunk when
``stream_options.include_usage`` is set.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

# Other customers whose data a leaking answer quotes. Valid by their check digits (Luhn,
# IBAN mod-97) and by phone-number metadata, so real detectors find them.
OTHER_CUSTOMERS: tuple[dict[str, str], ...] = (
    {
        "name": "Maria Schmidt",
        "email": "maria.schmidt@example.de",
        "phone": "+49 30 901820",
        "iban": "DE89 3704 0044 0532 0130 00",
        "card": "4111 1111 1111 1111",
    },
    {
        "name": "Jean Dupont",
        "email": "jean.dupont@example.fr",
        "phone": "+33 1 42 68 53 00",
        "iban": "FR14 2004 1010 0505 0001 3M02 606",
        "card": "5555 5555 5555 4444",
    },
    {
        "name": "Olivia Brown",
        "email": "olivia.brown@example.co.uk",
        "phone": "+44 20 7946 0958",
        "iban": "GB29 NWBK 6016 1331 9268 19",
        "card": "3782 822463 10005",
    },
)
# Every value a client of a redacting guard must never see.
LEAKED_VALUES: tuple[str, ...] = tuple(
    value for customer in OTHER_CUSTOMERS for key, value in customer.items() if key != "name"
)
REFUSAL = "I'm sorry, but I can't help with that request."
FALLBACK_ANSWER = "Our assistant is limited right now; a member of our support team will reply to you shortly."
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Behaviour:
    """What the app does for its n-th request."""

    leak: bool = False  # privacy
    refuse: bool = False  # drift
    fail: bool = False  # sudden (HTTP 500)
    fallback: bool = False  # the app is a fallback model: one safe answer


def _last_user_text(body: dict[str, Any]) -> str:
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                content = message.get("content")
                if isinstance(content, str):
                    return content
                if isinstance(content, list):
                    return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    prompt = body.get("prompt")
    return prompt if isinstance(prompt, str) else ""


def answer_text(body: dict[str, Any], n: int, behaviour: Behaviour) -> str:
    """The n-th answer of an app, for this request."""
    if behaviour.fallback:
        return FALLBACK_ANSWER
    if behaviour.refuse:
        return REFUSAL
    order = 4700 + n % 100
    text = (
        f"Thanks for your message. Your order #{order} left our warehouse today and should arrive "
        "within two working days. You can follow it in your account under Orders."
    )
    if behaviour.leak:
        other = OTHER_CUSTOMERS[n % len(OTHER_CUSTOMERS)]
        text += (
            f" By the way, {other['name']} ({other['email']}, {other['phone']}) ordered the same item; "
            f"their refund goes to IBAN {other['iban']}, card {other['card']}."
        )
    return text


def _tokens(text: str) -> int:
    return len(_WORD.findall(text))


def _chat(body: dict[str, Any]) -> bool:
    return "messages" in body


def completion(body: dict[str, Any], text: str, model: str, n: int) -> dict[str, Any]:
    """The whole answer (non-streamed)."""
    prompt_tokens = _tokens(_last_user_text(body))
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": _tokens(text)}
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    if _chat(body):
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "finish_reason": "stop",
            "logprobs": None,
        }
        kind = "chat.completion"
    else:
        choice = {"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}
        kind = "text_completion"
    return {
        "id": f"cmpl-{n}",
        "object": kind,
        "created": 1_700_000_000 + n,
        "model": model,
        "choices": [choice],
        "usage": usage,
    }


def stream_events(body: dict[str, Any], text: str, model: str, n: int, *, delta_size: int = 8) -> Iterator[bytes]:
    """The answer as server-sent events (``data: …`` and a final ``data: [DONE]``)."""
    chat = _chat(body)
    envelope = {
        "id": f"cmpl-{n}",
        "object": "chat.completion.chunk" if chat else "text_completion",
        "created": 1_700_000_000 + n,
        "model": model,
    }

    def event(choice: dict[str, Any], **extra: Any) -> bytes:
        return b"data: " + json.dumps({**envelope, "choices": [choice], **extra}).encode() + b"\n\n"

    def piece(delta: str | None, finish: str | None = None, role: bool = False) -> bytes:
        if chat:
            d: dict[str, Any] = {"role": "assistant"} if role else {}
            if delta is not None:
                d["content"] = delta
            return event({"index": 0, "delta": d, "finish_reason": finish})
        return event({"index": 0, "text": delta or "", "finish_reason": finish})

    if chat:
        yield piece(None, role=True)
    for start in range(0, len(text), delta_size):
        yield piece(text[start : start + delta_size])
    yield piece(None, finish="stop")
    options = body.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage") is True:
        final = completion(body, text, model, n)["usage"]
        yield b"data: " + json.dumps({**envelope, "choices": [], "usage": final}).encode() + b"\n\n"
    yield b"data: [DONE]\n\n"
