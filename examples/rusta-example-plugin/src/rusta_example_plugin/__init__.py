"""An example Rusta plugin: sends `X-Example: <header_value>` upstream, and answers 403 for the paths under `deny`."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from protocols.plugins import Answer, Modify, RequestView

KEYS = ("header_value", "deny")


class ExamplePlugin:
    """The plugin object: `request` refuses denied paths before anything else runs, `upstream` adds the header."""

    def __init__(self, header_value: str, deny: tuple[str, ...]) -> None:
        self.header_value = header_value
        self.deny = deny

    async def request(self, view: RequestView) -> Answer | None:
        if any(view.path == prefix or view.path.startswith(prefix.rstrip("/") + "/") for prefix in self.deny):
            return Answer(403, (("content-type", "text/plain"),), b"Refused by the example plugin.\n")
        return None

    async def upstream(self, view: RequestView) -> Modify:
        return Modify(set=(("X-Example", self.header_value),))


def factory(config: Mapping[str, Any]) -> ExamplePlugin:
    """The entry point: `config` is the route's `plugins[i].config`, already checked by `check_config`."""
    return ExamplePlugin(str(config.get("header_value", "example")), tuple(config.get("deny", ())))


def check_config(config: Mapping[str, Any]) -> dict[str, str]:
    """{path: message} for each problem of `config`; the gateway refuses the save by path."""
    problems = {str(key): f"Unknown key; the example plugin knows {', '.join(KEYS)}." for key in config
                if key not in KEYS}
    value = config.get("header_value", "example")
    if not isinstance(value, str) or not value or any(ch in value for ch in "\r\n"):
        problems["header_value"] = "Must be a non-empty header value on one line."
    deny = config.get("deny", [])
    if not isinstance(deny, list):
        problems["deny"] = 'Must be a list of path prefixes, like ["/admin"].'
    else:
        for index, prefix in enumerate(deny):
            if not isinstance(prefix, str) or not prefix.startswith("/"):
                problems[f"deny[{index}]"] = "Must be a path starting with /."
    return problems


factory.check_config = check_config  # type: ignore[attr-defined]
