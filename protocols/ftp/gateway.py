"""The FTP gateway: an HTTP API under each `ftp` route's path, served by logging in to one of the route's
FTP/FTPS backends per request (see protocols/ftp/operations.py for the endpoints).

A route's external path is a prefix here: the route `/ftp` serves `/ftp/list`, `/ftp/download/...` and so on,
which the exact-match route table cannot express, so the table plan looks its FTP routes up by prefix
(protocols.prefixes). The route's plan (protocols.plan) carries its settings and balancer.
"""
from __future__ import annotations

import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote

from protocols.errors import ClientDisconnected, GatewayError, MethodNotAllowed
from protocols.ftp.client import FtpClient
from protocols.ftp.config import FtpSettings, login_credentials
from protocols.ftp.operations import OPERATIONS, Operation
from protocols.ftp.paths import PathRejected, route_root
from protocols.ftp.replies import (
    FtpAuthRequired,
    FtpBadRequest,
    FtpLoginFailed,
    FtpReplyError,
    FtpUnknownOperation,
    FtpUpstreamError,
    connection_error,
)
from protocols.ftp.request import FtpOutcome, FtpRequest, Receive, Send
from protocols.leases import lease_backend
from protocols.table import CompiledRoute

if TYPE_CHECKING:
    from protocols.plan import RoutePlan

log = logging.getLogger(__name__)

LEGACY_MAX_BYTES = 16 << 20  # file size limit of the earlier gateway's base64 JSON forms


@dataclass(frozen=True, slots=True)
class FtpOptions:
    """What FtpGateway needs from configuration."""

    ssl_context: ssl.SSLContext | None = None  # for ftps backends; None means the system's default trust
    legacy_max_bytes: int = LEGACY_MAX_BYTES


class FtpGateway:
    """Serves requests to `ftp` routes. It never touches Django or the ORM, like the rest of the data plane."""

    def __init__(self, options: FtpOptions | None = None) -> None:
        self.options = options or FtpOptions()

    async def handle(self, plan: RoutePlan, params: dict[str, str], path: str, scope: dict[str, Any],
                     receive: Receive, send: Send, request_id: bytes,
                     health: Mapping[int, bool]) -> FtpOutcome:
        """Serve one HTTP request (`scope` "http") for the FTP route of `plan`; `path` is PrefixMatch.subpath,
        `health` the active health overlay (backend id -> healthy).

        Raises a GatewayError only before the response head (the caller answers it as JSON, with X-Request-ID);
        after the head, a failure ends the body early and is in the outcome's `error`. Raises
        ClientDisconnected when the client leaves mid-way."""
        route, settings, runtime = plan.route, plan.ftp, plan.runtime
        assert settings is not None and runtime is not None, "not an ftp route's plan"
        outcome = FtpOutcome()
        request, operation = self._request(route, settings, params, path, scope, receive, send, request_id,
                                           outcome)
        await operation.prepare(request)
        user, password = login_credentials(settings, route.name, scope["headers"], request.offered)
        client = scope.get("client")
        lease = lease_backend(runtime, health, client[0] if client else "")
        backend = lease.backend
        host = f"[{backend.host}]" if ":" in backend.host else backend.host
        request.label = outcome.backend = f"{host}:{backend.port}"
        spec = route.spec
        ftp: FtpClient | None = None
        failed: bool | None = False
        try:
            try:
                ftp = await FtpClient.connect(
                    backend.host, backend.port, tls=self._tls(backend.scheme), connect_timeout=spec.connect_timeout,
                    read_timeout=spec.read_timeout)
            except (OSError, TimeoutError) as exc:
                failed = True
                raise self._converted(exc, request.label, route, connecting=True) from None
            reply = await ftp.login(user, password)
            if reply.code not in (230, 202):
                if settings.passthrough:
                    raise FtpAuthRequired(route.name, f"The FTP server refused your credentials ({reply.code}).")
                raise FtpLoginFailed(request.label, reply.code, reply.text)
            await operation.run(ftp, request)
        except ClientDisconnected:
            failed = None
            raise
        except FtpReplyError as exc:  # a reply the operation did not expect (greeting, AUTH TLS, TYPE, ...)
            failed = exc.command == "greeting"
            self._fail(outcome, FtpUpstreamError(request.label, exc.command, exc.code, exc.text))
        except GatewayError as exc:
            self._fail(outcome, exc)
        except Exception as exc:
            converted = connection_error(exc, request.label, spec.connect_timeout, spec.read_timeout, False)
            if converted is None:
                failed = None
                raise
            failed = True
            self._fail(outcome, converted)
        finally:
            lease.done(failed)
            if ftp is not None:
                if failed is False and outcome.started:
                    await ftp.quit()
                else:
                    ftp.abort()
        return outcome

    def _request(self, route: CompiledRoute, settings: FtpSettings, params: dict[str, str], path: str,
                 scope: dict[str, Any], receive: Receive, send: Send, request_id: bytes,
                 outcome: FtpOutcome) -> tuple[FtpRequest, Operation]:
        """The operation and its request, with every check that needs no I/O done (400, 404, 405)."""
        name, _, tail = path.lstrip("/").partition("/")
        operation = OPERATIONS.get(name)
        if operation is None:
            raise FtpUnknownOperation(name)
        method = scope["method"]
        if method not in route.methods:
            raise MethodNotAllowed(method, path, route.allow)
        if method not in operation.methods:
            allowed = operation.methods & route.methods
            raise MethodNotAllowed(method, path, ", ".join(sorted(allowed)) or route.allow)
        try:
            query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True,
                                   encoding="utf-8", errors="strict"))
        except UnicodeDecodeError:
            raise FtpBadRequest("The query string is not valid UTF-8.") from None
        try:
            root = route_root(settings.root, route.upstream_path(params, "") if route.template else "", params)
        except PathRejected as exc:
            raise FtpBadRequest(str(exc)) from None
        request = FtpRequest(method, query, unquote(tail), root, scope, receive, send, request_id, outcome,
                             self.options.legacy_max_bytes)
        request.legacy = "username" in query or query.get("format") == "json"
        if "username" in query:
            request.offered = (query["username"], query.get("password", ""))
        return request, operation

    def _tls(self, scheme: str) -> ssl.SSLContext | None:
        if scheme != "ftps":
            return None
        return self.options.ssl_context or ssl.create_default_context()

    @staticmethod
    def _converted(exc: BaseException, label: str, route: CompiledRoute, connecting: bool) -> GatewayError:
        spec = route.spec
        converted = connection_error(exc, label, spec.connect_timeout, spec.read_timeout, connecting)
        if converted is None:
            raise exc
        return converted

    @staticmethod
    def _fail(outcome: FtpOutcome, error: GatewayError) -> None:
        """Before the head: raise it for the caller to answer. After: only record it (the body ends early)."""
        outcome.error = error.type
        if not outcome.started:
            outcome.status = error.status
            raise error
        log.warning("FTP transfer failed after the response head: %s", error.message)
