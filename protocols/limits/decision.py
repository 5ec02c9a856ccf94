"""A rate-limit decision, its response headers, and the 429 the proxy answers when it says no."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from protocols.errors import GatewayError, verdict_url
from protocols.limits.config import ceil_seconds

Headers = list[tuple[bytes, bytes]]


@dataclass(slots=True)
class Decision:
    """What one hit got (never changed once made; not frozen, whose checked construction cost a limited request
    about a microsecond more).

    `reset_s`: seconds until the quota is whole again (`remaining` back at `limit`): the end of a fixed
    window, the moment the newest counted request leaves a sliding window, a full bucket.
    `retry_after_s`: when rejected, seconds until one request would be admitted (0 when allowed).
    `degraded`: the shared store could not be reached; this came from the local fallback (fail-open) or is
    the fail-closed rejection.
    """

    allowed: bool
    limit: int
    remaining: int
    reset_s: float
    retry_after_s: float = 0.0
    degraded: bool = False

    def headers(self) -> Headers:
        """RateLimit-Limit, -Remaining, -Reset (on every limited response), plus Retry-After on a 429."""
        headers = [
            (b"ratelimit-limit", b"%d" % self.limit),
            (b"ratelimit-remaining", b"%d" % self.remaining),
            (b"ratelimit-reset", b"%d" % ceil_seconds(self.reset_s)),
        ]
        if not self.allowed:
            headers.append((b"retry-after", b"%d" % max(1, ceil_seconds(self.retry_after_s))))
        return headers

    def error(self, route_name: str, reason: str = "", verdict_id: int = 0) -> RateLimited:
        """The 429 to answer with (ProxyApp's `except GatewayError` sends it)."""
        return RateLimited(route_name, self, reason, verdict_id)


class RateLimited(GatewayError):
    """429: the client spent its quota on this route; Retry-After says when to come back.

    Under a limit an abuse sanction changed (protocols.abuse.sanctions), `reason` says so in the body, and a
    verdict's id goes in the body and in `X-Rusta-Verdict`."""

    def __init__(self, route_name: str, decision: Decision, reason: str = "", verdict_id: int = 0) -> None:
        headers = decision.headers()
        if verdict_id:
            headers.append((b"x-rusta-verdict", b"%d" % verdict_id))
        super().__init__(
            429, "rate_limited",
            f"Too many requests to route '{route_name}'; retry in {max(1, ceil_seconds(decision.retry_after_s))} s.",
            headers,
        )
        self.decision = decision
        if reason:
            self.details = {"reason": reason}
            if verdict_id:
                self.details.update(verdict_id=verdict_id, verdict=verdict_url(verdict_id))


def strictest(decisions: Iterable[Decision]) -> Decision | None:
    """The decision whose headers a response should carry when several policies apply (global + route):
    a rejection if any (the longest wait), else the one with the fewest requests remaining."""
    chosen: Decision | None = None
    for decision in decisions:
        if chosen is None:
            chosen = decision
        elif decision.allowed != chosen.allowed:
            chosen = chosen if not chosen.allowed else decision
        elif not decision.allowed:
            chosen = decision if decision.retry_after_s > chosen.retry_after_s else chosen
        elif decision.remaining < chosen.remaining:
            chosen = decision
    return chosen
