"""The shapes of the OpenAI-compatible API that ``airlock guard`` reads and rewrites.

Pure functions over decoded JSON (dicts and lists) and raw SSE bytes: where the text
of a request or an answer is, how the canary line goes into the system prompt, how
an answer's usage and finish reason are read, how an error looks to a client.  The
proxy (``airlock.guard``) does the I/O; everything it decides about a body is here,
so it is tested without a socket.

Texts are handed out as :class:`Slot` s — a container and a key — so the proxy can
write a redacted text back in place without knowing the shape.

Covered: ``/v1/chat/completions`` (``messages[].content`` as a string or a list of
parts; answers' ``content``, ``refusal`` and tool-call ``arguments``) and
``/v1/completions`` (``prompt`` as a string or a list of strings; ``choices[].text``).
NOT covered: token-id prompts (lists of integers carry no text to scan), audio and
image parts (passed through unscanned).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

CHAT_PATH = "/v1/chat/completions"
COMPLETIONS_PATH = "/v1/completions"

# Roles whose text the guard trusts (written by the deployment, not the user).
TRUSTED_ROLES = frozenset({"system", "developer"})


class Endpoint(StrEnum):
    CHAT = "chat"
    COMPLETIONS = "completions"


ENDPOINTS = {CHAT_PATH: Endpoint.CHAT, COMPLETIONS_PATH: Endpoint.COMPLETIONS}


@dataclass(frozen=True)
class Slot:
    """Where one text lives: ``container[key]`` is a ``str``."""

    container: Any  # dict or list
    key: Any  # str for a dict, int for a list
    role: str = ""

    @property
    def text(self) -> str:
        value = self.container[self.key]
        return value if isinstance(value, str) else ""

    def set(self, text: str) -> None:
        self.container[self.key] = text


def _content_slots(message: dict[str, Any], key: str, role: str) -> Iterator[Slot]:
    content = message.get(key)
    if isinstance(content, str):
        yield Slot(message, key, role)
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                yield Slot(part, "text", role)


def request_slots(endpoint: Endpoint, body: dict[str, Any]) -> list[Slot]:
    """Every text of a request, in order (system prompt included, role set on each)."""
    slots: list[Slot] = []
    if endpoint is Endpoint.CHAT:
        messages = body.get("messages")
        if isinstance(messages, list):
            for message in messages:
                if isinstance(message, dict):
                    role = str(message.get("role") or "")
                    slots.extend(_content_slots(message, "content", role))
    else:
        prompt = body.get("prompt")
        if isinstance(prompt, str):
            slots.append(Slot(body, "prompt", "user"))
        elif isinstance(prompt, list):
            slots.extend(Slot(prompt, i, "user") for i, item in enumerate(prompt) if isinstance(item, str))
    return slots


def validate_request(endpoint: Endpoint, body: Any) -> str | None:
    """Why a decoded body is not a request of ``endpoint`` (None when it is one)."""
    if not isinstance(body, dict):
        return "the request body must be a JSON object"
    if endpoint is Endpoint.CHAT:
        messages = body.get("messages")
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            return "'messages' must be a list of objects"
    elif "prompt" in body and not isinstance(body["prompt"], str | list):
        return "'prompt' must be a string or a list"
    if "stream" in body and not isinstance(body["stream"], bool):
        return "'stream' must be a boolean"
    return None


def insert_canary(body: dict[str, Any], line: str) -> str:
    """Append ``line`` to the first system message (creating one first); return the original system prompt.

    The original text is what the canary detector should recognise if a response quotes it.
    """
    messages: list[Any] = body["messages"]
    for message in messages:
        if isinstance(message, dict) and message.get("role") in TRUSTED_ROLES:
            content = message.get("content")
            if isinstance(content, str):
                message["content"] = f"{content}\n\n{line}" if content else line
                return content
            if isinstance(content, list):
                original = "\n".join(
                    part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)
                )
                content.append({"type": "text", "text": line})
                return original
    messages.insert(0, {"role": "system", "content": line})
    return ""


def want_stream_usage(body: dict[str, Any]) -> bool:
    """Ask the upstream to end a stream with its token usage; return whether the client asked for it itself."""
    options = body.get("stream_options")
    asked = isinstance(options, dict) and options.get("include_usage") is True
    if not asked:
        body["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
    return asked


# -- answers -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AnswerSlot:
    """One text of an answer: which choice, which field (content, refusal, tool-call arguments)."""

    choice: int
    field: str
    slot: Slot


def _choice_slots(endpoint: Endpoint, choice: dict[str, Any], part: str) -> Iterator[AnswerSlot]:
    index = choice.get("index", 0)
    index = index if isinstance(index, int) else 0
    if endpoint is Endpoint.COMPLETIONS:
        if isinstance(choice.get("text"), str):
            yield AnswerSlot(index, "text", Slot(choice, "text"))
        return
    message = choice.get(part)
    if not isinstance(message, dict):
        return
    for field in ("content", "refusal"):
        if isinstance(message.get(field), str):
            yield AnswerSlot(index, field, Slot(message, field))
    calls = message.get("tool_calls")
    if isinstance(calls, list):
        for position, call in enumerate(calls):
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                number = call.get("index", position)
                yield AnswerSlot(index, f"tool_calls.{number}", Slot(function, "arguments"))
    legacy = message.get("function_call")
    if isinstance(legacy, dict) and isinstance(legacy.get("arguments"), str):
        yield AnswerSlot(index, "function_call", Slot(legacy, "arguments"))


def answer_slots(endpoint: Endpoint, body: Any) -> list[AnswerSlot]:
    """The texts of a complete (non-streamed) answer."""
    return _slots(endpoint, body, "message")


def chunk_slots(endpoint: Endpoint, chunk: Any) -> list[AnswerSlot]:
    """The text deltas of one streamed chunk."""
    return _slots(endpoint, chunk, "delta")


def _slots(endpoint: Endpoint, body: Any, part: str) -> list[AnswerSlot]:
    if not isinstance(body, dict) or not isinstance(body.get("choices"), list):
        return []
    found: list[AnswerSlot] = []
    for choice in body["choices"]:
        if isinstance(choice, dict):
            found.extend(_choice_slots(endpoint, choice, part))
    return found


def finish_reasons(body: Any) -> list[tuple[int, str]]:
    """``(choice index, finish_reason)`` of every choice that finished in this body or chunk."""
    if not isinstance(body, dict) or not isinstance(body.get("choices"), list):
        return []
    found = []
    for choice in body["choices"]:
        if isinstance(choice, dict) and isinstance(choice.get("finish_reason"), str):
            index = choice.get("index", 0)
            found.append((index if isinstance(index, int) else 0, choice["finish_reason"]))
    return found


def usage(body: Any) -> tuple[int, int] | None:
    """``(prompt_tokens, completion_tokens)`` when the body carries a usage block."""
    block = body.get("usage") if isinstance(body, dict) else None
    if not isinstance(block, dict):
        return None
    prompt, completion = block.get("prompt_tokens"), block.get("completion_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    return max(prompt, 0), max(completion, 0)


def is_usage_only(chunk: Any) -> bool:
    """The last chunk of a stream asked with ``include_usage``: no choices, just usage."""
    return isinstance(chunk, dict) and chunk.get("choices") == [] and isinstance(chunk.get("usage"), dict)


def drop_logprobs(body: Any) -> None:
    """Remove token log-probabilities: they spell out the tokens a redaction hides."""
    if isinstance(body, dict) and isinstance(body.get("choices"), list):
        for choice in body["choices"]:
            if isinstance(choice, dict) and choice.get("logprobs") is not None:
                choice["logprobs"] = None


# -- errors ---------------------------------------------------------------------------------

BLOCKED = "airlock_blocked"


def error_body(code: str, message: str, *, type_: str = "airlock_guard", param: str | None = None) -> dict[str, Any]:
    """The OpenAI error shape: ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


# -- server-sent events ------------------------------------------------------------------------


class SSESplitter:
    """Cut a byte stream into whole server-sent events (each ending with a blank line).

    Upstreams flush one event per write, but TCP may split or join them anywhere; the
    guard only ever looks at, and forwards, whole events.
    """

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[bytes]:
        """Whole events completed by ``data`` (each with its terminating blank line)."""
        buffer = self._buffer + data
        events: list[bytes] = []
        start = 0
        while True:
            cut, width = _event_end(buffer, start)
            if cut < 0:
                break
            events.append(buffer[start : cut + width])
            start = cut + width
        self._buffer = buffer[start:]
        return events

    def rest(self) -> bytes:
        """What is left after the last whole event (a stream cut mid-event)."""
        rest, self._buffer = self._buffer, b""
        return rest


def _event_end(buffer: bytes, start: int) -> tuple[int, int]:
    # The earliest blank line: "\n\n", "\r\n\r\n" (or a mix of both line ends).
    best, width = -1, 0
    for separator in (b"\n\n", b"\r\n\r\n", b"\n\r\n"):
        at = buffer.find(separator, start)
        if at >= 0 and (best < 0 or at < best):
            best, width = at, len(separator)
    return best, width


def event_data(event: bytes) -> bytes | None:
    """The ``data:`` payload of one event (several data lines joined by newlines); None without data."""
    lines = [line for line in event.splitlines() if line.startswith(b"data:")]
    if not lines:
        return None
    return b"\n".join(line[5:].removeprefix(b" ") for line in lines)


def sse(payload: bytes) -> bytes:
    """One event carrying ``payload`` (a single line of JSON, or ``[DONE]``)."""
    return b"data: " + payload + b"\n\n"
