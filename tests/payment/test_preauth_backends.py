"""The pre-authorisation cache on both backends (what comes back is what was put, down to the
entries the signer echoes), then the Redis backend's own promises: a 402 learnt by one process
serves every other, and an unreachable server is a miss."""

from __future__ import annotations

import asyncio

import pytest

from clawrouter_plugin.config import StateConfig
from clawrouter_plugin.payment.preauth import PreAuthCache
from clawrouter_plugin.payment.redis_preauth import RedisPreAuth
from clawrouter_plugin.payment.wire import REQUIRED_HEADER, encode_header, parse_payment_required
from clawrouter_plugin.state.redis_conn import open_link

USDC = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"


def required(amount: str = "1000"):
    """A parsed v2 402 with two usable entries and one malformed one."""
    entry = {"scheme": "exact", "network": "eip155:8453", "asset": USDC, "amount": amount,
             "payTo": "0x" + "11" * 20, "maxTimeoutSeconds": 300,
             "extra": {"name": "USD Coin", "version": "2"}}
    data = {"x402Version": 2, "accepts": [entry, {**entry, "amount": "2000"}, {"scheme": 1}],
            "resource": {"url": "https://api.example/v1/chat/completions"},
            "extensions": {"bazaar": {"x": 1}}}
    return parse_payment_required({REQUIRED_HEADER: encode_header(data)}, b"")


def link_to(url: str):
    return open_link(StateConfig(backend="redis", redis_url=url, key_prefix="test",
                                 timeout_seconds=1.0))


@pytest.fixture(params=["local", "redis"])
async def make(request):
    """``make(ttl_seconds=...)``: a pre-auth store of the backend under test."""
    if request.param == "local":
        yield lambda **kw: PreAuthCache(**kw)
        return
    link = link_to(request.getfixturevalue("redis_url"))
    yield lambda **kw: RedisPreAuth(link, **kw)
    await link.aclose()


async def test_put_get_drop(make):
    store = make()
    key = ("/v1/chat/completions", "openai/gpt-4o")
    assert await store.get(key) is None
    paid = required()
    assert len(paid.accepts) == 2 and len(paid.malformed) == 1
    await store.put(key, paid, paid.accepts[1])
    assert await store.get(key) == (paid, paid.accepts[1])
    assert await store.get(("/v1/chat/completions", None)) is None  # another price key
    await store.drop(key)
    assert await store.get(key) is None


async def test_entries_expire(make):
    store = make(ttl_seconds=0.3)
    paid = required()
    await store.put(("/p", None), paid, paid.accepts[0])
    assert await store.get(("/p", None)) is not None
    await asyncio.sleep(0.5)
    assert await store.get(("/p", None)) is None


async def test_a_402_learnt_by_one_process_serves_another(redis_url):
    first, second = link_to(redis_url), link_to(redis_url)
    try:
        paid = required("1234")
        await RedisPreAuth(first).put(("/p", "k"), paid, paid.accepts[0])
        assert await RedisPreAuth(second).get(("/p", "k")) == (paid, paid.accepts[0])
        await RedisPreAuth(second).drop(("/p", "k"))  # a new 402 there: gone here too
        assert await RedisPreAuth(first).get(("/p", "k")) is None
    finally:
        await first.aclose()
        await second.aclose()


async def test_an_unreadable_entry_is_a_miss(redis_url):
    link = link_to(redis_url)
    try:
        store = RedisPreAuth(link)
        paid = required()
        await store.put(("/p", None), paid, paid.accepts[0])
        (key,) = await link.client.keys("test:preauth:*")
        tampered = (await link.client.get(key)).replace(b'"payTo":"0x', b'"payTo":"zz')
        await link.client.set(key, tampered)  # the parser checks the entry again
        assert await RedisPreAuth(link).get(("/p", None)) is None  # another process reads it
    finally:
        await link.aclose()


async def test_server_down_is_a_miss(own_redis):
    link = link_to(own_redis.url)
    try:
        store = RedisPreAuth(link)
        paid = required()
        await store.put(("/p", None), paid, paid.accepts[0])
        own_redis.kill()
        assert await RedisPreAuth(link).get(("/p", None)) is None  # another process: a miss
        await store.put(("/p", None), paid, paid.accepts[0])  # skipped, no error
        await store.drop(("/p", None))
        assert link.healthy is False
    finally:
        await link.aclose()


async def test_a_process_reads_its_own_entry_without_a_round_trip(own_redis):
    link = link_to(own_redis.url)
    try:
        store, paid = RedisPreAuth(link), required()
        await store.put(("/p", None), paid, paid.accepts[0])
        assert await RedisPreAuth(link).get(("/p", None)) is not None  # shared through Redis
        own_redis.kill()
        assert await store.get(("/p", None)) == (paid, paid.accepts[0])  # its near copy
        assert link.healthy is True  # no command was sent
        await store.drop(("/p", None))
        assert await store.get(("/p", None)) is None
    finally:
        await link.aclose()


async def test_a_miss_is_remembered_briefly_without_a_round_trip(own_redis):
    """A price no process has learnt (a free model never gets a 402) costs one round trip per
    ``miss_seconds``, not one per request; a price learnt meanwhile by another process is
    seen once that has passed."""
    link, other = link_to(own_redis.url), link_to(own_redis.url)
    try:
        store, paid = RedisPreAuth(link, miss_seconds=0.5), required()
        assert await store.get(("/p", "free")) is None
        await RedisPreAuth(other).put(("/p", "free"), paid, paid.accepts[0])
        assert await store.get(("/p", "free")) is None  # the remembered miss: not asked
        await asyncio.sleep(0.6)
        assert await store.get(("/p", "free")) == (paid, paid.accepts[0])
        assert await store.get(("/p", "other")) is None
        own_redis.kill()
        assert await store.get(("/p", "other")) is None
        assert link.healthy is True  # no command was sent
        await store.put(("/p", "other"), paid, paid.accepts[0])  # its own put: seen at once
        assert await store.get(("/p", "other")) == (paid, paid.accepts[0])
    finally:
        await link.aclose()
        await other.aclose()
