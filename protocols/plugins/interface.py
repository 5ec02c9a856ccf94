"""What a plugin's phase methods receive (read-only views) and return (Continue, Answer, Modify)."""
from __future__ import annotations

from dataclasses import dataclass

# In the order the proxy runs them; protocols.plugins' docstring says when each runs and what it may return.
PHASES = ("request", "access", "upstream", "response", "log")
# The phases whose failure can refuse the request (with on_error "fail"); the others always fail open.
BLOCKING_PHASES = frozenset({"request", "access", "upstream"})


@dataclass(frozen=True, slots=True)
class RequestView:
    """One request as a plugin sees it: names lower case, values decoded as Latin-1, nothing it can change.

    `path` is the clean request path (the upstream path in the `upstream` phase), `query` the raw query string,
    `client` the client's address (behind trusted proxies, the one they forwarded), `route` the route's name and
    `subject` the authenticated subject (JWT `sub`, or a consumer's), None before the `access` phase or on a
    route without authentication.
    """

    method: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]
    client: str
    route: str
    subject: str | None = None

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
class ResponseView:
    """The response head as the client will get it (`response` phase) or got it (`log` phase, with `elapsed_s`,
    the whole exchange's time); `status` 0 in `log` when the client left before any answer."""

    request: RequestView
    status: int
    headers: tuple[tuple[str, str], ...]
    elapsed_s: float = 0.0

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


Result = Continue | Answer | Modify | None
# What each phase may return; anything else is the plugin's failure (protocols.plugins.chain).
ALLOWED: dict[str, tuple[type, ...]] = {
    "request": (Continue, Answer),
    "access": (Continue, Answer),
    "upstream": (Continue, Answer, Modify),
    "response": (Continue, Modify),
    "log": (Continue,),
}
