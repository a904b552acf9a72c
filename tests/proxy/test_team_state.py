"""Two proxies (two Services) in one test process sharing one real Redis, in front of the x402
test upstream: a response cached through one is a hit on the other, a pin, a /model choice and
an /exclude change made through one steer the other, and a Redis that dies costs cache hits,
never answers; when it is back, so is sharing."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
import redis.asyncio

from clawrouter_plugin.state.sessions import header_session_id
from commands import exclude, model
from tests.host.services import ctx
from tests.support.redis_server import RedisServer
from tests.support.x402_upstream import CHAT_PATH

from .conftest import sdk

FREE = "nvidia/gpt-oss-120b"  # asks no payment: answers while budgets cannot be checked
HARD = ("Design a distributed rate limiter for a multi-region API gateway: compare token "
        "bucket and sliding window, explain consistency trade-offs and failure modes.")


@pytest.fixture
def pair(start, tmp_path):
    """``await pair(url)``: two proxies with their own data directories on one Redis."""

    async def _pair(url: str, **overrides):
        state = {"backend": "redis", "redisUrl": url, "timeoutSeconds": 1.0}
        return [await start(data_dir=tmp_path / name, state=state, **overrides)
                for name in ("a", "b")]

    return _pair


async def ask(handle, content: str, *, model_name: str = "auto", session: str | None = None,
              **extra):
    """One chat completion through ``handle``: (headers, completion)."""
    raw = await sdk(handle).chat.completions.with_raw_response.create(
        model=model_name, messages=[{"role": "user", "content": content}],
        extra_headers={"x-session-id": session} if session else None, **extra)
    return raw.headers, raw.parse()


async def health(handle) -> dict:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
        async with session.get(handle.base_url + "/health") as resp:
            assert resp.status == 200
            return await resp.json()


async def test_a_response_cached_by_one_proxy_is_a_hit_on_the_other(pair, redis_url,
                                                                      x402_upstream, payer):
    a, b = await pair(redis_url)
    first_headers, first = await ask(a, "What is the capital of France?")
    assert first_headers["x-clawrouter-cache"] == "MISS"
    headers, again = await ask(b, "What is the capital of France?")
    assert headers["x-clawrouter-cache"] == "HIT"
    assert again.choices[0].message.content == first.choices[0].message.content
    assert x402_upstream.count(path=CHAT_PATH, paid=True) == 1
    assert x402_upstream.ledger.total_paid(payer) == 1000  # paid once, for both
    assert (await b.services.cache.stats())["hits"] == 1


async def test_a_pin_made_through_one_proxy_holds_on_the_other(pair, redis_url):
    a, b = await pair(redis_url)
    first, _ = await ask(a, HARD, session="conv-1")
    assert first["x-clawrouter-tier"] != "SIMPLE"
    pinned, _ = await ask(b, "thanks!", session="conv-1")
    assert pinned["x-clawrouter-model"] == first["x-clawrouter-model"]
    assert pinned["x-clawrouter-tier"] == first["x-clawrouter-tier"]
    unpinned, _ = await ask(b, "thanks!", session="conv-2",  # the same words, no pin
                            extra_body={"cache": False})
    assert unpinned["x-clawrouter-tier"] == "SIMPLE"
    assert (await a.services.sessions.get("conv-1")).requests == 2


async def test_model_choice_through_one_proxy_is_seen_by_the_other(pair, redis_url):
    a, b = await pair(redis_url)
    await ask(a, HARD, session="conv")
    reply = await model.command(a.services).handler(ctx("eco", session_id="conv"))
    assert not reply.is_error, reply.text
    sid = header_session_id("conv")
    assert await b.services.sessions.preference(sid) == "eco"
    assert await b.services.sessions.get(sid) is None  # the old pin is gone everywhere


async def test_an_exclusion_added_on_one_proxy_is_honoured_by_the_other(pair, redis_url,
                                                                       x402_upstream):
    a, b = await pair(redis_url)
    question = "What is the capital of France?"  # one session each: pins are shared too
    before, _ = await ask(b, question, session="x0", extra_body={"cache": False})
    routed = before["x-clawrouter-model"]
    reply = await exclude.command(a.services).handler(ctx(f"add {routed}"))
    assert not reply.is_error, reply.text
    x402_upstream.requests.clear()
    rerouted = b.services.pipeline.rerouted
    after, _ = await ask(b, question, session="x1", extra_body={"cache": False})
    assert after["x-clawrouter-model"] != routed
    assert routed not in [r.json()["model"] for r in x402_upstream.requests if r.json()]
    assert b.services.pipeline.rerouted == rerouted + 1  # b routed early with its old list
    await exclude.command(b.services).handler(ctx(f"remove {routed}"))
    again, _ = await ask(a, question, session="x2", extra_body={"cache": False})
    assert again["x-clawrouter-model"] == routed


async def test_a_price_learnt_by_one_proxy_lets_the_other_pay_at_once(pair, redis_url,
                                                                       x402_upstream, payer):
    a, b = await pair(redis_url)
    await ask(a, "Name a river", model_name="openai/gpt-4o-mini")
    assert x402_upstream.count(path=CHAT_PATH, paid=False) == 1  # the 402 that taught it
    await ask(b, "Name a lake", model_name="openai/gpt-4o-mini")
    assert x402_upstream.count(path=CHAT_PATH, paid=False) == 1  # b pre-signed: no 402
    assert x402_upstream.count(path=CHAT_PATH, paid=True) == 2
    assert x402_upstream.ledger.total_paid(payer) == 2000  # each request paid once


async def test_redis_killed_is_a_miss_then_sharing_comes_back(pair, x402_upstream):
    secret = "team-s3cret-pw"
    server = RedisServer(password=secret)
    server.start()
    try:
        a, b = await pair(server.url)
        assert (await health(a))["redis"]["connected"] is True
        await ask(a, "Name a colour", model_name=FREE)
        server.kill()
        started = time.monotonic()
        headers, answer = await ask(b, "Name a colour", model_name=FREE)
        assert headers["x-clawrouter-cache"] == "MISS"  # answered by the upstream
        assert answer.choices[0].message.content.startswith("Echo from ")
        for _ in range(5):  # later requests do not wait on the dead server
            await ask(b, "Name a colour", model_name=FREE)
        assert time.monotonic() - started < 15
        down = await health(b)
        assert down["status"] == "degraded" and down["redis"]["connected"] is False
        assert down["redis"]["error"] and secret not in str(down)
        assert "***@127.0.0.1" in down["redis"]["url"]
        for command, args in ((exclude, "add grok"), (model, "eco")):  # refused, in words
            reply = await command.command(b.services).handler(ctx(args, session_id="conv"))
            assert reply.is_error and "cannot be reached" in reply.text, reply.text
        server.start()  # back, empty (no persistence)
        assert (await health(b))["status"] == "ok"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            await ask(a, "Name a shape", model_name=FREE)
            if (await b.services.cache.stats())["size"] == 1:
                break
            await asyncio.sleep(0.3)
        headers, _ = await ask(b, "Name a shape", model_name=FREE)
        assert headers["x-clawrouter-cache"] == "HIT"
        assert (await health(a))["redis"] == {"backend": "redis", "url": server.url.replace(
            f":{secret}@", "***@"), "connected": True}
    finally:
        server.close()


async def test_the_backend_is_chosen_once_at_start(start, tmp_path, redis_url):
    from clawrouter_plugin.state.cache import LocalCache
    from clawrouter_plugin.state.redis_cache import RedisCache
    from clawrouter_plugin.state.redis_exclusions import RedisExclusions
    from clawrouter_plugin.state.redis_sessions import RedisSessions

    local = await start(data_dir=tmp_path / "local")
    assert local.services.redis is None and isinstance(local.services.cache, LocalCache)
    assert "redis" not in await health(local)
    team = await start(data_dir=tmp_path / "team", state={"backend": "redis",
                                                          "redisUrl": redis_url})
    services = team.services
    assert isinstance(services.cache, RedisCache)
    assert isinstance(services.sessions, RedisSessions)
    assert isinstance(services.exclusions, RedisExclusions)
    assert services.redis is not None and await services.redis.ping()
    observer = redis.asyncio.Redis.from_url(redis_url)
    try:
        assert len(await observer.client_list()) == 2  # the proxy's connection and ours
        await team.close()  # Services.aclose closes the link
        deadline = time.monotonic() + 5
        while len(await observer.client_list()) > 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert len(await observer.client_list()) == 1
    finally:
        await observer.aclose()
