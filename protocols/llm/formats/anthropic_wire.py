"""Anthropic's messages format: requests and non-streamed answers, parsed into and rendered from the neutral form."""
from __future__ import annotations

import json
import time
from typing import Any

from protocols.llm.formats import usage as usage_wire
from protocols.llm.formats.chat import (
    DEFAULT_ANTHROPIC_MAX_TOKENS,
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
    stops,
    string,
)

_MODELLED = frozenset({"model", "messages", "system", "max_tokens", "temperature", "top_p", "stop_sequences",
                       "stream", "metadata", "tools", "tool_choice"})
_DROPPABLE = frozenset({"service_tier"})
_NEUTRAL_VALUES: dict[str, tuple[Any, ...]] = {"thinking": ({"type": "disabled"}, None)}
_STOP_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop", "max_tokens": "length",
    "model_context_window_exceeded": "length", "tool_use": "tool_calls", "refusal": "content_filter",
}
_TO_STOP_REASON = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal"}
# Anthropic's documented range; OpenAI's goes to 2, and a request past 1 is refused here rather than by Anthropic.
MAX_TEMPERATURE = 1.0


# --- Requests -----------------------------------------------------------------------------------------------

def parse_request(body: Json) -> ChatRequest:
    """An Anthropic messages request body; raises FormatError naming the first field that is wrong."""
    model = string(body.get("model"), "model")
    messages: list[Message] = _parse_system(body.get("system"))
    for index, item in enumerate(lst(body.get("messages"), "messages")):
        messages.extend(_parse_message(obj(item, f"messages[{index}]"), f"messages[{index}]"))
    tools = [_parse_tool(obj(item, f"tools[{index}]"), f"tools[{index}]")
             for index, item in enumerate(lst(body.get("tools") or [], "tools"))]
    tool_choice, parallel = _parse_tool_choice(body.get("tool_choice"))
    metadata = obj(body.get("metadata") or {}, "metadata")
    extra = {key: value for key, value in body.items() if key not in _MODELLED}
    request = ChatRequest(
        source="anthropic", model=model, messages=messages, tools=tools, tool_choice=tool_choice,
        parallel_tool_calls=parallel, max_tokens=integer(body.get("max_tokens"), "max_tokens"),
        temperature=number(body.get("temperature"), "temperature"), top_p=number(body.get("top_p"), "top_p"),
        stop=stops(body.get("stop_sequences"), "stop_sequences"),
        stream=bool(boolean(body.get("stream"), "stream")),
        user=metadata.get("user_id") if isinstance(metadata.get("user_id"), str) else None, extra=extra,
    )
    if request.max_tokens is None:
        raise FormatError("max_tokens", "is required")
    request.droppable = frozenset(
        key for key, value in extra.items() if key in _DROPPABLE or value in _NEUTRAL_VALUES.get(key, ()))
    return request


def _parse_system(system: Any) -> list[Message]:
    if system is None:
        return []
    parts = _parse_blocks(system, "system")
    for index, part in enumerate(parts):
        if not isinstance(part, TextPart):
            raise FormatError(f"system[{index}]", "a system prompt holds text blocks only")
    return [Message("system", parts)]


def _parse_message(item: Json, path: str) -> list[Message]:
    """One Anthropic message; a user message's tool_result blocks become tool messages of their own, first."""
    role = item.get("role")
    if role not in ("user", "assistant"):
        raise FormatError(f"{path}.role", "must be user or assistant")
    content = item.get("content")
    out: list[Message] = []
    parts: list[Part] = []
    calls: list[ToolCall] = []
    raw_blocks = [{"type": "text", "text": content}] if isinstance(content, str) else lst(content, f"{path}.content")
    for index, raw in enumerate(raw_blocks):
        where = f"{path}.content[{index}]"
        block = obj(raw, where)
        kind = block.get("type")
        if kind == "tool_use" and role == "assistant":
            calls.append(ToolCall(string(block.get("id"), f"{where}.id"), string(block.get("name"), f"{where}.name"),
                                  json.dumps(obj(block.get("input", {}), f"{where}.input"), separators=(",", ":"))))
        elif kind == "tool_result" and role == "user":
            result = block.get("content", "")
            out.append(Message("tool", _parse_blocks(result, f"{where}.content"),
                               tool_call_id=string(block.get("tool_use_id"), f"{where}.tool_use_id"),
                               is_error=bool(boolean(block.get("is_error"), f"{where}.is_error"))))
        else:
            parts.extend(_parse_blocks([block], where, indexed=False))
    if parts or calls or not out:
        out.append(Message(role, parts, tool_calls=calls))
    return out


def _parse_blocks(content: Any, path: str, indexed: bool = True) -> list[Part]:
    if isinstance(content, str):
        return [TextPart(content)]
    parts: list[Part] = []
    for index, raw in enumerate(lst(content, path)):
        where = f"{path}[{index}]" if indexed else path
        block = obj(raw, where)
        kind = block.get("type")
        if kind == "text":
            parts.append(TextPart(string(block.get("text"), f"{where}.text"),
                                  {key: value for key, value in block.items() if key not in ("type", "text")}))
        elif kind == "image":
            source = obj(block.get("source"), f"{where}.source")
            extra = {key: value for key, value in block.items() if key not in ("type", "source")}
            if source.get("type") == "base64":
                parts.append(ImagePart(data=string(source.get("data"), f"{where}.source.data"),
                                       media_type=string(source.get("media_type"), f"{where}.source.media_type"),
                                       extra=extra))
            elif source.get("type") == "url":
                parts.append(ImagePart(url=string(source.get("url"), f"{where}.source.url"), extra=extra))
            else:
                parts.append(OpaquePart("anthropic", block))
        else:
            parts.append(OpaquePart("anthropic", block))
    return parts


def _parse_tool(tool: Json, path: str) -> Tool:
    if tool.get("type") not in (None, "custom"):
        raise FormatError(f"{path}.type", f"server tool '{tool.get('type')}' can only be sent to Anthropic")
    return Tool(string(tool.get("name"), f"{path}.name"),
                tool.get("description") if isinstance(tool.get("description"), str) else None,
                obj(tool.get("input_schema"), f"{path}.input_schema"))


def _parse_tool_choice(value: Any) -> tuple[str | None, bool | None]:
    if value is None:
        return None, None
    choice = obj(value, "tool_choice")
    parallel = None if choice.get("disable_parallel_tool_use") is None else \
        not boolean(choice.get("disable_parallel_tool_use"), "tool_choice.disable_parallel_tool_use")
    kind = choice.get("type")
    if kind == "tool":
        return string(choice.get("name"), "tool_choice.name"), parallel
    names = {"auto": "auto", "any": "required", "none": "none"}
    if kind not in names:
        raise FormatError("tool_choice.type", "must be auto, any, tool or none")
    return names[kind], parallel


def render_request(request: ChatRequest, model: str) -> Json:
    """The body for Anthropic. System messages anywhere become the top-level `system` (Anthropic has no other
    place for them); tool results go back as tool_result blocks in user turns; consecutive turns of one role are
    merged, as Anthropic would merge them; a request without max_tokens asks for DEFAULT_ANTHROPIC_MAX_TOKENS."""
    check_extras(request.extra, request.droppable, "", request.source, "anthropic")
    if request.temperature is not None and request.temperature > MAX_TEMPERATURE:
        raise FormatError("temperature", f"Anthropic accepts 0 to {MAX_TEMPERATURE:g}, not {request.temperature:g}")
    same = request.source == "anthropic"
    system: list[Json] = []
    turns: list[Json] = []
    for index, message in enumerate(request.messages):
        path = f"messages[{index}]"
        check_extras(message.extra, {"name"}, path, request.source, "anthropic")
        if message.role == "system":
            system.extend(_render_parts(message.content, path, same))
            continue
        role = "assistant" if message.role == "assistant" else "user"
        if message.role == "tool":
            result: Json = {"type": "tool_result", "tool_use_id": message.tool_call_id,
                            "content": _render_parts(message.content, path, same)}
            if message.is_error:
                result["is_error"] = True
            blocks = [result]
        else:
            blocks = _render_parts(message.content, path, same)
            blocks += [{"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments_object()}
                       for call in message.tool_calls]
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    body: Json = {"model": model, "messages": turns,
                  "max_tokens": request.max_tokens if request.max_tokens is not None else DEFAULT_ANTHROPIC_MAX_TOKENS}
    if system:
        body["system"] = system if any(len(block) > 2 for block in system) else \
            "\n\n".join(block["text"] for block in system)
    if request.tools:
        body["tools"] = [{"name": tool.name, **({"description": tool.description} if tool.description else {}),
                          "input_schema": tool.parameters} for tool in request.tools]
    choice = _render_tool_choice(request)
    if choice is not None:
        body["tool_choice"] = choice
    for key in ("temperature", "top_p"):
        if getattr(request, key) is not None:
            body[key] = getattr(request, key)
    if request.stop:
        body["stop_sequences"] = request.stop
    if request.user is not None:
        body["metadata"] = {"user_id": request.user}
    if same:
        body.update(request.extra)
    if request.stream:
        body["stream"] = True
    return body


def _render_parts(parts: list[Part], path: str, same: bool) -> list[Json]:
    blocks: list[Json] = []
    for index, part in enumerate(parts):
        if isinstance(part, TextPart):
            if part.text or same:  # Anthropic refuses empty text blocks
                blocks.append({"type": "text", "text": part.text, **(part.extra if same else {})})
        elif isinstance(part, ImagePart):
            source = {"type": "url", "url": part.url} if part.url is not None else \
                {"type": "base64", "media_type": part.media_type, "data": part.data}
            blocks.append({"type": "image", "source": source, **(part.extra if same else {})})
        elif part.format == "anthropic":
            blocks.append(part.raw)
        else:
            raise FormatError(f"{path}.content[{index}]",
                              f"a '{part.kind}' part cannot be translated from the {part.format} format to anthropic")
    return blocks


def _render_tool_choice(request: ChatRequest) -> Json | None:
    choice = request.tool_choice
    if choice is None and request.parallel_tool_calls is None:
        return None
    kinds = {"auto": {"type": "auto"}, "required": {"type": "any"}, "none": {"type": "none"}, None: {"type": "auto"}}
    out: Json = dict(kinds[choice]) if choice in kinds else {"type": "tool", "name": choice}
    if request.parallel_tool_calls is not None and out["type"] != "none":
        out["disable_parallel_tool_use"] = not request.parallel_tool_calls
    return out


# --- Non-streamed answers -----------------------------------------------------------------------------------

def parse_response(answer: Any) -> ChatResponse:
    """An Anthropic message answer. Raises ProviderFormatError when it is not one."""
    try:
        if answer.get("type") != "message":
            raise ValueError(f"type is {answer.get('type')!r}")
        text = "".join(block["text"] for block in answer["content"] if block.get("type") == "text")
        calls = [ToolCall(block["id"], block["name"], json.dumps(block.get("input") or {}, separators=(",", ":")))
                 for block in answer["content"] if block.get("type") == "tool_use"]
        usage = usage_wire.from_anthropic(answer.get("usage"))
        return ChatResponse(
            id=str(answer.get("id") or new_id("msg_")), model=str(answer.get("model", "")), text=text,
            tool_calls=calls, finish_reason=stop_reason(answer.get("stop_reason"), bool(calls)),
            usage=usage if usage is not None else Usage(estimated=True), created=int(time.time()),
            stop_sequence=answer.get("stop_sequence"),
        )
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise ProviderFormatError("anthropic", f"not a message ({exc!r})") from exc


def stop_reason(value: Any, has_tool_calls: bool = False) -> FinishReason:
    if value in _STOP_REASONS:
        return _STOP_REASONS[value]
    return "tool_calls" if has_tool_calls else "stop"


def to_stop_reason(reason: FinishReason, stop_sequence: str | None = None) -> str:
    return "stop_sequence" if reason == "stop" and stop_sequence else _TO_STOP_REASON[reason]


def render_response(response: ChatResponse, model: str | None = None) -> Json:
    content: list[Json] = [{"type": "text", "text": response.text}] if response.text or not response.tool_calls \
        else []
    content += [{"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments_object()}
                for call in response.tool_calls]
    return {
        "id": response.id if response.id.startswith("msg_") else f"msg_{response.id}", "type": "message",
        "role": "assistant", "model": model or response.model, "content": content,
        "stop_reason": to_stop_reason(response.finish_reason, response.stop_sequence),
        "stop_sequence": response.stop_sequence, "usage": usage_wire.to_anthropic(response.usage),
    }


_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 529: "overloaded_error"}


def render_error(status: int, message: str, *, type: str | None = None) -> Json:
    """The body Anthropic answers errors with; its SDK raises the exception the status maps to, with `message`."""
    return {"type": "error", "error": {"type": type or _ERROR_TYPES.get(status, "api_error"), "message": message}}
