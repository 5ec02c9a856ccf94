"""OpenAI's /v1/embeddings front door: requests for each provider kind, answers read back in the client's encoding,
checked by the official openai SDK (through an httpx2 MockTransport standing in for the route)."""
from __future__ import annotations

import base64
import json
import struct
from typing import Any

import httpx2
import openai
import pytest

from protocols.llm.formats.chat import FormatError, ProviderFormatError
from protocols.llm.formats.embeddings import (
    EMBEDDINGS_PATHS,
    can_serve,
    fill_usage,
    parse_request,
    parse_response,
    render_request,
    render_response,
)
from tests.support.llm_wire import Usage, embedding, ollama_embed, openai_embeddings

TEXTS = ["The food was delicious.", "The waiter was rude."]


def provider_answer(provider: str, body: dict[str, Any]) -> dict[str, Any]:
    """What the loopback stub provider answers to `body` (8 dimensions, 7 prompt tokens)."""
    inputs = body["input"]
    texts = [inputs] if isinstance(inputs, str) else inputs
    if provider == "ollama":
        raw = ollama_embed(body["model"], texts, 8, Usage(input=7))
    else:
        raw = openai_embeddings(body["model"], texts, 8, body.get("encoding_format") or "float", Usage(input=7))
    answer: dict[str, Any] = json.loads(raw)
    return answer


def sdk_through(provider: str, seen: list[dict[str, Any]]) -> openai.OpenAI:
    """An OpenAI SDK client whose route sends every embeddings request to one `provider`."""

    def handle(request: httpx2.Request) -> httpx2.Response:
        try:
            parsed = parse_request(json.loads(request.content))
            body = render_request(parsed, provider, "provider-embedder")  # type: ignore[arg-type]
        except FormatError as error:
            return httpx2.Response(400, json={"error": {"message": error.message, "type": "invalid_request_error",
                                                        "param": error.param, "code": None}})
        seen.append(body)
        answer = parse_response(provider, provider_answer(provider, body))  # type: ignore[arg-type]
        return httpx2.Response(200, json=render_response(answer, parsed.encoding_format, parsed.model))

    return openai.OpenAI(api_key="rusta-key", base_url="http://gateway.test/v1", max_retries=0,
                         http_client=httpx2.Client(transport=httpx2.MockTransport(handle)))


def float32(values: list[float]) -> list[float]:
    return list(struct.unpack(f"<{len(values)}f", struct.pack(f"<{len(values)}f", *values)))


# --- Which provider serves embeddings ---------------------------------------------------------------------------

def test_anthropic_targets_cannot_serve_embeddings_but_can_chat_and_be_listed():
    assert not can_serve("anthropic", "embeddings")
    assert can_serve("anthropic", "chat") and can_serve("anthropic", "models")
    assert all(can_serve(kind, "embeddings") for kind in ("openai", "openai_compatible", "ollama"))
    assert EMBEDDINGS_PATHS["ollama"] == b"/api/embed" and EMBEDDINGS_PATHS["openai"] == b"/v1/embeddings"


def test_an_embeddings_request_rendered_for_anthropic_is_a_bad_request():
    with pytest.raises(FormatError) as caught:
        render_request(parse_request({"model": "m", "input": "hi"}), "anthropic", "claude")
    assert caught.value.status == 400 and caught.value.param == "model"


# --- The SDK in front, each provider behind ---------------------------------------------------------------------

@pytest.mark.parametrize("provider", ["openai", "openai_compatible", "ollama"])
def test_openai_sdk_gets_its_default_base64_vectors_from(provider):
    seen: list[dict[str, Any]] = []
    result = sdk_through(provider, seen).embeddings.create(model="front-embedder", input=TEXTS)
    assert result.model == "front-embedder"
    assert [item.index for item in result.data] == [0, 1]
    assert [item.embedding for item in result.data] == [float32(embedding(text, 8)) for text in TEXTS]
    assert result.usage.prompt_tokens == 7 and result.usage.total_tokens == 7
    assert seen[0]["model"] == "provider-embedder"


def test_openai_sdk_gets_floats_from_ollama_when_it_asks_for_floats():
    result = sdk_through("ollama", []).embeddings.create(model="e", input="Hello", encoding_format="float")
    assert result.data[0].embedding == embedding("Hello", 8)


def test_an_explicit_base64_request_gets_float32_little_endian_base64_from_ollama():
    result = sdk_through("ollama", []).embeddings.create(model="e", input="Hello", encoding_format="base64")
    text = result.data[0].embedding
    assert isinstance(text, str)
    assert list(struct.unpack("<8f", base64.b64decode(text))) == float32(embedding("Hello", 8))


def test_openai_base64_is_passed_on_as_the_provider_sent_it():
    answer = provider_answer("openai", {"model": "m", "input": ["x"], "encoding_format": "base64"})
    rendered = render_response(parse_response("openai", answer), "base64")
    assert rendered["data"][0]["embedding"] == answer["data"][0]["embedding"]


def test_openai_sdk_sees_token_arrays_refused_for_ollama_naming_input():
    with pytest.raises(openai.BadRequestError) as caught:
        sdk_through("ollama", []).embeddings.create(model="e", input=[[15339, 1917]])
    assert caught.value.param == "input"
    assert "token arrays" in caught.value.message


# --- Requests ---------------------------------------------------------------------------------------------------

def test_an_openai_style_provider_gets_the_clients_body_with_its_model():
    body = {"model": "front", "input": [[1, 2], [3]], "encoding_format": "base64", "dimensions": 4,
            "user": "u-1", "future_field": {"x": 1}}
    for provider in ("openai", "openai_compatible"):
        assert render_request(parse_request(body), provider, "text-embedding-3-small") == {
            **body, "model": "text-embedding-3-small"}


def test_ollama_gets_the_texts_the_dimensions_and_no_silent_truncation():
    request = parse_request({"model": "front", "input": "Hello", "dimensions": 256, "user": "u-1",
                             "encoding_format": "base64"})
    assert render_request(request, "ollama", "nomic-embed-text") == {
        "model": "nomic-embed-text", "input": ["Hello"], "truncate": False, "dimensions": 256}


def test_a_field_ollama_has_no_place_for_is_refused_by_name():
    with pytest.raises(FormatError, match="future_field: cannot be translated"):
        render_request(parse_request({"model": "m", "input": "x", "future_field": 1}), "ollama", "m")


@pytest.mark.parametrize(("body", "param"), [
    ({"input": "x"}, "model"),
    ({"model": "m", "input": ""}, "input"),
    ({"model": "m", "input": []}, "input"),
    ({"model": "m", "input": ["ok", 3]}, "input[1]"),
    ({"model": "m", "input": ["ok", ""]}, "input[1]"),
    ({"model": "m", "input": [[1], [-2]]}, "input[1]"),
    ({"model": "m", "input": ["ok", [1]]}, "input"),
    ({"model": "m", "input": "x", "encoding_format": "int8"}, "encoding_format"),
    ({"model": "m", "input": "x", "dimensions": 0}, "dimensions"),
])
def test_a_malformed_request_is_a_bad_request_naming_the_field(body, param):
    with pytest.raises(FormatError) as caught:
        parse_request(body)
    assert caught.value.status == 400 and caught.value.param == param


def test_every_input_form_is_read():
    assert parse_request({"model": "m", "input": "a"}).texts == ["a"]
    assert parse_request({"model": "m", "input": ["a", "b"]}).texts == ["a", "b"]
    assert parse_request({"model": "m", "input": [1, 2, 3]}).tokens == [[1, 2, 3]]
    assert parse_request({"model": "m", "input": [[1, 2], [3]]}).tokens == [[1, 2], [3]]


def test_the_prompt_is_counted_and_guarded_like_a_chats():
    request = parse_request({"model": "m", "input": ["four words are here", "two words"]})
    assert request.role_texts() == [("user", "four words are here"), ("user", "two words")]
    assert request.prompt_tokens(lambda text: len(text.split())) == 6
    assert parse_request({"model": "m", "input": [[1, 2], [3]]}).prompt_tokens(len) == 3


# --- Answers ----------------------------------------------------------------------------------------------------

def test_openai_vectors_are_put_in_input_order():
    answer = provider_answer("openai", {"model": "m", "input": TEXTS})
    answer["data"].reverse()
    parsed = parse_response("openai", answer)
    assert [vector.as_floats() for vector in parsed.vectors] == [embedding(text, 8) for text in TEXTS]


def test_usage_is_read_from_each_provider():
    assert parse_response("openai", provider_answer("openai", {"model": "m", "input": "x"})).usage.input_tokens == 7
    ollama = parse_response("ollama", provider_answer("ollama", {"model": "m", "input": "x"}))
    assert ollama.usage.input_tokens == 7 and not ollama.usage.estimated


def test_an_answer_without_usage_is_counted_by_rusta_never_zero():
    answer = provider_answer("ollama", {"model": "m", "input": "x"})
    del answer["prompt_eval_count"]
    parsed = parse_response("ollama", answer)
    assert parsed.usage.estimated
    assert fill_usage(parsed, 5).input_tokens == 5
    assert render_response(parsed, "float")["usage"] == {"prompt_tokens": 5, "total_tokens": 5}


@pytest.mark.parametrize(("provider", "answer"), [
    ("openai", {"object": "list"}),
    ("openai", {"data": [{"index": 0, "embedding": ["a"]}]}),
    ("openai", {"data": [{"index": 0, "embedding": "AAA="}]}),  # 2 bytes: not a float32
    ("ollama", {"embeddings": "nope"}),
    ("ollama", ["not", "an", "object"]),
])
def test_an_unreadable_provider_answer_is_a_bad_gateway(provider, answer):
    with pytest.raises(ProviderFormatError) as caught:
        parse_response(provider, answer)
    assert caught.value.status == 502
