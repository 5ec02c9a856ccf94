"""The loopback providers speak the real formats: the official openai and anthropic SDKs, and httpx for Ollama's
NDJSON, read what tests/support/llm_providers.py serves, streamed and not, failures included."""
from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.support.llm_providers import ProviderStub, ToolCall, Usage

KEY = "sk-stub-key"
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
WEATHER = ToolCall("get_weather", {"city": "Paris", "unit": "celsius"})


@pytest.fixture
def stub() -> Iterator[ProviderStub]:
    with ProviderStub(api_key=KEY) as running:
        running.answer = "It is sunny in Paris today."
        running.usage = Usage(input=20, output=6, cached_input=4)
        yield running


def openai_client(stub: ProviderStub, key: str = KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=stub.base_url + "/v1", api_key=key, max_retries=0)


def anthropic_client(stub: ProviderStub, key: str = KEY) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=stub.base_url, api_key=key, max_retries=0)


def claude(client: anthropic.Anthropic, **extra: Any) -> Any:
    return client.messages.create(model="claude-stub", max_tokens=100, messages=ASK, **extra)


# --- OpenAI ---------------------------------------------------------------------------------------------------

def test_openai_sdk_reads_a_whole_answer_with_usage_that_counts_cached_tokens_in_the_prompt(stub):
    answer = openai_client(stub).chat.completions.create(model="gpt-stub", messages=ASK)
    assert answer.choices[0].message.content == "It is sunny in Paris today."
    assert answer.choices[0].finish_reason == "stop"
    assert answer.model == "gpt-stub"
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (24, 6)
    assert answer.usage.prompt_tokens_details.cached_tokens == 4


def test_openai_sdk_streams_the_answer_word_by_word_without_usage_unless_asked(stub):
    chunks = list(openai_client(stub).chat.completions.create(model="gpt-stub", messages=ASK, stream=True))
    texts = [chunk.choices[0].delta.content for chunk in chunks if chunk.choices[0].delta.content]
    assert texts == ["It ", "is ", "sunny ", "in ", "Paris ", "today."]
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(chunk.usage is None and chunk.choices for chunk in chunks)
    assert "usage" not in json.dumps([chunk.model_dump(exclude_unset=True) for chunk in chunks])


def test_openai_sdk_gets_a_last_usage_chunk_without_choices_when_include_usage_is_asked(stub):
    chunks = list(openai_client(stub).chat.completions.create(
        model="gpt-stub", messages=ASK, stream=True, stream_options={"include_usage": True}))
    assert chunks[-1].choices == []
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (24, 6)
    assert all(chunk.usage is None for chunk in chunks[:-1])
    assert "".join(c.choices[0].delta.content or "" for c in chunks[:-1]) == "It is sunny in Paris today."


def test_openai_sdk_assembles_tool_calls_streamed_as_argument_pieces(stub):
    stub.answer, stub.tool_calls = "", [WEATHER]
    client = openai_client(stub)
    whole = client.chat.completions.create(model="gpt-stub", messages=ASK)
    assert whole.choices[0].finish_reason == "tool_calls"
    assert whole.choices[0].message.content is None
    assert json.loads(whole.choices[0].message.tool_calls[0].function.arguments) == WEATHER.arguments
    with client.chat.completions.stream(model="gpt-stub", messages=ASK) as stream:
        pieces = [event for event in stream if event.type == "tool_calls.function.arguments.delta"]
        final = stream.get_final_completion()
    assert len(pieces) > 2
    call = final.choices[0].message.tool_calls[0]
    assert (call.id, call.function.name, json.loads(call.function.arguments)) == ("call_stub0", "get_weather",
                                                                                   WEATHER.arguments)


def test_openai_sdk_sees_a_429_as_a_rate_limit_error_with_retry_after_then_the_answer(stub):
    stub.rate_limit(retry_after="3", times=1)
    client = openai_client(stub)
    with pytest.raises(openai.RateLimitError) as raised:
        client.chat.completions.create(model="gpt-stub", messages=ASK)
    assert raised.value.response.headers["retry-after"] == "3"
    assert raised.value.code == "rate_limit_exceeded"
    assert client.chat.completions.create(model="gpt-stub", messages=ASK).choices[0].message.content


def test_scripted_failures_come_in_the_order_scripted_each_for_its_number_of_requests(stub):
    stub.fail(500, times=2)
    stub.fail(503, times=1)
    client = openai_client(stub)
    statuses = []
    for _ in range(4):
        try:
            client.chat.completions.create(model="gpt-stub", messages=ASK)
            statuses.append(200)
        except openai.InternalServerError as error:
            statuses.append(error.status_code)
    assert statuses == [500, 500, 503, 200]
    assert client.models.list().data[0].id == "stub-model"  # listings never take a scripted failure


def test_openai_sdk_sees_a_context_length_error_by_its_code(stub):
    stub.context_overflow(times=1)
    with pytest.raises(openai.BadRequestError) as raised:
        openai_client(stub).chat.completions.create(model="gpt-stub", messages=ASK)
    assert raised.value.code == "context_length_exceeded"


def test_openai_sdk_raises_on_a_cut_stream_and_the_stub_records_what_it_streamed(stub):
    stub.cut_after(2, times=1)
    seen = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in openai_client(stub).chat.completions.create(
                model="gpt-stub", messages=ASK, stream=True, stream_options={"include_usage": True}):
            seen.append(chunk)
    assert all(chunk.usage is None for chunk in seen)
    request = stub.requests[-1]
    assert (request.cut, request.content_frames, request.streamed_text) == (True, 2, "It is ")


def test_openai_sdk_raises_on_a_whole_answer_cut_halfway(stub):
    stub.cut_after(0, times=1)
    with pytest.raises(openai.APIConnectionError):
        openai_client(stub).chat.completions.create(model="gpt-stub", messages=ASK)


def test_openai_sdk_decodes_embeddings_in_base64_and_as_floats_alike(stub):
    client = openai_client(stub)
    packed = client.embeddings.create(model="embed-stub", input=["one", "two"])
    floats = client.embeddings.create(model="embed-stub", input=["one", "two"], encoding_format="float")
    assert stub.requests[0].body["encoding_format"] == "base64"
    assert [item.embedding for item in packed.data] == [item.embedding for item in floats.data]
    assert len(packed.data[1].embedding) == 8 and packed.usage.prompt_tokens == 24


def test_a_wrong_key_is_a_401_in_each_sdks_terms_and_the_stub_records_the_key_sent(stub):
    with pytest.raises(openai.AuthenticationError):
        openai_client(stub, "sk-client").chat.completions.create(model="gpt-stub", messages=ASK)
    with pytest.raises(anthropic.AuthenticationError):
        claude(anthropic_client(stub, "sk-client"))
    assert [r.headers["authorization"] for r in stub.requests] == ["Bearer sk-client"] * 2


def test_the_answer_can_be_a_function_of_the_request(stub):
    stub.answer = lambda request: f"{request.wire} heard: {request.user_text}"
    answer = openai_client(stub).chat.completions.create(model="gpt-stub", messages=ASK)
    assert answer.choices[0].message.content == "openai heard: What is the weather in Paris?"


def test_headers_and_the_preamble_come_before_the_first_token_delay_and_chunks_are_paced(stub):
    stub.first_token_delay, stub.chunk_delay = 0.4, 0.05
    with httpx.stream("POST", stub.base_url + "/v1/chat/completions", headers={"authorization": f"Bearer {KEY}"},
                      json={"model": "gpt-stub", "messages": ASK, "stream": True}) as response:
        lines = [line for line in response.iter_lines() if line]
    assert '"role":"assistant"' in lines[0] and '"content":"It "' in lines[1]
    request = stub.requests[-1]
    # Measured where the pauses are made; asyncio may wake a sleeper a clock tick early, hence the 0.9.
    assert request.content_at[0] - request.head_at >= 0.4 * 0.9
    gaps = [later - earlier for earlier, later in pairwise(request.content_at)]
    assert len(gaps) == 5 and min(gaps) >= 0.05 * 0.9


# --- Anthropic ------------------------------------------------------------------------------------------------

def test_anthropic_sdk_reads_a_whole_message_with_cache_reads_apart_from_input(stub):
    message = claude(anthropic_client(stub))
    assert message.content[0].text == "It is sunny in Paris today."
    assert (message.stop_reason, message.model) == ("end_turn", "claude-stub")
    usage = message.usage
    assert (usage.input_tokens, usage.cache_read_input_tokens, usage.output_tokens) == (20, 4, 6)
    assert stub.requests[0].headers["anthropic-version"]


def test_anthropic_stream_has_the_real_event_sequence_and_the_usage_in_message_delta(stub):
    events = list(claude(anthropic_client(stub), stream=True))
    kinds = [event.type for event in events]
    assert kinds == ["message_start", "content_block_start"] + ["content_block_delta"] * 6 + [
        "content_block_stop", "message_delta", "message_stop"]  # the SDK drops the ping
    assert events[0].message.usage.input_tokens == 20
    assert "".join(event.delta.text for event in events if event.type == "content_block_delta") == (
        "It is sunny in Paris today.")
    assert (events[-2].usage.output_tokens, events[-2].delta.stop_reason) == (6, "end_turn")


def test_anthropic_stream_sends_a_ping_after_the_first_block_starts(stub):
    with httpx.stream("POST", stub.base_url + "/v1/messages",
                      headers={"x-api-key": KEY, "anthropic-version": "2023-06-01"},
                      json={"model": "c", "max_tokens": 9, "messages": ASK, "stream": True}) as response:
        names = [line[len("event: "):] for line in response.iter_lines() if line.startswith("event: ")]
    assert names[:4] == ["message_start", "content_block_start", "ping", "content_block_delta"]
    assert response.headers["content-type"].startswith("text/event-stream")


def test_anthropic_sdk_assembles_a_streamed_tool_use_from_input_json_deltas(stub):
    stub.tool_calls = [WEATHER]
    with anthropic_client(stub).messages.stream(model="claude-stub", max_tokens=100, messages=ASK) as stream:
        partial = [event for event in stream if event.type == "input_json"]
        message = stream.get_final_message()
    assert len(partial) > 2
    assert [block.type for block in message.content] == ["text", "tool_use"]
    assert (message.content[1].name, message.content[1].input) == ("get_weather", WEATHER.arguments)
    assert message.stop_reason == "tool_use" and message.usage.output_tokens == 6


def test_anthropic_sdk_sees_429_529_and_a_prompt_too_long_as_their_errors(stub):
    stub.rate_limit(retry_after="2", times=1)
    stub.fail(529, times=1)
    stub.context_overflow(times=1)
    client = anthropic_client(stub)
    with pytest.raises(anthropic.RateLimitError) as limited:
        claude(client)
    assert limited.value.response.headers["retry-after"] == "2"
    with pytest.raises(anthropic.OverloadedError):
        claude(client)
    with pytest.raises(anthropic.BadRequestError, match="prompt is too long"):
        claude(client)
    assert claude(client).content[0].text


def test_anthropic_refuses_a_system_role_among_the_messages_as_the_real_api_does(stub):
    with pytest.raises(anthropic.BadRequestError, match="role"):
        anthropic_client(stub).messages.create(model="c", max_tokens=9,
                                               messages=[{"role": "system", "content": "be brief"}, *ASK])


def test_anthropic_sdk_raises_on_a_cut_stream_that_never_sends_message_delta(stub):
    stub.cut_after(3)
    seen = []
    with pytest.raises(anthropic.APIConnectionError):
        with anthropic_client(stub).messages.stream(model="claude-stub", max_tokens=100, messages=ASK) as stream:
            seen += [event.type for event in stream]
    assert "message_delta" not in seen and stub.requests[-1].streamed_text == "It is sunny "


# --- Ollama ---------------------------------------------------------------------------------------------------

def test_ollama_streams_ndjson_lines_and_a_last_line_with_the_counts(stub):
    with httpx.stream("POST", stub.base_url + "/api/chat", json={"model": "llama", "messages": ASK}) as response:
        lines = [json.loads(line) for line in response.iter_lines() if line]
    assert response.headers["content-type"] == "application/x-ndjson"
    assert [line["done"] for line in lines] == [False] * 6 + [True]
    assert "".join(line["message"]["content"] for line in lines) == "It is sunny in Paris today."
    assert (lines[-1]["prompt_eval_count"], lines[-1]["eval_count"], lines[-1]["done_reason"]) == (20, 6, "stop")


def test_ollama_answers_whole_when_told_not_to_stream_with_its_tool_calls(stub):
    stub.tool_calls = [WEATHER]
    answer = httpx.post(stub.base_url + "/api/chat", json={"model": "llama", "messages": ASK, "stream": False}).json()
    assert answer["done"] is True and answer["message"]["content"] == "It is sunny in Paris today."
    assert answer["message"]["tool_calls"] == [{"function": {"name": "get_weather", "arguments": WEATHER.arguments}}]


def test_ollama_errors_and_embeddings_have_ollamas_shapes(stub):
    stub.fail(500, times=1)
    failed = httpx.post(stub.base_url + "/api/chat", json={"model": "llama", "messages": ASK})
    assert (failed.status_code, failed.json()) == (500, {"error": "The server had an error."})
    embedded = httpx.post(stub.base_url + "/api/embed", json={"model": "nomic", "input": ["a", "b"]}).json()
    assert len(embedded["embeddings"]) == 2 and embedded["prompt_eval_count"] == 20


# --- in a coroutine -------------------------------------------------------------------------------------------

def test_the_stub_serves_on_the_running_loop_for_async_sdk_clients():
    async def scenario() -> tuple[str, str]:
        async with ProviderStub() as stub:
            client = openai.AsyncOpenAI(base_url=stub.base_url + "/v1", api_key="sk-stub-key", max_retries=0)
            stream = await client.chat.completions.create(model="m", messages=ASK, stream=True)
            streamed = "".join([chunk.choices[0].delta.content or "" async for chunk in stream])
            claude_client = anthropic.AsyncAnthropic(base_url=stub.base_url, api_key="sk-stub-key", max_retries=0)
            message = await claude_client.messages.create(model="c", max_tokens=9, messages=ASK)
            await client.close()
            await claude_client.close()
            return streamed, message.content[0].text

    streamed, whole = asyncio.run(scenario())
    assert streamed == whole == "The stub provider says hello to you."
