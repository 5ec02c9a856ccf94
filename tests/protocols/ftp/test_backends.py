"""The FTP gateway's connections to its backends: explicit TLS, passive-mode safety, and failures as 5xx JSON."""
from __future__ import annotations

import ssl
import time
from dataclasses import replace

from tests.support.edge import EdgeServer
from tests.support.ftpserver import FakeFtpServer, FtpServer, ftp_route
from tests.support.proxy import call
from tests.support.upstream import BlackholeListener, refused_port

ALICE = {"ftp": {"username": "alice", "password": "secret"}}


def test_an_ftps_backend_is_used_with_explicit_tls_on_control_and_data() -> None:
    with FtpServer(tls=True) as ftp:
        (ftp.root / "secret.txt").write_bytes(b"over tls")
        trust = ssl.create_default_context(cafile=ftp.ca_pem)
        with EdgeServer([ftp_route("tls", "/ftps", ftp.port, scheme="ftps", policies=ALICE)],
                        ssl_context=trust) as edge:
            download = call(edge.port, "GET", "/ftps/download?path=/secret.txt")
            upload = call(edge.port, "PUT", "/ftps/upload?path=/up.bin", body=b"u" * 300_000)
            listing = call(edge.port, "GET", "/ftps/list")
    assert download.status == 200 and download.body == b"over tls"
    assert upload.status == 201 and upload.json()["size"] == 300_000
    assert sorted(listing.json()["files"]) == ["secret.txt", "up.bin"]


def test_an_ftps_backend_with_an_untrusted_certificate_answers_502() -> None:
    with FtpServer(tls=True) as ftp, EdgeServer([ftp_route("tls", "/ftps", ftp.port, scheme="ftps",
                                                           policies=ALICE)]) as edge:
        reply = call(edge.port, "GET", "/ftps/list")
    assert reply.status == 502 and "TLS handshake failed" in reply.json()["error"]


def test_a_plain_ftp_route_never_sends_credentials_to_a_server_that_requires_tls() -> None:
    with FtpServer(tls=True) as ftp, EdgeServer([ftp_route("plain", "/ftp", ftp.port, policies=ALICE)]) as edge:
        reply = call(edge.port, "GET", "/ftp/list")
    assert reply.status == 502  # the server refuses USER before AUTH TLS; the gateway says so


def test_a_pasv_reply_pointing_at_another_address_is_refused_without_connecting_there() -> None:
    with FakeFtpServer(pasv_host="127.0.0.2") as fake, EdgeServer([ftp_route("fake", "/ftp", fake.port)]) as edge:
        reply = call(edge.port, "GET", "/ftp/download?path=/f.txt")
        time.sleep(0.2)
    assert reply.status == 502 and reply.json()["type"] == "ftp_data_address_refused"
    assert "127.0.0.2" in reply.json()["error"]
    assert fake.foreign_connections == 0
    assert not any(command.startswith("RETR") for command in fake.commands)


def test_a_refused_ftp_backend_answers_502() -> None:
    with EdgeServer([ftp_route("down", "/ftp", refused_port())]) as edge:
        reply = call(edge.port, "GET", "/ftp/list")
    assert reply.status == 502 and reply.json()["type"] == "upstream_connect_refused"


def test_an_ftp_backend_host_that_does_not_resolve_answers_502_name_not_resolved() -> None:
    spec = ftp_route("typo", "/ftp", 2121)
    spec = replace(spec, backends=(replace(spec.backends[0], host="nothing.invalid"),))
    with EdgeServer([spec]) as edge:
        reply = call(edge.port, "GET", "/ftp/list")
    assert reply.status == 502 and reply.json()["type"] == "upstream_name_not_resolved"
    assert "nothing.invalid:2121" in reply.json()["error"]


def test_an_ftp_backend_that_never_accepts_answers_504_after_the_connect_timeout() -> None:
    with BlackholeListener() as blackhole, EdgeServer([
        ftp_route("hung", "/ftp", blackhole.port, connect_timeout=0.3),
    ]) as edge:
        started = time.monotonic()
        reply = call(edge.port, "GET", "/ftp/list")
    assert reply.status == 504 and reply.json()["type"] == "upstream_connect_timeout"
    assert time.monotonic() - started < 3


def test_a_backend_that_never_greets_answers_504_after_the_read_timeout() -> None:
    from tests.support.upstream import UpstreamServer

    with UpstreamServer() as http_server, EdgeServer([
        ftp_route("confused", "/ftp", http_server.port, read_timeout=0.5),
    ]) as edge:
        reply = call(edge.port, "GET", "/ftp/list")
    assert reply.status == 504 and reply.json()["type"] == "upstream_timeout"
    assert "0.5 s" in reply.json()["error"]


def test_an_ftp_route_is_matched_by_prefix_and_other_routes_keep_their_paths() -> None:
    from tests.support.proxy import route as http_route
    from tests.support.upstream import UpstreamServer

    with FtpServer() as ftp, UpstreamServer() as upstream:
        (ftp.root / "a.txt").write_bytes(b"a")
        routes = [ftp_route("files", "/ftp", ftp.port, policies=ALICE),
                  http_route("status", "/ftp/status", upstream.port, methods=("GET",))]
        with EdgeServer(routes) as edge:
            assert call(edge.port, "GET", "/ftp/download?path=/a.txt").body == b"a"
            assert call(edge.port, "GET", "/ftp/status").json()["port"] == upstream.port
            assert call(edge.port, "GET", "/ftpx/list").status == 404
