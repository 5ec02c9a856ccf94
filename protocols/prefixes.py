"""Routes served under their path (ftp: `/ftp/list`, llm: `/llm/v1/chat/completions`): the longest-prefix match
the exact-match route table cannot express."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from protocols.table import CompiledRoute


@dataclass(frozen=True, slots=True)
class PrefixMatch:
    """A route found by prefix: `subpath` is what follows the route's path ("/list", "/v1/messages")."""

    route: CompiledRoute
    params: dict[str, str]
    subpath: str


def match_prefix_route(routes: Sequence[CompiledRoute], host: str, path: str) -> PrefixMatch | None:
    """The route (of `routes`, a table's routes of one prefix-served protocol in rank order) whose path is the
    longest prefix of `path` (normalised, as for RouteTable.match), static routes before parameterised ones of
    the same length; None when none covers it."""
    if not routes:
        return None
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    segments = path[1:].split("/") if path not in ("", "/") else []
    best: PrefixMatch | None = None
    for route in routes:  # in rank order: the first of a given length wins
        length = len(route.segments)
        if length > len(segments) or (best is not None and length <= len(best.route.segments)):
            continue
        if not route.accepts_host(host):
            continue
        params: dict[str, str] = {}
        for segment, value in zip(route.segments, segments, strict=False):
            if segment.is_param:
                if not value:
                    break
                params[segment.text] = value
            elif segment.text != value:
                break
        else:
            best = PrefixMatch(route, params, "/" + "/".join(segments[length:]))
    return best
