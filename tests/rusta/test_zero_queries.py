"""The proxy path never touches the database: a proxied request makes zero queries."""
from __future__ import annotations

import asyncio

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from protocols.http.proxy import ProxyApp, ProxyOptions
from protocols.table import LiveTable
from routes.services import save_route
from routes.snapshot import build_table
from tests.support.upstream import UpstreamServer


class QueryForbidden(AssertionError):
    pass


def forbid(execute, sql, params, many, context):
    raise QueryForbidden(f"the proxy path ran a query: {sql}")


async def call(app: ProxyApp, path: str) -> tuple[int, bytes]:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"host", b"gateway.test")], "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
    }
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    await app(scope, receive, send)
    await app.aclose()
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


@pytest.mark.django_db
def test_a_proxied_request_makes_no_database_query():
    with UpstreamServer() as upstream:
        save_route({"name": "echo", "external_path": "/echo/{id}", "methods": ["GET"],
                    "backends": [{"host": "http://127.0.0.1", "port": upstream.port}]},
                   actor=None, source="test")
        state = LiveTable()
        state.install(build_table())
        app = ProxyApp(ProxyOptions(state=state, access_log=False))
        with CaptureQueriesContext(connection) as queries, connection.execute_wrapper(forbid):
            status, body = asyncio.run(call(app, "/echo/42"))
        assert status == 200, body
        assert len(upstream.requests) == 1
        assert len(queries) == 0
