"""The OpenAI shapes and SSE framing the guard relies on (pure)."""

from __future__ import annotations

from airlock.domain import openai_api as oa


def test_sse_events_are_cut_only_at_blank_lines_wherever_the_bytes_split() -> None:
    stream = b'data: {"a": 1}\n\n: keep-alive\n\ndata: [DONE]\r\n\r\n'
    for size in range(1, len(stream) + 1):
        splitter = oa.SSESplitter()
        events = [e for i in range(0, len(stream), size) for e in splitter.feed(stream[i : i + size])]
        assert [oa.event_data(e) for e in events] == [b'{"a": 1}', None, b"[DONE]"]
        assert splitter.rest() == b""


def test_a_cut_stream_leaves_its_half_event() -> None:
    splitter = oa.SSESplitter()
    assert splitter.feed(b'data: {"a"') == []
    assert splitter.rest() == b'data: {"a"'


def test_request_texts_cover_string_and_part_contents_and_prompts() -> None:
    body = {
        "messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {}}]},
            {"role": "tool", "content": "b"},
        ]
    }
    slots = oa.request_slots(oa.Endpoint.CHAT, body)
    assert [(s.role, s.text) for s in slots] == [("system", "sys"), ("user", "a"), ("tool", "b")]
    slots[1].set("A")
    assert body["messages"][1]["content"][0]["text"] == "A"  # type: ignore[index]
    prompts = {"prompt": ["x", 3, "y"]}
    assert [s.text for s in oa.request_slots(oa.Endpoint.COMPLETIONS, prompts)] == ["x", "y"]


def test_the_canary_joins_the_first_system_or_developer_message() -> None:
    body = {
        "messages": [
            {"role": "developer", "content": [{"type": "text", "text": "rules"}]},
            {"role": "user", "content": "q"},
        ]
    }
    assert oa.insert_canary(body, "CANARY") == "rules"
    assert body["messages"][0]["content"][-1] == {"type": "text", "text": "CANARY"}  # type: ignore[index]
    empty = {"messages": [{"role": "system", "content": ""}]}
    assert oa.insert_canary(empty, "CANARY") == ""
    assert empty["messages"][0]["content"] == "CANARY"


def test_answer_texts_include_refusals_and_tool_call_arguments() -> None:
    answer = {
        "choices": [
            {
                "index": 0,
                "message": {
                    "content": "c",
                    "refusal": "r",
                    "tool_calls": [{"index": 0, "function": {"name": "f", "arguments": '{"to": "x"}'}}],
                },
            }
        ]
    }
    assert [(s.field, s.slot.text) for s in oa.answer_slots(oa.Endpoint.CHAT, answer)] == [
        ("content", "c"),
        ("refusal", "r"),
        ("tool_calls.0", '{"to": "x"}'),
    ]


def test_usage_and_stream_options() -> None:
    assert oa.usage({"usage": {"prompt_tokens": 3, "completion_tokens": 4}}) == (3, 4)
    assert oa.usage({"usage": None}) is None
    body: dict[str, object] = {"stream_options": {"other": 1}}
    assert oa.want_stream_usage(body) is False
    assert body["stream_options"] == {"other": 1, "include_usage": True}
    assert oa.want_stream_usage(body) is True
