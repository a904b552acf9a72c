"""The response cache's behaviour on both backends, then what only the Redis one has: one
cache for several processes, a byte cap enforced without server configuration, and misses
(not errors) while the server is down."""

from __future__ import annotations

import asyncio
import logging
import socket
import time

import pytest

from clawrouter_plugin.config import StateConfig
from clawrouter_plugin.state.cache import CachedResponse, LocalCache, ResponseCache
from clawrouter_plugin.state.cache_key import cache_key
from clawrouter_plugin.state.redis_cache import RedisCache
from clawrouter_plugin.state.redis_conn import open_link
from clawrouter_plugin.state.redis_guard import RETRY_SECONDS

from .conftest import link_to


def reply(text: str = "hello", status: int = 200, size: int | None = None) -> CachedResponse:
    body = (b'{"text": "%s"}' % text.encode()) if size is None else b"x" * size
    return CachedResponse(status=status, headers={"x-clawrouter-tier": "SIMPLE"}, body=body,
                          model="openai/gpt-4o-mini", stored_at=1234.5)


@pytest.fixture
async def make(backend, tmp_path):
    """``make(**limits)``: a cache store of the backend under test (closed at teardown)."""
    made = []
    name, link = backend

    def _make(**kw):
        if name == "local":
            store = LocalCache(ResponseCache(tmp_path / f"c{len(made)}", **kw))
        else:
            store = RedisCache(link, **kw)
        made.append(store)
        return store

    yield _make
    for store in made:
        await store.aclose()


async def test_miss_then_hit(make):
    cache = make()
    assert await cache.get("k") is None
    assert await cache.put("k", reply("one")) is True
    assert await cache.get("k") == reply("one")
    assert await cache.put("k", reply("two"))  # replaced
    assert await cache.get("k") == reply("two")
    stats = await cache.stats()
    assert (stats["size"], stats["hits"], stats["misses"], stats["hitRate"]) == (1, 2, 1, "66.7%")


async def test_refuses_what_it_must_not_store(make):
    cache = make(max_item_size=100)
    assert await cache.put("error", reply(status=500)) is False
    assert await cache.put("big", reply(size=101)) is False
    assert await cache.put("never", reply(), ttl=0) is False
    assert await cache.put("fits", reply(size=100)) is True
    assert [await cache.get(k) is None for k in ("error", "big", "never", "fits")] == [
        True, True, True, False]


async def test_each_entry_expires_after_its_own_ttl(make):
    cache = make(default_ttl=30)
    await cache.put("short", reply("s"), ttl=0.3)
    await cache.put("long", reply("l"))
    assert await cache.get("short") is not None
    await asyncio.sleep(0.6)
    assert await cache.get("short") is None
    assert await cache.get("long") == reply("l")
    assert (await cache.stats())["size"] == 1


async def test_entry_count_is_capped_oldest_out_first(make):
    cache = make(max_size=3)
    for i in range(4):
        assert await cache.put(f"k{i}", reply(str(i)))
    assert await cache.get("k0") is None
    assert [(await cache.get(f"k{i}")).body for i in (1, 2, 3)] == [
        reply(str(i)).body for i in (1, 2, 3)]
    stats = await cache.stats()
    assert (stats["size"], stats["maxSize"], stats["evictions"]) == (3, 3, 1)


async def test_clear_empties_it_and_resets_the_counters(make):
    cache = make()
    await cache.put("k", reply())
    await cache.get("k")
    await cache.clear()
    assert (await cache.stats())["hits"] == 0
    assert await cache.get("k") is None
    assert (await cache.stats())["size"] == 0


# --- only the Redis backend ---------------------------------------------------------------


async def test_a_response_stored_by_one_process_is_a_hit_on_another(redis_url):
    first, second = link_to(redis_url), link_to(redis_url)
    try:
        body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
        key = cache_key(body)  # the local backend's key, unchanged
        await RedisCache(first).put(key, reply("shared"))
        assert await RedisCache(second).get(key) == reply("shared")
        assert await second.client.exists(f"test:cache:e:{key}") == 1
    finally:
        await first.aclose()
        await second.aclose()


async def test_memory_cap_evicts_oldest_until_the_bytes_fit(link):
    cache = RedisCache(link, max_size=100, max_bytes=3500, max_item_size=5000)
    for i in range(6):
        assert await cache.put(f"k{i}", reply(size=1000))
    stats = await cache.stats()
    assert stats["bytes"] <= 3500 and stats["size"] == 3 and stats["evictions"] == 3
    assert [await cache.get(f"k{i}") is None for i in range(6)] == [True] * 3 + [False] * 3
    sizes = await link.client.hgetall("test:cache:sizes")
    assert sum(int(v) for v in sizes.values()) == stats["bytes"]  # the counter stays exact
    assert await cache.put("huge", reply(size=4000)) is False  # bigger than the whole cap
    assert (await cache.stats())["size"] == 3


async def test_expired_entries_give_their_bytes_back(link):
    cache = RedisCache(link, max_bytes=10_000, max_item_size=5000)
    await cache.put("gone", reply(size=4000), ttl=0.2)
    await asyncio.sleep(0.4)
    await cache.put("new", reply(size=100))
    stats = await cache.stats()
    assert stats["size"] == 1 and stats["evictions"] == 0
    assert stats["bytes"] == len(await link.client.get("test:cache:e:new"))


async def test_a_foreign_value_under_a_cache_key_is_a_miss(link):
    cache = RedisCache(link)
    await link.client.set("test:cache:e:k", b"not ours")
    assert await cache.get("k") is None


async def test_server_down_is_a_miss_then_it_recovers(own_redis, own_link, caplog):
    cache = RedisCache(own_link)
    await cache.put("k", reply())
    own_redis.kill()
    caplog.set_level(logging.WARNING, logger="clawrouter.redis")
    started = time.monotonic()
    for _ in range(20):
        assert await cache.get("k") is None
        assert await cache.put("other", reply()) is False
    assert time.monotonic() - started < 5  # skipped while down, not one timeout per call
    assert own_link.healthy is False and "Error" in own_link.health()["error"]
    assert len([r for r in caplog.records if "unreachable" in r.getMessage()]) == 1
    own_redis.start()  # empty again: nothing was persisted
    deadline = time.monotonic() + 10
    while not await cache.put("k", reply("back")) and time.monotonic() < deadline:
        await asyncio.sleep(RETRY_SECONDS / 4)
    assert await cache.get("k") == reply("back")
    assert own_link.healthy is True


async def test_a_silent_server_makes_one_request_wait_not_all():
    """A server that accepts connections but never answers (a hung host): after the first
    timeout, one call per retry window waits on it; the others miss at once."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    link = open_link(StateConfig(backend="redis", timeout_seconds=0.3,
                                 redis_url=f"redis://127.0.0.1:{silent.getsockname()[1]}/0"))
    try:
        cache = RedisCache(link)
        assert await cache.get("k") is None
        assert link.healthy is False
        await asyncio.sleep(RETRY_SECONDS + 0.1)

        async def timed_get() -> float:
            started = time.monotonic()
            assert await cache.get("k") is None
            return time.monotonic() - started

        waits = sorted(await asyncio.gather(*(timed_get() for _ in range(10))))
        assert waits[-1] >= 0.3  # one asked the server again
        assert waits[-2] < 0.1  # the other nine did not wait for it
    finally:
        await link.aclose()
        silent.close()


async def test_concurrent_stores_from_two_processes_keep_the_books_exact(redis_url):
    """Each store is one script: index, sizes, total and entries agree after a burst of
    stores through two links, and the cap holds."""
    links = [link_to(redis_url), link_to(redis_url)]
    try:
        caches = [RedisCache(link, max_size=20, max_bytes=20_000, max_item_size=5000)
                  for link in links]
        await asyncio.gather(*(caches[i % 2].put(f"k{i % 37}", reply(size=300 + 97 * (i % 41)))
                               for i in range(200)))
        client = links[0].client
        total = int(await client.get("test:cache:bytes"))
        sizes = {k.decode(): int(v) for k, v in (await client.hgetall("test:cache:sizes")).items()}
        index = {m.decode() for m in await client.zrange("test:cache:index", 0, -1)}
        entries = {k.decode().removeprefix("test:cache:e:")
                   async for k in client.scan_iter(match="test:cache:e:*")}
        assert total == sum(sizes.values()) <= 20_000
        assert set(sizes) == index == entries and 0 < len(index) <= 20
        for name in entries:
            assert len(await client.get(f"test:cache:e:{name}")) == sizes[name]
    finally:
        for link in links:
            await link.aclose()
