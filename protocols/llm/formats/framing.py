"""Stream framing: Server-Sent Events (OpenAI, Anthropic) and NDJSON (Ollama), decoded from bytes in any chunking."""
from __future__ import annotations

import json

from protocols.llm.formats.chat import Json

# One decoded frame: the SSE `event:` name (None when absent, and always for NDJSON) and its data text.
Frame = tuple[str | None, str]


class SSEDecoder:
    """Incremental SSE parser (the WHATWG rules that matter here): lines end in LF or CRLF, a blank line ends an
    event, `data:` lines join with LF, comments (`:`) and unknown fields are skipped. An event without data is
    dropped, as browsers do."""

    __slots__ = ("_buffer", "_event", "_data")

    def __init__(self) -> None:
        self._buffer = b""
        self._event: str | None = None
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[Frame]:
        buffer = self._buffer + chunk if self._buffer else chunk
        frames: list[Frame] = []
        start = 0
        while True:
            end = buffer.find(b"\n", start)
            if end < 0:
                self._buffer = buffer[start:]
                return frames
            line = buffer[start:end].rstrip(b"\r").decode("utf-8", "replace")
            start = end + 1
            if not line:
                if self._data:
                    frames.append((self._event, "\n".join(self._data)))
                self._event, self._data = None, []
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                self._data.append(value)
            elif name == "event":
                self._event = value

    def end(self) -> list[Frame]:
        """Nothing: an event still open when the stream ends is discarded (the SSE rule), since it may be cut."""
        self._buffer, self._event, self._data = b"", None, []
        return []


class NDJSONDecoder:
    """Incremental newline-delimited JSON: one frame per non-blank line."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[Frame]:
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        return [(None, line.decode("utf-8", "replace")) for line in lines if line.strip()]

    def end(self) -> list[Frame]:
        """A last line without its newline, if it is whole JSON; a line cut short is discarded."""
        rest, self._buffer = self._buffer.decode("utf-8", "replace"), b""
        try:
            json.loads(rest)
        except ValueError:
            return []
        return [(None, rest)]


def sse(data: Json | str, event: str | None = None) -> bytes:
    """One SSE event; compact JSON, as the providers send it."""
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {text}\n\n".encode()


def ndjson(data: Json) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
