"""A request's view of the shared state (state/request_state.py): the local backend's plain
calls (a hit reads nothing else), then the Redis backend's two scripts against a real
redis-server: the opening script's reads, dedup lock and exclusions version; the closing
script sent without waiting, and the rule that this process's next request of the same
session or cache key still sees what it wrote."""

from __future__ import annotations

import asyncio
import time

import orjson

from clawrouter_plugin.catalog import load_catalog
from clawrouter_plugin.state.cache import CachedResponse
from clawrouter_plugin.state.dedup import InFlight
from clawrouter_plugin.state.redis_cache import RedisCache
from clawrouter_plugin.state.redis_dedup import SharedInFlight
from clawrouter_plugin.state.redis_exclusions import RedisExclusions
from clawrouter_plugin.state.redis_request_state import RedisRequests
from clawrouter_plugin.state.redis_sessions import RedisSessions
from clawrouter_plugin.state.request_state import Answered, LocalRequests
from clawrouter_plugin.state.sessions import Pin

from .conftest import link_to

CATALOG = load_catalog()
DELAY = 0.2
PIN = Pin(model="m", tier="MEDIUM", table="auto", requests=1, last_used=0.0)
HIT = CachedResponse(status=200, headers={}, body=b"{}", model="m", stored_at=0.0)


class SlowStores:
    """Stand-ins for the local stores that record the calls; every read takes DELAY s."""

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

    async def answered(self, *args) -> None:
        self.calls.append(("answered", *args))

    async def put(self, key: str, response: CachedResponse) -> None:
        self.calls.append(("put", key, response))


def local(stores: SlowStores) -> LocalRequests:
    return LocalRequests(stores, stores, stores, InFlight())


async def test_local_hit_reads_nothing_else():
    stores = SlowStores(HIT)
    state = await local(stores).open("key", "sid")
    assert (state.hit, state.pin, state.excluded) == (HIT, None, frozenset())
    assert stores.calls == [("get", "key")]


async def test_local_miss_reads_pin_and_exclusions_then_keeps_at_once():
    stores = SlowStores(None)
    state = await local(stores).open("key", "sid")
    assert (state.hit, state.pin, state.excluded) == (None, PIN, frozenset({"x/y"}))

    async def work():
        await state.keep(Answered("sid", "m", "SIMPLE", "auto"), HIT)
        return "answer"

    assert await state.run(work, None) == ("answer", False)
    assert stores.calls[-2:] == [("answered", "sid", "m", "SIMPLE", "auto"), ("put", "key", HIT)]


async def test_local_without_key_or_session_reads_only_the_exclusions():
    stores = SlowStores(HIT)
    state = await local(stores).open(None, None)
    assert (state.hit, state.pin, state.excluded) == (None, None, frozenset({"x/y"}))
    assert stores.calls == [("all",)]


class Json:
    encode = staticmethod(orjson.dumps)
    decode = staticmethod(orjson.loads)


def redis_requests(link, **dedup) -> RedisRequests:
    """The Redis request states of one 'process' (its own stores on ``link``)."""
    return RedisRequests(link, RedisCache(link), RedisSessions(link),
                         RedisExclusions(link, CATALOG), SharedInFlight(link, **dedup))


def response(text: str) -> CachedResponse:
    return CachedResponse(status=200, headers={"x-clawrouter-model": "m"},
                          body=orjson.dumps({"text": text}), model="m", stored_at=time.time())


async def answer(state, sid: str, text: str, share=Json()):
    """Run ``state``'s work: it keeps a pin for ``sid`` and ``text`` for the cache."""
    async def work():
        await state.keep(Answered(sid, "openai/gpt-4o-mini", "MEDIUM", "auto"), response(text))
        return text

    return await state.run(work, share)


async def test_redis_open_reads_pin_and_exclusions_and_takes_the_group_lock(link, redis_url):
    other = link_to(redis_url)
    try:
        ours, theirs = redis_requests(link), redis_requests(other)
        await theirs.exclusions.add("sonnet")
        state = await ours.open("k1", "s1")
        assert state.hit is None and state.pin is None
        assert state.excluded == {"anthropic/claude-sonnet-4.6"}
        assert await link.client.get("test:dedup:k1:lock")  # taken by the opening script
        assert await answer(state, "s1", "one") == ("one", False)
        await link.pending.drain()
        assert not await link.client.get("test:dedup:k1:lock")  # dropped by the closing one
        # the other process sees the answer, the pin and, at once, an exclusion change
        await ours.exclusions.remove("sonnet")
        seen = await theirs.open("k1", "s1")
        assert seen.hit is not None and orjson.loads(seen.hit.body) == {"text": "one"}
        seen = await theirs.open("k2", "s1")
        assert seen.pin is not None and seen.pin.model == "openai/gpt-4o-mini"
        assert seen.excluded == frozenset()
        seen.abandon()
        await other.pending.drain()
        assert not await link.client.get("test:dedup:k2:lock")
    finally:
        await other.aclose()


async def test_redis_the_answer_does_not_wait_for_the_closing_script(link, monkeypatch):
    """The closing script is written before the answer is returned, and its reply is read
    in the background (slowed down here by 0.3 s): the answer does not wait for it, nor do
    requests about other sessions and keys; the next request of the same session or cache
    key in this process, and the stores' own calls, do."""
    requests = redis_requests(link)
    start = link.pending.start

    async def slow(reply):
        await reply
        await asyncio.sleep(0.3)

    monkeypatch.setattr(link.pending, "start", lambda reply, names: start(slow(reply), names))

    async def timed(call):
        started = time.monotonic()
        result = await call
        return result, time.monotonic() - started

    state = await requests.open("k1", "s1")
    result, took = await timed(answer(state, "s1", "one"))
    assert result == ("one", False) and took < 0.25
    unrelated, took = await timed(requests.open("k9", "s9"))
    assert took < 0.25 and unrelated.pin is None
    unrelated.abandon()
    same_session, took = await timed(requests.open("k2", "s1"))
    assert took > 0.1 and same_session.pin.model == "openai/gpt-4o-mini"
    same_session.abandon()
    state = await requests.open("k3", None)
    await answer(state, "s3", "three")
    pin, took = await timed(requests.sessions.get("s3"))
    assert took > 0.1 and pin.tier == "MEDIUM"
    state = await requests.open("k4", None)
    await answer(state, "s4", "four")
    again, took = await timed(requests.open("k4", None))
    assert took > 0.1 and orjson.loads(again.hit.body) == {"text": "four"}


async def test_redis_two_identical_requests_of_one_process_in_either_order(link):
    """The first to open takes the team's lock; if the second reaches the work first it
    waits for the first through Redis, and the first leads anyway: one answer, no wait for
    the lock to expire (10 s)."""
    requests = redis_requests(link)
    calls = 0

    async def work():
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return "once"

    first = await requests.open("same", None)
    second = await requests.open("same", None)
    late = asyncio.create_task(second.run(work, Json()))
    await asyncio.sleep(0.02)
    results = await asyncio.wait_for(asyncio.gather(first.run(work, Json()), late), 5)
    assert calls == 1
    assert sorted(results) == [("once", False), ("once", True)]


async def test_redis_down_reads_fall_back_and_the_work_still_runs(own_link, own_redis):
    requests = redis_requests(own_link)
    await requests.exclusions.add("sonnet")
    state = await requests.open("k", "s")
    state.abandon()
    own_redis.kill()
    state = await requests.open("k", "s")
    assert state.hit is None and state.pin is None
    assert state.excluded == {"anthropic/claude-sonnet-4.6"}  # as last read
    assert await answer(state, "s", "alone") == ("alone", False)
    await own_link.pending.drain()
    assert own_link.healthy is False


async def test_redis_request_scripts_work_on_a_server_that_forgot_them(link):
    """Both scripts are sent by their hash on a pooled connection: a server that does not
    know them (restarted, SCRIPT FLUSH) gets them loaded, and the request goes on."""
    requests = redis_requests(link)
    await link.client.script_flush()
    state = await requests.open("k1", "s1")
    assert state.hit is None and state.pin is None
    await link.client.script_flush()  # the closing script too
    assert await answer(state, "s1", "one") == ("one", False)
    await link.pending.drain()
    await link.client.script_flush()
    again = await requests.open("k1", "s1")
    assert again.hit is not None and orjson.loads(again.hit.body) == {"text": "one"}
    pinned = await requests.open("k2", "s1")
    assert pinned.pin is not None and pinned.pin.model == "openai/gpt-4o-mini"
    pinned.abandon()
    assert link.healthy
