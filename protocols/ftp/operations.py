"""The FTP gateway's operations: each checks its parameters before any connection (`prepare`), then talks to
the server and answers the client (`run`). Errors before the response head are raised as GatewayErrors; once the
head is out, a failure ends the body early (the server closes the connection) and is recorded in the outcome.

    GET          {route}/list?path=/dir           200 {"path", "entries": [{name, type, size, modified}],
                 ({route} alone lists "/")              "files": [names, dirs with "/"], "count"}
    GET, HEAD    {route}/download?path=/f         200 the file, streamed (Content-Length when SIZE answers)
    PUT, POST    {route}/upload?path=/f           201 {"path", "size"}: the request body, streamed
    DELETE, POST {route}/delete?path=/f           200 {"path", "deleted": true} (a file, or an empty directory)
    POST, PUT    {route}/mkdir?path=/d            201 {"path", "created": true}
    POST         {route}/rename?from=/a&to=/b     200 {"from", "to", "renamed": true}

The path may also follow the operation: `{route}/download/reports/a.csv`. The earlier gateway's shapes work too:
`/ftp/download?...&username=` (or `format=json`) answers {"file_path", "content" (base64), "size"}, and a
`POST /ftp/upload` with a JSON body {"file_path", "content" (base64)} answers {"success", "message"}; their
`username`/`password` are used only on passthrough routes, like Basic credentials.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import json
from typing import Any
from urllib.parse import quote

from protocols.errors import ClientDisconnected, GatewayError
from protocols.ftp.client import DataConnection, FtpClient
from protocols.ftp.listing import Entry, parse_list, parse_mlsd
from protocols.ftp.replies import FtpBadRequest, FtpProtocolError, FtpReplyError, FtpTooLarge, reply_error
from protocols.ftp.request import FtpRequest, Receive

MAX_LISTING = 16 << 20  # bytes of one directory listing
_NOT_SUPPORTED = (500, 502, 504)


class Operation:
    """One operation: the methods it takes, its checks, and its exchange with the server."""

    methods: frozenset[str] = frozenset()

    async def prepare(self, request: FtpRequest) -> None:
        raise NotImplementedError

    async def run(self, ftp: FtpClient, request: FtpRequest) -> None:
        raise NotImplementedError


def _refused(exc: FtpReplyError, request: FtpRequest, operation: str, key: str = "path") -> GatewayError:
    server, visible = request.paths[key]
    if request.root != "/" and server in exc.text:
        # The client's view has the root as "/": the server's own path for it stays ours.
        exc = FtpReplyError(exc.command, exc.code, exc.text.replace(server, visible))
    return reply_error(exc, request.label, operation, visible)


async def _read_all(data: DataConnection, limit: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while chunk := await data.read():
        total += len(chunk)
        if total > limit:
            data.abort()
            raise FtpTooLarge(f"The transfer is larger than {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


class ListDirectory(Operation):
    methods = frozenset({"GET", "HEAD"})

    async def prepare(self, request: FtpRequest) -> None:
        request.take_path("path", default="/")

    async def run(self, ftp: FtpClient, request: FtpRequest) -> None:
        path = request.server()
        entries: list[Entry]
        try:
            try:
                data = await ftp.open_data(f"MLSD {path}")
                parse = parse_mlsd
            except FtpReplyError as exc:
                if exc.code not in _NOT_SUPPORTED:
                    raise
                data = await ftp.open_data(f"LIST {path}")
                parse = parse_list
            raw = await _read_all(data, MAX_LISTING)
            await data.finish()
        except FtpReplyError as exc:
            raise _refused(exc, request, "list") from None
        entries = parse(raw.decode("utf-8", "replace"))
        await request.json(200, {
            "path": request.visible(),
            "entries": [entry.as_dict() for entry in entries],
            "files": [entry.name + "/" if entry.type == "dir" else entry.name for entry in entries],
            "count": len(entries),
        })


def _content_disposition(path: str) -> bytes:
    name = path.rsplit("/", 1)[-1] or "download"
    fallback = "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"\\;' else "_" for c in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}".encode()


class Download(Operation):
    methods = frozenset({"GET", "HEAD"})

    async def prepare(self, request: FtpRequest) -> None:
        request.take_path("path")

    async def run(self, ftp: FtpClient, request: FtpRequest) -> None:
        path = request.server()
        size: int | None = None
        try:
            reply = await ftp.command(f"SIZE {path}")
            if reply.code == 213 and reply.text.strip().isdigit():
                size = int(reply.text.strip())
            elif reply.code not in _NOT_SUPPORTED:
                raise FtpReplyError("SIZE", reply.code, reply.text)
            if request.legacy:
                await self._legacy(ftp, request, path, size)
                return
            headers = [(b"content-type", b"application/octet-stream"),
                       (b"content-disposition", _content_disposition(request.visible()))]
            if size is not None:
                headers.append((b"content-length", b"%d" % size))
            if request.method == "HEAD":
                await request.start(200, headers)
                await request.send({"type": "http.response.body", "body": b""})
                return
            data = await ftp.open_data(f"RETR {path}")
        except FtpReplyError as exc:
            raise _refused(exc, request, "download") from None
        await request.start(200, headers)
        await stream_download(data, request)

    async def _legacy(self, ftp: FtpClient, request: FtpRequest, path: str, size: int | None) -> None:
        limit = request.legacy_max_bytes
        if size is not None and size > limit:
            raise FtpTooLarge(f"{request.visible()} is {size} bytes; the JSON download form takes at most {limit}: "
                              "use the streamed form (without username or format=json).")
        data = await ftp.open_data(f"RETR {path}")
        content = await _read_all(data, limit)
        await data.finish()
        request.outcome.bytes_out = len(content)
        await request.json(200, {"file_path": request.visible(), "content": base64.b64encode(content).decode(),
                                 "size": len(content)})


async def stream_download(data: DataConnection, request: FtpRequest) -> None:
    """Data connection -> client, one chunk at a time: uvicorn's send waits while the client is slow, and we
    do not read the next chunk until it returns, so the server is held back instead of memory growing."""
    gone = asyncio.Event()
    watcher = asyncio.ensure_future(_watch_disconnect(request.receive, gone))
    outcome = request.outcome
    send = request.send
    try:
        while chunk := await data.read():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            outcome.bytes_out += len(chunk)
            if gone.is_set():
                data.abort()
                raise ClientDisconnected("the client left during the download")
        await data.finish()
    except (FtpReplyError, FtpProtocolError, OSError, TimeoutError):
        # The head is out: all we can do is end the body early, so the client sees a truncated response.
        data.abort()
        outcome.error = "ftp_transfer_failed"
        return
    finally:
        watcher.cancel()
    await send({"type": "http.response.body", "body": b""})


async def _watch_disconnect(receive: Receive, gone: asyncio.Event) -> None:
    for _ in range(1000):  # a GET has one empty body event, then the disconnect
        message = await receive()
        if message["type"] == "http.disconnect":
            gone.set()
            return


class Upload(Operation):
    methods = frozenset({"PUT", "POST"})

    async def prepare(self, request: FtpRequest) -> None:
        request.legacy = False  # only the JSON body form below answers the earlier gateway's way
        if request.method == "POST" and "path" not in request.query and _is_json(request.scope):
            await self._read_legacy(request)
            return
        request.take_path("path")

    async def _read_legacy(self, request: FtpRequest) -> None:
        """The earlier gateway's form: {"username", "password", "file_path", "content": base64} in one JSON body."""
        limit = request.legacy_max_bytes * 4 // 3 + 64 * 1024
        body = bytearray()
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected("the client left while sending its upload")
            body += message.get("body", b"")
            if len(body) > limit:
                raise FtpTooLarge(f"The JSON upload form takes at most {request.legacy_max_bytes} bytes of content: "
                                  "use PUT {route}/upload?path= with the raw file as the body.")
            if not message.get("more_body", False):
                break
        request.outcome.bytes_in = len(body)
        try:
            document = json.loads(body)
            path = document["file_path"]
            content = base64.b64decode(document.get("content", ""), validate=True)
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise FtpBadRequest("The JSON upload form needs \"file_path\" and base64 \"content\".") from None
        if not isinstance(path, str):
            raise FtpBadRequest("\"file_path\" must be a string.")
        user, password = document.get("username"), document.get("password")
        if isinstance(user, str) and isinstance(password, str):
            request.offered = (user, password)
        request.legacy = True
        request.payload = content
        request.query = {**request.query, "path": path}
        request.take_path("path", use_tail=False)

    async def run(self, ftp: FtpClient, request: FtpRequest) -> None:
        try:
            data = await ftp.open_data(f"STOR {request.server()}")
        except FtpReplyError as exc:
            raise _refused(exc, request, "upload") from None
        outcome = request.outcome
        try:
            if request.legacy:
                await data.write(request.payload)
                written = len(request.payload)
            else:
                written = await _stream_upload(data, request)
            await data.finish()
        except FtpReplyError as exc:
            raise _refused(exc, request, "upload") from None
        except OSError:
            # The server dropped the data connection mid-upload; its reason is on the control connection.
            data.abort()
            reply = await ftp.reply()
            raise _refused(FtpReplyError("STOR", reply.code, reply.text), request, "upload") from None
        except ClientDisconnected:
            data.abort()
            await _remove_partial(ftp, request.server())
            raise
        if request.legacy:
            await request.json(200, {"success": True, "message": "File uploaded successfully"})
        else:
            outcome.bytes_in = written
            await request.json(201, {"path": request.visible(), "size": written})


async def _stream_upload(data: DataConnection, request: FtpRequest) -> int:
    """Client body -> data connection: uvicorn stops reading the client while we wait for the server to drain."""
    written = 0
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected("the client left during the upload")
        chunk = message.get("body", b"")
        if chunk:
            await data.write(chunk)
            written += len(chunk)
            request.outcome.bytes_in = written
        if not message.get("more_body", False):
            return written


async def _remove_partial(ftp: FtpClient, path: str) -> None:
    """Best effort: an upload the client abandoned should not leave half a file behind."""
    try:
        async with asyncio.timeout(2.0):
            await ftp.reply()  # the aborted transfer's final reply
            await ftp.command(f"DELE {path}")
    except (OSError, TimeoutError, FtpProtocolError):
        pass  # the server will have to live with it: the client is gone and nobody is waiting for an answer


def _is_json(scope: dict[str, Any]) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            media_type: bytes = value.split(b";", 1)[0].strip().lower()
            return media_type == b"application/json"
    return False


class Delete(Operation):
    methods = frozenset({"DELETE", "POST"})

    async def prepare(self, request: FtpRequest) -> None:
        request.take_path("path")
        if request.visible() == "/":
            raise FtpBadRequest("The route's root cannot be deleted.")

    async def run(self, ftp: FtpClient, request: FtpRequest) -> None:
        path = request.server()
        reply = await ftp.command(f"DELE {path}")
        if reply.code not in (200, 250):
            # Not a file: perhaps an (empty) directory.
            directory = await ftp.command(f"RMD {path}")
            if directory.code not in (200, 250):
                raise _refused(FtpReplyError("DELE", reply.code, reply.text), request, "delete")
        await request.json(200, {"path": request.visible(), "deleted": True})


class MakeDirectory(Operation):
    methods = frozenset({"POST", "PUT"})

    async def prepare(self, request: FtpRequest) -> None:
        request.take_path("path")

    async def run(self, ftp: FtpClient, request: FtpRequest) -> None:
        try:
            await ftp.expect(f"MKD {request.server()}", 257, 250)
        except FtpReplyError as exc:
            raise _refused(exc, request, "mkdir") from None
        await request.json(201, {"path": request.visible(), "created": True})


class Rename(Operation):
    methods = frozenset({"POST"})

    async def prepare(self, request: FtpRequest) -> None:
        request.take_path("from", use_tail=False)
        request.take_path("to", use_tail=False)
        if "/" in (request.visible("from"), request.visible("to")):
            raise FtpBadRequest("The route's root cannot be renamed, nor replaced.")

    async def run(self, ftp: FtpClient, request: FtpRequest) -> None:
        try:
            await ftp.expect(f"RNFR {request.server('from')}", 350)
        except FtpReplyError as exc:
            raise _refused(exc, request, "rename_from", "from") from None
        try:
            await ftp.expect(f"RNTO {request.server('to')}", 250, 200)
        except FtpReplyError as exc:
            raise _refused(exc, request, "rename_to", "to") from None
        await request.json(200, {"from": request.visible("from"), "to": request.visible("to"), "renamed": True})


OPERATIONS: dict[str, Operation] = {
    "": ListDirectory(),
    "list": ListDirectory(),
    "download": Download(),
    "upload": Upload(),
    "delete": Delete(),
    "mkdir": MakeDirectory(),
    "rename": Rename(),
}
