"""A small FTP client on asyncio streams, for the gateway: passive mode only (EPSV, then PASV), explicit TLS
(AUTH TLS, PBSZ 0, PROT P), binary type, one command at a time.

Safety rules it enforces itself, whatever the caller checked before: a command line with CR, LF or NUL is never
written (ValueError), and a data connection only ever goes to the control connection's peer address: a PASV
reply naming another host is refused (DataAddressRefused), the host part of an EPSV reply is never used.
Replies are bounded (line length, line count), and every read and connect has a timeout.
"""
from __future__ import annotations

import asyncio
import ipaddress
import re
import ssl
from typing import NamedTuple

from protocols.ftp.replies import ConnectTimedOut, DataAddressRefused, FtpProtocolError, FtpReplyError

_LINE_LIMIT = 8192  # bytes in one reply line (StreamReader limit of the control connection)
_MAX_REPLY_LINES = 500
_UNSAFE = re.compile(r"[\r\n\x00]")
_PASV = re.compile(r"(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3})")
_EPSV = re.compile(r"\((.)\1\1(\d{1,5})\1\)")
DATA_CHUNK = 64 * 1024


class FtpReply(NamedTuple):
    code: int
    text: str


def _verb(line: str) -> str:
    return line.split(" ", 1)[0].upper()


def parse_pasv(text: str) -> tuple[str, int]:
    found = _PASV.search(text)
    if found is None:
        raise FtpProtocolError("unreadable PASV reply")
    numbers = [int(n) for n in found.groups()]
    if any(n > 255 for n in numbers):
        raise FtpProtocolError("unreadable PASV reply")
    return ".".join(str(n) for n in numbers[:4]), numbers[4] * 256 + numbers[5]


def parse_epsv(text: str) -> int:
    found = _EPSV.search(text)
    if found is None:
        raise FtpProtocolError("unreadable EPSV reply")
    port = int(found.group(2))
    if not 0 < port < 65536:
        raise FtpProtocolError("unreadable EPSV reply")
    return port


def _same_host(offered: str, peer: str) -> bool:
    try:
        return ipaddress.ip_address(offered) == ipaddress.ip_address(peer)
    except ValueError:
        return False


async def _connect(host: str, port: int, timeout: float,
                   limit: int = 2 * DATA_CHUNK) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    try:
        return await asyncio.wait_for(asyncio.open_connection(host, port, limit=limit), timeout)
    except TimeoutError:
        raise ConnectTimedOut(f"no connection to {host}:{port} within {timeout:g} s") from None


class FtpClient:
    """One logged-in control connection. Use `connect`, `login`, then the commands; `close` or `abort` at the end."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, server_hostname: str,
                 tls: ssl.SSLContext | None, connect_timeout: float, read_timeout: float) -> None:
        self.reader = reader
        self.writer = writer
        self.server_hostname = server_hostname
        self.tls = tls
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.peer: str = writer.get_extra_info("peername")[0]
        self._epsv = True

    @classmethod
    async def connect(cls, host: str, port: int, *, tls: ssl.SSLContext | None, connect_timeout: float,
                      read_timeout: float) -> FtpClient:
        """Open the control connection, read the greeting, and secure it with AUTH TLS when `tls` is given."""
        reader, writer = await _connect(host, port, connect_timeout, _LINE_LIMIT)
        client = cls(reader, writer, server_hostname=host, tls=tls, connect_timeout=connect_timeout,
                     read_timeout=read_timeout)
        try:
            greeting = await client.reply()
            if greeting.code != 220:
                raise FtpReplyError("greeting", greeting.code, greeting.text)
            if tls is not None:
                await client.expect("AUTH TLS", 234)
                await writer.start_tls(tls, server_hostname=host, ssl_handshake_timeout=connect_timeout)
        except BaseException:
            client.abort()
            raise
        return client

    async def login(self, user: str, password: str) -> FtpReply:
        """USER/PASS; the failing reply is returned (not raised) so the caller can say whose credentials failed.
        On success, the data channel is protected (TLS) and the type set to binary."""
        reply = await self.command(f"USER {user}")
        if reply.code == 331:
            reply = await self.command(f"PASS {password}")
        if reply.code not in (230, 202):
            return reply
        if self.tls is not None:
            await self.expect("PBSZ 0", 200)
            await self.expect("PROT P", 200)
        await self.expect("TYPE I", 200)
        return reply

    async def command(self, line: str) -> FtpReply:
        """Send one command line and read its reply."""
        if _UNSAFE.search(line):
            raise ValueError("an FTP command line must not contain CR, LF or NUL")
        self.writer.write(line.encode("utf-8") + b"\r\n")
        await asyncio.wait_for(self.writer.drain(), self.read_timeout)
        return await self.reply()

    async def expect(self, line: str, *codes: int) -> FtpReply:
        """`command`, raising FtpReplyError (with the verb only, never arguments) unless the code is in `codes`."""
        reply = await self.command(line)
        if reply.code not in codes:
            raise FtpReplyError(_verb(line), reply.code, reply.text)
        return reply

    async def reply(self) -> FtpReply:
        """One reply, single- or multi-line (`123-` ... `123 `)."""
        first = await self._line()
        code = first[:3]
        if len(first) < 3 or not code.isdigit() or first[3:4] not in ("", " ", "-"):
            raise FtpProtocolError("a reply without a status code")
        lines = [first[4:]]
        if first[3:4] == "-":
            for _ in range(_MAX_REPLY_LINES):
                line = await self._line()
                if line.startswith(code + " ") or line == code:
                    lines.append(line[4:])
                    break
                lines.append(line)
            else:
                raise FtpProtocolError("a multi-line reply that does not end")
        return FtpReply(int(code), "\n".join(lines))

    async def _line(self) -> str:
        try:
            raw = await asyncio.wait_for(self.reader.readline(), self.read_timeout)
        except ValueError:  # the StreamReader's limit: a line longer than _LINE_LIMIT
            raise FtpProtocolError("a reply line over the length limit") from None
        if not raw.endswith(b"\n"):
            raise FtpProtocolError("the server closed the control connection")
        return raw.rstrip(b"\r\n").decode("utf-8", "replace")

    async def _passive_port(self) -> int:
        """The port of the next data connection, always to be reached at `self.peer`."""
        if self._epsv:
            reply = await self.command("EPSV")
            if reply.code == 229:
                return parse_epsv(reply.text)
            if reply.code not in (500, 501, 502, 504, 522):
                raise FtpReplyError("EPSV", reply.code, reply.text)
            self._epsv = False  # not supported: PASV from now on
        reply = await self.command("PASV")
        if reply.code != 227:
            raise FtpReplyError("PASV", reply.code, reply.text)
        host, port = parse_pasv(reply.text)
        if not _same_host(host, self.peer) and host != "0.0.0.0":
            raise DataAddressRefused(host)
        return port

    async def open_data(self, line: str) -> DataConnection:
        """Passive data connection for a transfer command (RETR, STOR, MLSD, LIST): connect, send the command,
        wait for its 125/150, then TLS on the data connection if the control connection has it."""
        port = await self._passive_port()
        reader, writer = await _connect(self.peer, port, self.connect_timeout)
        try:
            await self.expect(line, 125, 150)
            if self.tls is not None:
                await writer.start_tls(self.tls, server_hostname=self.server_hostname,
                                       ssl_handshake_timeout=self.connect_timeout)
        except BaseException:
            writer.transport.abort()
            raise
        return DataConnection(self, reader, writer, _verb(line))

    async def quit(self) -> None:
        """QUIT politely (briefly), then close."""
        try:
            self.writer.write(b"QUIT\r\n")
            await asyncio.wait_for(self.reader.readline(), 1.0)
        except (OSError, TimeoutError, ValueError):
            pass
        self.abort()

    def abort(self) -> None:
        self.writer.transport.abort()


class DataConnection:
    """The data side of one transfer. Read to the end (or write and close), then `finish` for the final reply."""

    def __init__(self, client: FtpClient, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 verb: str) -> None:
        self.client = client
        self.reader = reader
        self.writer = writer
        self.verb = verb

    async def read(self, size: int = DATA_CHUNK) -> bytes:
        """The next chunk; b"" at the end of the transfer."""
        return await asyncio.wait_for(self.reader.read(size), self.client.read_timeout)

    async def write(self, data: bytes | memoryview) -> None:
        """Send a chunk, waiting while the server is slower than the client (the backpressure)."""
        self.writer.write(data)
        await asyncio.wait_for(self.writer.drain(), self.client.read_timeout)

    async def finish(self) -> FtpReply:
        """Close the data connection (its end is the end of an upload) and read the transfer's final reply."""
        self.writer.close()
        try:
            await asyncio.wait_for(self.writer.wait_closed(), self.client.read_timeout)
        except (OSError, TimeoutError):
            self.writer.transport.abort()
        reply = await self.client.reply()
        if reply.code not in (226, 250):
            raise FtpReplyError(self.verb, reply.code, reply.text)
        return reply

    def abort(self) -> None:
        self.writer.transport.abort()
