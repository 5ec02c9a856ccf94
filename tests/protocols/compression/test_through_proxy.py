"""Compression on real traffic: answers decoded by real clients (httpx, urllib + gzip/brotli) to the original
bytes, one per coding, no double compression, and a streamed body compressed while it still arrives."""
from __future__ import annotations

import gzip
import json
import urllib.request
import zlib
from urllib.parse import quote

import brotli
import httpx
import pytest

from protocols.compression import AVAILABLE
from tests.support.proxy import ProxyServer, route
from tests.support.upstream import UpstreamServer, pattern

# Small enough that its URL-encoded copy in the request target stays under the default 8 KiB URL limit (414).
TEXT = ("The quick brown fox jumps over the lazy dog. " * 120).encode()


@pytest.fixture(scope="module")
def upstream():
    with UpstreamServer() as server:
        yield server


@pytest.fixture(scope="module")
def proxy(upstream):
    routes = [route("zipped", "/z/{rest}", upstream.port, internal_path="/{rest}",
                    policies={"compression": {"enabled": True}})]
    with ProxyServer(routes) as server:
        yield server


def text_target(body: bytes = TEXT, extra: str = "") -> str:
    return f"/z/respond?body={quote(body)}&header=Content-Type:text/plain{extra}"


@pytest.mark.parametrize("coding", sorted(AVAILABLE))
def test_httpx_decodes_each_coding_to_the_original_bytes(proxy, coding):
    reply = httpx.get(f"http://127.0.0.1:{proxy.port}{text_target()}", headers={"Accept-Encoding": coding})
    assert reply.headers["content-encoding"] == coding
    assert reply.content == TEXT
    assert int(reply.headers.get("content-length", 0)) != len(TEXT)


def test_urllib_with_the_gzip_module_decodes_the_original_bytes(proxy):
    request = urllib.request.Request(f"http://127.0.0.1:{proxy.port}{text_target()}",
                                     headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Content-Encoding"] == "gzip"
        assert "Accept-Encoding" in response.headers["Vary"]
        raw = response.read()
    assert len(raw) < len(TEXT) // 10
    assert gzip.decompress(raw) == TEXT


def test_brotli_is_preferred_on_a_tie_and_decodes_with_the_brotli_module(proxy):
    reply = proxy.call("GET", text_target(), [("Accept-Encoding", "gzip, br")])
    assert reply.header("content-encoding") == ["br"]
    assert brotli.decompress(reply.body) == TEXT


def test_q_values_choose_the_coding_and_q_zero_refuses_it(proxy):
    assert proxy.call("GET", text_target(), [("Accept-Encoding", "br;q=0.2, gzip;q=0.8")]).header(
        "content-encoding") == ["gzip"]
    refused = proxy.call("GET", text_target(), [("Accept-Encoding", "gzip;q=0, br;q=0, zstd;q=0")])
    assert refused.header("content-encoding") == [] and refused.body == TEXT


def test_no_accept_encoding_gets_identity_with_vary(proxy):
    reply = proxy.call("GET", text_target())
    assert reply.header("content-encoding") == [] and reply.body == TEXT
    assert reply.header("vary") == ["Accept-Encoding"]


def test_an_answer_the_backend_already_encoded_is_not_compressed_twice(proxy):
    # The body stands for bytes the backend encoded itself: the gateway must pass them on as they are.
    reply = proxy.call("GET", "/z/respond?bytes=5000&header=Content-Type:text/plain&header=Content-Encoding:gzip",
                       [("Accept-Encoding", "br, gzip")])
    assert reply.header("content-encoding") == ["gzip"]
    assert reply.body == pattern(5000)


def test_small_answers_are_not_compressed(proxy):
    reply = proxy.call("GET", text_target(b"tiny"), [("Accept-Encoding", "gzip")])
    assert reply.header("content-encoding") == [] and reply.body == b"tiny"


def test_json_is_compressed_but_other_types_are_not(proxy):
    body = json.dumps({"items": list(range(600))})
    json_reply = proxy.call("GET", f"/z/respond?body={quote(body)}&header=Content-Type:application/json",
                            [("Accept-Encoding", "gzip")])
    assert json.loads(gzip.decompress(json_reply.body)) == {"items": list(range(600))}
    png = proxy.call("GET", "/z/respond?bytes=5000&header=Content-Type:image/png", [("Accept-Encoding", "gzip")])
    assert png.header("content-encoding") == [] and len(png.body) == 5000


def test_a_streamed_body_is_compressed_while_the_backend_still_sends_it(proxy, upstream):
    upstream.drip_done.clear()
    url = f"http://127.0.0.1:{proxy.port}/z/drip?chunks=5&size=4000&gap_ms=300&type=text/plain"
    decoder = zlib.decompressobj(31)
    decoded = b""
    with httpx.stream("GET", url, headers={"Accept-Encoding": "gzip"}, timeout=10) as reply:
        assert reply.headers["content-encoding"] == "gzip"
        chunks = reply.iter_raw()
        first = next(chunks)
        decoded += decoder.decompress(first)
        # The first compressed piece decodes to the first upstream piece while four more are still to come.
        assert decoded == b"a" * 4000
        assert not upstream.drip_done.is_set()
        for chunk in chunks:
            decoded += decoder.decompress(chunk)
    assert decoded == b"a" * 20000 and decoder.eof
