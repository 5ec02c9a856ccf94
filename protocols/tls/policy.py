"""A route's `tls` block (`RouteSpec.policies["tls"]`): redirect plain HTTP to HTTPS, and client certificates.

    redirect_http        false          a request that arrived over plain HTTP is answered with a redirect to the
                                        same URL on the TLS listener
    redirect_status      308            301, 302, 307 or 308
    client_certificate   "off"          "optional": a verified client certificate's subject is passed upstream;
                                        "required": a request without one is refused (401)
    client_ca            ""             the PEM bundle of the CAs whose certificates this route accepts (required
                                        unless client_certificate is "off")
    subject_header       "X-Client-Cert-Subject"
                                        the request header that carries the verified subject (RFC 4514) upstream;
                                        a client's own copy is always removed; "" passes none

`compile_tls_policy` raises BlockError with every problem by path; the control plane's validation and the data
plane's plan both call it, so what is saved is what is served.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from protocols.block_errors import BlockError, Issues, unknown_key_message

CLIENT_CERTIFICATE_MODES = ("off", "optional", "required")
REDIRECT_STATUSES = (301, 302, 307, 308)
DEFAULT_SUBJECT_HEADER = "X-Client-Cert-Subject"
KEYS = {
    "redirect_http": False,
    "redirect_status": 308,
    "client_certificate": "off",
    "client_ca": "",
    "subject_header": DEFAULT_SUBJECT_HEADER,
}
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an RFC 9110 field name


@dataclass(frozen=True, slots=True)
class TlsPolicy:
    """One route's TLS rules. `client_cas` are the accepted issuers, parsed; `subject_header` is lower-case."""

    redirect_http: bool = False
    redirect_status: int = 308
    client_certificate: str = "off"
    client_ca_pem: str = ""
    client_cas: tuple[x509.Certificate, ...] = ()
    subject_header: str = DEFAULT_SUBJECT_HEADER.lower()

    @property
    def wants_client_certificate(self) -> bool:
        return self.client_certificate != "off"


DEFAULT_TLS_POLICY = TlsPolicy()


def compile_tls_policy(block: Any) -> TlsPolicy:
    """The route's TlsPolicy from its `tls` block (None or {}: the defaults); BlockError names each bad key."""
    if block is None:
        return DEFAULT_TLS_POLICY
    if not isinstance(block, Mapping):
        raise BlockError.at("", "Must be an object.")
    issues = Issues()
    for key in block:
        if key not in KEYS:
            issues.add(str(key), unknown_key_message("tls", key, KEYS))
    redirect = block.get("redirect_http", False)
    if not isinstance(redirect, bool):
        issues.add("redirect_http", "Must be true or false.")
    status = block.get("redirect_status", 308)
    if isinstance(status, bool) or status not in REDIRECT_STATUSES:
        issues.add("redirect_status", f"Must be one of {', '.join(map(str, REDIRECT_STATUSES))}.")
    mode = block.get("client_certificate", "off")
    if mode not in CLIENT_CERTIFICATE_MODES:
        issues.add("client_certificate", f"Must be one of {', '.join(CLIENT_CERTIFICATE_MODES)}.")
    bundle = block.get("client_ca", "")
    cas: tuple[x509.Certificate, ...] = ()
    if not isinstance(bundle, str):
        issues.add("client_ca", "Must be a PEM bundle of CA certificates (text).")
    elif bundle.strip():
        try:
            cas = tuple(x509.load_pem_x509_certificates(bundle.encode()))
        except ValueError:
            issues.add("client_ca", "Is not a PEM bundle of certificates (-----BEGIN CERTIFICATE-----...).")
    elif mode in ("optional", "required"):
        issues.add("client_ca", f"Required when client_certificate is {mode!r}: the CAs whose certificates "
                                "this route accepts, in PEM.")
    header = block.get("subject_header", DEFAULT_SUBJECT_HEADER)
    if not isinstance(header, str) or (header and _TOKEN.fullmatch(header) is None):
        issues.add("subject_header", "Must be a header name (letters, digits and -), or \"\" to pass none.")
    issues.raise_if_any()
    return TlsPolicy(redirect_http=redirect, redirect_status=status, client_certificate=mode,
                     client_ca_pem=bundle if cas else "", client_cas=cas, subject_header=header.lower())
