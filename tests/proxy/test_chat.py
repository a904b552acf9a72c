"""The proxy's chat route driven by the official openai SDK and raw HTTP."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import openai
import pytest

from tests.support import handlers as h
from tests.support.x402_upstream import CHAT_PATH

from .conftest import sdk


def upstream_models(upstream) -> list[str]:
    """Models the upstream was asked for on paid chat calls, in order."""
    return [r.json()["model"] for r in upstream.requests
            if r.path == CHAT_PATH and r.paid and r.json()]


async def test_routed_completion_paid_once(proxy, x402_upstream, payer):
    client = sdk(proxy)
    raw = await client.chat.completions.with_raw_response.create(
        model="blockrun/auto", messages=[{"role": "user", "content": "What is the capital of France?"}])
    completion = raw.parse()
    assert completion.choices[0].message.content.startswith("Echo from ")
    assert raw.headers["x-clawrouter-tier"] == "SIMPLE"
    routed = raw.headers["x-clawrouter-model"]
    assert completion.model == routed
    assert x402_upstream.ledger.total_paid(payer) == 1000  # $0.001 in USDC units, exactly once
    assert x402_upstream.count(path=CHAT_PATH, paid=True) == 1


async def test_streaming_matches_non_streaming(proxy, x402_upstream):
    client = sdk(proxy)
    messages = [{"role": "user", "content": "Say something short about otters"}]
    stream = await client.chat.completions.create(model="auto", messages=messages, stream=True)
    parts = [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]
    plain = await client.chat.completions.create(
        model="auto", messages=messages, extra_headers={"Cache-Control": "no-cache"})
    assert "".join(parts) == plain.choices[0].message.content
    assert len(parts) > 3  # passed through chunk by chunk, not as one blob


async def test_models_list(proxy):
    listed = {m.id async for m in sdk(proxy).models.list()}
    assert {"auto", "eco", "premium", "free", "agentic"} <= listed
    assert {"br-sonnet", "nvidia/gpt-oss-120b", "google/nano-banana"} <= listed


async def test_explicit_alias_goes_to_target(proxy, x402_upstream):
    await sdk(proxy).chat.completions.create(
        model="blockrun/br-haiku", messages=[{"role": "user", "content": "hi"}])
    assert upstream_models(x402_upstream) == ["anthropic/claude-haiku-4.5"]


async def test_response_cache_hit_bypass_and_stats(proxy, x402_upstream, payer):
    client = sdk(proxy)
    messages = [{"role": "user", "content": "[Mon 2024-01-15 10:30 UTC] What is 2+2?"}]
    first = await client.chat.completions.with_raw_response.create(model="auto", messages=messages)
    again = [{"role": "user", "content": "[Tue 2024-01-16 11:00 UTC] What is 2+2?"}]
    second = await client.chat.completions.with_raw_response.create(model="auto", messages=again)
    assert first.headers["x-clawrouter-cache"] == "MISS"
    assert second.headers["x-clawrouter-cache"] == "HIT"
    assert second.parse().choices[0].message.content == first.parse().choices[0].message.content
    assert x402_upstream.count(path=CHAT_PATH, paid=True) == 1
    bypass = await client.chat.completions.with_raw_response.create(
        model="auto", messages=messages, extra_headers={"Cache-Control": "no-cache"})
    assert bypass.headers["x-clawrouter-cache"] == "MISS"
    await client.chat.completions.create(model="auto", messages=messages, extra_body={"cache": False})
    assert x402_upstream.count(path=CHAT_PATH, paid=True) == 3
    sent = json.loads(x402_upstream.requests[-1].body)  # our cache switch stays with us
    assert "cache" not in sent and sent["stream"] is False and sent["messages"] == messages
    async with aiohttp.ClientSession() as session:
        async with session.get(proxy.base_url + "/cache") as resp:
            stats = await resp.json()
    assert stats["hits"] == 1 and stats["maxSize"] == 200 and stats["size"] >= 1
    assert x402_upstream.ledger.total_paid(payer) == 3000


async def test_streaming_request_replays_cache_hit_as_sse(proxy, x402_upstream):
    client = sdk(proxy)
    messages = [{"role": "user", "content": "Name a colour"}]
    plain = await client.chat.completions.create(model="auto", messages=messages)
    stream = await client.chat.completions.create(model="auto", messages=messages, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == plain.choices[0].message.content
    assert x402_upstream.count(path=CHAT_PATH, paid=True) == 1


async def test_cache_expiry_and_persistence(start, x402_upstream, tmp_path):
    data = tmp_path / "persist"
    first = await start(data_dir=data, cache={"ttlSeconds": 2.0})
    messages = [{"role": "user", "content": "Ping?"}]
    await sdk(first).chat.completions.create(model="auto", messages=messages)
    await first.close()
    second = await start(data_dir=data, cache={"ttlSeconds": 2.0})
    raw = await sdk(second).chat.completions.with_raw_response.create(model="auto", messages=messages)
    assert raw.headers["x-clawrouter-cache"] == "HIT"  # survived the restart
    await asyncio.sleep(2.1)
    raw = await sdk(second).chat.completions.with_raw_response.create(model="auto", messages=messages)
    assert raw.headers["x-clawrouter-cache"] == "MISS"  # expired
    assert x402_upstream.count(path=CHAT_PATH, paid=True) == 2


async def test_concurrent_identical_requests_share_one_payment(proxy, x402_upstream, payer):
    x402_upstream.set_handler(CHAT_PATH, h.delayed(0.3))
    client = sdk(proxy)
    messages = [{"role": "user", "content": "Tell me one fact about Mars"}]
    raws = await asyncio.gather(*[
        client.chat.completions.with_raw_response.create(model="auto", messages=messages)
        for _ in range(6)])
    results = [raw.parse() for raw in raws]
    assert len({r.choices[0].message.content for r in results}) == 1
    costs = sorted(raw.headers["x-clawrouter-cost"] for raw in raws)
    assert costs == ["0.000000"] * 5 + ["0.001000"]  # only the leader paid
    assert x402_upstream.count(path=CHAT_PATH, paid=True) == 1
    assert x402_upstream.ledger.total_paid(payer) == 1000


async def test_session_pins_model_then_expires(start, x402_upstream):
    proxy = await start(sessions={"ttlSeconds": 1.5})
    client = sdk(proxy)
    hard = ("Design a distributed rate limiter for a multi-region API gateway: compare token "
            "bucket and sliding window, explain consistency trade-offs and failure modes.")
    first = await client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": hard}],
        extra_headers={"x-session-id": "conv-1"})
    pinned = first.headers["x-clawrouter-model"]
    follow = [{"role": "user", "content": hard}, {"role": "assistant", "content": "..."},
              {"role": "user", "content": "thanks!"}]
    again = await client.chat.completions.with_raw_response.create(
        model="auto", messages=follow, extra_headers={"x-session-id": "conv-1"})
    assert again.headers["x-clawrouter-model"] == pinned
    assert again.headers["x-clawrouter-tier"] == first.headers["x-clawrouter-tier"]
    other = await client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "thanks!"}],
        extra_headers={"x-session-id": "conv-2"})
    assert other.headers["x-clawrouter-tier"] == "SIMPLE"
    await asyncio.sleep(1.6)
    later = follow + [{"role": "assistant", "content": "..."}, {"role": "user", "content": "ok"}]
    expired = await client.chat.completions.with_raw_response.create(
        model="auto", messages=later, extra_headers={"x-session-id": "conv-1"})
    fresh = proxy.services.router.route({"messages": later}, "auto")
    assert fresh.tier != first.headers["x-clawrouter-tier"]
    assert expired.headers["x-clawrouter-tier"] == fresh.tier  # pin forgotten: routed afresh


async def test_fallback_on_503_429_and_timeout_in_chain_order(start, x402_upstream):
    """503 and 429 were not charged: the next models are tried. The paid request to the third
    timed out and may still be settled: only the free model may follow (no second payment)."""
    proxy = await start(upstream={"attemptTimeoutSeconds": 0.5})
    decision = proxy.services.router.route({"messages": [{"role": "user", "content": "hello"}]}, "auto")
    chain = list(decision.chain)
    x402_upstream.set_handler(CHAT_PATH, h.by_model({
        chain[0]: h.status(503), chain[1]: h.status(429), chain[2]: h.delayed(2.0)}))
    x402_upstream.requests.clear()
    raw = await sdk(proxy).chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "hello"}],
        extra_headers={"Cache-Control": "no-cache"})
    assert raw.headers["x-clawrouter-model"] == chain[-1] == proxy.services.catalog.free_model
    assert raw.headers["x-clawrouter-fallbacks"] == "3"
    tried = [r.json()["model"] for r in x402_upstream.requests if r.path == CHAT_PATH and r.paid]
    assert tried == chain[:3]


async def test_401_is_not_retried(proxy, x402_upstream):
    x402_upstream.set_handler(CHAT_PATH, h.status(401))
    with pytest.raises(openai.AuthenticationError):
        await sdk(proxy).chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "hello"}])
    assert x402_upstream.count(path=CHAT_PATH, paid=True) == 1


async def test_mid_stream_drop_ends_with_error_and_done(proxy, x402_upstream):
    x402_upstream.set_handler(CHAT_PATH, h.drop_mid_stream(chunks_before=2))
    body = {"model": "auto", "stream": True, "messages": [{"role": "user", "content": "count"}]}
    async with aiohttp.ClientSession() as session:
        async with session.post(proxy.base_url + "/v1/chat/completions", json=body) as resp:
            assert resp.status == 200
            text = (await asyncio.wait_for(resp.read(), 10)).decode()
    events = [line[6:] for line in text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    assert "error" in json.loads(events[-2])
    assert any("choices" in json.loads(e) for e in events[:-2])


async def test_heartbeats_while_waiting(proxy, x402_upstream):
    x402_upstream.set_handler(CHAT_PATH, h.delayed(2.5))
    body = {"model": "auto", "stream": True, "messages": [{"role": "user", "content": "slow"}]}
    async with aiohttp.ClientSession() as session:
        async with session.post(proxy.base_url + "/v1/chat/completions", json=body) as resp:
            text = (await asyncio.wait_for(resp.read(), 10)).decode()
    assert ": heartbeat" in text
    assert text.rstrip().endswith("data: [DONE]")


@pytest.mark.parametrize("usage", [{"prompt_tokens": "lots", "completion_tokens": None},
                                   {"prompt_tokens": -5, "completion_tokens": 1e300},
                                   ["not", "an", "object"], "12"])
async def test_odd_usage_from_the_upstream_still_answers(proxy, x402_upstream, usage):
    """The answer was paid for: unreadable token counts fall back to the estimate."""
    completion = {"id": "c1", "object": "chat.completion", "model": "m", "usage": usage,
                  "choices": [{"index": 0, "finish_reason": "stop",
                               "message": {"role": "assistant", "content": "fine"}}]}
    x402_upstream.set_handler(CHAT_PATH, h.raw(200, body=completion,
                                               headers={"content-type": "application/json"}))
    messages = [{"role": "user", "content": f"odd usage {usage!r}"}]
    reply = await sdk(proxy).chat.completions.create(model="auto", messages=messages)
    assert reply.choices[0].message.content == "fine"
    again = await sdk(proxy).chat.completions.with_raw_response.create(
        model="auto", messages=messages)
    assert again.headers["x-clawrouter-cache"] == "HIT"
    assert again.parse().choices[0].message.content == "fine"
    proxy.services.usage.flush()
    [log] = (proxy.services.data_dir / "logs").glob("usage-*.jsonl")
    paid, hit = (json.loads(line) for line in log.read_text().splitlines()[-2:])
    assert 0 < paid["inputTokens"] < 10**6 and 0 < paid["outputTokens"] < 10**6
    assert hit["cacheHit"] and hit["inputTokens"] == hit["outputTokens"] == 0
