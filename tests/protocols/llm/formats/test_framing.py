"""SSE and NDJSON decoding: the same frames whatever the chunking, CRLF included."""
from __future__ import annotations

from protocols.llm.formats.framing import NDJSONDecoder, SSEDecoder, sse

STREAM = (b"event: message_start\r\ndata: {\"a\":\"\xc3\xa9t\xc3\xa9\"}\r\n\r\n: keep-alive comment\n\n"
          b"data: line one\ndata: line two\nid: 7\n\ndata: [DONE]\n\n")
FRAMES = [("message_start", "{\"a\":\"\u00e9t\u00e9\"}"), (None, "line one\nline two"), (None, "[DONE]")]


def test_sse_frames_are_the_same_fed_byte_by_byte():
    decoder = SSEDecoder()
    frames = [frame for index in range(len(STREAM)) for frame in decoder.feed(STREAM[index:index + 1])]
    assert frames == FRAMES
    assert SSEDecoder().feed(STREAM) == FRAMES


def test_an_sse_event_left_open_at_the_end_is_discarded():
    decoder = SSEDecoder()
    assert decoder.feed(b"data: {\"cut\": ") == []
    assert decoder.end() == []


def test_ndjson_lines_are_the_same_in_any_chunking():
    data = b"{\"a\":1}\n\n{\"b\":2}\n{\"c\":3}"  # the last line whole, without its newline
    decoder = NDJSONDecoder()
    lines = [frame for index in range(0, len(data), 3) for frame in decoder.feed(data[index:index + 3])]
    assert lines + decoder.end() == [(None, "{\"a\":1}"), (None, "{\"b\":2}"), (None, "{\"c\":3}")]


def test_an_encoded_event_decodes_to_itself():
    assert SSEDecoder().feed(sse({"type": "ping"}, "ping")) == [("ping", "{\"type\":\"ping\"}")]


def test_an_ndjson_line_cut_short_is_discarded():
    decoder = NDJSONDecoder()
    assert decoder.feed(b"{\"a\":1}\n{\"b\":") == [(None, "{\"a\":1}")]
    assert decoder.end() == []
