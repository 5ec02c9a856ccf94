"""What OpenAI, Anthropic and Ollama put on the wire, as pure functions: bodies, stream frames, errors.

tests/support/llm_providers.py serves these; keeping them free of sockets lets each shape be read in one place.
A stream is a list of Frames, each marked as content (model output: a text piece, a tool call's start or a piece of
its arguments) or not (preambles, stops, usage), so the server can delay the first content frame and cut a stream
after n of them without knowing the provider.

Usage is given provider-neutrally: `input` are prompt tokens not read from a cache, `cached_input` those that were,
`output` the answer's. Each provider reports them its own way (see the encoders), and for all three the cost a
gateway should record is input*price.input + cached_input*price.cached_input + output*price.output.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import struct
from dataclasses import dataclass, field
from typing import Any

CREATED = 1764590400  # 2025-12-01T12:00:00Z, fixed so answers are byte-for-byte repeatable
CREATED_AT = "2025-12-01T12:00:00.000000Z"


@dataclass(frozen=True)
class Usage:
    """The token counts a provider reports (see the module docstring for what each means)."""

    input: int = 12
    output: int = 5
    cached_input: int = 0


@dataclass(frozen=True)
class ToolCall:
    """A function call the model makes; `id` defaults per provider (call_..., toolu_...)."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    id: str = ""


@dataclass(frozen=True)
class Answer:
    """What the model says to one request."""

    model: str
    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage = Usage()


@dataclass(frozen=True)
class Frame:
    """One SSE event or NDJSON line, ready to send; `content` when it carries model output."""

    data: bytes
    content: bool = False
    text: str = ""  # the answer text this frame adds (tool call arguments are not counted as text)


def words(text: str) -> list[str]:
    """The text as word-sized deltas ("Hello there" -> ["Hello ", "there"]), so a stream has several of them."""
    return re.findall(r"\s*\S+\s*", text) or ([text] if text else [])


def pieces(arguments: dict[str, Any], size: int = 8) -> list[str]:
    """A tool call's arguments as JSON text in pieces of `size` characters, as providers stream them."""
    text = json.dumps(arguments, separators=(",", ":"))
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def tool_id(call: ToolCall, index: int, prefix: str) -> str:
    return call.id or f"{prefix}_stub{index}"


# --- errors ---------------------------------------------------------------------------------------------------

ANTHROPIC_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                         404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
                         529: "overloaded_error"}


def error_body(wire: str, status: int, message: str, code: str | None = None, request_id: str = "") -> bytes:
    """An error in the provider's own shape: OpenAI's {"error": {message, type, param, code}}, Anthropic's
    {"type": "error", "error": {type, message}, "request_id"}, Ollama's {"error": message}."""
    if wire == "anthropic":
        kind = ANTHROPIC_ERROR_TYPES.get(status, "api_error")
        return _json({"type": "error", "error": {"type": kind, "message": message}, "request_id": request_id})
    if wire == "ollama":
        return _json({"error": message})
    kind = {401: "invalid_request_error", 429: "requests"}.get(status, "invalid_request_error")
    if status >= 500:
        kind = "server_error"
    param = "messages" if code == "context_length_exceeded" else None
    return _json({"error": {"message": message, "type": kind, "param": param, "code": code}})


# --- OpenAI ---------------------------------------------------------------------------------------------------

def openai_usage(usage: Usage) -> dict[str, Any]:
    """prompt_tokens counts cached tokens too; prompt_tokens_details.cached_tokens says how many were."""
    prompt = usage.input + usage.cached_input
    return {"prompt_tokens": prompt, "completion_tokens": usage.output, "total_tokens": prompt + usage.output,
            "prompt_tokens_details": {"cached_tokens": usage.cached_input, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}


def _openai_tool_calls(answer: Answer) -> list[dict[str, Any]]:
    return [{"id": tool_id(call, i, "call"), "type": "function",
             "function": {"name": call.name, "arguments": json.dumps(call.arguments, separators=(",", ":"))}}
            for i, call in enumerate(answer.tool_calls)]


def openai_completion(answer: Answer, request_id: str) -> bytes:
    message: dict[str, Any] = {"role": "assistant", "content": answer.text or None, "refusal": None,
                               "annotations": []}
    if answer.tool_calls:
        message["tool_calls"] = _openai_tool_calls(answer)
    return _json({
        "id": f"chatcmpl-{request_id}", "object": "chat.completion", "created": CREATED, "model": answer.model,
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": "tool_calls" if answer.tool_calls else "stop"}],
        "usage": openai_usage(answer.usage), "service_tier": "default", "system_fingerprint": "fp_stub",
    })


def openai_frames(answer: Answer, request_id: str, include_usage: bool) -> list[Frame]:
    """chat.completion.chunk events: the role, a delta per word, each tool call's start then its arguments in
    pieces, the finish reason, then (only when stream_options.include_usage) a chunk with `choices: []` and the
    usage, every earlier chunk carrying `usage: null` as OpenAI's do, and `data: [DONE]`."""

    def chunk(delta: dict[str, Any] | None, finish: str | None = None, usage: Any = None) -> bytes:
        body: dict[str, Any] = {"id": f"chatcmpl-{request_id}", "object": "chat.completion.chunk",
                                "created": CREATED, "model": answer.model, "service_tier": "default",
                                "system_fingerprint": "fp_stub",
                                "choices": [] if delta is None else
                                [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        if include_usage:
            body["usage"] = usage
        return b"data: " + _json(body) + b"\n\n"

    frames = [Frame(chunk({"role": "assistant", "content": "", "refusal": None}))]
    frames += [Frame(chunk({"content": word}), content=True, text=word) for word in words(answer.text)]
    for index, call in enumerate(answer.tool_calls):
        start = {"index": index, "id": tool_id(call, index, "call"), "type": "function",
                 "function": {"name": call.name, "arguments": ""}}
        frames.append(Frame(chunk({"tool_calls": [start]}), content=True))
        frames += [Frame(chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}), content=True)
                   for piece in pieces(call.arguments)]
    frames.append(Frame(chunk({}, "tool_calls" if answer.tool_calls else "stop")))
    if include_usage:
        frames.append(Frame(chunk(None, usage=openai_usage(answer.usage))))
    frames.append(Frame(b"data: [DONE]\n\n"))
    return frames


def embedding(text: str, dimensions: int) -> list[float]:
    """A repeatable vector for `text`; each value is k/128, exact in float32, so base64 round-trips exactly."""
    digest = hashlib.sha256(text.encode()).digest()
    return [(digest[i % len(digest)] - 128) / 128 for i in range(dimensions)]


def openai_embeddings(model: str, texts: list[str], dimensions: int, encoding: str, usage: Usage) -> bytes:
    """float lists, or with encoding_format "base64" (what the official SDK asks for when not told) the
    little-endian float32 bytes in base64."""
    data = []
    for index, text in enumerate(texts):
        vector = embedding(text, dimensions)
        value: Any = vector
        if encoding == "base64":
            value = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": value})
    tokens = usage.input + usage.cached_input
    return _json({"object": "list", "data": data, "model": model,
                  "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})


def openai_models(models: list[str]) -> bytes:
    return _json({"object": "list", "data": [{"id": name, "object": "model", "created": CREATED,
                                               "owned_by": "system"} for name in models]})


# --- Anthropic ------------------------------------------------------------------------------------------------

def anthropic_usage(usage: Usage, output: int) -> dict[str, Any]:
    """input_tokens leaves out cached tokens; cache_read_input_tokens says how many there were."""
    return {"input_tokens": usage.input, "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": usage.cached_input, "output_tokens": output}


def _anthropic_blocks(answer: Answer) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [{"type": "text", "text": answer.text}] if answer.text else []
    blocks += [{"type": "tool_use", "id": tool_id(call, i, "toolu"), "name": call.name, "input": call.arguments}
               for i, call in enumerate(answer.tool_calls)]
    return blocks


def anthropic_message(answer: Answer, request_id: str) -> bytes:
    return _json({
        "id": f"msg_{request_id}", "type": "message", "role": "assistant", "model": answer.model,
        "content": _anthropic_blocks(answer), "stop_reason": "tool_use" if answer.tool_calls else "end_turn",
        "stop_sequence": None, "usage": anthropic_usage(answer.usage, answer.usage.output),
    })


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: ".encode() + _json(data) + b"\n\n"


def anthropic_frames(answer: Answer, request_id: str) -> list[Frame]:
    """message_start (input counts, output_tokens 1, as Anthropic sends), then per block content_block_start,
    (ping after the first), content_block_delta per word (text_delta) or argument piece (input_json_delta),
    content_block_stop; message_delta with the stop reason and the cumulative usage, message_stop."""
    message: dict[str, Any] = {"id": f"msg_{request_id}", "type": "message", "role": "assistant",
                               "model": answer.model, "content": [], "stop_reason": None, "stop_sequence": None,
                               "usage": anthropic_usage(answer.usage, 1)}
    frames = [Frame(_sse("message_start", {"type": "message_start", "message": message}))]
    for index, block in enumerate(_anthropic_blocks(answer)):
        if block["type"] == "text":
            start: dict[str, Any] = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": word} for word in words(block["text"])]
        else:
            start = {**block, "input": {}}
            deltas = [{"type": "input_json_delta", "partial_json": piece} for piece in pieces(block["input"])]
        frames.append(Frame(_sse("content_block_start",
                                 {"type": "content_block_start", "index": index, "content_block": start})))
        if index == 0:
            frames.append(Frame(_sse("ping", {"type": "ping"})))
        frames += [Frame(_sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d}),
                         content=True, text=d.get("text", "")) for d in deltas]
        frames.append(Frame(_sse("content_block_stop", {"type": "content_block_stop", "index": index})))
    stop = "tool_use" if answer.tool_calls else "end_turn"
    frames.append(Frame(_sse("message_delta", {"type": "message_delta",
                                               "delta": {"stop_reason": stop, "stop_sequence": None},
                                               "usage": anthropic_usage(answer.usage, answer.usage.output)})))
    frames.append(Frame(_sse("message_stop", {"type": "message_stop"})))
    return frames


def anthropic_models(models: list[str]) -> bytes:
    data = [{"type": "model", "id": name, "display_name": name, "created_at": CREATED_AT} for name in models]
    return _json({"data": data, "has_more": False, "first_id": models[0] if models else None,
                  "last_id": models[-1] if models else None})


# --- Ollama ---------------------------------------------------------------------------------------------------

def _ollama_done(answer: Answer, message: dict[str, Any]) -> dict[str, Any]:
    """Ollama counts only prompt tokens it evaluated (a reused prefix is not counted), so cached_input is left out."""
    return {"model": answer.model, "created_at": CREATED_AT, "message": message, "done": True,
            "done_reason": "stop", "total_duration": 1_000_000, "load_duration": 10_000,
            "prompt_eval_count": answer.usage.input, "prompt_eval_duration": 100_000,
            "eval_count": answer.usage.output, "eval_duration": 800_000}


def _ollama_tool_calls(answer: Answer) -> list[dict[str, Any]]:
    return [{"function": {"name": call.name, "arguments": call.arguments}} for call in answer.tool_calls]


def ollama_chat(answer: Answer) -> bytes:
    message: dict[str, Any] = {"role": "assistant", "content": answer.text}
    if answer.tool_calls:
        message["tool_calls"] = _ollama_tool_calls(answer)
    return _json(_ollama_done(answer, message))


def ollama_frames(answer: Answer) -> list[Frame]:
    """NDJSON: a line per word with done: false, the tool calls whole in one line (Ollama does not stream their
    arguments), and a last line with done: true, an empty message and the counts."""

    def line(body: dict[str, Any]) -> bytes:
        return _json(body) + b"\n"

    def partial(message: dict[str, Any]) -> Frame:
        return Frame(line({"model": answer.model, "created_at": CREATED_AT, "message": message, "done": False}),
                     content=True, text=message["content"])

    frames = [partial({"role": "assistant", "content": word}) for word in words(answer.text)]
    if answer.tool_calls:
        frames.append(partial({"role": "assistant", "content": "", "tool_calls": _ollama_tool_calls(answer)}))
    frames.append(Frame(line(_ollama_done(answer, {"role": "assistant", "content": ""}))))
    return frames


def ollama_embed(model: str, texts: list[str], dimensions: int, usage: Usage) -> bytes:
    return _json({"model": model, "embeddings": [embedding(text, dimensions) for text in texts],
                  "total_duration": 100_000, "load_duration": 10_000, "prompt_eval_count": usage.input})


def ollama_tags(models: list[str]) -> bytes:
    return _json({"models": [{"name": name, "model": name, "modified_at": CREATED_AT, "size": 0,
                              "digest": hashlib.sha256(name.encode()).hexdigest(), "details": {}}
                             for name in models]})


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
