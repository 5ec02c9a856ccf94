"""Ollama's /api/chat format: requests rendered from the neutral form, answers (whole or one NDJSON line) parsed."""
from __future__ import annotations

import json
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
    ProviderFormatError,
    TextPart,
    ToolCall,
    Usage,
    new_id,
)
from protocols.llm.formats.fields import check_extras

# Fields of the client's format that Ollama has a place for (in `options` or `format`).
_UNDERSTOOD = {
    "openai": frozenset({"seed", "presence_penalty", "frequency_penalty", "response_format"}),
    "anthropic": frozenset({"top_k"}),
    "ollama": frozenset(),
}


def render_request(request: ChatRequest, model: str) -> Json:
    """The body for Ollama's /api/chat. Ollama streams unless told not to, so `stream` is always written; images
    must be inline (Ollama fetches no URL); tool_choice "none" sends no tools, "required" or a named tool is
    refused (Ollama cannot force a call)."""
    check_extras(request.extra, request.droppable, "", request.source, "ollama", _UNDERSTOOD[request.source])
    names = {call.id: call.name for message in request.messages for call in message.tool_calls}
    messages: list[Json] = []
    for index, message in enumerate(request.messages):
        path = f"messages[{index}]"
        check_extras(message.extra, {"name"}, path, request.source, "ollama")
        out: Json = {"role": message.role, "content": ""}
        texts: list[str] = []
        images: list[str] = []
        for number, part in enumerate(message.content):
            if isinstance(part, TextPart):
                texts.append(part.text)
            elif isinstance(part, ImagePart) and part.data is not None:
                images.append(part.data)
            elif isinstance(part, ImagePart):
                raise FormatError(f"{path}.content[{number}]", "Ollama takes inline (base64) images only, not URLs")
            else:
                raise FormatError(f"{path}.content[{number}]",
                                  f"a '{part.kind}' part cannot be translated from the {part.format} format to ollama")
        out["content"] = "".join(texts)
        if images:
            out["images"] = images
        if message.tool_calls:
            out["tool_calls"] = [{"function": {"name": call.name, "arguments": call.arguments_object()}}
                                 for call in message.tool_calls]
        if message.role == "tool" and message.tool_call_id in names:
            out["tool_name"] = names[message.tool_call_id]
        messages.append(out)
    body: Json = {"model": model, "messages": messages, "stream": request.stream}
    if request.tools and request.tool_choice != "none":
        if request.tool_choice not in (None, "auto"):
            raise FormatError("tool_choice", "Ollama cannot be made to call a tool: use auto or none")
        body["tools"] = [{"type": "function", "function": {"name": tool.name, "description": tool.description or "",
                                                            "parameters": tool.parameters}} for tool in request.tools]
    options: Json = {}
    if request.max_tokens is not None:
        options["num_predict"] = request.max_tokens
    for key in ("temperature", "top_p"):
        if getattr(request, key) is not None:
            options[key] = getattr(request, key)
    if request.stop:
        options["stop"] = request.stop
    for key in ("seed", "presence_penalty", "frequency_penalty", "top_k"):
        if request.extra.get(key) is not None:
            options[key] = request.extra[key]
    if options:
        body["options"] = options
    response_format = request.extra.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") == "json_object":
        body["format"] = "json"
    elif isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        schema = response_format.get("json_schema")
        if not isinstance(schema, dict) or not isinstance(schema.get("schema"), dict):
            raise FormatError("response_format.json_schema.schema", "must be an object")
        body["format"] = schema["schema"]
    return body


def tool_calls(message: Json) -> list[ToolCall]:
    """Ollama's tool calls carry no id and arguments as an object: each gets a fresh id and JSON text."""
    return [ToolCall(str(call.get("id") or new_id("call_")), call["function"]["name"],
                     json.dumps(call["function"].get("arguments") or {}, separators=(",", ":")))
            for call in message.get("tool_calls") or []]


def done_reason(answer: Json, has_tool_calls: bool) -> FinishReason:
    if answer.get("done_reason") == "length":
        return "length"
    return "tool_calls" if has_tool_calls else "stop"


def parse_response(answer: Any) -> ChatResponse:
    """A non-streamed /api/chat answer. Raises ProviderFormatError when it is not one."""
    try:
        if answer.get("done") is not True:
            raise ValueError("done is not true")
        message = answer["message"]
        calls = tool_calls(message)
        usage = usage_wire.from_ollama(answer)
        return ChatResponse(
            id=new_id("chatcmpl-"), model=str(answer.get("model", "")), text=message.get("content") or "",
            tool_calls=calls, finish_reason=done_reason(answer, bool(calls)),
            usage=usage if usage is not None else Usage(estimated=True), created=int(time.time()),
        )
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise ProviderFormatError("ollama", f"not a chat answer ({exc!r})") from exc
