"""The pipeline's reads before routing: a cache hit needs nothing else; with a remote backend
the three reads overlap instead of waiting one after the other."""

from __future__ import annotations

import asyncio
import time

from clawrouter_plugin.state.cache import CachedResponse
from clawrouter_plugin.state.request_reads import ConcurrentReads, SequentialReads
from clawrouter_plugin.state.sessions import Pin

DELAY = 0.2
PIN = Pin(model="m", tier="MEDIUM", table="auto", requests=1, last_used=0.0)
HIT = CachedResponse(status=200, headers={}, body=b"{}", model="m", stored_at=0.0)


class SlowStores:
    """Stand-ins for stores behind a network: every read takes DELAY seconds."""

    def __init__(self, hit: CachedResponse | None):
        self.hit, self.calls = hit, []

    async def get(self, key: str):
        self.calls.append(("get", key))
        await asyncio.sleep(DELAY)
        return self.hit if key.startswith("k") else PIN

    async def all(self) -> frozenset[str]:
        self.calls.append(("all",))
        await asyncio.sleep(DELAY)
        return frozenset({"x/y"})


async def timed(reads, *args):
    started = time.perf_counter()
    result = await reads(*args)
    return result, time.perf_counter() - started


async def test_sequential_reads_skip_the_rest_on_a_hit():
    stores = SlowStores(HIT)
    result, _ = await timed(SequentialReads(stores, stores, stores), "key", "sid")
    assert result == (HIT, None, frozenset())
    assert stores.calls == [("get", "key")]


async def test_sequential_reads_on_a_miss_read_pin_and_exclusions():
    stores = SlowStores(None)
    result, took = await timed(SequentialReads(stores, stores, stores), "key", "sid")
    assert result == (None, PIN, frozenset({"x/y"}))
    assert took >= 3 * DELAY * 0.9


async def test_concurrent_reads_overlap_and_agree():
    stores = SlowStores(None)
    result, took = await timed(ConcurrentReads(stores, stores, stores), "key", "sid")
    assert result == (None, PIN, frozenset({"x/y"}))
    assert took < 2 * DELAY  # one wait, not three
    hit_stores = SlowStores(HIT)
    hit_result, _ = await timed(ConcurrentReads(hit_stores, hit_stores, hit_stores), "key", "s")
    assert hit_result == (HIT, None, frozenset())


async def test_no_cache_key_and_no_session_read_only_the_exclusions():
    for kind in (SequentialReads, ConcurrentReads):
        stores = SlowStores(HIT)
        result, _ = await timed(kind(stores, stores, stores), None, None)
        assert result == (None, None, frozenset({"x/y"}))
        assert stores.calls == [("all",)]
