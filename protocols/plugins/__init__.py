"""Plugins: code from installed Python packages that runs at fixed points of every HTTP request of a route.

The interface a plugin package implements:

- An entry point in the group `rusta.plugins` (pyproject.toml: `[project.entry-points."rusta.plugins"]
  example = "rusta_example_plugin:factory"`), naming a factory `factory(config) -> plugin`, called with the
  entry's `config` object once per route table (entries with the same name and config share one plugin object;
  a new table makes new ones). The factory may have `check_config(config) -> {path: message}`: the control plane
  calls it when a route or the settings are saved and refuses the save by path (`plugins[0].config.header`).
- The plugin object has any of these phase methods (`async def`; a plain function is accepted but must not
  block), each taking a read-only view (interface.RequestView / ResponseView):
    request(view)   once the route is matched and its guards passed, before authentication and rate limiting
                    -> Continue (or None) | Answer
    access(view)    after authentication and the rate limit (`view.subject` set when known), before the body
                    is read -> Continue | Answer
    upstream(view)  before the upstream call (`view.path` and `view.headers` are what will go upstream)
                    -> Continue | Answer | Modify(set=..., remove=..., path=...)
    response(view)  the response head (status, headers) before it goes to the client: the backend's answer,
                    a cached one or the gateway's own error -> Continue | Modify(set=..., remove=...)
    log(view)       after the exchange, fire-and-forget (its return value is ignored)
- Where each entry runs comes from its `plugins` entry: `order` (lower first; ties keep the list's order),
  `timeout_ms` (the budget of each phase call, default 50 ms) and `on_error`.

Isolation: a phase call that raises, overruns its budget or returns what its phase does not allow is cut off,
logged and counted (PluginMetrics, by plugin, phase and kind). In `request`, `access` and `upstream` the
request is then answered 502 `plugin_failed` naming the plugin (`on_error: "fail"`, the default) or goes on as
if the plugin had returned Continue (`on_error: "continue"`); in `response` and `log` it always goes on. The
gateway never answers 500 for a plugin. A plugin whose factory fails leaves its route answering 503
`route_misconfigured` (the log says why).

Plugins run on http routes only; requests that match no route run none. Not yet: the response body, and AI
routing's decision modules (they stay on `rusta.ai_strategies`).
"""
from __future__ import annotations

from protocols.plugins.chain import (
    METRICS,
    PluginAnswer,
    PluginChain,
    PluginFailed,
    PluginMetrics,
    PluginRun,
    compile_chain,
    snapshot,
)
from protocols.plugins.config import ENTRY_POINT_GROUP, PluginEntry, installed_plugins, plugin_entries, route_chain
from protocols.plugins.interface import CONTINUE, PHASES, Answer, Continue, Modify, RequestView, ResponseView

__all__ = [
    "CONTINUE", "ENTRY_POINT_GROUP", "METRICS", "PHASES", "Answer", "Continue", "Modify", "PluginAnswer",
    "PluginChain", "PluginEntry", "PluginFailed", "PluginMetrics", "PluginRun", "RequestView", "ResponseView",
    "compile_chain", "installed_plugins", "plugin_entries", "route_chain", "snapshot",
]
