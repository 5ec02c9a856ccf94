"""FTP servers on 127.0.0.1 for the suite: a real one (pyftpdlib, optionally FTPS) over a temporary root, and a
tiny scripted fake for replies a real server would not send.

    with FtpServer() as ftp:            users alice/secret (full rights) and reader/secret (read only)
        ftp.root / "a.txt"              the files it serves
    with FtpServer(tls=True) as ftp:    explicit TLS required on control and data; ftp.ca_pem trusts it
    with FtpServer(anonymous=True):     also anonymous logins, with full rights (a route without an ftp block)
"""
from __future__ import annotations

import itertools
import logging
import socket
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any

from protocols.table import BackendSpec, RouteSpec
from tests.support.background import start_thread
from tests.support.upstream import self_signed_pem

_ids = itertools.count(7000)


def ftp_route(name: str, path: str, port: int, *, scheme: str = "ftp",
              methods: tuple[str, ...] = ("GET", "HEAD", "POST", "PUT", "DELETE"), **extra: Any) -> RouteSpec:
    """An FTP route to one backend on 127.0.0.1:`port`."""
    route_id = next(_ids)
    backend = BackendSpec(id=route_id, scheme=scheme, host="127.0.0.1", port=port)
    return RouteSpec(id=route_id, name=name, external_path=path, methods=methods, backends=(backend,),
                     protocol="ftp", **extra)


def write_certificate(directory: Path) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1: (PEM file with certificate and key, PEM file with the certificate)."""
    cert_pem, key_pem = self_signed_pem()
    both, ca = directory / "server.pem", directory / "ca.pem"
    both.write_bytes(cert_pem + key_pem)
    ca.write_bytes(cert_pem)
    return str(both), str(ca)


class FtpServer:
    """pyftpdlib on an ephemeral loopback port, serving a fresh temporary directory, in a background thread."""

    def __init__(self, tls: bool = False, anonymous: bool = False) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="rusta-ftp-")
        base = Path(self._tmp.name)
        self.root = base / "root"
        self.root.mkdir()
        self.tls = tls
        self.anonymous = anonymous
        self.ca_pem = ""
        self.port = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-ftp", daemon=True)
        self._ready = threading.Event()
        self._certfile = ""
        if tls:
            self._certfile, self.ca_pem = write_certificate(base)

    def __enter__(self) -> FtpServer:
        start_thread(self._thread, self._ready, "the FTP server")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self._tmp.cleanup()

    def _run(self) -> None:
        from pyftpdlib.authorizers import DummyAuthorizer
        from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler
        from pyftpdlib.ioloop import IOLoop
        from pyftpdlib.log import config_logging, is_logging_configured
        from pyftpdlib.servers import FTPServer as Server

        authorizer = DummyAuthorizer()
        authorizer.add_user("alice", "secret", str(self.root), perm="elradfmwMT")
        authorizer.add_user("reader", "secret", str(self.root), perm="elr")
        if self.anonymous:
            with warnings.catch_warnings():  # write rights for anonymous: what this test server is for
                warnings.simplefilter("ignore", RuntimeWarning)
                authorizer.add_anonymous(str(self.root), perm="elradfmw")
        # A refused login is answered after auth_failed_timeout (3 s by default, against guessing): not here.
        attributes: dict[str, Any] = {"authorizer": authorizer, "banner": "rusta test ftp", "auth_failed_timeout": 0.05}
        base: type = FTPHandler
        if self.tls:
            base = TLS_FTPHandler
            attributes.update(certfile=self._certfile, tls_control_required=True, tls_data_required=True,
                              ssl_context=None)
        handler = type("TestHandler", (base,), attributes)  # a class per server: pyftpdlib caches on the class
        ioloop = IOLoop()
        server = Server(("127.0.0.1", 0), handler, ioloop=ioloop)
        self.port = server.address[1]
        self._ready.set()
        if not is_logging_configured():
            config_logging(level=logging.WARNING)  # else pyftpdlib configures INFO logging on its first loop
        try:
            while not self._stop.is_set():
                ioloop.loop(timeout=0.05, blocking=False)
        finally:
            server.close_all()


class FakeFtpServer:
    """Answers one control connection from a script: `replies` maps a command verb to its reply line.

    With `pasv_host` the PASV reply points at that loopback address (a listener there counts connections in
    `foreign_connections`), EPSV is refused, and the data connection would have to go elsewhere.
    """

    def __init__(self, pasv_host: str = "127.0.0.2") -> None:
        self.pasv_host = pasv_host
        self.commands: list[str] = []
        self.foreign_connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._foreign = socket.create_server((pasv_host, 0))
        self._foreign.settimeout(0.1)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._serve, daemon=True),
                         threading.Thread(target=self._watch_foreign, daemon=True)]

    def __enter__(self) -> FakeFtpServer:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
        self._listener.close()
        self._foreign.close()

    def _watch_foreign(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._foreign.accept()
            except TimeoutError:
                continue
            self.foreign_connections += 1
            connection.close()

    def _serve(self) -> None:
        self._listener.settimeout(0.1)
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            with connection:
                self._converse(connection)

    def _converse(self, connection: socket.socket) -> None:
        connection.settimeout(5)
        reader = connection.makefile("rb")
        port = self._foreign.getsockname()[1]
        pasv = f"227 Entering Passive Mode ({self.pasv_host.replace('.', ',')},{port >> 8},{port & 255})"
        replies = {"USER": "331 Password required", "PASS": "230 Logged in", "TYPE": "200 Type set",
                   "EPSV": "500 EPSV not understood", "PASV": pasv, "SIZE": "213 10", "QUIT": "221 Bye"}
        connection.sendall(b"220 fake ftp\r\n")
        for _ in range(50):
            try:
                line = reader.readline()
            except OSError:
                return
            if not line:
                return
            command = line.decode("utf-8", "replace").strip()
            self.commands.append(command)
            verb = command.split(" ", 1)[0].upper()
            connection.sendall(replies.get(verb, "502 Not implemented").encode() + b"\r\n")
