"""The TLS runs' certificate: made at bench time (trustme, ECDSA P-256, never committed), written for nginx and
Caddy, stored in Rusta through its certificates API, and probed with a handshake."""
from __future__ import annotations

import base64
import json
import socket
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import trustme

from bench.procs import BenchError

# The names wrk and h2load reach the TLS listeners by; h2load sends no SNI to an IP address, wrk sends it as is.
HOSTS = ("localhost", "127.0.0.1")


@dataclass(frozen=True, slots=True)
class BenchCertificate:
    """A leaf certificate (its chain, leaf first) and its private key, as PEM text and as files in the run dir."""

    chain_pem: str
    key_pem: str
    cert_path: Path
    key_path: Path


def make_certificate(run_dir: Path) -> BenchCertificate:
    """A throwaway CA and a leaf for HOSTS, both ECDSA P-256 (what Caddy and most sites serve today)."""
    ca = trustme.CA(key_type=trustme.KeyType.ECDSA)
    leaf = ca.issue_cert(*HOSTS, key_type=trustme.KeyType.ECDSA)
    chain = "".join(blob.bytes().decode() for blob in leaf.cert_chain_pems)
    key = leaf.private_key_pem.bytes().decode()
    directory = run_dir / "tls"
    directory.mkdir(mode=0o755, exist_ok=True)
    cert_path, key_path = directory / "bench.crt", directory / "bench.key"
    cert_path.write_text(chain)
    key_path.write_text(key)
    # nginx reads them as root before dropping privileges, Caddy as the bench's user: 0644 in a private run dir.
    key_path.chmod(0o644)
    return BenchCertificate(chain, key, cert_path, key_path)


def handshake_ok(port: int, timeout: float = 1.0) -> bool:
    """A TLS handshake with 127.0.0.1:port completes (the certificate is not verified: it is our own)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock, \
                context.wrap_socket(sock, server_hostname="localhost"):
            return True
    except (OSError, ssl.SSLError):
        return False


def wait_for_handshake(port: int, timeout: float) -> float:
    """Seconds until a handshake on `port` completed; BenchError after `timeout`."""
    started = time.monotonic()
    while not handshake_ok(port):
        if time.monotonic() - started > timeout:
            raise BenchError(f"no TLS handshake on port {port} after {timeout:g} s")
        time.sleep(0.1)
    return time.monotonic() - started


def store_in_rusta(admin_port: int, user: str, password: str, certificate: BenchCertificate) -> None:
    """POST the certificate to Rusta's /api/certificates/ as the default one (README: Certificates)."""
    body = json.dumps({"name": "bench", "certificate": certificate.chain_pem, "key": certificate.key_pem,
                       "default": True}).encode()
    credentials = base64.b64encode(f"{user}:{password}".encode()).decode()
    request = urllib.request.Request(f"http://127.0.0.1:{admin_port}/api/certificates/", data=body, method="POST",
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Basic {credentials}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            status = answer.status
    except urllib.error.HTTPError as exc:
        raise BenchError(f"POST /api/certificates/ answered {exc.code}: {exc.read()[:300]!r}") from None
    except OSError as exc:
        raise BenchError(f"POST /api/certificates/ failed: {exc}") from None
    if status != 201:
        raise BenchError(f"POST /api/certificates/ answered {status}, not 201")
