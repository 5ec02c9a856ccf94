"""A route's compiled plugin chain and one request's run through it: each call within its plugin's budget,
failures isolated (counted, logged, and answered 502 `plugin_failed` or passed over), per-plugin metrics."""
from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from protocols.block_errors import BlockError
from protocols.errors import GatewayError
from protocols.plugins.config import PluginEntry, installed_plugins, plugin_entries, route_chain
from protocols.plugins.interface import (
    ALLOWED,
    BLOCKING_PHASES,
    PHASES,
    REFUSING_PHASES,
    Answer,
    Backend,
    BalanceView,
    BodyView,
    Choose,
    Modify,
    Replace,
    RequestView,
    ResponseView,
    Result,
)

log = logging.getLogger(__name__)

Message = dict[str, Any]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]
ERROR_KINDS = ("raised", "timeout", "bad_result")
# The `body` phase sees bodies up to this size; a longer one goes out as the backend sent it (streamed).
MAX_BODY_BYTES = 1 << 20
# Response heads the `body` phase is not given: no body, or one meant to stream (events) or already encoded.
_NO_BODY_STATUSES = frozenset({204, 304})
_HOP_FIELDS_ON_NEW_BODY = frozenset({b"content-length", b"transfer-encoding", b"etag", b"content-md5"})


class PluginFailed(GatewayError):
    """502 `plugin_failed`: a plugin with `on_error: "fail"` raised, overran its budget or returned what its phase
    does not allow, in the request, access or upstream phase; the message names the plugin, the log says more."""

    def __init__(self, plugin: str, phase: str, kind: str) -> None:
        what = {"raised": "raised an error", "timeout": "overran its time budget",
                "bad_result": "returned a result its phase does not allow"}[kind]
        super().__init__(502, "plugin_failed", f"Plugin '{plugin}' {what} in its {phase} phase.")
        self.plugin = plugin


class PluginAnswer(GatewayError):
    """A plugin's own answer (Answer): its status, fields and body, sent as the plugin gave them."""

    def __init__(self, plugin: str, answer: Answer) -> None:
        super().__init__(answer.status, "plugin_answer", f"Answered by plugin '{plugin}'.",
                         [(name.lower().encode("latin-1"), value.encode("latin-1"))
                          for name, value in answer.headers])
        self.payload = answer.body

    def response(self, request_id: str) -> tuple[int, Headers, bytes]:
        headers = [(name, value) for name, value in self.headers if name != b"content-length"]
        headers.append((b"content-length", str(len(self.payload)).encode()))
        return self.status, headers, self.payload


class PluginMetrics:
    """Per plugin and phase: calls, failures by kind (ERROR_KINDS) and seconds spent; plain dicts, no I/O."""

    __slots__ = ("calls", "errors", "seconds")

    def __init__(self) -> None:
        self.calls: dict[tuple[str, str], int] = {}
        self.errors: dict[tuple[str, str, str], int] = {}
        self.seconds: dict[tuple[str, str], float] = {}

    def record(self, plugin: str, phase: str, elapsed: float, error: str | None) -> None:
        key = (plugin, phase)
        self.calls[key] = self.calls.get(key, 0) + 1
        self.seconds[key] = self.seconds.get(key, 0.0) + elapsed
        if error is not None:
            error_key = (plugin, phase, error)
            self.errors[error_key] = self.errors.get(error_key, 0) + 1

    def failures(self, plugin: str) -> int:
        """Every failure of `plugin`, in any phase."""
        return sum(count for (name, _, _), count in self.errors.items() if name == plugin)


# This process's plugin metrics: every chain counts here unless given its own (tests give their own).
METRICS = PluginMetrics()


def snapshot(metrics: PluginMetrics = METRICS) -> dict[str, Any]:
    """The metrics as JSON rows, for /metrics: {"calls": [[plugin, phase, n]], "errors": [[plugin, phase, kind,
    n]], "seconds": [[plugin, phase, s]]}."""
    return {
        "calls": [[*key, value] for key, value in sorted(metrics.calls.items())],
        "errors": [[*key, value] for key, value in sorted(metrics.errors.items())],
        "seconds": [[*key, round(value, 6)] for key, value in sorted(metrics.seconds.items())],
    }


class LoadedPlugin:
    """One entry of a chain: the plugin object its factory made, and its phase methods (those it has)."""

    __slots__ = ("name", "label", "budget_s", "fail", "methods")

    def __init__(self, entry: PluginEntry, plugin: Any) -> None:
        self.name = entry.name
        # What the access log names as the chooser of a backend (`balance`): the plugin's `label`, else its name.
        self.label = str(getattr(plugin, "label", entry.name))
        self.budget_s = entry.timeout_ms / 1000
        self.fail = entry.on_error == "fail"
        self.methods: dict[str, Callable[[Any], Any]] = {
            phase: method for phase in PHASES if callable(method := getattr(plugin, phase, None))}


class PluginChain:
    """The plugins one route runs, in order, and per phase only those that have the phase."""

    __slots__ = ("route", "plugins", "by_phase", "metrics", "pending")

    def __init__(self, route: str, plugins: Iterable[LoadedPlugin], metrics: PluginMetrics = METRICS) -> None:
        self.route = route
        self.plugins = tuple(plugins)
        self.by_phase = {phase: tuple(p for p in self.plugins if phase in p.methods) for phase in PHASES}
        self.metrics = metrics
        self.pending: set[asyncio.Task[None]] = set()  # log-phase calls still running

    async def call(self, plugin: LoadedPlugin, phase: str, view: Any) -> Result:
        """One phase call within the plugin's budget; a failure is counted, logged, and raised as PluginFailed
        where the plugin's on_error asks (blocking phases only), else the result is Continue (None). A
        GatewayError with a 4xx status raised by the plugin is the gateway's answer to the client, as raised
        (a refusal in the gateway's own JSON form); any other exception is the plugin's failure."""
        started = time.perf_counter()
        error: str | None = None
        result: Any = None
        try:
            result = plugin.methods[phase](view)
            if inspect.isawaitable(result):
                steps = result.__await__()
                try:
                    waits_on = steps.send(None)  # most phases finish without waiting: no timer for them
                except StopIteration as done:
                    result = done.value
                else:
                    left = plugin.budget_s - (time.perf_counter() - started)
                    async with asyncio.timeout(max(left, 0.0)):
                        result = await _finish(steps, waits_on)
            if result is not None and not isinstance(result, ALLOWED[phase]):
                error = "bad_result"
                log.error("route %r: plugin %r returned %r in its %s phase, which allows %s", self.route,
                          plugin.name, result, phase, ", ".join(kind.__name__ for kind in ALLOWED[phase]))
        except GatewayError as refusal:
            if 400 <= refusal.status < 500 and phase in REFUSING_PHASES:
                self.metrics.record(plugin.name, phase, time.perf_counter() - started, None)
                raise
            error = "raised"
            log.error("route %r: plugin %r raised %s (%d) in its %s phase", self.route, plugin.name,
                      type(refusal).__name__, refusal.status, phase)
        except TimeoutError:
            error = "timeout"
            log.warning("route %r: plugin %r overran its %.0f ms budget in its %s phase", self.route, plugin.name,
                        plugin.budget_s * 1000, phase)
        except Exception:  # a third party's code: isolated here, once, whatever it raised
            error = "raised"
            log.exception("route %r: plugin %r failed in its %s phase", self.route, plugin.name, phase)
        self.metrics.record(plugin.name, phase, time.perf_counter() - started, error)
        if error is None:
            return result  # type: ignore[no-any-return]
        if plugin.fail and phase in BLOCKING_PHASES:
            raise PluginFailed(plugin.name, phase, error)
        return None

    async def gate(self, phase: str, view: RequestView) -> None:
        """The `request` or `access` phase: PluginAnswer when a plugin answers."""
        for plugin in self.by_phase[phase]:
            result = await self.call(plugin, phase, view)
            if isinstance(result, Answer):
                raise PluginAnswer(plugin.name, result)

    def log(self, view: ResponseView) -> None:
        """The `log` phase, after the exchange: a plain method is called at once (it must not block), the
        coroutines run in a task of their own, never delaying the exchange."""
        waiting = []
        for plugin in self.by_phase["log"]:
            method = plugin.methods["log"]
            if inspect.iscoroutinefunction(method):
                waiting.append(plugin)
                continue
            started = time.perf_counter()
            error = None
            try:
                method(view)
            except Exception:  # a third party's code, isolated: the exchange is over anyway
                error = "raised"
                log.exception("route %r: plugin %r failed in its log phase", self.route, plugin.name)
            self.metrics.record(plugin.name, "log", time.perf_counter() - started, error)
        if waiting:
            task = asyncio.get_running_loop().create_task(self._log(waiting, view))
            self.pending.add(task)
            task.add_done_callback(self.pending.discard)

    async def _log(self, plugins: list[LoadedPlugin], view: ResponseView) -> None:
        for plugin in plugins:
            await self.call(plugin, "log", view)


class _Resume:
    """Awaiting it goes on driving a phase coroutine's steps from where they stopped."""

    __slots__ = ("steps",)

    def __init__(self, steps: Any) -> None:
        self.steps = steps

    def __await__(self) -> Any:
        return self.steps


async def _finish(steps: Any, waits_on: Any) -> Any:
    """Run a phase coroutine that stopped at its first wait to its end, in this same task (a timeout the plugin
    set up refers to it): once what it waits on (`waits_on`, the future it yielded, or None for a bare yield) is
    done, its steps are driven by this task as if it had been awaited from the start. A cancellation meanwhile
    (the budget, or the plugin's own timeout) reaches the plugin where it waits, as the task would deliver it."""
    try:
        if asyncio.isfuture(waits_on):
            await asyncio.wait((waits_on,))
        else:
            await asyncio.sleep(0)
    except asyncio.CancelledError as cancel:
        if not (asyncio.isfuture(waits_on) and waits_on.cancel()):  # cancelled, its await raises by itself
            try:
                waits_on = steps.throw(cancel)
            except StopIteration as done:
                return done.value
            return await _finish(steps, waits_on)
    return await _Resume(steps)


def edit_headers(headers: Headers, modify: Modify, start: int = 0) -> Headers:
    """`headers` with `modify`'s fields removed and set (from position `start`: the Host field before it stays)."""
    drop = {name.lower().encode("latin-1") for name in modify.remove}
    drop.update(name.lower().encode("latin-1") for name, _ in modify.set)
    drop.discard(b"host")
    kept = headers[:start] + [(name, value) for name, value in headers[start:] if name not in drop]
    kept += [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in modify.set
             if name.lower() != "host"]
    return kept


def _text(headers: Iterable[tuple[bytes, bytes]]) -> tuple[tuple[str, str], ...]:
    return tuple((name.decode("latin-1").lower(), value.decode("latin-1")) for name, value in headers)


class PluginRun:
    """One request's way through its route's chain. It is also the request's ASGI `send`: the response head
    goes through the `response` phase, the body through the `body` phase (when a plugin has one and the body
    is short enough to hold), and what went out is kept for the `log` phase."""

    __slots__ = ("chain", "inner", "view", "status", "sent", "held", "held_size")

    def __init__(self, chain: PluginChain, send: Send, scope: Mapping[str, Any], route: str, path: str,
                 client: str, request_id: str = "") -> None:
        self.chain = chain
        self.inner = send
        query = scope.get("query_string") or b""
        self.view = RequestView(scope["method"], path, query.decode("latin-1"), _text(scope["headers"]), client,
                                route, None, request_id)
        self.status = 0
        self.sent: Headers = []  # the response head's fields as they went out
        self.held: list[Message] | None = None  # the response's messages while the `body` phase waits for it
        self.held_size = 0

    async def request(self) -> None:
        await self.chain.gate("request", self.view)

    async def access(self, subject: str | None) -> None:
        if subject is not None:
            self.view = replace(self.view, subject=subject)
        await self.chain.gate("access", self.view)

    async def balance(self, body: bytes, body_size: int,
                      backends: tuple[Backend, ...]) -> tuple[LoadedPlugin, Choose] | None:
        """The `balance` phase: the first plugin that chooses (a backend in range, or None with a source to
        log), and its choice; None when none does. PluginAnswer when a plugin answers instead."""
        chain = self.chain
        view = BalanceView(self.view, body, body_size, backends)
        for plugin in chain.by_phase["balance"]:
            result = await chain.call(plugin, "balance", view)
            if isinstance(result, Answer):
                raise PluginAnswer(plugin.name, result)
            if isinstance(result, Choose):
                if result.index is not None and not 0 <= result.index < len(backends):
                    log.warning("route %r: plugin %r chose backend %r of %d; the route's balancing picks",
                                chain.route, plugin.name, result.index, len(backends))
                    continue
                return plugin, result
        return None

    async def upstream(self, headers: Headers, target: bytes) -> tuple[Headers, bytes]:
        """The `upstream` phase over what the attempt will send (headers[0] is Host): the edited headers and
        target; PluginAnswer when a plugin answers instead."""
        chain = self.chain
        for plugin in chain.by_phase["upstream"]:
            path, _, query = target.decode("latin-1").partition("?")
            view = self.view
            view = RequestView(view.method, path, view.query, _text(headers[1:]), view.client, view.route,
                               view.subject, view.request_id, view.ctx)
            result = await chain.call(plugin, "upstream", view)
            if isinstance(result, Answer):
                raise PluginAnswer(plugin.name, result)
            if isinstance(result, Modify):
                headers = edit_headers(headers, result, 1)
                if result.path is not None:
                    target = (result.path + ("?" + query if query else "")).encode("latin-1")
        return headers, target

    async def __call__(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            headers = list(message.get("headers", ()))
            self.status = message["status"]
            for plugin in self.chain.by_phase["response"]:
                view = ResponseView(self.view, self.status, _text(headers))
                result = await self.chain.call(plugin, "response", view)
                if isinstance(result, Modify):
                    headers = edit_headers(headers, result)
            message["headers"] = headers
            self.sent = headers
            if self.chain.by_phase["body"] and self._body_wanted(headers):
                self.held = [message]
                return
        elif kind == "http.response.body" and self.held is not None:
            self.held.append(message)
            self.held_size += len(message.get("body", b""))
            if self.held_size > MAX_BODY_BYTES:
                await self._release()  # too long to hold: it goes out as it came, and streams from here
            elif not message.get("more_body", False):
                await self._send_edited()
            return
        await self.inner(message)

    def _body_wanted(self, headers: Headers) -> bool:
        """Whether the `body` phase gets this response: one with a body, not encoded, not an event stream."""
        if self.status in _NO_BODY_STATUSES or self.status < 200 or self.view.method == "HEAD":
            return False
        for name, value in headers:
            if name == b"content-encoding" and value.strip().lower() not in (b"", b"identity"):
                return False
            if name == b"content-type" and value.lower().startswith(b"text/event-stream"):
                return False
            if name == b"content-length" and value.isdigit() and int(value) > MAX_BODY_BYTES:
                return False
        return True

    async def _release(self) -> None:
        held, self.held = self.held or [], None
        for message in held:
            await self.inner(message)

    async def _send_edited(self) -> None:
        """The held response through the `body` phase, then out with its new length."""
        held, self.held = self.held or [], None
        head = held[0]
        body = b"".join(message.get("body", b"") for message in held[1:])
        response = ResponseView(self.view, self.status, _text(self.sent))
        changed = False
        for plugin in self.chain.by_phase["body"]:
            result = await self.chain.call(plugin, "body", BodyView(response, body))
            if isinstance(result, Replace):
                body, changed = bytes(result.body), True
        if changed:
            headers = [(name, value) for name, value in head["headers"] if name not in _HOP_FIELDS_ON_NEW_BODY]
            headers.append((b"content-length", str(len(body)).encode()))
            head = {**head, "headers": headers}
            self.sent = headers
        await self.inner(head)
        await self.inner({"type": "http.response.body", "body": body, "more_body": False})

    def finished(self, status: int, elapsed_s: float, backend: int | None = None,
                 upstream_s: float | None = None) -> None:
        if self.chain.by_phase["log"]:
            self.chain.log(ResponseView(self.view, status, _text(self.sent), elapsed_s, backend, upstream_s))


def compile_chain(route: str, gateway: tuple[PluginEntry, ...], policies: Mapping[str, Any],
                  made: dict[tuple[str, str], Any], metrics: PluginMetrics = METRICS,
                  builtins: tuple[LoadedPlugin, ...] = ()) -> PluginChain | None:
    """The chain of one route (None when it runs no plugin): `builtins` (Rusta's own, put there by the route's
    blocks) first, then its `plugins` entries in order; `made` shares the plugin objects of identical entries
    across the table's routes. BlockError (path `plugins`) when a plugin cannot start."""
    entries = route_chain(gateway, plugin_entries(policies.get("plugins"), check_configs=False))
    if not entries and not builtins:
        return None
    installed = installed_plugins()
    loaded = list(builtins)
    for entry in entries:
        key = (entry.name, repr(sorted(entry.config.items())))
        plugin = made.get(key)
        if plugin is None:
            try:
                plugin = made[key] = installed[entry.name].load()(dict(entry.config))
            except Exception as exc:  # a third party's factory: the route cannot run without its plugin
                raise BlockError.at("plugins", f"Plugin {entry.name!r} cannot start: {type(exc).__name__}: "
                                               f"{exc}") from exc
        loaded.append(LoadedPlugin(entry, plugin))
    return PluginChain(route, loaded, metrics)
