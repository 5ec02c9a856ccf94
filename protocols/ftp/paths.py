"""Client paths mapped into a route's FTP root: normalised, confined to the root, safe on an FTP command line.

The client sees the root as "/": `/reports/a.csv` under the root `/srv/data` is `/srv/data/reports/a.csv` on
the server. `..` may move within the root but never above it; control characters (CR and LF above all, which
would end the command and start another) and backslashes (a separator for some servers) are refused outright.
"""
from __future__ import annotations

import re
from urllib.parse import unquote

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_PATH = 1024


class PathRejected(ValueError):
    """A path or name the gateway will not send to the server; the message is for the client (HTTP 400)."""


def check_text(value: str, what: str) -> str:
    """`value` unchanged, or PathRejected if it holds a control character (CR, LF, NUL, ...)."""
    if _CONTROL.search(value):
        raise PathRejected(f"The {what} contains a control character (CR, LF, NUL or similar).")
    return value


def confine(root: str, path: str, what: str = "path") -> tuple[str, str]:
    """(the path on the server, the path as the client sees it) for a client path under `root`."""
    check_text(path, what)
    if "\\" in path:
        raise PathRejected(f"The {what} contains a backslash.")
    if len(path) > MAX_PATH:
        raise PathRejected(f"The {what} is longer than {MAX_PATH} characters.")
    parts: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if not parts:
                raise PathRejected(f"The {what} climbs out of the route's root.")
            parts.pop()
            continue
        parts.append(segment)
    visible = "/" + "/".join(parts)
    if not parts:
        return root, visible
    return (root if root != "/" else "") + visible, visible


def route_root(configured: str, template_root: str, params: dict[str, str]) -> str:
    """The route's root on the server: the policy's `root`, else the internal path with the route's parameters
    filled in, else "/". Parameter values must be single plain segments (no "/", "..", controls)."""
    for name, raw in params.items():
        value = unquote(raw)
        check_text(value, f"parameter '{name}'")
        if "/" in value or "\\" in value or value in (".", ".."):
            raise PathRejected(f"The parameter '{name}' must be a single path segment.")
    root = configured or unquote(template_root) or "/"
    server, _ = confine("/", root, "route root")
    return server or "/"
