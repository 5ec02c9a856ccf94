"""OpenAI's chat.completions format: requests and non-streamed answers, to and from the neutral form."""
from __future__ import annotations

import base64
import binascii
import time
from typing import Any

from protocols.llm.formats import usage as usage_wire
from protocols.llm.formats.chat import (
    ChatRequest,
    ChatResponse,
    FinishReason,
    FormatError,
    ImagePart,
    Json,
    Message,
    OpaquePart,
    Part,
    ProviderFormatError,
    TextPart,
    Tool,
    ToolCall,
    Usage,
    new_id,
)
from protocols.llm.formats.fields import (
    boolean,
    check_extras,
    integer,
    lst,
    number,
    obj,
    opt_string,
    stops,
    string,
)

_MODELLED = frozenset({
    "model", "messages", "tools", "tool_choice", "parallel_tool_calls", "max_tokens", "max_completion_tokens",
    "temperature", "top_p", "stop", "stream", "stream_options", "user",
})
# Dropped on the way to another format: hints about storage, caching, billing or determinism, none of which
# changes what the answer says.
_DROPPABLE = frozenset({"store", "metadata", "service_tier", "seed", "prompt_cache_key", "safety_identifier",
                        "prompt_cache_retention"})
# Fields that may also be dropped when they hold the value that means "nothing special".
_NEUTRAL_VALUES: dict[str, tuple[Any, ...]] = {
    "n": (1, None), "logprobs": (False, None), "presence_penalty": (0, None), "frequency_penalty": (0, None),
    "logit_bias": ({}, None), "response_format": ({"type": "text"}, None), "modalities": (["text"], None),
}
_FINISH_REASONS: dict[str, FinishReason] = {
    "stop": "stop", "length": "length", "tool_calls": "tool_calls", "function_call": "tool_calls",
    "content_filter": "content_filter",
}


# --- Requests -----------------------------------------------------------------------------------------------

def parse_request(body: Json) -> ChatRequest:
    """An OpenAI chat.completions request body; raises FormatError naming the first field that is wrong."""
    model = string(body.get("model"), "model")
    messages = [_parse_message(obj(item, f"messages[{index}]"), f"messages[{index}]")
                for index, item in enumerate(lst(body.get("messages"), "messages"))]
    tools = [_parse_tool(obj(item, f"tools[{index}]"), f"tools[{index}]")
             for index, item in enumerate(lst(body.get("tools") or [], "tools"))]
    stream_options = obj(body.get("stream_options") or {}, "stream_options")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    extra = {key: value for key, value in body.items() if key not in _MODELLED}
    request = ChatRequest(
        source="openai", model=model, messages=messages, tools=tools,
        tool_choice=_parse_tool_choice(body.get("tool_choice")),
        parallel_tool_calls=boolean(body.get("parallel_tool_calls"), "parallel_tool_calls"),
        max_tokens=integer(max_tokens, "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"),
        temperature=number(body.get("temperature"), "temperature"), top_p=number(body.get("top_p"), "top_p"),
        stop=stops(body.get("stop"), "stop"), stream=bool(boolean(body.get("stream"), "stream")),
        include_usage=bool(boolean(stream_options.get("include_usage"), "stream_options.include_usage")),
        user=opt_string(body.get("user"), "user"), extra=extra,
    )
    request.droppable = frozenset(
        key for key, value in extra.items() if key in _DROPPABLE or value in _NEUTRAL_VALUES.get(key, ()))
    return request


def _parse_message(item: Json, path: str) -> Message:
    role = item.get("role")
    extra = {key: value for key, value in item.items()
             if key not in ("role", "content", "tool_calls", "tool_call_id")}
    content = item.get("content")
    if role in ("system", "developer"):
        if role == "developer":
            extra["role"] = "developer"  # given back to OpenAI as it came
        return Message("system", _parse_content(content, f"{path}.content"), extra=extra)
    if role == "user":
        return Message("user", _parse_content(content, f"{path}.content"), extra=extra)
    if role == "assistant":
        calls = [_parse_tool_call(obj(call, f"{path}.tool_calls[{index}]"), f"{path}.tool_calls[{index}]")
                 for index, call in enumerate(lst(item.get("tool_calls") or [], f"{path}.tool_calls"))]
        parts = [] if content is None else _parse_content(content, f"{path}.content")
        return Message("assistant", parts, tool_calls=calls, extra=extra)
    if role == "tool":
        call_id = string(item.get("tool_call_id"), f"{path}.tool_call_id")
        return Message("tool", _parse_content(content, f"{path}.content"), tool_call_id=call_id, extra=extra)
    raise FormatError(f"{path}.role", "must be one of system, developer, user, assistant, tool")


def _parse_content(content: Any, path: str) -> list[Part]:
    if isinstance(content, str):
        return [TextPart(content)]
    parts: list[Part] = []
    for index, raw in enumerate(lst(content, path)):
        part = obj(raw, f"{path}[{index}]")
        kind = part.get("type")
        if kind == "text":
            parts.append(TextPart(string(part.get("text"), f"{path}[{index}].text"),
                                  {key: value for key, value in part.items() if key not in ("type", "text")}))
        elif kind == "image_url":
            image = obj(part.get("image_url"), f"{path}[{index}].image_url")
            url = string(image.get("url"), f"{path}[{index}].image_url.url")
            extra = {key: value for key, value in image.items() if key != "url"}
            parts.append(_image_from_url(url, f"{path}[{index}].image_url.url", extra))
        else:
            parts.append(OpaquePart("openai", part))
    return parts


def _image_from_url(url: str, path: str, extra: Json) -> ImagePart:
    """A data: URL becomes inline base64 (what Anthropic and Ollama take); any other URL stays a URL."""
    if not url.startswith("data:"):
        return ImagePart(url=url, extra=extra)
    head, _, data = url[5:].partition(",")
    media_type, _, encoding = head.partition(";")
    if encoding != "base64" or not media_type:
        raise FormatError(path, "a data: URL must be data:<media type>;base64,<data>")
    try:
        base64.b64decode(data[:64] + "=" * (-len(data[:64]) % 4), validate=True)
    except binascii.Error as exc:
        raise FormatError(path, "the data: URL's data is not base64") from exc
    return ImagePart(data=data, media_type=media_type, extra=extra)


def _parse_tool_call(call: Json, path: str) -> ToolCall:
    function = obj(call.get("function"), f"{path}.function")
    return ToolCall(string(call.get("id"), f"{path}.id"), string(function.get("name"), f"{path}.function.name"),
                    string(function.get("arguments", "{}"), f"{path}.function.arguments"))


def _parse_tool(tool: Json, path: str) -> Tool:
    if tool.get("type") != "function":
        raise FormatError(f"{path}.type", "only function tools can be translated")
    function = obj(tool.get("function"), f"{path}.function")
    # `strict` (schema-checked arguments) is OpenAI's own guarantee: kept for OpenAI, dropped for the others.
    return Tool(string(function.get("name"), f"{path}.function.name"),
                opt_string(function.get("description"), f"{path}.function.description"),
                obj(function.get("parameters") or {"type": "object", "properties": {}}, f"{path}.function.parameters"))


def _parse_tool_choice(value: Any) -> str | None:
    if value is None or value in ("auto", "none", "required"):
        return value  # type: ignore[no-any-return]
    choice = obj(value, "tool_choice")
    if choice.get("type") != "function":
        raise FormatError("tool_choice.type", "must be 'function'")
    return string(obj(choice.get("function"), "tool_choice.function").get("name"), "tool_choice.function.name")


def render_request(request: ChatRequest, model: str, *, max_tokens_field: str = "max_completion_tokens") -> Json:
    """The body for an OpenAI(-compatible) provider. A stream always asks for the usage chunk, whatever the client
    asked, so that spend is exact. `max_tokens_field`: OpenAI's reasoning models take only max_completion_tokens,
    while many OpenAI-compatible servers know only max_tokens."""
    check_extras(request.extra, request.droppable, "", request.source, "openai")
    body: Json = {"model": model, "messages": [_render_message(message, index, request)
                                               for index, message in enumerate(request.messages)]}
    if request.tools:
        body["tools"] = [{"type": "function", "function": _render_tool(tool)} for tool in request.tools]
    if request.tool_choice is not None:
        body["tool_choice"] = request.tool_choice if request.tool_choice in ("auto", "none", "required") else \
            {"type": "function", "function": {"name": request.tool_choice}}
    if request.parallel_tool_calls is not None:
        body["parallel_tool_calls"] = request.parallel_tool_calls
    if request.max_tokens is not None:
        body[max_tokens_field] = request.max_tokens
    for key in ("temperature", "top_p"):
        if getattr(request, key) is not None:
            body[key] = getattr(request, key)
    if request.stop:
        body["stop"] = request.stop
    if request.user is not None:
        body["user"] = request.user
    if request.source == "openai":
        body.update(request.extra)
    if request.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def _render_message(message: Message, index: int, request: ChatRequest) -> Json:
    path = f"messages[{index}]"
    check_extras(message.extra, {"name"}, path, request.source, "openai")
    out: Json = {"role": message.role}
    if message.role == "assistant":
        out["content"] = _render_content(message.content, path, request.source) or None
        if message.tool_calls:
            out["tool_calls"] = [{"id": call.id, "type": "function",
                                  "function": {"name": call.name, "arguments": call.arguments}}
                                 for call in message.tool_calls]
    elif message.role == "tool":
        out["tool_call_id"] = message.tool_call_id
        out["content"] = _render_content(message.content, path, request.source)
    else:
        out["content"] = _render_content(message.content, path, request.source)
    if request.source == "openai":
        out.update(message.extra)
    return out


def _render_content(parts: list[Part], path: str, source: str) -> str | list[Json]:
    if all(isinstance(part, TextPart) and (not part.extra or source != "openai") for part in parts):
        return "".join(part.text for part in parts if isinstance(part, TextPart))
    out: list[Json] = []
    for index, part in enumerate(parts):
        if isinstance(part, TextPart):
            out.append({"type": "text", "text": part.text, **(part.extra if source == "openai" else {})})
        elif isinstance(part, ImagePart):
            url = part.url if part.url is not None else f"data:{part.media_type};base64,{part.data}"
            out.append({"type": "image_url", "image_url": {"url": url, **(part.extra if source == "openai" else {})}})
        elif part.format == "openai":
            out.append(part.raw)
        else:
            raise FormatError(f"{path}.content[{index}]",
                              f"a '{part.kind}' part cannot be translated from the {part.format} format to openai")
    return out


def _render_tool(tool: Tool) -> Json:
    function: Json = {"name": tool.name, "parameters": tool.parameters}
    if tool.description is not None:
        function["description"] = tool.description
    return function


# --- Non-streamed answers -----------------------------------------------------------------------------------

def parse_response(answer: Any) -> ChatResponse:
    """An OpenAI chat.completion answer (its first choice). Raises ProviderFormatError when it is not one."""
    try:
        choice = answer["choices"][0]
        message = choice["message"]
        calls = [ToolCall(call["id"], call["function"]["name"], call["function"].get("arguments") or "{}")
                 for call in message.get("tool_calls") or []]
        usage = usage_wire.from_openai(answer.get("usage"))
        return ChatResponse(
            id=str(answer.get("id") or new_id("chatcmpl-")), model=str(answer.get("model", "")),
            text=message.get("content") or "", tool_calls=calls,
            finish_reason=finish_reason(choice.get("finish_reason"), bool(calls)),
            usage=usage if usage is not None else _missing_usage(), created=int(answer.get("created") or time.time()),
        )
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise ProviderFormatError("openai", f"not a chat.completion ({exc!r})") from exc


def _missing_usage() -> Usage:
    return Usage(estimated=True)


def finish_reason(value: Any, has_tool_calls: bool = False) -> FinishReason:
    if value in _FINISH_REASONS:
        return _FINISH_REASONS[value]
    return "tool_calls" if has_tool_calls else "stop"


def render_response(response: ChatResponse, model: str | None = None) -> Json:
    message: Json = {"role": "assistant", "content": response.text or None, "refusal": None}
    if response.tool_calls:
        message["tool_calls"] = [{"id": call.id, "type": "function",
                                  "function": {"name": call.name, "arguments": call.arguments}}
                                 for call in response.tool_calls]
    return {
        "id": response.id if response.id.startswith("chatcmpl-") else f"chatcmpl-{response.id}",
        "object": "chat.completion", "created": response.created, "model": model or response.model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": response.finish_reason}],
        "usage": usage_wire.to_openai(response.usage),
    }


def render_error(status: int, message: str, *, type: str | None = None, param: str | None = None) -> Json:
    """The body OpenAI answers errors with; its SDK raises the exception the status maps to, with `message`."""
    kind = type or {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                    404: "not_found_error", 429: "rate_limit_error"}.get(status, "api_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": None}}
