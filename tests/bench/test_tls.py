"""Tests of bench/tls.py: the certificate made at bench time, and the handshake and HTTPS probes against a real
TLS server on loopback."""
from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from bench import tls
from bench.procs import BenchError, http_status
from tests.support.upstream import refused_port


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        status = 200 if self.path == "/bench" else 404
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def certificate(tmp_path: Path) -> tls.BenchCertificate:
    return tls.make_certificate(tmp_path)


@pytest.fixture()
def https_port(certificate: tls.BenchCertificate) -> Iterator[int]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate.cert_path, certificate.key_path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def test_the_certificate_is_ecdsa_p256_for_localhost_and_127_0_0_1(certificate: tls.BenchCertificate) -> None:
    leaf = x509.load_pem_x509_certificate(certificate.cert_path.read_bytes())
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    public_key = leaf.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey) and public_key.curve.name == "secp256r1"


def test_the_files_hold_the_same_pem_as_the_api_gets(certificate: tls.BenchCertificate) -> None:
    assert certificate.cert_path.read_text() == certificate.chain_pem
    assert certificate.key_path.read_text() == certificate.key_pem
    assert "PRIVATE KEY" in certificate.key_pem


def test_a_handshake_with_a_tls_server_is_seen(https_port: int) -> None:
    assert tls.handshake_ok(https_port)
    assert tls.wait_for_handshake(https_port, timeout=5) >= 0


def test_no_listener_is_no_handshake() -> None:
    port = refused_port()
    assert not tls.handshake_ok(port)
    with pytest.raises(BenchError, match="no TLS handshake"):
        tls.wait_for_handshake(port, timeout=0.2)


def test_https_status_reads_the_answer_over_tls(https_port: int) -> None:
    assert http_status(https_port, "/bench", tls=True) == 200
    assert http_status(https_port, "/other", tls=True) == 404


def test_https_status_is_none_when_nothing_answers() -> None:
    assert http_status(refused_port(), "/bench", tls=True) is None
