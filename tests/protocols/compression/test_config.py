"""CompressionPolicy's per-response decision and the streaming encoders' output."""
from __future__ import annotations

import zlib

import brotli
import pytest

from protocols.block_errors import BlockError
from protocols.compression import AVAILABLE, CompressionPolicy, GzipEncoder

POLICY = CompressionPolicy.from_config({"algorithms": ["gzip", "br"]})
JSON_HEAD = [(b"content-type", b"application/json"), (b"content-length", b"5000"), (b"etag", b'"v1"')]


def test_a_compressible_answer_gets_encoding_vary_a_weak_etag_and_no_length():
    encoder, headers = POLICY.start("GET", 200, list(JSON_HEAD), b"gzip")
    assert encoder is not None and encoder.coding == b"gzip"
    assert dict(headers) == {b"content-type": b"application/json", b"etag": b'W/"v1"', b"vary": b"Accept-Encoding",
                             b"content-encoding": b"gzip"}


def test_an_already_encoded_answer_is_never_compressed_again():
    head = [*JSON_HEAD, (b"content-encoding", b"br")]
    assert POLICY.start("GET", 200, head, b"gzip") == (None, head)


def test_small_bodies_and_other_types_are_left_alone_but_vary_is_kept_honest():
    encoder, headers = POLICY.start("GET", 200, [(b"content-type", b"text/html"), (b"content-length", b"10")],
                                    b"gzip")
    assert encoder is None and (b"vary", b"Accept-Encoding") in headers
    encoder, headers = POLICY.start("GET", 200, [(b"content-type", b"image/png"), (b"content-length", b"9000")],
                                    b"gzip")
    assert encoder is None and headers == [(b"content-type", b"image/png"), (b"content-length", b"9000")]


def test_an_existing_vary_is_extended_not_duplicated():
    _, headers = POLICY.start("GET", 200, [(b"content-type", b"text/plain"), (b"vary", b"Origin")], b"gzip")
    assert [value for name, value in headers if name == b"vary"] == [b"Origin, Accept-Encoding"]


@pytest.mark.parametrize(("method", "status", "extra"), [
    ("HEAD", 200, []), ("GET", 204, []), ("GET", 304, []), ("GET", 206, [(b"content-range", b"bytes 0-1/9")]),
    ("GET", 200, [(b"cache-control", b"public, no-transform")]),
])
def test_answers_that_must_not_be_transformed_are_not_compressed(method, status, extra):
    encoder, _ = POLICY.start(method, status, [(b"content-type", b"text/plain"), *extra], b"gzip")
    assert encoder is None


def test_configured_types_and_minimum_apply():
    policy = CompressionPolicy.from_config({"content_types": ["application/*+json"], "min_bytes": 0})
    assert policy.compressible_type(b"application/vnd.api+json; charset=utf-8")
    assert not policy.compressible_type(b"text/plain")


def test_a_disabled_or_absent_block_means_no_compression():
    assert CompressionPolicy.from_config(None) is None
    assert CompressionPolicy.from_config({"enabled": False}) is None


def test_bad_values_are_reported_by_key():
    with pytest.raises(BlockError) as caught:
        CompressionPolicy.from_config({"algorithms": ["lzma"], "content_types": ["text"], "min_bytes": -1,
                                       "gzip_level": 10})
    assert set(caught.value.errors) == {"algorithms", "content_types", "min_bytes", "gzip_level"}


def test_each_chunk_is_decodable_as_soon_as_it_is_compressed():
    encoder = GzipEncoder()
    decoder = zlib.decompressobj(31)
    assert decoder.decompress(encoder.compress(b"first " * 100)) == b"first " * 100
    assert decoder.decompress(encoder.compress(b"second")) == b"second"
    decoder.decompress(encoder.flush())
    assert decoder.eof


def test_brotli_streams_chunk_by_chunk():
    encoder = POLICY.encoder("br")
    decoder = brotli.Decompressor()
    assert decoder.process(encoder.compress(b"x" * 5000)) == b"x" * 5000
    decoder.process(encoder.flush())
    assert decoder.is_finished()


@pytest.mark.skipif("zstd" not in AVAILABLE, reason="zstandard is not installed")
def test_zstd_streams_chunk_by_chunk():
    import zstandard

    encoder = POLICY.encoder("zstd")
    decoder = zstandard.ZstdDecompressor().decompressobj()
    assert decoder.decompress(encoder.compress(b"y" * 5000)) == b"y" * 5000
    assert decoder.decompress(encoder.flush()) == b""
