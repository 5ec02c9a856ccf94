"""Anthropic's format: client requests parsed, OpenAI requests rendered for Anthropic or refused by field, answers."""
from __future__ import annotations

import pytest

from protocols.llm.formats import anthropic_wire, openai_wire
from protocols.llm.formats.chat import (
    DEFAULT_ANTHROPIC_MAX_TOKENS,
    ChatResponse,
    FormatError,
    ProviderFormatError,
    ToolCall,
    Usage,
)
from protocols.llm.formats.translate import render_request

from .samples import ANTHROPIC_ANSWER

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="


def openai(**body):
    return openai_wire.parse_request({"model": "gpt-4o", **body})


def test_an_openai_request_becomes_an_anthropic_one():
    request = openai(
        messages=[
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": [{"type": "text", "text": "What is it?"},
                                         {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                                         {"type": "image_url", "image_url": {"url": "https://x/cat.png"}}]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "look", "arguments": "{\"q\":1}"}},
                {"id": "call_2", "type": "function", "function": {"name": "look", "arguments": "{\"q\":2}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "a cat"},
            {"role": "tool", "tool_call_id": "call_2", "content": "a dog"},
        ],
        tools=[{"type": "function", "function": {"name": "look", "parameters": {"type": "object"}, "strict": True}}],
        tool_choice={"type": "function", "function": {"name": "look"}}, stop="END", user="u-1", temperature=0.5,
        stream=True, store=True, seed=7, n=1)
    assert render_request(request, "anthropic", "claude-sonnet-4-5") == {
        "model": "claude-sonnet-4-5",
        "system": "Be terse.",
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "What is it?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                {"type": "image", "source": {"type": "url", "url": "https://x/cat.png"}}]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "call_1", "name": "look", "input": {"q": 1}},
                                              {"type": "tool_use", "id": "call_2", "name": "look", "input": {"q": 2}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": [{"type": "text", "text": "a cat"}]},
                {"type": "tool_result", "tool_use_id": "call_2", "content": [{"type": "text", "text": "a dog"}]}]},
        ],
        "max_tokens": DEFAULT_ANTHROPIC_MAX_TOKENS,
        "tools": [{"name": "look", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "tool", "name": "look"},
        "temperature": 0.5, "stop_sequences": ["END"], "metadata": {"user_id": "u-1"}, "stream": True,
    }


def test_without_max_tokens_anthropic_is_asked_for_the_documented_default():
    assert DEFAULT_ANTHROPIC_MAX_TOKENS == 4096
    request = openai(messages=[{"role": "user", "content": "hi"}])
    assert render_request(request, "anthropic", "claude")["max_tokens"] == 4096
    request = openai(messages=[{"role": "user", "content": "hi"}], max_tokens=77)
    assert render_request(request, "anthropic", "claude")["max_tokens"] == 77


@pytest.mark.parametrize(("extra", "param"), [
    ({"n": 2}, "n"),
    ({"logprobs": True}, "logprobs"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}}, "response_format"),
    ({"presence_penalty": 0.5}, "presence_penalty"),
    ({"temperature": 1.5}, "temperature"),
    ({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
     "messages[0].content[0]"),
])
def test_openai_fields_anthropic_cannot_honour_are_refused_by_name(extra, param):
    request = openai(**{"messages": [{"role": "user", "content": "hi"}], **extra})
    with pytest.raises(FormatError) as caught:
        render_request(request, "anthropic", "claude")
    assert caught.value.status == 400
    assert caught.value.param == param


def test_an_anthropic_request_goes_back_to_anthropic_unchanged():
    body = {"model": "claude", "max_tokens": 100, "top_k": 5, "thinking": {"type": "enabled", "budget_tokens": 64},
            "system": [{"type": "text", "text": "Long context", "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"},
                                                      {"type": "document", "source": {"type": "text", "data": "."}}]}]}
    request = anthropic_wire.parse_request(body)
    assert anthropic_wire.render_request(request, "claude") == body


def test_an_anthropic_request_without_max_tokens_is_refused():
    with pytest.raises(FormatError) as caught:
        anthropic_wire.parse_request({"model": "c", "messages": []})
    assert caught.value.param == "max_tokens"


def test_the_prompt_guard_reads_every_role_and_text():
    request = anthropic_wire.parse_request({"model": "c", "max_tokens": 1, "system": "S", "messages": [
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "R"},
                                     {"type": "text", "text": "U"}]}]})
    assert request.role_texts() == [("system", "S"), ("tool", "R"), ("user", "U")]


def test_an_anthropic_answer_adds_its_cache_reads_and_writes_to_the_prompt():
    response = anthropic_wire.parse_response(ANTHROPIC_ANSWER)
    assert response.text == "Hi! My name is Claude."
    assert response.finish_reason == "length"
    assert response.usage == Usage(input_tokens=2095 + 2051 + 4000, output_tokens=503, cached_input_tokens=4000,
                                   cache_write_tokens=2051)
    assert anthropic_wire.render_response(response)["usage"] == {
        "input_tokens": 2095, "output_tokens": 503, "cache_read_input_tokens": 4000,
        "cache_creation_input_tokens": 2051}


@pytest.mark.parametrize(("reason", "stop_sequence", "expected"), [
    ("stop", None, "end_turn"), ("stop", "END", "stop_sequence"), ("length", None, "max_tokens"),
    ("tool_calls", None, "tool_use"), ("content_filter", None, "refusal"),
])
def test_finish_reasons_map_to_stop_reasons(reason, stop_sequence, expected):
    response = ChatResponse("chatcmpl-1", "gpt", "x", [], reason, Usage(), 0, stop_sequence)
    assert anthropic_wire.render_response(response)["stop_reason"] == expected


def test_tool_calls_render_as_tool_use_blocks_with_an_input_object():
    response = ChatResponse("chatcmpl-1", "gpt", "", [ToolCall("call_1", "look", "{\"q\":1}")], "tool_calls",
                            Usage(3, 4), 0)
    assert anthropic_wire.render_response(response, "m") == {
        "id": "msg_chatcmpl-1", "type": "message", "role": "assistant", "model": "m",
        "content": [{"type": "tool_use", "id": "call_1", "name": "look", "input": {"q": 1}}],
        "stop_reason": "tool_use", "stop_sequence": None,
        "usage": {"input_tokens": 3, "output_tokens": 4, "cache_read_input_tokens": 0,
                  "cache_creation_input_tokens": 0},
    }


def test_a_provider_answer_that_is_not_a_message_is_a_bad_gateway():
    with pytest.raises(ProviderFormatError) as caught:
        anthropic_wire.parse_response({"type": "error", "error": {}})
    assert caught.value.status == 502
