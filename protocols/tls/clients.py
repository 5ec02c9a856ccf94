"""What a TLS connection tells the application: ASGI's TLS extension, and the client certificate checked per route.

`connection_extension` is computed once per connection by the listener and put in every request's scope as
`scope["extensions"]["tls"]` (https://asgi.readthedocs.io, "TLS extension"): `server_cert` (None: not exposed),
`client_cert_chain` (PEM strings, the leaf only: Python's ssl before 3.13 does not expose the chain the client
sent), `client_cert_name` (RFC 4514), `client_cert_error` (None: a certificate that fails verification fails the
handshake), `tls_version` (0x0303, 0x0304) and `cipher_suite` (its IANA number).

`client_subject` is the proxy's per-route check (the route's `tls` block, protocols.tls.policy): the handshake
only proved that one of the CAs of SOME route issued the certificate; the route accepts it when one of its own
did. Verdicts are kept per connection and CA bundle, so a kept-alive connection verifies a signature once.
"""
from __future__ import annotations

import ssl
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from protocols.errors import ClientCertificateRequired, ClientCertificateUntrusted
from protocols.tls.contexts import CIPHERS_TLS12

_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


def _suite_numbers() -> dict[str, int]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.set_ciphers(CIPHERS_TLS12)
    return {cipher["name"]: cipher["id"] & 0xFFFF for cipher in context.get_ciphers()}


_SUITES = _suite_numbers()


class TlsExtension(dict[str, Any]):
    """ASGI's TLS extension for one connection (a dict, as the spec has it), with the parsed client certificate
    (`certificate`) and the verdicts of the routes' CA bundles already asked about."""

    __slots__ = ("certificate", "verdicts")

    def __init__(self, values: dict[str, Any], certificate: x509.Certificate | None) -> None:
        super().__init__(values)
        self.certificate = certificate
        self.verdicts: dict[str, bool] = {}


def connection_extension(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> TlsExtension:
    """The extension of a connection whose handshake is complete."""
    der = ssl_object.getpeercert(binary_form=True)
    certificate = x509.load_der_x509_certificate(der) if der else None
    cipher = ssl_object.cipher()
    version = ssl_object.version()
    return TlsExtension({
        "server_cert": None,
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
        "client_cert_name": certificate.subject.rfc4514_string() if certificate is not None else None,
        "client_cert_error": None,
        "tls_version": _VERSIONS.get(version or ""),
        "cipher_suite": _SUITES.get(cipher[0]) if cipher else None,
    }, certificate)


def client_subject(scope: dict[str, Any], route_name: str, required: bool, ca_pem: str,
                   cas: tuple[x509.Certificate, ...]) -> str | None:
    """The subject (RFC 4514) of the connection's client certificate when one of `cas` issued it; None when there
    is none and it is not `required`. Raises ClientCertificateRequired or ClientCertificateUntrusted."""
    extensions = scope.get("extensions")
    tls = extensions.get("tls") if extensions else None
    certificate = _certificate(tls)
    if certificate is None:
        if required:
            raise ClientCertificateRequired(route_name)
        return None
    verdicts: dict[str, bool] | None = tls.verdicts if isinstance(tls, TlsExtension) else None
    trusted = verdicts.get(ca_pem) if verdicts is not None else None
    if trusted is None:
        trusted = any(_issued_by(certificate, ca) for ca in cas)
        if verdicts is not None:
            verdicts[ca_pem] = trusted
    if not trusted:
        raise ClientCertificateUntrusted(route_name)
    name = tls.get("client_cert_name") if tls else None
    return name if isinstance(name, str) else certificate.subject.rfc4514_string()


def _certificate(tls: Any) -> x509.Certificate | None:
    """The client's certificate: parsed by our listener already, else from another server's PEM chain."""
    if isinstance(tls, TlsExtension):
        return tls.certificate
    if not tls or not tls.get("client_cert_chain"):
        return None
    return x509.load_pem_x509_certificate(tls["client_cert_chain"][0].encode())


def _issued_by(certificate: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True
