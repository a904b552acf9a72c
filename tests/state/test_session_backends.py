"""Session pins and /model preferences on both backends, then the Redis backend's own
promises: what one process sets, every other sees at once, and an unreachable server costs
the pin, never the request."""

from __future__ import annotations

import asyncio
import logging

import pytest

from clawrouter_plugin.errors import StateUnavailable
from clawrouter_plugin.state.redis_sessions import RedisSessions
from clawrouter_plugin.state.sessions import SessionStore

from .conftest import link_to


@pytest.fixture
def make(backend):
    """``make(ttl_seconds=...)``: a session store of the backend under test."""
    name, link = backend
    return (lambda **kw: SessionStore(**kw)) if name == "local" else (
        lambda **kw: RedisSessions(link, **kw))


async def test_pin_touch_and_set_model(make):
    store = make()
    assert await store.get("s") is None
    first = await store.pin("s", "openai/gpt-4o", "MEDIUM", "auto")
    assert (first.model, first.tier, first.table, first.requests) == (
        "openai/gpt-4o", "MEDIUM", "auto", 1)
    await store.touch("s")
    await store.set_model("s", "openai/gpt-4o-mini")
    pin = await store.get("s")
    assert (pin.model, pin.tier, pin.requests) == ("openai/gpt-4o-mini", "MEDIUM", 2)
    assert pin.last_used >= first.last_used
    escalated = await store.pin("s", "anthropic/claude-sonnet-4.6", "COMPLEX", "auto")
    assert escalated.requests == 3
    assert (await store.get("s")).model == "anthropic/claude-sonnet-4.6"


async def test_touch_and_set_model_without_a_pin_do_nothing(make):
    store = make()
    await store.touch("s")
    await store.set_model("s", "m")
    assert await store.get("s") is None


async def test_preferences_and_clear(make):
    store = make()
    assert await store.preference("a") is None
    for sid in ("a", "b"):
        await store.pin(sid, "m", "SIMPLE", "auto")
        await store.set_preference(sid, "eco")
    assert await store.preference("a") == "eco"
    await store.clear("a")
    assert await store.get("a") is None and await store.preference("a") is None
    assert await store.get("b") is not None and await store.preference("b") == "eco"
    await store.clear()
    assert await store.get("b") is None and await store.preference("b") is None


async def test_pins_and_preferences_expire_when_idle(make):
    store = make(ttl_seconds=0.8)
    await store.pin("s", "m", "SIMPLE", "auto")
    await store.set_preference("s", "eco")
    for _ in range(3):  # 1.5 s in all, but never idle for 0.8 s
        await asyncio.sleep(0.5)
        await store.touch("s")
        assert await store.preference("s") == "eco"
    assert await store.get("s") is not None
    await asyncio.sleep(1.2)
    assert await store.get("s") is None and await store.preference("s") is None


# --- only the Redis backend ---------------------------------------------------------------


async def test_what_one_process_sets_every_other_sees_at_once(redis_url):
    first, second = link_to(redis_url), link_to(redis_url)
    try:
        here, there = RedisSessions(first), RedisSessions(second)
        await here.pin("conv", "openai/gpt-4o", "COMPLEX", "auto")
        await there.touch("conv")
        assert (await here.get("conv")).requests == 2
        await here.set_preference("conv", "eco")
        assert await there.preference("conv") == "eco"
        await there.clear("conv")  # /model on the other process drops the pin everywhere
        assert await here.get("conv") is None and await here.preference("conv") is None
        assert await first.client.pttl("test:pin:conv") == -2  # gone, not just hidden
    finally:
        await first.aclose()
        await second.aclose()


async def test_redis_keys_carry_the_ttl(link):
    store = RedisSessions(link, ttl_seconds=60)
    await store.pin("s", "m", "SIMPLE", "auto")
    await store.set_preference("s", "eco")
    for key in ("test:pin:s", "test:pref:s"):
        assert 55_000 < await link.client.pttl(key) <= 60_000


async def test_server_down_routes_without_pins_and_says_so_for_model(own_redis, own_link,
                                                                     caplog):
    store = RedisSessions(own_link)
    await store.pin("s", "m", "SIMPLE", "auto")
    own_redis.kill()
    caplog.set_level(logging.WARNING, logger="clawrouter.redis")
    for _ in range(10):
        assert await store.get("s") is None
        assert (await store.pin("s", "m2", "MEDIUM", "auto")).model == "m2"  # not kept
        await store.touch("s")
        assert await store.preference("s") is None
    with pytest.raises(StateUnavailable, match="cannot be reached"):
        await store.set_preference("s", "eco")
    assert len([r for r in caplog.records if "without session pins" in r.getMessage()]) == 1
    own_redis.start()
    await asyncio.sleep(1.1)  # past the skip window: the next call asks the server again
    await store.set_preference("s", "eco")
    assert await store.preference("s") == "eco" and own_link.healthy
