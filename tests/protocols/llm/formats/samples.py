"""Provider answers as the providers send them (recorded shapes of OpenAI, Anthropic and Ollama), for the tests."""
from __future__ import annotations

import json
from typing import Any


def _sse(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    body = data if isinstance(data, str) else json.dumps(data)
    return f"{head}data: {body}\n\n".encode()


def openai_chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"id": "chatcmpl-abc123", "object": "chat.completion.chunk", "created": 1760000000,
            "model": "gpt-4o-2024-08-06", "system_fingerprint": "fp_1",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}], **extra}


def openai_stream(texts: list[str], *, tool: tuple[str, str, list[str]] | None = None,
                  usage: dict[str, Any] | None = None, finish: str = "stop") -> bytes:
    """An OpenAI chat stream: a role chunk, text deltas, optionally one tool call in fragments, the finish chunk,
    the usage chunk (asked for with stream_options.include_usage) and [DONE]."""
    out = _sse(openai_chunk({"role": "assistant", "content": "", "refusal": None}))
    out += b"".join(_sse(openai_chunk({"content": text})) for text in texts)
    if tool is not None:
        call_id, name, fragments = tool
        out += _sse(openai_chunk({"tool_calls": [{"index": 0, "id": call_id, "type": "function",
                                                  "function": {"name": name, "arguments": ""}}]}))
        out += b"".join(_sse(openai_chunk({"tool_calls": [{"index": 0, "function": {"arguments": fragment}}]}))
                        for fragment in fragments)
    out += _sse(openai_chunk({}, finish))
    if usage is not None:
        out += _sse({**openai_chunk({}), "choices": [], "usage": usage})
    return out + _sse("[DONE]")


def anthropic_stream(texts: list[str], *, tool: tuple[str, str, list[str]] | None = None,
                     start_usage: dict[str, Any] | None = None, final_usage: dict[str, Any] | None = None,
                     stop_reason: str = "end_turn") -> bytes:
    """An Anthropic messages stream, with a ping, as the API sends it."""
    message = {"id": "msg_01XYZ", "type": "message", "role": "assistant", "content": [],
               "model": "claude-sonnet-4-5", "stop_reason": None, "stop_sequence": None,
               "usage": start_usage or {"input_tokens": 25, "output_tokens": 1}}
    out = _sse({"type": "message_start", "message": message}, "message_start")
    out += _sse({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                "content_block_start")
    out += _sse({"type": "ping"}, "ping")
    out += b"".join(_sse({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
                         "content_block_delta") for text in texts)
    out += _sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
    if tool is not None:
        call_id, name, fragments = tool
        out += _sse({"type": "content_block_start", "index": 1,
                     "content_block": {"type": "tool_use", "id": call_id, "name": name, "input": {}}},
                    "content_block_start")
        out += b"".join(_sse({"type": "content_block_delta", "index": 1,
                              "delta": {"type": "input_json_delta", "partial_json": fragment}}, "content_block_delta")
                        for fragment in fragments)
        out += _sse({"type": "content_block_stop", "index": 1}, "content_block_stop")
    out += _sse({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                 "usage": final_usage or {"output_tokens": 15}}, "message_delta")
    return out + _sse({"type": "message_stop"}, "message_stop")


def ollama_stream(texts: list[str], *, tool: tuple[str, dict[str, Any]] | None = None,
                  counts: tuple[int, int] = (26, 298), done_reason: str = "stop") -> bytes:
    lines = [{"model": "llama3.2", "created_at": "2025-10-01T00:00:00Z",
              "message": {"role": "assistant", "content": text}, "done": False} for text in texts]
    if tool is not None:
        lines.append({"model": "llama3.2", "created_at": "2025-10-01T00:00:00Z", "done": False,
                      "message": {"role": "assistant", "content": "",
                                  "tool_calls": [{"function": {"name": tool[0], "arguments": tool[1]}}]}})
    lines.append({"model": "llama3.2", "created_at": "2025-10-01T00:00:01Z",
                  "message": {"role": "assistant", "content": ""}, "done": True, "done_reason": done_reason,
                  "total_duration": 4883583458, "load_duration": 1334875, "prompt_eval_count": counts[0],
                  "prompt_eval_duration": 342546000, "eval_count": counts[1], "eval_duration": 4535599000})
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[index:index + size] for index in range(0, len(data), size)]


OPENAI_ANSWER = {
    "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG", "object": "chat.completion", "created": 1741570283,
    "model": "gpt-4o-2024-08-06",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": None, "refusal": None, "annotations": [],
                                         "tool_calls": [{"id": "call_abc", "type": "function",
                                                         "function": {"name": "get_weather",
                                                                      "arguments": "{\"city\":\"Paris\"}"}}]},
                 "logprobs": None, "finish_reason": "tool_calls"}],
    "usage": {"prompt_tokens": 1117, "completion_tokens": 46, "total_tokens": 1163,
              "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
              "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}},
    "service_tier": "default", "system_fingerprint": "fp_fc9f1d7035",
}

ANTHROPIC_ANSWER = {
    "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
    "content": [{"type": "text", "text": "Hi! My name is Claude."}],
    "stop_reason": "max_tokens", "stop_sequence": None,
    "usage": {"input_tokens": 2095, "output_tokens": 503, "cache_creation_input_tokens": 2051,
              "cache_read_input_tokens": 4000, "service_tier": "standard"},
}

OLLAMA_ANSWER = {
    "model": "llama3.2", "created_at": "2023-12-12T14:13:43.416799Z",
    "message": {"role": "assistant", "content": "Hello! How are you today?"}, "done": True, "done_reason": "stop",
    "total_duration": 5191566416, "load_duration": 2154458, "prompt_eval_count": 26,
    "prompt_eval_duration": 383809000, "eval_count": 298, "eval_duration": 4799921000,
}
