"""The client TLS context for a backend's `tls` options, the same for the HTTP/1.1 and HTTP/2 clients and probes."""
from __future__ import annotations

import ssl


def backend_context(ca: str, verify: bool, alpn: tuple[str, ...] = ()) -> ssl.SSLContext:
    """Verification on unless `verify` is False; `ca` (a PEM bundle) replaces the system's trust when given;
    `alpn` names the protocols offered (("h2",) for gRPC backends). ssl.SSLError or ValueError on a bad bundle."""
    context = ssl.create_default_context(cadata=ca or None)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if alpn:
        context.set_alpn_protocols(list(alpn))
    return context
