"""Stream translation: provider bytes in any chunking become the client's events, usage kept exact or counted."""
from __future__ import annotations

import json

import pytest

from protocols.llm.formats.chat import Usage
from protocols.llm.formats.framing import SSEDecoder
from protocols.llm.formats.streams import StreamTranslator, render_stream_error
from protocols.llm.tokens import counter_for

from .samples import anthropic_stream, chunked, ollama_stream, openai_stream

COUNT = counter_for("gpt-4o").count
TEXTS = ["Hello", ", wor", "ld! Ünïcödé 日本"]
TOOL_FRAGMENTS = ["{\"ci", "ty\": \"Par", "is\"}"]


def translate(provider, client, data, size=None, **options):
    translator = StreamTranslator(provider, client, model="front-model", prompt_tokens=40, count=COUNT,
                                  clock=lambda: 1700000000.0, **options)
    out = b"".join(translator.feed(piece) for piece in chunked(data, size or len(data)))
    return translator, out + translator.end()


def openai_view(data, model="front-model"):
    """What an OpenAI client assembles: text, tool calls, finish reason, usage, errors."""
    view = {"text": "", "tools": {}, "finish": None, "usage": None, "done": False, "errors": []}
    for _, payload in SSEDecoder().feed(data):
        if payload == "[DONE]":
            view["done"] = True
            continue
        chunk = json.loads(payload)
        if "error" in chunk:
            view["errors"].append(chunk["error"])
            continue
        assert chunk["object"] == "chat.completion.chunk" and chunk["model"] == model
        view["usage"] = chunk.get("usage") or view["usage"]
        for choice in chunk["choices"]:
            view["text"] += choice["delta"].get("content") or ""
            for call in choice["delta"].get("tool_calls") or []:
                entry = view["tools"].setdefault(call["index"], {"name": "", "arguments": ""})
                entry["name"] += call["function"].get("name") or ""
                entry["arguments"] += call["function"].get("arguments") or ""
            view["finish"] = choice["finish_reason"] or view["finish"]
    return view


def anthropic_view(data):
    view = {"types": [], "text": "", "tools": {}, "stop_reason": None, "start_usage": None, "usage": None,
            "errors": []}
    for event, payload in SSEDecoder().feed(data):
        body = json.loads(payload)
        assert body["type"] == event
        view["types"].append(event)
        if event == "message_start":
            view["start_usage"] = body["message"]["usage"]
        elif event == "content_block_start" and body["content_block"]["type"] == "tool_use":
            view["tools"][body["index"]] = {"name": body["content_block"]["name"], "arguments": ""}
        elif event == "content_block_delta" and body["delta"]["type"] == "text_delta":
            view["text"] += body["delta"]["text"]
        elif event == "content_block_delta":
            view["tools"][body["index"]]["arguments"] += body["delta"]["partial_json"]
        elif event == "message_delta":
            view["stop_reason"], view["usage"] = body["delta"]["stop_reason"], body["usage"]
        elif event == "error":
            view["errors"].append(body["error"])
    return view


PROVIDER_STREAMS = {
    "openai": openai_stream(TEXTS, tool=("call_1", "get_weather", TOOL_FRAGMENTS), finish="tool_calls",
                            usage={"prompt_tokens": 31, "completion_tokens": 17, "total_tokens": 48,
                                   "prompt_tokens_details": {"cached_tokens": 8}}),
    "anthropic": anthropic_stream(TEXTS, tool=("toolu_1", "get_weather", TOOL_FRAGMENTS), stop_reason="tool_use",
                                  start_usage={"input_tokens": 23, "cache_read_input_tokens": 8, "output_tokens": 1},
                                  final_usage={"output_tokens": 17}),
    "ollama": ollama_stream(TEXTS, tool=("get_weather", {"city": "Paris"}), counts=(31, 17)),
}


@pytest.mark.parametrize("provider", ["anthropic", "ollama"])
@pytest.mark.parametrize("size", [1, 7, None])
def test_a_provider_stream_becomes_openai_chunks_in_any_chunking(provider, size):
    translator, out = translate(provider, "openai", PROVIDER_STREAMS[provider], size, include_usage=True)
    view = openai_view(out)
    assert view["text"] == "".join(TEXTS)
    assert [(tool["name"], json.loads(tool["arguments"])) for tool in view["tools"].values()] == \
        [("get_weather", {"city": "Paris"})]
    assert view["finish"] == "tool_calls" and view["done"]
    cached = 8 if provider == "anthropic" else 0
    assert view["usage"] == {"prompt_tokens": 31, "completion_tokens": 17, "total_tokens": 48,
                             "prompt_tokens_details": {"cached_tokens": cached}}
    assert translator.complete and translator.usage == Usage(31, 17, cached)


@pytest.mark.parametrize("provider", ["openai", "ollama"])
@pytest.mark.parametrize("size", [1, 7, None])
def test_a_provider_stream_becomes_anthropic_events_in_any_chunking(provider, size):
    translator, out = translate(provider, "anthropic", PROVIDER_STREAMS[provider], size)
    view = anthropic_view(out)
    assert view["types"][0] == "message_start" and view["types"][-2:] == ["message_delta", "message_stop"]
    assert view["text"] == "".join(TEXTS)
    assert [(tool["name"], json.loads(tool["arguments"])) for tool in view["tools"].values()] == \
        [("get_weather", {"city": "Paris"})]
    assert view["stop_reason"] == "tool_use"
    # message_start can only carry Rusta's count of the prompt; message_delta carries the provider's figures.
    assert view["start_usage"]["input_tokens"] == 40
    cached = 8 if provider == "openai" else 0
    assert view["usage"] == {"input_tokens": 31 - cached, "output_tokens": 17, "cache_read_input_tokens": cached,
                             "cache_creation_input_tokens": 0}
    assert translator.complete


def test_the_same_format_passes_through_byte_for_byte():
    for provider in ("openai", "anthropic"):
        translator, out = translate(provider, provider, PROVIDER_STREAMS[provider], 5, include_usage=True)
        assert out == PROVIDER_STREAMS[provider]
        assert translator.usage == Usage(31, 17, 8)


def test_the_usage_chunk_rusta_asked_for_is_kept_from_a_client_that_did_not():
    translator, out = translate("openai", "openai", PROVIDER_STREAMS["openai"], 5, include_usage=False)
    view = openai_view(out, model="gpt-4o-2024-08-06")
    assert view["usage"] is None and view["done"] and view["text"] == "".join(TEXTS)
    assert translator.usage == Usage(31, 17, 8)


def test_a_cut_openai_stream_counts_what_was_streamed():
    data = openai_stream(["The quick brown fox ", "jumps over", " the lazy dog"], usage={"prompt_tokens": 9})
    cut = data[:data.index(b"the lazy")]
    translator, out = translate("openai", "anthropic", cut, 9)
    assert not translator.complete
    assert "message_stop" not in anthropic_view(out)["types"]
    assert translator.usage == Usage(input_tokens=40, output_tokens=COUNT("The quick brown fox jumps over"),
                                     estimated=True)


def test_a_cut_anthropic_stream_keeps_the_prompt_figures_it_was_given():
    data = anthropic_stream(["The quick brown fox ", "jumps over", " the lazy dog"],
                            start_usage={"input_tokens": 12, "cache_read_input_tokens": 100, "output_tokens": 1})
    cut = data[:data.index(b"the lazy")]
    translator, out = translate("anthropic", "openai", cut, 11, include_usage=True)
    assert not translator.complete and not openai_view(out)["done"]
    assert translator.usage == Usage(input_tokens=112, output_tokens=COUNT("The quick brown fox jumps over"),
                                     cached_input_tokens=100, estimated=True)


def test_a_stream_without_usage_is_counted_not_free():
    translator, out = translate("openai", "openai", openai_stream(["Hello there"]), include_usage=True)
    assert translator.complete
    assert translator.usage == Usage(input_tokens=40, output_tokens=COUNT("Hello there"), estimated=True)


def test_a_provider_error_mid_stream_reaches_the_client_as_its_own_error_event():
    data = anthropic_stream(["Hel"]).split(b"event: content_block_stop")[0]
    data += b"event: error\ndata: " + json.dumps({"type": "error", "error": {"type": "overloaded_error",
                                                                          "message": "Overloaded"}}).encode() + b"\n\n"
    translator, out = translate("anthropic", "openai", data)
    view = openai_view(out)
    assert view["text"] == "Hel" and not view["done"]
    assert view["errors"] == [{"message": "Overloaded", "type": "overloaded_error", "param": None, "code": None}]
    assert translator.error is not None and not translator.complete


def test_an_error_renders_in_each_client_format():
    assert render_stream_error("anthropic", "upstream cut") == (
        b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"upstream cut\"}}\n\n")
    assert render_stream_error("openai", "upstream cut") == (
        b"data: {\"error\":{\"message\":\"upstream cut\",\"type\":\"api_error\",\"param\":null,\"code\":null}}\n\n")


def test_what_was_streamed_reads_back_as_one_answer():
    translator, _ = translate("anthropic", "openai", PROVIDER_STREAMS["anthropic"])
    response = translator.response()
    assert response.text == "".join(TEXTS) and response.finish_reason == "tool_calls"
    assert [(call.id, call.name, json.loads(call.arguments)) for call in response.tool_calls] == \
        [("toolu_1", "get_weather", {"city": "Paris"})]
