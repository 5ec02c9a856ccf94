"""What a plugin's phase methods receive (read-only views) and return (Continue, Answer, Modify)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# In the order the proxy runs them; protocols.plugins' docstring says when each runs and what it may return.
PHASES = ("request", "access", "balance", "upstream", "response", "body", "log")
# The phases whose failure can refuse the request (with on_error "fail"); the others always fail open: a failed
# `balance` leaves the choice to the route's balancing, a failed `body` sends the body as it was.
BLOCKING_PHASES = frozenset({"request", "access", "upstream"})
# The phases that may refuse the request: with an Answer, or by raising a 4xx protocols.errors.GatewayError.
REFUSING_PHASES = frozenset({"request", "access", "balance", "upstream"})


@dataclass(frozen=True, slots=True)
class RequestView:
    """One request as a plugin sees it: names lower case, values decoded as Latin-1, nothing it can change.

    `path` is the clean request path (the upstream path in the `upstream` phase), `query` the raw query string,
    `client` the client's address (behind trusted proxies, the one they forwarded), `route` the route's name and
    `subject` the authenticated subject (JWT `sub`, or a consumer's), None before the `access` phase or on a
    route without authentication. `request_id` is the request's X-Request-ID. `ctx` is the one mutable part: a
    dict the request's plugins share from phase to phase (key it by the plugin's name), as Kong's `kong.ctx`.
    """

    method: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]
    client: str
    route: str
    subject: str | None = None
    request_id: str = ""
    ctx: dict[str, Any] = field(default_factory=dict, compare=False)

    def header(self, name: str) -> str | None:
        """The first value of header `name` (any case), None when the request has none."""
        return first_value(self.headers, name)


def first_value(headers: tuple[tuple[str, str], ...], name: str) -> str | None:
    """The first value of header `name` (any case) in a view's lower-cased `headers`."""
    name = name.lower()
    for key, value in headers:
        if key == name:
            return value
    return None


@dataclass(frozen=True, slots=True)
class Backend:
    """One of the route's backends as the `balance` phase sees it: its position in the route's list (what
    `Choose` names), its URL, its `description`, and whether it may take a request now (health checks and
    circuit breaker)."""

    index: int
    url: str
    description: str
    usable: bool


@dataclass(frozen=True, slots=True)
class BalanceView:
    """The `balance` phase's view: the request, the body's first bytes (`body`, up to the first chunk or the
    whole body when it was read), the body's size in bytes (`body_size`, its Content-Length when it has one)
    and the route's backends."""

    request: RequestView
    body: bytes
    body_size: int
    backends: tuple[Backend, ...]


@dataclass(frozen=True, slots=True)
class ResponseView:
    """The response head as the client will get it (`response`, `body` phases) or got it (`log` phase, with
    `elapsed_s`, the whole exchange's time; `backend`, the position of the backend that answered last, None when
    none did; `upstream_s`, the time until its response head); `status` 0 in `log` when the client left before
    any answer."""

    request: RequestView
    status: int
    headers: tuple[tuple[str, str], ...]
    elapsed_s: float = 0.0
    backend: int | None = None
    upstream_s: float | None = None

    def header(self, name: str) -> str | None:
        """The first value of header `name` (any case), None when the response has none."""
        return first_value(self.headers, name)


@dataclass(frozen=True, slots=True)
class Continue:
    """Carry on unchanged (a phase method returning None means the same)."""


CONTINUE = Continue()


@dataclass(frozen=True, slots=True)
class Answer:
    """Answer the client now instead of the backend (`request`, `access` and `upstream` phases)."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class Modify:
    """Edit what goes on: `set` replaces every field of each name, `remove` drops them (names any case); `path`
    replaces the upstream path, query kept (`upstream` phase only). In the `response` phase it edits the
    response head's fields (no `path`). `Host` cannot be edited: the route's `preserve_host` decides it."""

    set: tuple[tuple[str, str], ...] = ()
    remove: tuple[str, ...] = ()
    path: str | None = None


@dataclass(frozen=True, slots=True)
class Choose:
    """The `balance` phase's choice: the backend at position `index` takes the first attempt, unless it is down
    or behind an open breaker (then the route's balancing picks, as for retries); `index` None leaves the pick to
    balancing but still records the choice. `source` says for the access log where the choice came from
    (`model`, `llm`, `cache`, `fallback`...; empty: the plugin's name)."""

    index: int | None
    source: str = ""


@dataclass(frozen=True, slots=True)
class BodyView:
    """The `body` phase's view: the response head (`response`) and its whole body as it goes to the client."""

    response: ResponseView
    body: bytes


@dataclass(frozen=True, slots=True)
class Replace:
    """The `body` phase's edit: send `body` instead (Content-Length follows; ETag and Content-MD5 are dropped)."""

    body: bytes


Result = Continue | Answer | Modify | Choose | Replace | None
# What each phase may return; anything else is the plugin's failure (protocols.plugins.chain).
ALLOWED: dict[str, tuple[type, ...]] = {
    "request": (Continue, Answer),
    "access": (Continue, Answer),
    "balance": (Continue, Choose, Answer),
    "upstream": (Continue, Answer, Modify),
    "response": (Continue, Modify),
    "body": (Continue, Replace),
    "log": (Continue,),
}
