"""Warns, never refuses, when a route's backend host name does not resolve from this gateway.

A name may resolve later (a service not deployed yet) or only from elsewhere, so the route is still saved; but a
typo like `localhots` would otherwise first show as 502 upstream_name_not_resolved on live traffic. The API's
dry run and the admin both ask here. Lookups share one small thread pool and one deadline, so a slow or silent
DNS server delays a save by at most `TIMEOUT_S` and ties up at most `WORKERS` threads.
"""
from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from routes.field_checks import split_backend_host

TIMEOUT_S = 1.0
WORKERS = 4

Resolver = Callable[[str], object]
Warnings = dict[str, list[str]]

_lookups = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="rusta-name-check")


def resolve(host: str) -> object:
    """The system resolver, as the upstream client's connect uses it; raises socket.gaierror."""
    return socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)


def unresolved_backends(doc: dict[str, Any], *, resolver: Resolver = resolve,
                        timeout: float = TIMEOUT_S) -> Warnings:
    """`{"backends[0].host": ["localhots does not resolve from this gateway (Name or service not known)"]}`, one
    entry per backend whose host name fails to resolve; IP literals are not looked up.

    `doc` is a route document that validated (each backend has a string `host`); each name is looked up once.
    """
    protocol = doc.get("protocol") or "http"
    names: list[tuple[str, str]] = []  # (path, host name) in backend order
    for index, backend in enumerate(doc.get("backends") or ()):
        host = backend.get("host") if isinstance(backend, dict) else None
        if not isinstance(host, str):
            continue
        _, name = split_backend_host(host.strip(), protocol)
        if name and not _is_ip_literal(name):
            names.append((f"backends[{index}].host", name))
    if not names:
        return {}
    lookups = {name: _lookups.submit(resolver, name) for name in dict.fromkeys(name for _, name in names)}
    wait(lookups.values(), timeout=timeout)
    problems = {name: _problem(name, lookup, timeout) for name, lookup in lookups.items()}
    return {path: [problem] for path, name in names if (problem := problems[name]) is not None}


def _problem(name: str, lookup: Future[object], timeout: float) -> str | None:
    if not lookup.done():
        lookup.cancel()  # still queued behind slower lookups: nobody will read its answer
        return f"{name} did not resolve from this gateway within {timeout:g} s"
    exc = lookup.exception()
    if exc is None:
        return None
    if isinstance(exc, socket.gaierror):
        return f"{name} does not resolve from this gateway ({exc.strerror or exc})"
    if isinstance(exc, OSError | UnicodeError):  # UnicodeError: a label the IDNA codec refuses
        return f"{name} could not be looked up from this gateway ({exc})"
    raise exc


def _is_ip_literal(name: str) -> bool:
    candidate = name[1:-1] if name.startswith("[") and name.endswith("]") else name
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return True
