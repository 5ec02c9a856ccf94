"""One HTTP/2 stream as an ASGI request (protocols/http/h2_stream.py): its scope, its body both ways, trailers.

An ASGI app of the test's own is served on the proxy listener's protocol; a frame-level client talks to it.
"""
from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from typing import Any

import pytest
import trustme

from tests.support.h2client import H2Client, ListenerApp


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    path = scope["path"]
    if path == "/boom":
        raise RuntimeError("the application broke")
    if path == "/trailers":
        await send({"type": "http.response.start", "status": 200, "trailers": True,
                    "headers": [(b"content-type", b"application/grpc")]})
        await send({"type": "http.response.body", "body": b"one", "more_body": True})
        await send({"type": "http.response.body", "body": b"two", "more_body": False})
        await send({"type": "http.response.trailers", "headers": [(b"grpc-status", b"0")], "more_trailers": True})
        await send({"type": "http.response.trailers", "headers": [(b"grpc-message", b"ok")]})
        return
    if path == "/hop":
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"Connection", b"keep-alive"), (b"Keep-Alive", b"timeout=5"), (b"Transfer-Encoding", b"chunked"),
            (b"Upgrade", b"h2c"), (b"Proxy-Connection", b"close"), (b"X-Kept", b"yes")]})
        await send({"type": "http.response.body", "body": b"body"})
        return
    if path.startswith("/status/"):
        # (no Content-Length: h2's client would hold a 204's or 304's against its empty body)
        await send({"type": "http.response.start", "status": int(path[8:])})
        await send({"type": "http.response.body", "body": b"body"})
        return
    if path == "/wait-disconnect":
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"started", "more_body": True})
        message = await receive()
        while message["type"] != "http.disconnect":
            message = await receive()
        SEEN.append("disconnect")
        return
    chunks = []
    more = True
    while more:
        message = await receive()
        assert message["type"] == "http.request"
        chunks.append(message["body"])
        more = message["more_body"]
    described = {key: scope[key] for key in ("type", "http_version", "method", "scheme", "path", "root_path",
                                              "client", "server")}
    described |= {"tls": "tls" in scope["extensions"]}
    described |= {"raw_path": scope["raw_path"].decode(), "query_string": scope["query_string"].decode(),
                  "headers": [[n.decode(), v.decode()] for n, v in scope["headers"]],
                  "extensions": sorted(scope["extensions"]), "state": scope["state"],
                  "body": b"".join(chunks).decode(), "messages": len(chunks)}
    body = json.dumps(described).encode()
    scope["state"]["touched"] = True  # must not leak into the next request's state
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


SEEN: list[str] = []


@pytest.fixture(scope="module")
def server() -> Iterator[ListenerApp]:
    with ListenerApp(app) as running:
        yield running


def test_the_scope_is_the_one_an_http11_request_gets(server):
    with H2Client(server.port) as client:
        stream = client.request("GET", "/a%20b/c?x=1&y=2", [("x-one", "1")], authority="api.example:8443")
        described = json.loads(client.response(stream).body)
    assert described["type"] == "http"
    assert described["http_version"] == "2"
    assert described["method"] == "GET"
    assert described["scheme"] == "http"
    assert described["path"] == "/a b/c"
    assert described["raw_path"] == "/a%20b/c"
    assert described["query_string"] == "x=1&y=2"
    assert described["root_path"] == ""
    assert described["client"][0] == "127.0.0.1"
    assert described["server"] == ["127.0.0.1", server.port]
    assert described["headers"] == [["host", "api.example:8443"], ["x-one", "1"]]
    assert described["extensions"] == ["http.response.trailers"]
    assert not described["tls"]
    assert described["state"] == {}


def test_each_request_gets_its_own_copy_of_the_state(server):
    with H2Client(server.port) as client:
        first = client.response(client.request("GET", "/one"))
        second = client.response(client.request("GET", "/two"))
    assert json.loads(first.body)["state"] == json.loads(second.body)["state"] == {}


def test_a_request_body_is_read_in_chunks_as_it_arrives(server):
    with H2Client(server.port) as client:
        stream = client.request("POST", "/body", [("content-length", "10")], body=b"hello", end=False)
        client.read_until(lambda c: False, timeout=0.2)  # the first piece is read on its own
        client.conn.send_data(stream, b"world", end_stream=True)
        client.flush()
        described = json.loads(client.response(stream).body)
    assert described["body"] == "helloworld"
    assert described["messages"] >= 2


def test_a_body_of_unknown_length_reads_as_a_chunked_http11_body(server):
    with H2Client(server.port) as client:
        stream = client.request("POST", "/body", body=b"abc")
        described = json.loads(client.response(stream).body)
    assert ["transfer-encoding", "chunked"] in described["headers"]
    assert described["body"] == "abc"


def test_a_request_without_a_body_is_not_given_a_framing_field(server):
    with H2Client(server.port) as client:
        described = json.loads(client.response(client.request("GET", "/plain")).body)
    assert all(name not in ("transfer-encoding", "content-length") for name, _ in described["headers"])


def test_trailers_sent_by_the_application_arrive_as_http2_trailers(server):
    with H2Client(server.port) as client:
        response = client.response(client.request("POST", "/trailers", [("te", "trailers")], body=b""))
    assert response.status == 200
    assert bytes(response.body) == b"onetwo"
    assert response.trailers == [(b"grpc-status", b"0"), (b"grpc-message", b"ok")]


def test_connection_specific_fields_are_dropped_and_names_lower_cased(server):
    with H2Client(server.port) as client:
        response = client.response(client.request("GET", "/hop"))
    names = [name for name, _ in response.headers]
    assert response.status == 200
    assert b"x-kept" in names
    assert not {b"connection", b"keep-alive", b"transfer-encoding", b"upgrade", b"proxy-connection"} & set(names)
    assert bytes(response.body) == b"body"


@pytest.mark.parametrize(("method", "path"), [("HEAD", "/status/200"), ("GET", "/status/204"),
                                              ("GET", "/status/304")])
def test_head_204_and_304_carry_no_body(server, method, path):
    with H2Client(server.port) as client:
        response = client.response(client.request(method, path))
    assert response.ended
    assert bytes(response.body) == b""


def test_an_application_that_raises_answers_500_and_the_connection_serves_on(server):
    with H2Client(server.port) as client:
        broken = client.response(client.request("GET", "/boom"))
        after = client.response(client.request("GET", "/after"))
    assert broken.status == 500
    assert after.status == 200


def test_a_stream_reset_by_the_client_reads_as_http_disconnect(server):
    SEEN.clear()
    with H2Client(server.port) as client:
        stream = client.request("POST", "/wait-disconnect", end=False)
        client.read_until(lambda c: bytes(c.responses[stream].body) == b"started")
        client.reset(stream)
        later = client.response(client.request("GET", "/after"))
    assert later.status == 200
    assert SEEN == ["disconnect"]


def test_request_trailers_are_dropped_never_merged_into_the_header_section(server):
    with H2Client(server.port) as client:
        stream = client.request("POST", "/body", body=b"abc", end=False)
        client.conn.send_headers(stream, [("x-trailer", "sneaky")], end_stream=True)
        client.flush()
        described = json.loads(client.response(stream).body)
    assert described["body"] == "abc"
    assert all(name != "x-trailer" for name, _ in described["headers"])


def test_over_tls_the_scope_carries_https_and_the_tls_extension():
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(server_context)
    server_context.set_alpn_protocols(["h2", "http/1.1"])
    client_context = ssl.create_default_context(cadata=authority.cert_pem.bytes().decode())
    client_context.set_alpn_protocols(["h2"])
    with ListenerApp(app, ssl_context=server_context) as running, \
            H2Client(running.port, ssl_context=client_context) as client:
        described = json.loads(client.response(client.request("GET", "/secure")).body)
    assert described["http_version"] == "2"
    assert described["scheme"] == "https"
    assert described["tls"]
