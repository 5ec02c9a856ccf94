"""The front doors' model lists, written from a route's targets and read by the official openai and anthropic SDKs
(through an httpx2 MockTransport standing in for the route)."""
from __future__ import annotations

from datetime import UTC, datetime

import anthropic
import httpx2
import openai
import pytest

from protocols.llm.formats.chat import FormatError
from protocols.llm.formats.models import (
    ModelEntry,
    parse_anthropic_page,
    render_anthropic_list,
    render_anthropic_model,
    render_openai_list,
    render_openai_model,
)
from protocols.llm.formats.translate import render_error

TARGETS: list[ModelEntry] = [("gpt-4o", "openai"), ("claude-sonnet-4-5", "anthropic"), ("llama3.2", "ollama"),
                             ("gpt-4o", "openai_compatible"), ("qwen3", "openai_compatible")]
CREATED = 1764590400  # 2025-12-01T12:00:00Z


def openai_route(request: httpx2.Request) -> httpx2.Response:
    path = request.url.path.removeprefix("/v1/models")
    if not path:
        return httpx2.Response(200, json=render_openai_list(TARGETS, created=CREATED))
    model = render_openai_model(TARGETS, path.lstrip("/"), created=CREATED)
    if model is None:
        return httpx2.Response(404, json=render_error("openai", 404, "No such model."))
    return httpx2.Response(200, json=model)


def anthropic_route(request: httpx2.Request) -> httpx2.Response:
    path = request.url.path.removeprefix("/v1/models")
    try:
        if not path:
            page = parse_anthropic_page(dict(request.url.params))
            return httpx2.Response(200, json=render_anthropic_list(TARGETS, page, created=CREATED))
    except FormatError as error:
        return httpx2.Response(400, json=render_error("anthropic", 400, error.message))
    model = render_anthropic_model(TARGETS, path.lstrip("/"), created=CREATED)
    if model is None:
        return httpx2.Response(404, json=render_error("anthropic", 404, "No such model."))
    return httpx2.Response(200, json=model)


def openai_client() -> openai.OpenAI:
    return openai.OpenAI(api_key="k", base_url="http://gateway.test/v1", max_retries=0,
                         http_client=httpx2.Client(transport=httpx2.MockTransport(openai_route)))


def anthropic_client() -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key="k", base_url="http://gateway.test", max_retries=0,
                               http_client=httpx2.Client(transport=httpx2.MockTransport(anthropic_route)))


# --- OpenAI -----------------------------------------------------------------------------------------------------

def test_openai_sdk_lists_each_model_of_the_route_once_in_its_order():
    models = list(openai_client().models.list())
    assert [model.id for model in models] == ["gpt-4o", "claude-sonnet-4-5", "llama3.2", "qwen3"]
    assert [model.owned_by for model in models] == ["openai", "anthropic", "ollama", "openai_compatible"]
    assert {model.object for model in models} == {"model"} and {model.created for model in models} == {CREATED}


def test_openai_sdk_retrieves_one_model_and_gets_not_found_for_another():
    assert openai_client().models.retrieve("llama3.2").owned_by == "ollama"
    with pytest.raises(openai.NotFoundError):
        openai_client().models.retrieve("gpt-5")


def test_a_route_without_targets_lists_no_models():
    assert render_openai_list([]) == {"object": "list", "data": []}
    assert render_anthropic_list([]) == {"data": [], "has_more": False, "first_id": None, "last_id": None}


# --- Anthropic --------------------------------------------------------------------------------------------------

def test_anthropic_sdk_lists_the_models_with_their_anthropic_shape():
    models = list(anthropic_client().models.list())
    assert [model.id for model in models] == ["gpt-4o", "claude-sonnet-4-5", "llama3.2", "qwen3"]
    assert {model.type for model in models} == {"model"}
    assert models[1].display_name == "claude-sonnet-4-5"
    assert models[0].created_at == datetime(2025, 12, 1, 12, tzinfo=UTC)


def test_anthropic_sdk_pages_through_the_list_a_limit_at_a_time():
    client = anthropic_client()
    first = client.models.list(limit=3)
    assert [model.id for model in first.data] == ["gpt-4o", "claude-sonnet-4-5", "llama3.2"]
    assert first.has_more and first.last_id == "llama3.2"
    assert [model.id for model in first] == ["gpt-4o", "claude-sonnet-4-5", "llama3.2", "qwen3"]  # auto-paging


def test_anthropic_sdk_pages_backwards_before_an_id():
    page = anthropic_client().models.list(before_id="qwen3", limit=2)
    assert [model.id for model in page.data] == ["claude-sonnet-4-5", "llama3.2"]
    assert page.has_more and page.first_id == "claude-sonnet-4-5"


def test_anthropic_sdk_retrieves_one_model_and_gets_not_found_for_another():
    assert anthropic_client().models.retrieve("qwen3").id == "qwen3"
    with pytest.raises(anthropic.NotFoundError):
        anthropic_client().models.retrieve("claude-opus-9")


def test_anthropic_sdk_sees_a_cursor_of_no_model_as_a_bad_request():
    with pytest.raises(anthropic.BadRequestError, match="after_id: 'gone' is not a model of this route"):
        anthropic_client().models.list(after_id="gone")


@pytest.mark.parametrize(("query", "param"), [
    ({"limit": "0"}, "limit"), ({"limit": "1001"}, "limit"), ({"limit": "ten"}, "limit"),
    ({"after_id": "a", "before_id": "b"}, "before_id"),
])
def test_a_wrong_page_request_is_a_bad_request_naming_the_parameter(query, param):
    with pytest.raises(FormatError) as caught:
        parse_anthropic_page(query)
    assert caught.value.status == 400 and caught.value.param == param
