"""metrics.live: the dashboard's WebSocket, fed through the channel layer, for staff only."""
from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from channels.layers import get_channel_layer
from django.test import Client

from metrics import live, procfiles
from metrics.routing import admin_websocket_application
from protocols.recorder import Recorder

pytestmark = pytest.mark.django_db(transaction=True)


def socket(user=None) -> ApplicationCommunicator:
    """The admin listener's WebSocket app at /ws/metrics/live/, with `user`'s admin session cookie (when given).

    (channels.testing needs daphne, which Rusta does not install: asgiref's communicator does the same here.)"""
    headers = [(b"host", b"127.0.0.1"), (b"origin", b"http://127.0.0.1")]
    if user is not None:
        browser = Client()
        browser.force_login(user)
        headers.append((b"cookie", f"sessionid={browser.cookies['sessionid'].value}".encode()))
    scope = {"type": "websocket", "path": "/ws/metrics/live/", "raw_path": b"/ws/metrics/live/", "query_string": b"",
             "headers": headers, "subprotocols": [], "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8001)}
    return ApplicationCommunicator(admin_websocket_application(), scope)


async def handshake(communicator: ApplicationCommunicator) -> dict:
    await communicator.send_input({"type": "websocket.connect"})
    return await communicator.receive_output(timeout=2)


def test_a_staff_user_receives_the_figures_published_to_the_group(staff_user):
    staff_socket = socket(staff_user)

    async def scenario():
        communicator = staff_socket
        assert (await handshake(communicator))["type"] == "websocket.accept"
        await get_channel_layer().group_send(live.GROUP, {"type": live.MESSAGE_TYPE,
                                                          "figures": {"requests_total": 7}})
        message = await communicator.receive_output(timeout=2)
        await communicator.send_input({"type": "websocket.disconnect", "code": 1000})
        await communicator.wait(timeout=2)
        return json.loads(message["text"])

    assert async_to_sync(scenario)() == {"requests_total": 7}


def test_anyone_else_is_refused(plain_user):
    async def scenario(communicator):
        answer = await handshake(communicator)
        await communicator.send_input({"type": "websocket.disconnect", "code": answer.get("code", 1000)})
        await communicator.wait(timeout=2)
        return answer

    assert async_to_sync(scenario)(socket(plain_user))["code"] == 4403
    assert async_to_sync(scenario)(socket(None))["code"] == 4403


def test_live_figures_give_rates_between_two_snapshots(tmp_path):
    recorder = Recorder()
    figures = live.LiveFigures()

    def snapshot_after(requests: int, status: int = 200):
        for _ in range(requests):
            recorder.record_request("users", "GET", status, 0.002, None, 0, 1, "b:1", None)
        recorder.take_window()
        procfiles.write(tmp_path, recorder.snapshot(), [], 0.0)
        return procfiles.combined(tmp_path)

    first = figures.update(snapshot_after(5), now=100.0)
    second = figures.update(snapshot_after(20, status=503), now=102.0)
    assert first["requests_total"] == 5 and first["requests_per_second"] == 0
    assert second["requests_total"] == 25
    assert second["requests_per_second"] == 10.0
    assert second["errors_per_second"] == 10.0
    assert 0.001 <= second["p95_seconds"] <= 0.0025
    assert second["routes"] == {"users": 25}


def test_the_publisher_leads_alone_on_redis(settings):
    import os

    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.skip("needs REDIS_URL (the scaled-out suite)")
    from metrics.history import redis_client

    redis_client(url).delete(live.LEASE_KEY)
    first = live.LivePublisher(procfiles.folder_for(settings.VAR_DIR), redis_url=url)
    other = live.LivePublisher(procfiles.folder_for(settings.VAR_DIR), redis_url=url)
    assert first._leading()
    redis_client(url).set(live.LEASE_KEY, b"someone-else", px=5000)
    assert not other._leading()
    redis_client(url).delete(live.LEASE_KEY)

