"""Plugins: code from installed Python packages that runs at fixed points of every HTTP request of a route.

The interface a plugin package implements:

- An entry point in the group `rusta.plugins` (pyproject.toml: `[project.entry-points."rusta.plugins"]
  example = "rusta_example_plugin:factory"`), naming a factory `factory(config) -> plugin`, called with the
  entry's `config` object once per route table (entries with the same name and config share one plugin object;
  a new table makes new ones). The factory may have `check_config(config) -> {path: message}`: the control plane
  calls it when a route or the settings are saved and refuses the save by path (`plugins[0].config.header`).
- The plugin object has any of these phase methods (`async def`; a plain function is accepted but must not
  block), each taking one read-only view (protocols.plugins.interface):
    request(view)   once the route is matched and its guards passed, before authentication and rate limiting
                    -> Continue (or None) | Answer
    access(view)    after authentication and the rate limit (`view.subject` set when known), before the body
                    is read -> Continue | Answer
    balance(view)   once the body (or its first chunk) is read, before a backend is picked: a BalanceView
                    with the body's first bytes and the route's backends -> Continue | Choose(index) | Answer
    upstream(view)  before the upstream call (`view.path` and `view.headers` are what will go upstream)
                    -> Continue | Answer | Modify(set=..., remove=..., path=...)
    response(view)  the response head (status, headers) before it goes to the client: the backend's answer,
                    a cached one or the gateway's own error -> Continue | Modify(set=..., remove=...)
    body(view)      the whole response body (up to chain.MAX_BODY_BYTES, not encoded, not an event stream)
                    before it goes to the client -> Continue | Replace(body)
    log(view)       after the exchange, with the backend that answered and its time; a plain function is
                    called at once, a coroutine in a task of its own (its return value is ignored)
  A phase that may refuse (request, access, balance, upstream) may also raise a 4xx protocols.errors.GatewayError:
  the client gets it in the gateway's own JSON form.
- Where each entry runs comes from its `plugins` entry: `order` (lower first; ties keep the list's order),
  `timeout_ms` (the budget of each phase call, default 50 ms) and `on_error`.

Isolation: a phase call that raises, overruns its budget or returns what its phase does not allow is cut off,
logged and counted (PluginMetrics, by plugin, phase and kind). In `request`, `access` and `upstream` the
request is then answered 502 `plugin_failed` naming the plugin (`on_error: "fail"`, the default) or goes on as
if the plugin had returned Continue (`on_error: "continue"`); in `balance` the route's balancing picks, in
`body` the body goes out as it was, in `response` and `log` it goes on. The gateway never answers 500 for a
plugin. A plugin whose factory fails leaves its route answering 503 `route_misconfigured` (the log says why).

Rusta's own AI routing runs as a built-in plugin of its route's chain (protocols.ai.plugin: `balance`,
`response`, `log`), put there by the route's `ai_policy`; its strategies come from `rusta.ai_strategies`.
Plugins run on http routes only; requests that match no route run none.
"""
from __future__ import annotations

from protocols.plugins.chain import (
    METRICS,
    LoadedPlugin,
    PluginAnswer,
    PluginChain,
    PluginFailed,
    PluginMetrics,
    PluginRun,
    compile_chain,
    snapshot,
)
from protocols.plugins.config import (
    BUILTIN_AI,
    ENTRY_POINT_GROUP,
    PluginEntry,
    installed_plugins,
    plugin_entries,
    route_chain,
)
from protocols.plugins.interface import (
    CONTINUE,
    PHASES,
    Answer,
    Backend,
    BalanceView,
    BodyView,
    Choose,
    Continue,
    Modify,
    Replace,
    RequestView,
    ResponseView,
)

__all__ = [
    "BUILTIN_AI", "CONTINUE", "ENTRY_POINT_GROUP", "METRICS", "PHASES", "Answer", "Backend", "BalanceView",
    "BodyView", "Choose", "Continue", "LoadedPlugin", "Modify", "PluginAnswer", "PluginChain", "PluginEntry",
    "PluginFailed", "PluginMetrics", "PluginRun", "Replace", "RequestView", "ResponseView", "compile_chain",
    "installed_plugins", "plugin_entries", "route_chain", "snapshot",
]
