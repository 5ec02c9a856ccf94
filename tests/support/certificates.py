"""Certificates and keys for tests: leaves issued by a trustme CA (RSA or EC), and with `cryptography` an expired
self-signed one, a key of no certificate, and an encrypted key."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Pair:
    """A chain (PEM, the leaf first) and its private key (PEM)."""

    chain: str
    key: str


def issued(ca: trustme.CA, *hosts: str, rsa: bool = False, not_after: datetime | None = None) -> Pair:
    """A leaf for `hosts` issued by `ca`, with its intermediates (trustme lists the chain without the root)."""
    leaf = ca.issue_cert(*hosts, key_type=trustme.KeyType.RSA if rsa else trustme.KeyType.ECDSA,
                         not_after=not_after)
    chain = "".join(blob.bytes().decode() for blob in leaf.cert_chain_pems)
    return Pair(chain, leaf.private_key_pem.bytes().decode())


def ec_key_pem() -> str:
    """A new EC private key (PEM, unencrypted) that belongs to no certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def encrypted(key_pem: str, passphrase: bytes = b"a passphrase") -> str:
    """`key_pem` encrypted with a passphrase."""
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.BestAvailableEncryption(passphrase)).decode()


def self_signed(host: str, not_before: datetime, not_after: datetime) -> Pair:
    """A self-signed EC certificate for `host`, valid from `not_before` to `not_after` (an expired one, say)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return Pair(cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem)


def expired(host: str, now: datetime | None = None) -> Pair:
    """A certificate for `host` that expired a day before `now`."""
    now = now or datetime.now(UTC)
    return self_signed(host, now - timedelta(days=90), now - timedelta(days=1))
