"""ProxyApp hands requests under an ftp route's path to the FTP gateway, unless a more exact route matches."""
from __future__ import annotations

from protocols.recorder import Recorder
from tests.support.ftpserver import FtpServer, ftp_route
from tests.support.proxy import ProxyServer, route
from tests.support.upstream import UpstreamServer

ALICE = {"ftp": {"username": "alice", "password": "secret"}}


def test_a_request_under_an_ftp_routes_path_is_served_by_the_ftp_gateway_and_recorded():
    recorder = Recorder()
    with FtpServer() as ftp, ProxyServer([ftp_route("files", "/files", ftp.port, policies=ALICE)],
                                         recorder=recorder) as proxy:
        (ftp.root / "a.txt").write_bytes(b"abc")
        reply = proxy.call("GET", "/files/download/a.txt")
    assert (reply.status, reply.body) == (200, b"abc")
    assert reply.header("x-request-id")
    assert list(recorder.take_window()) == [("files", "GET", 200, f"127.0.0.1:{ftp.port}", "")]


def test_a_more_exact_http_route_wins_over_the_ftp_prefix():
    with FtpServer() as ftp, UpstreamServer() as upstream:
        routes = [ftp_route("files", "/files", ftp.port, policies=ALICE),
                  route("special", "/files/special", upstream.port)]
        with ProxyServer(routes) as proxy:
            reply = proxy.call("GET", "/files/special")
    assert reply.status == 200 and reply.json()["path"] == "/files/special"


def test_an_ftp_failure_before_the_answer_is_a_json_gateway_error():
    with FtpServer() as ftp, ProxyServer([ftp_route("files", "/files", ftp.port, policies=ALICE)]) as proxy:
        reply = proxy.call("GET", "/files/nonsense")
    assert reply.status == 404
    assert reply.json()["type"] and reply.header("x-request-id")


def test_an_ftp_routes_ip_rules_refuse_an_address_outside_them_with_403():
    denied = {**ALICE, "ip_rules": {"allow": ["10.0.0.0/8"]}}
    with FtpServer() as ftp, ProxyServer([ftp_route("files", "/files", ftp.port, policies=denied)]) as proxy:
        (ftp.root / "a.txt").write_bytes(b"abc")
        reply = proxy.call("GET", "/files/download/a.txt")
    assert reply.status == 403 and reply.json()["type"] == "client_forbidden"


def test_ftp_answers_carry_the_security_headers():
    with FtpServer() as ftp, ProxyServer([ftp_route("files", "/files", ftp.port, policies=ALICE)]) as proxy:
        (ftp.root / "a.txt").write_bytes(b"abc")
        reply = proxy.call("GET", "/files/download/a.txt")
    assert reply.header("x-content-type-options") == ["nosniff"]
