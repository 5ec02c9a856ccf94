"""The official openai and anthropic SDKs read Rusta's translations as their own API's answers (no socket: each SDK
is given an httpx2 MockTransport that translates its request to a provider's format and the provider's answer back).

These are independent parsers: they prove the front doors' bodies, streams and errors, not Rusta's own reading.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anthropic
import httpx2
import openai
import pytest

from protocols.llm.formats.chat import FormatError
from protocols.llm.formats.streams import StreamTranslator, replay
from protocols.llm.formats.translate import (
    parse_request,
    parse_response,
    render_error,
    render_request,
    render_response,
    wire_of,
)
from protocols.llm.tokens import counter_for

from .samples import ANTHROPIC_ANSWER, OLLAMA_ANSWER, OPENAI_ANSWER, anthropic_stream, ollama_stream, openai_stream

TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city.",
                                         "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}
FRAGMENTS = ["{\"ci", "ty\": \"Par", "is\"}"]
ANSWERS = {"openai": OPENAI_ANSWER, "anthropic": ANTHROPIC_ANSWER, "ollama": OLLAMA_ANSWER}
STREAMS = {
    "openai": openai_stream(["Sunny", " in Paris."], tool=("call_1", "get_weather", FRAGMENTS), finish="tool_calls",
                            usage={"prompt_tokens": 31, "completion_tokens": 17, "total_tokens": 48,
                                   "prompt_tokens_details": {"cached_tokens": 8}}),
    "anthropic": anthropic_stream(["Sunny", " in Paris."], tool=("toolu_1", "get_weather", FRAGMENTS),
                                  stop_reason="tool_use", final_usage={"output_tokens": 17},
                                  start_usage={"input_tokens": 23, "cache_read_input_tokens": 8, "output_tokens": 1}),
    "ollama": ollama_stream(["Sunny", " in Paris."], tool=("get_weather", {"city": "Paris"}), counts=(31, 17)),
}


def gateway(client: str, provider: str, seen: list[dict[str, Any]]) -> Callable[[httpx2.Request], httpx2.Response]:
    """What an LLM route will do, minus the network: translate, 'call' the provider, translate back."""

    def handle(request: httpx2.Request) -> httpx2.Response:
        try:
            chat = parse_request(client, json.loads(request.content))  # type: ignore[arg-type]
            provider_body = render_request(chat, provider, "provider-model")  # type: ignore[arg-type]
        except FormatError as error:
            return httpx2.Response(400, json=render_error(client, 400, error.message, param=error.param))
        seen.append(provider_body)
        if chat.stream:
            counter = counter_for(chat.model)
            translator = StreamTranslator(wire_of(provider), client, model=chat.model,  # type: ignore[arg-type]
                                          prompt_tokens=counter.count_request(chat), count=counter.count,
                                          include_usage=chat.include_usage)
            raw = STREAMS[wire_of(provider)]
            body = b"".join(translator.feed(raw[index:index + 13]) for index in range(0, len(raw), 13))
            return httpx2.Response(200, headers={"content-type": "text/event-stream"},
                                   content=body + translator.end())
        answer = parse_response(provider, ANSWERS[wire_of(provider)])  # type: ignore[arg-type]
        return httpx2.Response(200, json=render_response(client, answer, chat.model))  # type: ignore[arg-type]

    return handle


def openai_client(provider: str, seen: list[dict[str, Any]]) -> openai.OpenAI:
    transport = httpx2.MockTransport(gateway("openai", provider, seen))
    return openai.OpenAI(api_key="rusta-key", base_url="http://gateway.test/v1", max_retries=0,
                         http_client=httpx2.Client(transport=transport))


def anthropic_client(provider: str, seen: list[dict[str, Any]]) -> anthropic.Anthropic:
    transport = httpx2.MockTransport(gateway("anthropic", provider, seen))
    return anthropic.Anthropic(api_key="rusta-key", base_url="http://gateway.test", max_retries=0,
                               http_client=httpx2.Client(transport=transport))


# --- The OpenAI SDK in front ----------------------------------------------------------------------------------

def test_openai_sdk_reads_an_anthropic_answer():
    seen: list[dict[str, Any]] = []
    completion = openai_client("anthropic", seen).chat.completions.create(
        model="front", messages=[{"role": "system", "content": "Be nice."}, {"role": "user", "content": "Hi"}])
    assert seen[0]["system"] == "Be nice." and seen[0]["max_tokens"] == 4096
    assert completion.model == "front"
    assert completion.choices[0].message.content == "Hi! My name is Claude."
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (2095 + 2051 + 4000, 503)
    assert completion.usage.prompt_tokens_details.cached_tokens == 4000


def test_openai_sdk_reads_an_ollama_answer():
    completion = openai_client("ollama", []).chat.completions.create(
        model="front", messages=[{"role": "user", "content": "Hi"}])
    assert completion.choices[0].message.content == "Hello! How are you today?"
    assert completion.usage is not None and completion.usage.total_tokens == 26 + 298


@pytest.mark.parametrize("provider", ["anthropic", "ollama", "openai_compatible"])
def test_openai_sdk_streams_text_a_tool_call_and_the_usage_from(provider):
    client = openai_client(provider, [])
    with client.chat.completions.stream(model="front", messages=[{"role": "user", "content": "Weather?"}],
                                        tools=[TOOL], stream_options={"include_usage": True}) as stream:
        final = stream.get_final_completion()
    choice = final.choices[0]
    assert choice.message.content == "Sunny in Paris."
    [call] = choice.message.tool_calls or []
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}
    assert choice.finish_reason == "tool_calls"
    assert final.usage is not None and (final.usage.prompt_tokens, final.usage.completion_tokens) == (31, 17)


def test_openai_sdk_sees_a_refused_field_as_a_bad_request_naming_it():
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client("anthropic", []).chat.completions.create(
            model="front", n=2, messages=[{"role": "user", "content": "Hi"}])
    assert caught.value.param == "n"
    assert "n: cannot be translated" in caught.value.message


def test_openai_sdk_raises_on_an_error_in_the_middle_of_a_stream():
    data = STREAMS["anthropic"].split(b"event: content_block_stop")[0]
    translator = StreamTranslator("anthropic", "openai", model="front", prompt_tokens=5, count=len)
    body = translator.feed(data) + translator.end() + translator.error_bytes("The provider cut the stream.")
    client = openai.OpenAI(api_key="k", base_url="http://gateway.test/v1", max_retries=0, http_client=httpx2.Client(
        transport=httpx2.MockTransport(lambda request: httpx2.Response(
            200, headers={"content-type": "text/event-stream"}, content=body))))
    stream = client.chat.completions.create(model="front", messages=[], stream=True)
    texts = []
    with pytest.raises(openai.APIError, match="The provider cut the stream."):
        for chunk in stream:
            texts.append(chunk.choices[0].delta.content or "")
    assert "".join(texts) == "Sunny in Paris."


# --- The Anthropic SDK in front -------------------------------------------------------------------------------

def test_anthropic_sdk_reads_an_openai_tool_call():
    seen: list[dict[str, Any]] = []
    message = anthropic_client("openai", seen).messages.create(
        model="front", max_tokens=100, system="Be nice.", messages=[{"role": "user", "content": "Weather?"}],
        tools=[{"name": "get_weather", "input_schema": {"type": "object"}}])
    assert seen[0]["messages"][0] == {"role": "system", "content": "Be nice."}
    assert seen[0]["max_completion_tokens"] == 100
    assert message.stop_reason == "tool_use"
    [block] = message.content
    assert block.type == "tool_use" and block.name == "get_weather" and block.input == {"city": "Paris"}
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens) == (1117 - 1024, 1024)
    assert message.usage.output_tokens == 46


@pytest.mark.parametrize("provider", ["openai", "ollama"])
def test_anthropic_sdk_streams_text_a_tool_call_and_the_usage_from(provider):
    with anthropic_client(provider, []).messages.stream(
            model="front", max_tokens=100, messages=[{"role": "user", "content": "Weather?"}],
            tools=[{"name": "get_weather", "input_schema": {"type": "object"}}]) as stream:
        message = stream.get_final_message()
    assert [block.type for block in message.content] == ["text", "tool_use"]
    assert message.content[0].text == "Sunny in Paris."  # type: ignore[union-attr]
    assert message.content[1].input == {"city": "Paris"}  # type: ignore[union-attr]
    assert message.stop_reason == "tool_use"
    cached = 8 if provider == "openai" else 0
    assert (message.usage.input_tokens + (message.usage.cache_read_input_tokens or 0), message.usage.output_tokens) \
        == (31, 17)
    assert (message.usage.cache_read_input_tokens or 0) == cached


def test_anthropic_sdk_sees_a_refused_field_as_a_bad_request():
    with pytest.raises(anthropic.BadRequestError, match="top_k: cannot be translated"):
        anthropic_client("openai", []).messages.create(model="front", max_tokens=10, extra_body={"top_k": 3},
                                                       messages=[{"role": "user", "content": "Hi"}])


def test_a_cached_answer_replays_as_a_stream_each_sdk_reads():
    answer = parse_response("openai", OPENAI_ANSWER)
    anthropic_body = replay(answer, "anthropic")
    client = anthropic.Anthropic(api_key="k", base_url="http://gateway.test", max_retries=0, http_client=httpx2.Client(
        transport=httpx2.MockTransport(lambda request: httpx2.Response(
            200, headers={"content-type": "text/event-stream"}, content=anthropic_body))))
    with client.messages.stream(model="m", max_tokens=5, messages=[]) as stream:
        message = stream.get_final_message()
    assert message.content[0].input == {"city": "Paris"}  # type: ignore[union-attr]
    assert message.usage.output_tokens == 46
    openai_body = replay(answer, "openai", include_usage=True)
    client_o = openai.OpenAI(api_key="k", base_url="http://gateway.test/v1", max_retries=0, http_client=httpx2.Client(
        transport=httpx2.MockTransport(lambda request: httpx2.Response(
            200, headers={"content-type": "text/event-stream"}, content=openai_body))))
    with client_o.chat.completions.stream(model="m", messages=[]) as stream_o:
        final = stream_o.get_final_completion()
    assert final.choices[0].finish_reason == "tool_calls"
    assert final.usage is not None and final.usage.prompt_tokens_details.cached_tokens == 1024
