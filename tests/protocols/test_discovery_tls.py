"""Discovered https backends through the real proxy: each address is connected to, but TLS sends and verifies the
DNS name it was found under (the backend's host for `a`, the SRV target for `srv`), and Host defaults to it.

The backends are real TLS servers on loopback whose certificates name DNS names only, and the names come from a
real DNS server on loopback.
"""
from __future__ import annotations

import datetime
import json
import ssl
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from protocols.table import BackendSpec, DiscoverySpec, RouteSpec
from tests.protocols.dns.servers import ZoneServer
from tests.protocols.test_discovery_proxy import NAME, SERVICE, a_zone, host_in, srv_zone, warmed_up
from tests.support.proxy import ProxyServer
from tests.support.upstream import UpstreamServer, tls_contexts

INTERVAL_S = 0.5


def _certificate(subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name | None,
                 issuer_key: ec.EllipticCurvePrivateKey | None, names: tuple[str, ...]) -> x509.Certificate:
    """A CA's own certificate (no `issuer`), or one for `names` signed by the CA."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer or name).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1)))
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                                        critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


class Authority:
    """A CA of its own: `server(*names)` is a TLS server context whose certificate names only `names` (no
    address), `sni` the names every such server was asked for; `client` trusts this CA only."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.certificate = _certificate("Rusta test CA", self.key, None, None, ())
        self.client = ssl.create_default_context(
            cadata=self.certificate.public_bytes(serialization.Encoding.PEM).decode())
        self.sni: list[str | None] = []

    def server(self, *names: str) -> ssl.SSLContext:
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = _certificate(names[0], key, self.certificate.subject, self.key, names)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with tempfile.NamedTemporaryFile() as cert_file, tempfile.NamedTemporaryFile() as key_file:
            cert_file.write(certificate.public_bytes(serialization.Encoding.PEM))
            cert_file.flush()
            key_file.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()))
            key_file.flush()
            context.load_cert_chain(cert_file.name, key_file.name)
        context.sni_callback = self._seen
        return context

    def _seen(self, _socket: ssl.SSLObject, name: str | None, _context: ssl.SSLContext) -> None:
        self.sni.append(name)


def https_route(host: str, port: int, kind: str, dns: ZoneServer) -> RouteSpec:
    backend = BackendSpec(id=1, scheme="https", host=host, port=port,
                          discovery=DiscoverySpec(kind, INTERVAL_S, ("127.0.0.1", dns.port)))
    return RouteSpec(id=1, name="api", external_path="/api", methods=("GET",), backends=(backend,))


@contextmanager
def a_name_over_tls(server_context: ssl.SSLContext,
                    client_context: ssl.SSLContext) -> Iterator[tuple[ProxyServer, UpstreamServer]]:
    """An https backend at NAME, which the DNS server points at 127.0.0.1, and a proxy discovering it."""
    with ExitStack() as stack:
        upstream = stack.enter_context(UpstreamServer(ssl_context=server_context))
        dns = stack.enter_context(ZoneServer(a_zone("127.0.0.1")))
        proxy = stack.enter_context(ProxyServer([https_route(NAME, upstream.port, "a", dns)],
                                                ssl_context=client_context))
        yield proxy, upstream


def test_an_https_a_name_is_reached_at_its_address_under_its_name():
    ca = Authority()
    with a_name_over_tls(ca.server(NAME), ca.client) as (proxy, upstream):
        warmed_up(proxy, f"{NAME}:{upstream.port}")
        reply = proxy.call("GET", "/api")
    assert reply.status == 200
    assert host_in(reply.body) == f"{NAME}:{upstream.port}"  # the name, not 127.0.0.1, is the Host
    assert set(ca.sni) == {NAME}


def test_a_certificate_that_names_the_address_but_not_the_name_is_refused():
    server, client = tls_contexts()  # a certificate for 127.0.0.1 only
    with a_name_over_tls(server, client) as (proxy, upstream):
        deadline = time.monotonic() + 5.0
        reply = proxy.call("GET", "/api")
        while b"127.0.0.1" not in reply.body and time.monotonic() < deadline:  # until the name's first answer
            time.sleep(0.02)
            reply = proxy.call("GET", "/api")
        served = upstream.count()
    assert reply.status == 502
    assert "TLS handshake failed (CERTIFICATE_VERIFY_FAILED)" in json.loads(reply.body)["error"]
    assert served == 0  # no request got through a handshake that named the wrong host


def test_https_srv_targets_are_each_reached_under_their_own_name():
    ca = Authority()
    with ExitStack() as stack:
        first = stack.enter_context(UpstreamServer(ssl_context=ca.server("a.example.test")))
        second = stack.enter_context(UpstreamServer(ssl_context=ca.server("b.example.test")))
        dns = stack.enter_context(ZoneServer(srv_zone((1, first.port, "a"), (1, second.port, "b"))))
        proxy = stack.enter_context(ProxyServer([https_route(SERVICE, 443, "srv", dns)], ssl_context=ca.client))
        warmed_up(proxy, f"a.example.test:{first.port}")
        replies = [proxy.call("GET", "/api") for _ in range(10)]
    assert [reply.status for reply in replies] == [200] * 10
    assert {host_in(reply.body) for reply in replies} == {f"a.example.test:{first.port}",
                                                          f"b.example.test:{second.port}"}
    assert set(ca.sni) == {"a.example.test", "b.example.test"}


def test_preserve_host_sends_the_clients_host_while_tls_still_names_the_backend():
    ca = Authority()
    with ExitStack() as stack:
        upstream = stack.enter_context(UpstreamServer(ssl_context=ca.server(NAME)))
        dns = stack.enter_context(ZoneServer(a_zone("127.0.0.1")))
        route = replace(https_route(NAME, upstream.port, "a", dns), preserve_host=True)
        proxy = stack.enter_context(ProxyServer([route], ssl_context=ca.client))
        deadline = time.monotonic() + 5.0
        reply = proxy.call("GET", "/api", [("Host", "www.client.test")])
        while reply.status != 200 and time.monotonic() < deadline:  # until the name's first answer
            time.sleep(0.02)
            reply = proxy.call("GET", "/api", [("Host", "www.client.test")])
    assert reply.status == 200
    assert host_in(reply.body) == "www.client.test"
    assert set(ca.sni) == {NAME}
