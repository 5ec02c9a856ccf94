"""The proxy listener's TLS contexts: one per certificate, kept while it is unchanged, and the front one that picks
among them by SNI at each handshake.

Every context is server-side, TLS 1.2 at least (1.3 allowed), with ECDHE and AES-GCM or ChaCha20 only for 1.2
(1.3's suites are all AEAD), no compression and no renegotiation. `CertificateLookup` is what one table serves
(built once per table, in its plan): a certificate's context by exact host name, then by one-label wildcard, then
the default. `FrontContext` is the one the listening socket is created with: at every new connection it reads the
lookup of the table served now, so a new or renewed certificate is served from the next handshake after the table
swap, while open connections keep theirs.

Client certificates: when a route of the table asks for one, every context requests it (CERT_OPTIONAL) and trusts
the union of those routes' CAs; which route accepts which CA is the proxy's business (protocols.tls.clients).
Python's ssl has no verify callback, so a certificate that none of those CAs issued fails the handshake.
"""
from __future__ import annotations

import logging
import os
import ssl
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from protocols.tls import CertificateSpec

log = logging.getLogger(__name__)

# What ALPN offers on the proxy listener, in the server's order of preference: a connection that picks "h2" is
# served HTTP/2 (protocols.http.h2), any other HTTP/1.1.
ALPN: tuple[str, ...] = ("h2", "http/1.1")
# TLS 1.2's suites: forward secrecy and an AEAD only (TLS 1.3's are all of that kind already).
CIPHERS_TLS12 = "ECDHE+AESGCM:ECDHE+CHACHA20"
_OPTIONS = ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION | ssl.OP_CIPHER_SERVER_PREFERENCE


def server_context(alpn: Iterable[str] = ALPN, context_class: type[ssl.SSLContext] = ssl.SSLContext) -> ssl.SSLContext:
    """A server-side context with this module's protocol rules and no certificate yet."""
    context = context_class(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(CIPHERS_TLS12)
    context.options |= _OPTIONS
    context.set_alpn_protocols(list(alpn))
    return context


def certificate_context(spec: CertificateSpec, client_cas: str = "", alpn: Iterable[str] = ALPN) -> ssl.SSLContext:
    """The context that serves `spec`; with `client_cas` (PEM), it asks for a client certificate issued by one of
    them. ssl.SSLError (or ValueError) when the material does not load.

    load_cert_chain reads files only: the PEMs are written to a private (0700) directory and deleted at once."""
    context = server_context(alpn)
    with tempfile.TemporaryDirectory(prefix="rusta-tls-") as folder:
        os.chmod(folder, 0o700)
        chain_path = os.path.join(folder, "chain.pem")
        key_path = os.path.join(folder, "key.pem")
        for path, text in ((chain_path, spec.chain_pem), (key_path, spec.key_pem)):
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(text)
        try:
            context.load_cert_chain(chain_path, key_path)
        finally:
            os.unlink(key_path)
            os.unlink(chain_path)
    if client_cas:
        context.load_verify_locations(cadata=client_cas)
        context.verify_mode = ssl.CERT_OPTIONAL
    return context


@dataclass(frozen=True)
class CertificateLookup:
    """The contexts one table serves, by the SNI name they answer: `exact` host names, `wildcards` by the name
    without its first label, then `default` (None: a handshake that matches nothing fails with
    unrecognized_name). `client_cas` is the PEM union of the CAs the table's routes accept ("" when none asks)."""

    exact: dict[str, ssl.SSLContext] = field(default_factory=dict)
    wildcards: dict[str, ssl.SSLContext] = field(default_factory=dict)
    default: ssl.SSLContext | None = None
    client_cas: str = ""

    def pick(self, server_name: str | None) -> ssl.SSLContext | None:
        """The context for a handshake that named `server_name` (None: no SNI)."""
        if server_name:
            name = server_name.rstrip(".").lower()
            found = self.exact.get(name)
            if found is not None:
                return found
            _, dot, parent = name.partition(".")
            if dot:
                found = self.wildcards.get(parent)
                if found is not None:
                    return found
        return self.default


NO_CERTIFICATES = CertificateLookup()


class ServerContexts:
    """One per process: the certificates' contexts, reused across tables while a certificate's fingerprint (and
    the table's client CA set) stays the same; `lookup(table)` builds the lookup of a new table."""

    def __init__(self, alpn: Iterable[str] = ALPN) -> None:
        self.alpn = tuple(alpn)
        self._contexts: dict[tuple[str, str], ssl.SSLContext] = {}

    def lookup(self, certificates: Iterable[CertificateSpec], client_cas: str = "") -> CertificateLookup:
        """The lookup of a table's certificates; a certificate whose material does not load is left out (the
        log says which). Contexts the table no longer uses are forgotten."""
        kept: dict[tuple[str, str], ssl.SSLContext] = {}
        exact: dict[str, ssl.SSLContext] = {}
        wildcards: dict[str, ssl.SSLContext] = {}
        default: ssl.SSLContext | None = None
        for spec in certificates:
            key = (spec.fingerprint or f"{spec.id}:{hash((spec.chain_pem, spec.key_pem))}", client_cas)
            context = kept.get(key) or self._contexts.get(key)
            if context is None:
                try:
                    context = certificate_context(spec, client_cas, self.alpn)
                except (ssl.SSLError, ValueError, OSError) as exc:
                    log.error("TLS certificate %r (id %s) cannot be served: %s", spec.name, spec.id, exc)
                    continue
            kept[key] = context
            for host in spec.hosts:
                if host.startswith("*."):
                    wildcards.setdefault(host[2:], context)
                else:
                    exact.setdefault(host, context)
            if spec.default and default is None:
                default = context
        self._contexts = kept
        return CertificateLookup(exact, wildcards, default, client_cas)


class HandshakeObject(ssl.SSLObject):
    """An SSLObject that reports a failed handshake once, with its reason (`report`), and lets its alert reach the
    client: the event loop (uvloop's SSL protocol, as asyncio's) closes the connection on a handshake error without
    sending what OpenSSL wrote, so the client would see an EOF instead of unrecognized_name or protocol_version.
    The failure is raised as "want read" first, which makes the loop send the alert and wait; the next attempt
    (the client's close or anything else it sends) raises the real error."""

    # Read through the class (type(self)), so that the function is not bound as a method.
    report: Callable[[str], None] | None = None
    _failure: ssl.SSLError | None = None

    def do_handshake(self) -> None:
        if self._failure is not None:
            raise self._failure
        try:
            super().do_handshake()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise
        except ssl.SSLError as exc:
            report = type(self).report
            if report is not None:
                report(failure_reason(exc))
            self._failure = exc
            raise ssl.SSLWantReadError("the handshake failed; its alert goes out first") from exc


def failure_reason(exc: ssl.SSLError) -> str:
    """The label of a failed handshake: no_certificate (for the name asked), client_certificate (a client's
    certificate that failed verification), protocol_version, or other."""
    reason = (exc.reason or "").upper()
    if "UNRECOGNIZED_NAME" in reason or "CALLBACK_FAILED" in reason:
        return "no_certificate"
    if "CERTIFICATE_VERIFY_FAILED" in reason or "PEER_DID_NOT_RETURN" in reason or "BAD_CERTIFICATE" in reason:
        return "client_certificate"
    if "VERSION" in reason or "PROTOCOL" in reason:
        return "protocol_version"
    return "other"


class FrontContext(ssl.SSLContext):
    """The listening socket's context: every handshake takes a certificate's context from the lookup of the table
    served now (`source()`, called as the connection starts), by SNI.

    Some settings stay with the context a connection started on whatever SNI picks later (OpenSSL's verify mode
    among them): whether a client certificate is asked for is set here, at each new connection, from the same
    lookup. Build it with `front_context`."""

    source: Callable[[], CertificateLookup]

    def wrap_bio(self, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO, server_side: bool = False,
                 server_hostname: str | bytes | None = None, session: ssl.SSLSession | None = None) -> ssl.SSLObject:
        mode = ssl.CERT_OPTIONAL if self.source().client_cas else ssl.CERT_NONE
        if self.verify_mode != mode:
            self.verify_mode = mode
        return super().wrap_bio(incoming, outgoing, server_side, server_hostname, session)


def front_context(source: Callable[[], CertificateLookup], on_failure: Callable[[str], None] | None = None,
                  alpn: Iterable[str] = ALPN) -> FrontContext:
    """The context to listen with; `source()` returns the current table's lookup (the data plane's plan holds
    it), `on_failure(reason)` hears of every failed handshake (failure_reason's labels)."""
    context = server_context(alpn, FrontContext)
    assert isinstance(context, FrontContext)
    context.source = source
    context.sslobject_class = type("ReportingHandshake", (HandshakeObject,), {"report": on_failure})

    def pick(ssl_object: Any, server_name: str | None, _: ssl.SSLContext) -> int | None:
        chosen = source().pick(server_name)
        if chosen is None:
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        ssl_object.context = chosen
        return None

    context.sni_callback = pick
    return context
