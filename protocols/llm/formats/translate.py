"""The translation entry points: a client's request to a provider's, a provider's answer to the client's format."""
from __future__ import annotations

from typing import Any, Literal

from protocols.llm.formats import anthropic_wire, ollama_wire, openai_wire
from protocols.llm.formats.chat import ChatRequest, ChatResponse, Json, Usage, WireFormat

ProviderKind = Literal["openai", "openai_compatible", "anthropic", "ollama"]
ClientFormat = Literal["openai", "anthropic"]


def wire_of(provider: ProviderKind) -> WireFormat:
    """The wire format a provider kind speaks (an OpenAI-compatible server speaks OpenAI's)."""
    return "openai" if provider == "openai_compatible" else provider


def parse_request(client: ClientFormat, body: Json) -> ChatRequest:
    """A front door's request body (already JSON-decoded); FormatError (400) names the field at fault."""
    return anthropic_wire.parse_request(body) if client == "anthropic" else openai_wire.parse_request(body)


def render_request(request: ChatRequest, provider: ProviderKind, model: str) -> Json:
    """The provider's request body for `model`; FormatError (400) when the request asks for something the
    provider's format cannot express."""
    if provider == "anthropic":
        return anthropic_wire.render_request(request, model)
    if provider == "ollama":
        return ollama_wire.render_request(request, model)
    # OpenAI's reasoning models take only max_completion_tokens; OpenAI-compatible servers (vLLM, LiteLLM,
    # llama.cpp...) all know max_tokens and not all know the newer name.
    field = "max_completion_tokens" if provider == "openai" else "max_tokens"
    return openai_wire.render_request(request, model, max_tokens_field=field)


def parse_response(provider: ProviderKind, answer: Any) -> ChatResponse:
    """A provider's non-streamed answer; ProviderFormatError (502) when it is not one."""
    wire = wire_of(provider)
    if wire == "anthropic":
        return anthropic_wire.parse_response(answer)
    if wire == "ollama":
        return ollama_wire.parse_response(answer)
    return openai_wire.parse_response(answer)


def render_response(client: ClientFormat, response: ChatResponse, model: str | None = None) -> Json:
    """The client's answer; `model` is the name the client sees (the provider's when None)."""
    if client == "anthropic":
        return anthropic_wire.render_response(response, model)
    return openai_wire.render_response(response, model)


def render_error(client: ClientFormat, status: int, message: str, *, type: str | None = None,
                 param: str | None = None) -> Json:
    """An error body the client's SDK reads as its own (status, type and message)."""
    if client == "anthropic":
        return anthropic_wire.render_error(status, message, type=type)
    return openai_wire.render_error(status, message, type=type, param=param)


def fill_usage(response: ChatResponse, prompt_tokens: int, count: Any) -> Usage:
    """The answer's usage, counted by Rusta when the provider reported none (so no answer costs zero): the
    prompt's own count and `count` (a token counter's count) over the answer's text and tool calls."""
    if not response.usage.estimated:
        return response.usage
    output = count(response.text) + sum(count(call.name) + count(call.arguments) for call in response.tool_calls)
    response.usage = Usage(input_tokens=prompt_tokens, output_tokens=int(output), estimated=True)
    return response.usage
