"""The connection that carries each request's scripts (state/redis_wire.py), against real
redis-servers: replies reach their own calls, the URL's password and database are used, a
lost or silent server fails the calls waiting (as Redis errors, which the stores' guards
turn into their fallbacks) and the next call connects again."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from clawrouter_plugin.state.redis_wire import ScriptWire
from tests.support.redis_server import RedisServer, free_port

ECHO = "return ARGV[1]"
STORE = "redis.call('SET', KEYS[1], ARGV[1]) return redis.call('GET', KEYS[1])"
FAIL_ON_X = "if ARGV[1] == 'x' then return redis.error_reply('no x') end return ARGV[1]"


def script(source: str) -> AsyncScript:
    return AsyncScript(None, source.encode())  # its SHA1 and source (no client needed)


async def test_replies_reach_their_own_calls_in_order(redis_url):
    wire = ScriptWire(redis_url, 2.0)
    echo, fail = script(ECHO), script(FAIL_ON_X)
    try:
        calls = [wire.call(fail if index % 7 == 3 else echo, [], ["x" if index % 7 == 3 else
                                                                 str(index)])
                 for index in range(200)]  # all written before the first reply is read
        results = await asyncio.wait_for(
            asyncio.gather(*calls, return_exceptions=True), 10)
        for index, result in enumerate(results):
            if index % 7 == 3:
                assert isinstance(result, ResponseError) and "no x" in str(result)
            else:
                assert result == str(index).encode()
    finally:
        await wire.aclose()


async def test_the_urls_password_and_database_are_used():
    server = RedisServer(password="s3cret-pw")
    server.start()
    url = server.url.replace("/0", "/3")
    wire = ScriptWire(url, 2.0)
    client = redis.asyncio.Redis.from_url(url)
    try:
        assert await asyncio.wait_for(wire.call(script(STORE), ["k"], ["v"]), 5) == b"v"
        assert await client.get("k") == b"v"  # on database 3
        await client.select(0)
        assert await client.dbsize() == 0
        wrong = ScriptWire(server.url.replace("s3cret-pw", "wrong"), 2.0)
        with pytest.raises(RedisError):
            await asyncio.wait_for(wrong.call(script(ECHO), [], ["a"]), 5)
        await wrong.aclose()
    finally:
        await client.aclose()
        await wire.aclose()
        server.close()


async def test_a_server_that_forgot_the_script_gets_it_and_runs_it_once(redis_url):
    wire = ScriptWire(redis_url, 2.0)
    client = redis.asyncio.Redis.from_url(redis_url)
    count = script("return redis.call('INCR', KEYS[1])")
    try:
        await client.script_flush()
        assert await wire.call(count, ["n"], []) == 1
        assert await client.script_exists(count.sha) == [True]  # kept for the next time
        await client.script_flush()
        assert await asyncio.gather(*(wire.call(count, ["n"], []) for _ in range(3))) \
            == [2, 3, 4]
    finally:
        await client.aclose()
        await wire.aclose()


async def test_a_restarted_server_fails_what_waits_then_is_reconnected(own_redis):
    wire = ScriptWire(own_redis.url, 2.0)
    echo = script(ECHO)
    try:
        assert await wire.call(echo, [], ["before"]) == b"before"
        own_redis.kill()
        with pytest.raises(RedisError):
            await asyncio.wait_for(wire.call(echo, [], ["down"]), 5)
        with pytest.raises(RedisError):  # refused: each call asks again, and fails fast
            await asyncio.wait_for(wire.call(echo, [], ["still down"]), 5)
        own_redis.start()
        assert await asyncio.wait_for(wire.call(echo, [], ["after"]), 5) == b"after"
    finally:
        await wire.aclose()


async def test_an_unreachable_server_fails_the_call():
    wire = ScriptWire(f"redis://127.0.0.1:{free_port()}/0", 2.0)
    started = time.monotonic()
    with pytest.raises(RedisError, match="connecting"):
        await asyncio.wait_for(wire.call(script(ECHO), [], ["a"]), 5)
    assert time.monotonic() - started < 2
    await wire.aclose()


async def test_a_silent_server_times_out_and_the_connection_is_dropped():
    """A server that accepts and reads but never answers: each call fails after the
    timeout, and the connection it used is closed (the next call opens a new one)."""
    connections: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        while await reader.read(4096):
            pass
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    wire = ScriptWire(f"redis://127.0.0.1:{port}/0", 0.3)
    try:
        for attempt in range(2):
            started = time.monotonic()
            with pytest.raises(RedisTimeoutError):
                await asyncio.wait_for(wire.call(script(ECHO), [], ["a"]), 5)
            assert 0.25 < time.monotonic() - started < 2
            await asyncio.sleep(0.05)
            assert len(connections) == attempt + 1
            assert connections[-1].is_closing() or connections[-1].transport.is_closing()
    finally:
        await wire.aclose()
        server.close()
        await server.wait_closed()
