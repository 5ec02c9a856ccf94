"""OpenAI's format: client requests parsed (and refused by field), Anthropic requests rendered for OpenAI, answers."""
from __future__ import annotations

import pytest

from protocols.llm.formats import anthropic_wire, openai_wire
from protocols.llm.formats.chat import ChatResponse, FormatError, ToolCall, Usage
from protocols.llm.formats.translate import render_request

from .samples import OPENAI_ANSWER


def test_an_openai_request_goes_back_to_openai_unchanged_with_fields_rusta_does_not_know():
    body = {"model": "gpt-4o", "messages": [
        {"role": "developer", "content": "Be terse."},
        {"role": "user", "name": "ann", "content": [{"type": "text", "text": "What is this?"},
                                                   {"type": "image_url", "image_url": {"url": "https://x/cat.png",
                                                                                       "detail": "low"}}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "look", "arguments": "{\"q\":1}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "a cat"},
    ], "tools": [{"type": "function", "function": {"name": "look", "description": "Look.",
                                                  "parameters": {"type": "object", "properties": {}}}}],
        "tool_choice": "auto", "temperature": 1.7, "n": 2, "logprobs": True, "a_field_from_next_year": {"x": 1},
        "max_completion_tokens": 50}
    request = openai_wire.parse_request(body)
    assert openai_wire.render_request(request, "gpt-4o") == body


def test_a_streamed_request_always_asks_openai_for_the_usage_chunk():
    request = openai_wire.parse_request({"model": "gpt-4o", "stream": True,
                                         "messages": [{"role": "user", "content": "hi"}]})
    assert request.include_usage is False
    assert openai_wire.render_request(request, "gpt-4o")["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize(("body", "param"), [
    ({"messages": []}, "model"),
    ({"model": "m", "messages": "hi"}, "messages"),
    ({"model": "m", "messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role"),
    ({"model": "m", "messages": [{"role": "tool", "content": "hi"}]}, "messages[0].tool_call_id"),
    ({"model": "m", "messages": [], "max_tokens": 0}, "max_tokens"),
    ({"model": "m", "messages": [], "temperature": "hot"}, "temperature"),
    ({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png,abc"}}]}]}, "messages[0].content[0].image_url.url"),
])
def test_a_malformed_request_is_refused_naming_the_field(body, param):
    with pytest.raises(FormatError) as caught:
        openai_wire.parse_request(body)
    assert caught.value.status == 400
    assert caught.value.param == param


def test_an_anthropic_request_becomes_an_openai_one():
    request = anthropic_wire.parse_request({
        "model": "claude", "max_tokens": 300, "system": "Be terse.", "stop_sequences": ["END"],
        "metadata": {"user_id": "u-1"}, "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "tools": [{"name": "look", "description": "Look.", "input_schema": {"type": "object", "properties": {}}}],
        "messages": [
            {"role": "user", "content": "What is it?"},
            {"role": "assistant", "content": [{"type": "text", "text": "Let me look."},
                                              {"type": "tool_use", "id": "toolu_1", "name": "look",
                                               "input": {"q": 1}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "a cat"},
                                         {"type": "text", "text": "Well?"}]},
        ]})
    body = render_request(request, "openai", "gpt-4o")
    assert body == {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "What is it?"},
            {"role": "assistant", "content": "Let me look.", "tool_calls": [
                {"id": "toolu_1", "type": "function", "function": {"name": "look", "arguments": "{\"q\":1}"}}]},
            {"role": "tool", "tool_call_id": "toolu_1", "content": "a cat"},
            {"role": "user", "content": "Well?"},
        ],
        "tools": [{"type": "function", "function": {"name": "look", "description": "Look.",
                                                    "parameters": {"type": "object", "properties": {}}}}],
        "tool_choice": "required", "parallel_tool_calls": False, "max_completion_tokens": 300, "stop": ["END"],
        "user": "u-1",
    }


def test_an_openai_compatible_server_is_sent_max_tokens():
    request = anthropic_wire.parse_request({"model": "c", "max_tokens": 300, "messages": []})
    assert render_request(request, "openai_compatible", "llama")["max_tokens"] == 300


@pytest.mark.parametrize(("extra", "param"), [
    ({"top_k": 5}, "top_k"),
    ({"thinking": {"type": "enabled", "budget_tokens": 2000}}, "thinking"),
])
def test_anthropic_fields_openai_has_no_place_for_are_refused_by_name(extra, param):
    request = anthropic_wire.parse_request({"model": "c", "max_tokens": 10, "messages": [], **extra})
    with pytest.raises(FormatError) as caught:
        render_request(request, "openai", "gpt-4o")
    assert caught.value.param == param
    assert "openai" in caught.value.message


def test_an_anthropic_document_block_is_refused_by_its_path():
    request = anthropic_wire.parse_request({"model": "c", "max_tokens": 10, "messages": [
        {"role": "user", "content": [{"type": "text", "text": "Read:"},
                                     {"type": "document", "source": {"type": "text", "data": "..."}}]}]})
    with pytest.raises(FormatError) as caught:
        render_request(request, "openai", "gpt-4o")
    assert caught.value.param == "messages[0].content[1]"


def test_an_openai_answer_is_read_with_its_tool_call_and_exact_usage():
    response = openai_wire.parse_response(OPENAI_ANSWER)
    assert response.tool_calls == [ToolCall("call_abc", "get_weather", "{\"city\":\"Paris\"}")]
    assert response.finish_reason == "tool_calls"
    assert response.usage == Usage(input_tokens=1117, output_tokens=46, cached_input_tokens=1024)


def test_an_answer_renders_as_a_chat_completion():
    response = ChatResponse("msg_1", "claude", "Hi", [], "length", Usage(10, 5, 4, 2), created=1700000000)
    assert openai_wire.render_response(response, "my-model") == {
        "id": "chatcmpl-msg_1", "object": "chat.completion", "created": 1700000000, "model": "my-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi", "refusal": None},
                     "logprobs": None, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
                  "prompt_tokens_details": {"cached_tokens": 4}},
    }
