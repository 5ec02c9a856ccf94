"""TLS for the tests: certificates from a trustme CA as the table carries them, and HTTPS clients on loopback that
name the host they want (SNI) whatever address they connect to."""
from __future__ import annotations

import hashlib
import http.client
import itertools
import socket
import ssl
from collections.abc import Iterable

import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from protocols.tls import CertificateSpec
from tests.support.proxy import Reply

_ids = itertools.count(1)


def certificate(ca: trustme.CA, *hosts: str, default: bool = False, name: str = "") -> CertificateSpec:
    """A certificate for `hosts` issued by `ca`, as routes.snapshot hands it to the data plane."""
    leaf = ca.issue_cert(*hosts)
    chain = "".join(blob.bytes().decode() for blob in leaf.cert_chain_pems)
    first = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes())
    der = first.public_bytes(Encoding.DER)
    number = next(_ids)
    return CertificateSpec(id=number, name=name or f"cert-{number}", hosts=tuple(hosts), chain_pem=chain,
                           key_pem=leaf.private_key_pem.bytes().decode(), default=default,
                           not_after=first.not_valid_after_utc.timestamp(), fingerprint=hashlib.sha256(der).hexdigest())


def serial_of(der: bytes) -> int:
    """The serial number of a DER certificate (what a handshake served)."""
    return x509.load_der_x509_certificate(der).serial_number


def spec_serial(spec: CertificateSpec) -> int:
    return x509.load_pem_x509_certificate(spec.chain_pem.encode()).serial_number


def client_context(ca: trustme.CA, cert: trustme.LeafCert | None = None, *,
                   version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    """A client that trusts `ca`, presents `cert` when given, and speaks only `version` when given."""
    context = ssl.create_default_context(cadata=ca.cert_pem.bytes().decode())
    if cert is not None:
        cert.configure_cert(context)
    if version is not None:
        context.minimum_version = context.maximum_version = version
    return context


def handshake(port: int, server_name: str | None, context: ssl.SSLContext) -> ssl.SSLSocket:
    """A TLS connection to 127.0.0.1:`port` that asks for `server_name` (None: no SNI, no name check)."""
    if server_name is None:
        context.check_hostname = False
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        return context.wrap_socket(raw, server_hostname=server_name)
    except BaseException:
        raw.close()
        raise


def served_serial(port: int, server_name: str | None, context: ssl.SSLContext) -> int:
    """The serial number of the certificate the listener serves to a handshake that asks for `server_name`."""
    with handshake(port, server_name, context) as tls:
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        return serial_of(der)


class HttpsConnection(http.client.HTTPSConnection):
    """An HTTPS connection to 127.0.0.1 that sends `server_name` as SNI and Host."""

    def __init__(self, port: int, server_name: str, context: ssl.SSLContext, timeout: float) -> None:
        super().__init__(server_name, port, context=context, timeout=timeout)
        self._port = port
        self._tls_context = context

    def connect(self) -> None:
        self.sock = handshake(self._port, self.host, self._tls_context)


def https_call(port: int, server_name: str, context: ssl.SSLContext, method: str, target: str,
               headers: Iterable[tuple[str, str]] = (), timeout: float = 10.0) -> Reply:
    """One HTTPS request on a new connection to the listener on 127.0.0.1:`port`."""
    conn = HttpsConnection(port, server_name, context, timeout)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        return Reply(response.status, response.getheaders(), response.read())
    finally:
        conn.close()
