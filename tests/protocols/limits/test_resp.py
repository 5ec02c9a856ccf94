"""RespClient, the rate limiter's Redis client: pipelined replies reach their own callers, scripts survive a
SCRIPT FLUSH, the URL's AUTH and SELECT apply, error replies raise, a lost connection fails its pending calls
and the next call reconnects, a silent server hits the timeout. The suite's Redis (REDIS_URL) for most; a
private redis-server for what would disturb a shared one (SCRIPT FLUSH, a password)."""
from __future__ import annotations

import asyncio
import gc
import os
import shutil
import socket
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis

from protocols.limits.resp import Endpoint, RedisUnavailable, ReplyError, RespClient, Script, parse
from tests.protocols.limits.redis_server import REDIS_CLI, REDIS_SERVER, PrivateRedis

REDIS_URL = os.environ.get("REDIS_URL", "")
needs_redis = pytest.mark.skipif(not REDIS_URL, reason="needs REDIS_URL (the scaled-out suite)")
needs_redis_server = pytest.mark.skipif(not (REDIS_SERVER and REDIS_CLI), reason="needs redis-server and redis-cli")
INCRBY = Script("return redis.call('INCRBY', KEYS[1], ARGV[1])")


@pytest.fixture
def prefix() -> Iterator[str]:
    prefix = f"rusta-test:{uuid.uuid4().hex[:8]}:"
    yield prefix
    if REDIS_URL:
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=prefix + "*"))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path, password="s3cret/pass")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def with_client(url: str, scenario, timeout_s: float = 2.0):
    async def run():
        client = RespClient(url, timeout_s=timeout_s)
        try:
            return await scenario(client)
        finally:
            await client.aclose()

    return asyncio.run(run())


# --- against the suite's Redis ----------------------------------------------------------------------------

@pytest.mark.redis
@needs_redis
def test_concurrent_script_calls_each_get_their_own_reply(prefix):
    async def scenario(client: RespClient) -> list[int]:
        return await asyncio.gather(*(client.evalsha(INCRBY, (f"{prefix}{n}",), (n,)) for n in range(500)))

    replies = with_client(REDIS_URL, scenario)
    assert replies == list(range(500))  # each fresh key incremented by its own n: a mix-up would show


@pytest.mark.redis
@needs_redis
def test_the_database_of_the_url_is_selected(prefix):
    db = int(urlsplit(REDIS_URL).path.strip("/") or 0)

    async def scenario(client: RespClient) -> bytes:
        await client.call("SET", prefix + "where", "here")
        return await client.call("CLIENT", "INFO")

    info = with_client(REDIS_URL, scenario)
    assert f" db={db} ".encode() in info
    assert redis.Redis.from_url(REDIS_URL).get(prefix + "where") == b"here"


@pytest.mark.redis
@needs_redis
def test_an_error_reply_raises_and_the_connection_carries_on(prefix):
    async def scenario(client: RespClient) -> tuple[ReplyError, bytes]:
        await client.call("SET", prefix + "text", "not a number")
        with pytest.raises(ReplyError) as caught:
            await client.call("INCR", prefix + "text")
        return caught.value, await client.call("GET", prefix + "text")

    error, after = with_client(REDIS_URL, scenario)
    assert error.code == "ERR" and "not an integer" in str(error)
    assert after == b"not a number"


@pytest.mark.redis
@needs_redis
def test_a_killed_connection_fails_its_pending_calls_and_the_next_call_reconnects(prefix):
    async def scenario(client: RespClient) -> tuple[list[object], int, int]:
        first_id = await client.call("CLIENT", "ID")
        # BLPOP holds the connection on the server, so the calls queued behind it are all still pending.
        blocked = asyncio.ensure_future(client.call("BLPOP", prefix + "never", 5))
        queued = [asyncio.ensure_future(client.evalsha(INCRBY, (prefix + "q",), (1,))) for _ in range(20)]
        await asyncio.sleep(0.1)
        killer = redis.asyncio.Redis.from_url(REDIS_URL)
        await killer.execute_command("CLIENT", "KILL", "ID", first_id)
        await killer.aclose()
        outcomes = await asyncio.gather(blocked, *queued, return_exceptions=True)
        return outcomes, first_id, await client.call("CLIENT", "ID")

    outcomes, first_id, second_id = with_client(REDIS_URL, scenario)
    # Failed by the kill, not by the 2 s timeout behind the BLPOP
    assert all(isinstance(o, RedisUnavailable) and "closed the connection" in str(o) for o in outcomes), outcomes
    assert second_id != first_id  # a new connection, opened by the next call


@pytest.mark.redis
@needs_redis
@pytest.mark.filterwarnings("ignore::ResourceWarning")  # the first loop's socket: that loop is gone
def test_a_client_used_from_a_second_event_loop_opens_a_connection_there(prefix):
    client = RespClient(REDIS_URL)
    assert asyncio.run(client.evalsha(INCRBY, (prefix + "loop",), (1,))) == 1
    assert asyncio.run(client.evalsha(INCRBY, (prefix + "loop",), (1,))) == 2
    asyncio.run(client.aclose())
    gc.collect()


@pytest.mark.redis
@needs_redis
def test_rediss_reaches_redis_through_tls(prefix, tmp_path):
    if not shutil.which("openssl"):
        pytest.skip("needs openssl to make a certificate")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(tmp_path / "key.pem"),
                    "-out", str(tmp_path / "cert.pem")], check=True, capture_output=True, timeout=60)
    target = urlsplit(REDIS_URL)

    async def scenario() -> int:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")

        relays: list[asyncio.Task[None]] = []

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            while data := await source.read(65536):
                sink.write(data)
            sink.close()
            await sink.wait_closed()

        async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            up_reader, up_writer = await asyncio.open_connection(target.hostname, target.port or 6379)
            await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer), return_exceptions=True)

        server = await asyncio.start_server(lambda r, w: relays.append(asyncio.ensure_future(relay(r, w))),
                                            "127.0.0.1", 0, ssl=tls)
        port = server.sockets[0].getsockname()[1]
        client = RespClient(f"rediss://127.0.0.1:{port}{target.path}?ssl_ca_certs={tmp_path / 'cert.pem'}")
        try:
            return await client.evalsha(INCRBY, (prefix + "tls",), (7,))
        finally:
            await client.aclose()
            await asyncio.wait_for(asyncio.gather(*relays), 5)  # both sides closed
            server.close()

    assert asyncio.run(scenario()) == 7


# --- against a private redis-server ---------------------------------------------------------------------------

@pytest.mark.redis
@needs_redis_server
def test_a_script_flushed_from_the_server_runs_again_and_is_cached_again(private_redis):
    url = f"redis://:s3cret%2Fpass@127.0.0.1:{private_redis.port}/2"

    async def scenario(client: RespClient) -> tuple[int, int, list[int]]:
        first = await client.evalsha(INCRBY, ("k",), (1,))
        await client.call("SCRIPT", "FLUSH")
        second = await client.evalsha(INCRBY, ("k",), (1,))
        return first, second, await client.call("SCRIPT", "EXISTS", INCRBY.sha)

    assert with_client(url, scenario) == (1, 2, [1])


@pytest.mark.redis
@needs_redis_server
def test_the_password_of_the_url_opens_the_session(private_redis):
    async def scenario(client: RespClient) -> bytes:
        return await client.call("PING")

    assert with_client(f"redis://:s3cret%2Fpass@127.0.0.1:{private_redis.port}/0", scenario) == b"PONG"
    assert with_client(f"redis://default:s3cret%2Fpass@127.0.0.1:{private_redis.port}/0", scenario) == b"PONG"


@pytest.mark.redis
@needs_redis_server
def test_a_unix_socket_url_reaches_redis_with_its_password_and_database(private_redis):
    async def scenario(client: RespClient) -> bytes:
        return await client.call("CLIENT", "INFO")

    info = with_client(f"unix://{private_redis.socket_path}?db=3&password=s3cret%2Fpass", scenario)
    assert b" db=3 " in info


@pytest.mark.redis
@needs_redis_server
def test_a_wrong_password_makes_redis_unavailable_and_says_why(private_redis):
    async def scenario(client: RespClient) -> bytes:
        return await client.call("PING")

    with pytest.raises(RedisUnavailable, match="AUTH"):
        with_client(f"redis://:wrong@127.0.0.1:{private_redis.port}/0", scenario)


# --- no Redis needed ----------------------------------------------------------------------------------------

def test_a_server_that_never_answers_hits_the_timeout():
    async def scenario() -> tuple[list[object], float, bool]:
        closed = asyncio.Event()

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read()  # until the client gives up and closes
            closed.set()
            writer.close()

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        client = RespClient(f"redis://127.0.0.1:{server.sockets[0].getsockname()[1]}/0", timeout_s=0.2)
        started = time.monotonic()
        try:
            outcomes = await asyncio.gather(*(client.call("PING") for _ in range(5)), return_exceptions=True)
            took = time.monotonic() - started
            await asyncio.wait_for(closed.wait(), 2)
            return outcomes, took, closed.is_set()
        finally:
            await client.aclose()
            server.close()

    outcomes, took, dropped = asyncio.run(scenario())
    assert all(isinstance(o, RedisUnavailable) and "within 0.2 s" in str(o) for o in outcomes), outcomes
    assert 0.19 <= took < 1.0
    assert dropped  # the silent connection is not kept for the next call


def test_a_refused_connection_makes_redis_unavailable():
    async def scenario(client: RespClient) -> object:
        return await client.call("PING")

    with pytest.raises(RedisUnavailable, match="cannot connect"):
        with_client(f"redis://127.0.0.1:{_refused_port()}/0", scenario, timeout_s=0.5)


def test_the_url_gives_host_port_credentials_and_database():
    endpoint = Endpoint.from_url("redis://app:p%40ss@cache.internal:6380/4")
    assert (endpoint.host, endpoint.port, endpoint.username, endpoint.password, endpoint.db, endpoint.tls) == (
        "cache.internal", 6380, "app", "p@ss", 4, None)
    assert endpoint.handshake() == [(b"AUTH", "app", "p@ss"), (b"SELECT", 4)]
    assert Endpoint.from_url("redis://localhost?db=3").db == 3
    assert Endpoint.from_url("redis://localhost").handshake() == []
    assert Endpoint.from_url("unix:///run/redis.sock?db=2&password=x").path == "/run/redis.sock"


def test_rediss_verifies_the_server_unless_told_not_to():
    assert Endpoint.from_url("rediss://cache.internal/0").tls.verify_mode == ssl.CERT_REQUIRED
    assert Endpoint.from_url("rediss://cache.internal/0?ssl_cert_reqs=none").tls.verify_mode == ssl.CERT_NONE


@pytest.mark.parametrize("url", ["redis+sentinel://h/0", "http://h/0", "redis://h/zero", "unix://"])
def test_an_unusable_url_is_refused_when_the_client_is_made(url):
    with pytest.raises(ValueError):
        RespClient(url)


def test_replies_are_read_only_once_complete():
    whole = b"*3\r\n:1\r\n$5\r\nab\r\nc\r\n*2\r\n+OK\r\n$-1\r\n-ERR x\r\n"
    assert parse(bytearray(whole), 0) == ([1, b"ab\r\nc", [b"OK", None]], len(whole) - 8)
    for cut in range(1, len(whole) - 8):
        assert parse(bytearray(whole[:cut]), 0) == (None, 0), cut


def test_a_limiter_scripts_reply_of_four_integers_is_read_whole_or_not_at_all():
    whole = b"*4\r\n:1\r\n:-2\r\n:1000000\r\n:0\r\n"
    buffer = bytearray(b"+OK\r\n" + whole + whole)
    assert parse(buffer, 5) == ([1, -2, 1000000, 0], 5 + len(whole))
    assert parse(buffer, 5 + len(whole)) == ([1, -2, 1000000, 0], len(buffer))
    for cut in range(1, len(whole)):
        assert parse(bytearray(whole[:cut]), 0) == (None, 0), cut
    # Four items that are not all integers are read as any array.
    assert parse(bytearray(b"*4\r\n:1\r\n$1\r\nx\r\n:3\r\n:4\r\n"), 0)[0] == [1, b"x", 3, 4]


def _refused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
