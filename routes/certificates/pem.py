"""Reading a certificate's PEM chain, its private key and its host names with `cryptography`, every problem by field.

`read_chain` and `read_key` add their messages at the document's field (`certificate`, `key`) and return None when
nothing usable was found; `hosts_of` checks the names a certificate is to serve (`hosts[1]`). Nothing here touches
the database: routes.certificates.services adds what needs it (a host another certificate serves, one default).
"""
from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

Errors = dict[str, list[str]]

MAX_PEM_CHARS = 64 * 1024  # a chain of a leaf and a few intermediates is a few KiB
MAX_HOSTS = 100
SERVED_KEYS = (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
HOST = re.compile(rf"^(?=.{{1,253}}$)(\*\.)?{_LABEL}(\.{_LABEL})+$")  # at least two labels; `*.` leads alone


@dataclass(frozen=True)
class Chain:
    """A parsed chain: the leaf first, and what the model keeps of the leaf."""

    certificates: tuple[x509.Certificate, ...]
    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    fingerprint_sha256: str
    dns_names: tuple[str, ...]

    @property
    def leaf(self) -> x509.Certificate:
        return self.certificates[0]


def _add(errors: Errors, field: str, message: str) -> None:
    errors.setdefault(field, []).append(message)


def _text(value: object, field: str, what: str, errors: Errors) -> str | None:
    if not isinstance(value, str) or not value.strip():
        _add(errors, field, f"Required: {what} in PEM form (-----BEGIN ...-----).")
        return None
    if len(value) > MAX_PEM_CHARS:
        _add(errors, field, f"At most {MAX_PEM_CHARS} characters.")
        return None
    return value


def read_chain(value: object, errors: Errors, field: str = "certificate") -> Chain | None:
    """The chain in `value` (PEM, leaf first, then the certificates that issued it, in order)."""
    text = _text(value, field, "the certificate chain, the leaf first", errors)
    if text is None:
        return None
    try:
        certificates = tuple(x509.load_pem_x509_certificates(text.encode()))
    except ValueError:
        _add(errors, field, "Is not a PEM certificate chain (-----BEGIN CERTIFICATE-----..., the leaf first).")
        return None
    for index, (child, parent) in enumerate(zip(certificates, certificates[1:], strict=False)):
        try:
            child.verify_directly_issued_by(parent)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            _add(errors, field, f"Certificate {index + 2} of the chain did not issue certificate {index + 1}: put the "
                                "leaf first, then each issuer in turn.")
            return None
    leaf = certificates[0]
    try:
        names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns_names = tuple(dict.fromkeys(name.lower() for name in names.get_values_for_type(x509.DNSName)))
    except x509.ExtensionNotFound:
        dns_names = ()
    return Chain(certificates=certificates, subject=leaf.subject.rfc4514_string(),
                 issuer=leaf.issuer.rfc4514_string(), not_before=leaf.not_valid_before_utc,
                 not_after=leaf.not_valid_after_utc,
                 fingerprint_sha256=hashlib.sha256(leaf.public_bytes(serialization.Encoding.DER)).hexdigest(),
                 dns_names=dns_names)


def read_key(value: object, errors: Errors, field: str = "key") -> PrivateKeyTypes | None:
    """The private key in `value` (PEM, unencrypted: the gateway has no one to ask for a passphrase)."""
    text = _text(value, field, "the private key", errors)
    if text is None:
        return None
    try:
        key = serialization.load_pem_private_key(text.encode(), password=None)
    except TypeError:
        _add(errors, field, "The key is encrypted (it needs a passphrase, which the gateway cannot type): send it "
                            "decrypted, like `openssl pkey -in key.pem -out plain.pem`.")
        return None
    except (ValueError, UnsupportedAlgorithm):
        _add(errors, field, "Is not a PEM private key (-----BEGIN PRIVATE KEY-----...).")
        return None
    if not isinstance(key, SERVED_KEYS):
        _add(errors, field, "Must be an RSA, EC, Ed25519 or Ed448 key.")
        return None
    return key


def key_matches(chain: Chain, key: PrivateKeyTypes) -> bool:
    """Whether `key` is the private half of the leaf's public key."""
    info = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return key.public_key().public_bytes(*info) == chain.leaf.public_key().public_bytes(*info)


def covers(name: str, host: str) -> bool:
    """Whether a certificate name (`*.example.com` or exact) is valid for `host` (RFC 6125: `*` is one label)."""
    if name == host:
        return True
    if name.startswith("*.") and not host.startswith("*."):
        first, _, rest = host.partition(".")
        return bool(first) and rest == name[2:]
    return False


def hosts_of(value: object, chain: Chain | None, errors: Errors, field: str = "hosts") -> list[str]:
    """The host names to serve: `value` lower-cased (repeats dropped), each one the certificate is valid for;
    left empty (or null), the certificate's own DNS names."""
    if value is None or value == []:
        return list(chain.dns_names) if chain is not None else []
    if not isinstance(value, list) or len(value) > MAX_HOSTS:
        _add(errors, field, f'Must be a list of at most {MAX_HOSTS} host names, like ["api.example.com", '
                            '"*.example.com"]; empty: the certificate\'s own DNS names.')
        return []
    hosts: list[str] = []
    for index, item in enumerate(value):
        where = f"{field}[{index}]"
        host = item.strip().lower().rstrip(".") if isinstance(item, str) else None
        if host is None or not HOST.match(host) or _is_address(host):
            _add(errors, where, "Must be a DNS name like api.example.com, or *.example.com for one label (no "
                                "address, port or path: TLS clients send a name).")
            continue
        if chain is not None and not any(covers(name, host) for name in chain.dns_names):
            _add(errors, where, f"The certificate is not valid for {host}: it names "
                                f"{_names(chain.dns_names)}.")
            continue
        if host not in hosts:
            hosts.append(host)
    return hosts


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _names(names: Iterable[str]) -> str:
    listed = ", ".join(names)
    return listed or "no DNS name (no subjectAltName)"
