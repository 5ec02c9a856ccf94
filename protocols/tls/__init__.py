"""TLS on the proxy listener: the certificates the table carries, and (in this package) what serves them.

`CertificateSpec` is what routes.snapshot hands the data plane for each stored certificate; the listener builds
one `ssl.SSLContext` per certificate and picks it by SNI at every handshake, so a new table's certificates are
served from the next handshake on, without a restart and without touching open connections.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CertificateSpec:
    """One certificate with its private key, as plain data (never an ORM object).

    `hosts` are lower-case DNS names, a leading `*.` for one wildcard label; `default` serves a handshake whose
    SNI name (or its absence) matches no other certificate. `not_after` is the leaf's expiry (Unix seconds).
    `version` changes whenever the PEM material does, so compiled contexts can be reused across tables."""

    id: int
    name: str
    hosts: tuple[str, ...]
    chain_pem: str  # the leaf first, then its intermediates
    key_pem: str
    default: bool = False
    not_after: float = 0.0
    fingerprint: str = ""  # SHA-256 of the leaf's DER, hex
