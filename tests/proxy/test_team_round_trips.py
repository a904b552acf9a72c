"""How many times a routed request waits for Redis (team mode): the latency the Redis backend
adds is one loopback round trip per command, so these counts are the budget. Counted by the
server itself (``total_reads_processed``: one read per command a client sends, whatever a
script then does inside): a change that adds a round trip to the request path fails here."""

from __future__ import annotations

import redis.asyncio

from clawrouter_plugin.state.sessions import header_session_id

from .conftest import sdk
from .test_team_state import FREE


async def server_reads(client: redis.asyncio.Redis) -> int:
    """Commands read by the server since the last reset, this INFO not counted."""
    return int((await client.info("stats"))["total_reads_processed"]) - 1


async def round_trips(handle, client: redis.asyncio.Redis, send) -> int:
    """The commands ``await send()`` makes ``handle``'s process send to Redis, its usage
    totals (sent in a batch after the answer) not counted."""
    stats = handle.services.stats
    await stats.flush()  # nothing gathered before this request is sent during it
    await client.config_resetstat()
    await send()
    await handle.services.redis.pending.drain()  # the closing script, sent without waiting
    await stats.flush()  # its own batch: one round trip, now or already in the background
    return await server_reads(client) - 1


async def ask(handle, content: str, model: str, session: str) -> dict:
    raw = await sdk(handle).chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": content}],
        extra_headers={"x-session-id": session})
    return raw.headers


async def test_a_routed_request_makes_two_round_trips(start, own_redis):
    """One before the upstream (cache, pin, exclusions, dedup lock), one after (cache store,
    pin update, lock release)."""
    proxy = await start(state={"backend": "redis", "redisUrl": own_redis.url})
    client = redis.asyncio.Redis.from_url(own_redis.url)
    try:
        await ask(proxy, "warm up: connections and scripts", "free", "warm")
        headers: dict = {}

        async def send() -> None:
            headers.update(await ask(proxy, "What is a haiku?", "free", "conv"))

        assert await round_trips(proxy, client, send) == 2
        assert headers["x-clawrouter-cache"] == "MISS"
        assert headers["x-clawrouter-model"] == FREE
        pin = await proxy.services.sessions.get(header_session_id("conv"))
        assert pin is not None and pin.model == FREE  # the closing script pinned it
        assert not await client.keys("clawrouter:dedup:*:lock")  # and released the lock

        async def again() -> None:
            headers.update(await ask(proxy, "What is a haiku?", "free", "conv"))

        assert await round_trips(proxy, client, again) == 1  # a hit: the opening script only
        assert headers["x-clawrouter-cache"] == "HIT"
    finally:
        await client.aclose()


async def test_a_paid_request_adds_its_money_steps(start, own_redis, payer, x402_upstream):
    """A paid request (its price known from an earlier one) adds three round trips, each a
    money guarantee: the budget claim before it signs (state/redis_spend.py), the paying
    marker that keeps a dedup waiter from paying again (state/redis_dedup.py), and the
    settlement of what it cost."""
    proxy = await start(state={"backend": "redis", "redisUrl": own_redis.url})
    client = redis.asyncio.Redis.from_url(own_redis.url)
    model = "openai/gpt-4o-mini"
    try:
        await ask(proxy, "warm up: learn the price", model, "warm")

        async def send() -> None:
            headers = await ask(proxy, "What is a sonnet?", model, "conv")
            assert headers["x-clawrouter-cost"] == "0.001000"

        assert await round_trips(proxy, client, send) == 5
        assert x402_upstream.ledger.total_paid(payer) == 2000
    finally:
        await client.aclose()
