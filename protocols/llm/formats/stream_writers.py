"""Neutral stream events written out as a client expects them: OpenAI chunks or Anthropic's typed SSE events."""
from __future__ import annotations

from protocols.llm.formats import anthropic_wire, openai_wire
from protocols.llm.formats import usage as usage_wire
from protocols.llm.formats.chat import FinishReason, Json, Usage, WireFormat
from protocols.llm.formats.framing import sse
from protocols.llm.formats.stream_readers import Event, Finish, StreamError, Text, ToolArgs, ToolStart


class OpenAIStreamWriter:
    """chat.completion.chunk events, then the usage chunk (only when the client asked for it: some clients choke
    on a chunk without choices) and `data: [DONE]`."""

    def __init__(self, id: str, model: str, created: int, include_usage: bool) -> None:
        self._head: Json = {"id": id, "object": "chat.completion.chunk", "created": created, "model": model}
        self._include_usage = include_usage
        self._started = False

    def _chunk(self, delta: Json, finish: FinishReason | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return sse({**self._head, "choices": [choice]})

    def write(self, event: Event) -> bytes:
        out = b""
        if not self._started and not isinstance(event, StreamError):
            self._started = True
            out = self._chunk({"role": "assistant", "content": ""})
        if isinstance(event, Text):
            return out + self._chunk({"content": event.text})
        if isinstance(event, ToolStart):
            return out + self._chunk({"tool_calls": [{"index": event.index, "id": event.id, "type": "function",
                                                      "function": {"name": event.name, "arguments": ""}}]})
        if isinstance(event, ToolArgs):
            call = {"index": event.index, "function": {"arguments": event.fragment}}
            return out + self._chunk({"tool_calls": [call]})
        if isinstance(event, StreamError):
            return out + error_event("openai", event.message, event.type)
        return out  # Start, usage and the end are written by close()

    def close(self, finish: Finish, usage: Usage) -> bytes:
        out = b""
        if not self._started:
            self._started = True
            out = self._chunk({"role": "assistant", "content": ""})
        out += self._chunk({}, finish.reason)
        if self._include_usage:
            out += sse({**self._head, "choices": [], "usage": usage_wire.to_openai(usage)})
        return out + sse("[DONE]")


class AnthropicStreamWriter:
    """message_start, one content block per text run or tool call, message_delta with the stop reason and the
    whole usage, message_stop. message_start's input_tokens is the provider's figure when it gave one already,
    else Rusta's count of the prompt; message_delta always carries the final figures (Anthropic's SDK takes them)."""

    def __init__(self, id: str, model: str) -> None:
        self._id = id
        self._model = model
        self._started = False
        self._open: int | None = None  # index of the open content block
        self._open_is_text = False
        self._blocks = 0
        self._tool_blocks: dict[int, int] = {}  # tool call index -> block index

    def start(self, usage: Usage) -> bytes:
        if self._started:
            return b""
        self._started = True
        message: Json = {"id": self._id, "type": "message", "role": "assistant", "content": [], "model": self._model,
                   "stop_reason": None, "stop_sequence": None,
                   "usage": {**usage_wire.to_anthropic(usage), "output_tokens": 0}}
        return sse({"type": "message_start", "message": message}, "message_start")

    def _close_block(self) -> bytes:
        if self._open is None:
            return b""
        index, self._open = self._open, None
        return sse({"type": "content_block_stop", "index": index}, "content_block_stop")

    def _open_block(self, block: Json) -> bytes:
        out = self._close_block()
        self._open, self._blocks = self._blocks, self._blocks + 1
        return out + sse({"type": "content_block_start", "index": self._open, "content_block": block},
                         "content_block_start")

    def write(self, event: Event) -> bytes:
        if isinstance(event, Text):
            out = b""
            if self._open is None or not self._open_is_text:
                out = self._open_block({"type": "text", "text": ""})
                self._open_is_text = True
            return out + sse({"type": "content_block_delta", "index": self._open,
                              "delta": {"type": "text_delta", "text": event.text}}, "content_block_delta")
        if isinstance(event, ToolStart):
            out = self._open_block({"type": "tool_use", "id": event.id, "name": event.name, "input": {}})
            self._open_is_text = False
            self._tool_blocks[event.index] = self._open  # type: ignore[assignment]
            return out
        if isinstance(event, ToolArgs) and event.index in self._tool_blocks:
            # A late fragment for an earlier call (OpenAI may interleave parallel calls) keeps its own block's index.
            return sse({"type": "content_block_delta", "index": self._tool_blocks[event.index],
                        "delta": {"type": "input_json_delta", "partial_json": event.fragment}}, "content_block_delta")
        if isinstance(event, StreamError):
            return error_event("anthropic", event.message, event.type)
        return b""

    def close(self, finish: Finish, usage: Usage) -> bytes:
        out = self._close_block()
        delta = {"stop_reason": anthropic_wire.to_stop_reason(finish.reason, finish.stop_sequence),
                 "stop_sequence": finish.stop_sequence}
        out += sse({"type": "message_delta", "delta": delta, "usage": usage_wire.to_anthropic(usage)},
                   "message_delta")
        return out + sse({"type": "message_stop"}, "message_stop")


Writer = OpenAIStreamWriter | AnthropicStreamWriter


def error_event(client: WireFormat, message: str, type: str = "api_error") -> bytes:
    """An error in the middle of a stream, as the client's SDK recognises it (OpenAI's raises APIError on a chunk
    holding `error`; Anthropic's on an `error` event)."""
    if client == "anthropic":
        return sse(anthropic_wire.render_error(500, message, type=type), "error")
    return sse(openai_wire.render_error(500, message, type=type))
