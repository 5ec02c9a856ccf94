"""The front doors of an LLM route: OpenAI's `/v1/chat/completions` and Anthropic's `/v1/messages` under the route's
path, each reaching the route's targets whatever their provider (protocols.llm.exchange does the asking).

`LlmGateway.serve` takes one request the proxy matched to an LLM route: it finds the front door from the path below
the route's own, reads the body (at most the policy's `max_body_bytes`), parses it in the door's format (a mistake is
a 400 in that format, so the client's SDK raises its usual error), counts the prompt, and runs the exchange. One
gateway per data plane: it holds the upstream client, the targets' rate-limit holds and the token counters.
"""
from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from protocols.llm.exchange import Exchange, Outcome, RateLimits, Send, Target, target_order
from protocols.llm.formats.chat import FormatError
from protocols.llm.formats.translate import ClientFormat, parse_request, render_error
from protocols.llm.tokens import counter_for
from protocols.upstream import UpstreamClient

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
# The front doors, by the path below the route's (`/llm` + `/v1/chat/completions`).
CHAT_DOORS: dict[str, ClientFormat] = {"/v1/chat/completions": "openai", "/chat/completions": "openai",
                                       "/v1/messages": "anthropic", "/messages": "anthropic"}
DEFAULT_MAX_BODY_BYTES = 1 << 20


class BodyTooLarge(Exception):
    """The request body passed the route's limit."""


class LlmGateway:
    """The data plane's LLM front doors (one per process)."""

    def __init__(self, upstream: UpstreamClient) -> None:
        self.upstream = upstream
        self.rate_limits = RateLimits()

    @staticmethod
    def door(subpath: str) -> ClientFormat | None:
        """The client format of the front door at `subpath` (the path below the route's), None for no door."""
        return CHAT_DOORS.get(subpath.rstrip("/") or "/")

    async def serve(self, route_id: int, targets: Sequence[Target], subpath: str, method: str, receive: Receive,
                    send: Send, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
                    order: list[int] | None = None) -> Outcome:
        """Answer one request of an LLM route; the Outcome says what it cost and who answered."""
        client = self.door(subpath)
        if client is None:
            return await _refuse(send, "openai", 404, f"No LLM front door at {subpath}: use /v1/chat/completions "
                                                       "or /v1/messages.", "not_found_error")
        if method != "POST":
            return await _refuse(send, client, 405, f"{subpath} takes POST.", "invalid_request_error")
        try:
            body = json.loads(await _read_body(receive, max_body_bytes))
        except BodyTooLarge:
            return await _refuse(send, client, 413, f"The request body is larger than {max_body_bytes} bytes.",
                                 "request_too_large")
        except ValueError:
            return await _refuse(send, client, 400, "The request body is not JSON.", "invalid_request_error")
        if not isinstance(body, dict):
            return await _refuse(send, client, 400, "The request body must be a JSON object.", "invalid_request_error")
        try:
            request = parse_request(client, body)
        except FormatError as exc:
            return await _refuse(send, client, 400, exc.message, "invalid_request_error", exc.param)
        counter = counter_for(request.model)
        exchange = Exchange(self.upstream, self.rate_limits, route_id, targets, client, request,
                            counter.count_request(request), counter.count)
        return await exchange.run(send, order if order is not None else target_order(targets))


async def _read_body(receive: Receive, limit: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ValueError("the client left")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


async def _refuse(send: Send, client: ClientFormat, status: int, message: str, type: str,
                  param: str | None = None) -> Outcome:
    payload = json.dumps(render_error(client, status, message, type=type, param=param)).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload, "more_body": False})
    return Outcome(status=status, error=type)
