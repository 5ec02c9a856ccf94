"""Ollama's /api/chat: requests rendered from either front door's format, answers read with their counts."""
from __future__ import annotations

import pytest

from protocols.llm.formats import anthropic_wire, ollama_wire, openai_wire
from protocols.llm.formats.chat import FormatError, Usage
from protocols.llm.formats.translate import render_request

from .samples import OLLAMA_ANSWER


def test_an_openai_request_becomes_an_ollama_one():
    request = openai_wire.parse_request({
        "model": "gpt-4o", "max_tokens": 64, "temperature": 0.2, "seed": 42, "stop": ["END"],
        "response_format": {"type": "json_object"},
        "tools": [{"type": "function", "function": {"name": "look", "parameters": {"type": "object"}}}],
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": [{"type": "text", "text": "What?"},
                                         {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "look", "arguments": "{\"q\":1}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "a cat"},
        ]})
    assert render_request(request, "ollama", "llama3.2") == {
        "model": "llama3.2", "stream": False, "format": "json",
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "What?", "images": ["AAAA"]},
            {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "look", "arguments": {"q": 1}}}]},
            {"role": "tool", "content": "a cat", "tool_name": "look"},
        ],
        "tools": [{"type": "function", "function": {"name": "look", "description": "",
                                                    "parameters": {"type": "object"}}}],
        "options": {"num_predict": 64, "temperature": 0.2, "stop": ["END"], "seed": 42},
    }


def test_anthropic_top_k_goes_into_ollama_options():
    request = anthropic_wire.parse_request({"model": "c", "max_tokens": 9, "top_k": 40, "stream": True,
                                            "messages": [{"role": "user", "content": "hi"}]})
    body = render_request(request, "ollama", "llama3.2")
    assert body["options"] == {"num_predict": 9, "top_k": 40}
    assert body["stream"] is True


def test_an_image_url_is_refused_for_ollama():
    request = openai_wire.parse_request({"model": "m", "messages": [
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/cat.png"}}]}]})
    with pytest.raises(FormatError) as caught:
        render_request(request, "ollama", "llava")
    assert caught.value.param == "messages[0].content[0]"


def test_a_forced_tool_call_is_refused_for_ollama_and_none_sends_no_tools():
    tools = [{"type": "function", "function": {"name": "look", "parameters": {}}}]
    forced = openai_wire.parse_request({"model": "m", "messages": [], "tools": tools, "tool_choice": "required"})
    with pytest.raises(FormatError) as caught:
        render_request(forced, "ollama", "llama3.2")
    assert caught.value.param == "tool_choice"
    none = openai_wire.parse_request({"model": "m", "messages": [], "tools": tools, "tool_choice": "none"})
    assert "tools" not in render_request(none, "ollama", "llama3.2")


def test_an_ollama_answer_is_read_with_its_counts():
    response = ollama_wire.parse_response(OLLAMA_ANSWER)
    assert response.text == "Hello! How are you today?"
    assert response.finish_reason == "stop"
    assert response.usage == Usage(input_tokens=26, output_tokens=298)


def test_an_ollama_tool_call_gets_an_id_and_json_arguments():
    answer = {**OLLAMA_ANSWER, "message": {"role": "assistant", "content": "", "tool_calls": [
        {"function": {"name": "look", "arguments": {"city": "Paris"}}}]}}
    response = ollama_wire.parse_response(answer)
    assert response.finish_reason == "tool_calls"
    [call] = response.tool_calls
    assert call.id.startswith("call_") and call.name == "look" and call.arguments == "{\"city\":\"Paris\"}"


def test_a_cut_length_answer_reports_length():
    assert ollama_wire.parse_response({**OLLAMA_ANSWER, "done_reason": "length"}).finish_reason == "length"
