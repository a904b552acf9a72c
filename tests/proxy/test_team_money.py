"""Team mode money: several proxies sharing one real Redis (``state.backend: redis``) in front
of the x402 test upstream whose payments the official SDK verifies and settles. One session
budget and one key budget for all of them, identical requests paid once, nothing signed
while Redis is down, and a dead dedup leader's payment never doubled."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import aiohttp
import pytest

from clawrouter_plugin.errors import BudgetExceeded
from clawrouter_plugin.keys.model import ApiKey
from tests.support import handlers as h
from tests.support.x402_upstream import CHAT_PATH

from .test_disconnects import paid_prompts, usage_records
from .test_limits import post
from .test_sigkill_journal import Serve

PAID = "deepseek/deepseek-chat"
SPENT = ("settled", "unconfirmed")


def ask(text: str, **extra) -> dict:
    return {"model": PAID, "messages": [{"role": "user", "content": text}], "max_tokens": 1000,
            **extra}


@pytest.fixture
def team(start, tmp_path):
    """``await team(n, redis_url, **config)``: n proxies (own data dirs) on one Redis."""
    async def _team(n: int, url: str, **overrides):
        return [await start(data_dir=tmp_path / f"proxy{i}",
                            state={"backend": "redis", "redisUrl": url}, **overrides)
                for i in range(n)]
    return _team


def reconcile(proxies, upstream) -> list[dict]:
    """Every settlement in the ledger has exactly one usage record, in one of the proxies'
    logs, that counts it; no record counts a payment the ledger does not have."""
    records = [record for proxy in proxies for record in usage_records(proxy)]
    spent = Counter(r["nonce"] for r in records if r.get("payment") in SPENT)
    assert all(count == 1 for count in spent.values()), spent
    assert set(spent) == {s.nonce for s in upstream.ledger.settlements}
    return records


async def test_64_concurrent_requests_in_a_strict_session_over_three_proxies(
        team, redis_url, x402_upstream, payer):
    """64 requests of one session with a $0.01 strict cap, spread over three processes, all
    at once; each is estimated below the $0.001 the upstream charges. Exactly ten are paid:
    the cap, never more across the processes, and not less either (estimates held below
    the price must not leave every payment claim refused)."""
    cap = 0.01
    proxies = await team(3, redis_url, maxCostPerRun=cap, maxCostPerRunMode="strict")
    x402_upstream.set_handler(CHAT_PATH, h.delayed(0.05))

    async def one(i: int) -> tuple[int, dict]:
        code, headers, raw = await post(proxies[i % 3], CHAT_PATH,
                                        json_body=ask(f"question {i}"),
                                        headers={"x-session-id": "team-run"})
        assert float(headers.get("x-clawrouter-estimate", 0)) < 0.001
        return code, json.loads(raw)

    results = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(64))), 60)
    codes = Counter(code for code, _ in results)
    assert codes == {200: 10, 429: 54}, codes
    assert x402_upstream.ledger.total_paid(payer) == 10_000  # the cap, to the cent
    assert x402_upstream.count(path=CHAT_PATH, paid=True) == 10  # none signed in vain
    for proxy in proxies:
        assert await proxy.services.spend.spent("team-run") == pytest.approx(cap)
    assert {body["error"]["code"] for code, body in results if code == 429} <= {
        "cost_cap_exceeded", "budget_exhausted"}
    reconcile(proxies, x402_upstream)


async def test_8_identical_concurrent_requests_over_three_proxies_pay_once(
        team, redis_url, x402_upstream, payer):
    proxies = await team(3, redis_url)
    x402_upstream.set_handler(CHAT_PATH, h.delayed(0.5))

    async def one(i: int) -> tuple[int, dict, bytes]:
        stream = i % 4 == 3  # two of them stream: the shared answer is replayed as SSE
        return await post(proxies[i % 3], CHAT_PATH, json_body=ask("the same question",
                                                                    stream=stream))

    results = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(8))), 30)
    assert [code for code, _, _ in results] == [200] * 8
    assert len(x402_upstream.ledger.settlements) == 1
    assert x402_upstream.ledger.total_paid(payer) == 1000
    assert x402_upstream.count(path=CHAT_PATH, paid=True) == 1
    shared = [headers.get("x-clawrouter-dedup") for _, headers, _ in results]
    # a streamed reply's headers leave before it is known who pays: only JSON ones say it
    assert shared.count("shared") in (5, 6)
    texts = set()
    for i, (_, _, raw) in enumerate(results):
        if i % 4 == 3:
            assert raw.rstrip().endswith(b"data: [DONE]")
            events = [json.loads(line[6:]) for line in raw.decode().splitlines()
                      if line.startswith("data: {")]
            texts.add("".join(choice["delta"].get("content") or "" for event in events
                              for choice in event.get("choices", [])))
        else:
            texts.add(json.loads(raw)["choices"][0]["message"]["content"])
    assert len(texts) == 1 and texts != {""}
    reconcile(proxies, x402_upstream)


async def test_a_key_daily_budget_holds_across_proxies_and_sessions(
        team, redis_url, x402_upstream, payer):
    key = ApiKey(id="key-ci", name="ci", daily_usd=0.003)
    proxies = await team(3, redis_url, maxCostPerRunMode="strict")
    answered, refused = 0, []
    for i in range(8):
        pipeline = proxies[i % 3].services.pipeline
        try:
            reply = await pipeline.chat(ask(f"daily {i}"), {"x-session-id": f"s{i}"},
                                        api_key=key)
            await reply.json()
            answered += 1
        except BudgetExceeded as exc:
            refused.append(exc)
    paid = x402_upstream.ledger.total_paid(payer)
    assert 1000 <= paid <= 3000 and answered == paid // 1000
    assert len(refused) == 8 - answered
    assert all(exc.status == 429 and "'ci'" in exc.message and "daily" in exc.message
               for exc in refused)
    # another key, and no key, are not limited by it
    other = ApiKey(id="key-other", name="other", daily_usd=0.003)
    reply = await proxies[0].services.pipeline.chat(ask("other key"), {}, api_key=other)
    await reply.json()
    assert x402_upstream.ledger.total_paid(payer) == paid + 1000


async def test_redis_killed_mid_load(team, own_redis, x402_upstream, payer):
    """Requests keep coming while Redis dies and comes back: while it is down they get a
    503 and nothing is signed; no payment is made twice or left without a record; after
    the restart every proxy pays again."""
    proxies = await team(3, own_redis.url, maxCostPerRun=1.0, maxCostPerRunMode="strict")
    x402_upstream.set_handler(CHAT_PATH, h.delayed(0.05))
    results: dict[int, tuple[int, dict, dict]] = {}

    async def one(i: int) -> None:
        code, headers, raw = await post(proxies[i % 3], CHAT_PATH, json_body=ask(f"load {i}"),
                                        headers={"x-session-id": f"load-{i % 4}"})
        results[i] = (code, headers, json.loads(raw))

    async def load(first: int, count: int) -> list[asyncio.Task]:
        tasks = []
        for i in range(first, first + count):
            tasks.append(asyncio.create_task(one(i)))
            await asyncio.sleep(0.01)
        return tasks

    tasks = await load(0, 12)
    await asyncio.sleep(0.05)
    own_redis.kill()
    tasks += await load(12, 12)
    await asyncio.wait_for(asyncio.gather(*tasks), 60)
    down = [i for i in range(12, 24) if results[i][0] == 503]
    assert len(down) >= 6, {i: results[i][0] for i in results}
    for i in down:
        code, headers, body = results[i]
        assert body["error"]["code"] == "state_unavailable" and headers["Retry-After"]
    assert {code for code, _, _ in results.values()} <= {200, 503}

    own_redis.start()
    after = await load(100, 6)
    await asyncio.wait_for(asyncio.gather(*after), 60)
    assert [results[i][0] for i in range(100, 106)] == [200] * 6
    assert all(proxy.services.redis.healthy for proxy in proxies)

    paid_bodies = paid_prompts(x402_upstream)
    assert all(count == 1 for count in paid_bodies.values()), paid_bodies  # never twice
    for i in down:  # a 503 was never paid
        assert json.dumps(ask(f"load {i}")["messages"]) not in paid_bodies
    answered = sum(1 for code, _, _ in results.values() if code == 200)
    assert len(x402_upstream.ledger.settlements) == answered
    reconcile(proxies, x402_upstream)


async def test_redis_down_images_and_forwarded_calls_sign_nothing(team, own_redis,
                                                                   x402_upstream):
    """Every paying route claims its payment before signing: with Redis gone an image and
    an embeddings call are 503 state_unavailable and the upstream sees no payment."""
    (proxy,) = await team(1, own_redis.url)
    x402_upstream.set_price("/v1/embeddings", "0.0004")
    own_redis.kill()
    code, headers, raw = await post(proxy, "/v1/embeddings", json_body={"input": "x"})
    assert code == 503 and json.loads(raw)["error"]["code"] == "state_unavailable"
    code, _, raw = await post(proxy, "/v1/images/generations",
                              json_body={"model": "dall-e-3", "prompt": "a kite"})
    assert code == 503 and json.loads(raw)["error"]["code"] == "state_unavailable"
    assert x402_upstream.count(paid=True) == 0 and not x402_upstream.ledger.settlements
    own_redis.start()
    code, _, _ = await post(proxy, "/v1/embeddings", json_body={"input": "x"})
    assert code == 200 and len(x402_upstream.ledger.settlements) == 1


async def test_redis_down_the_free_model_still_answers(team, own_redis, x402_upstream):
    """Nothing is signed for the free model, so no budget needs checking: with Redis gone it
    still answers (paid requests get the 503)."""
    (proxy,) = await team(1, own_redis.url, maxCostPerRun=1.0)
    own_redis.kill()
    free = {"model": "free", "messages": [{"role": "user", "content": "hello"}]}
    code, _, raw = await post(proxy, CHAT_PATH, json_body=free)
    assert code == 200 and json.loads(raw)["choices"][0]["message"]["content"]
    code, _, raw = await post(proxy, CHAT_PATH, json_body=ask("paid"))
    assert code == 503 and json.loads(raw)["error"]["code"] == "state_unavailable"
    assert x402_upstream.count(paid=True) == 0


def _team_serve(tmp_path, upstream, key, redis_url) -> Serve:
    """A real ``clawrouter serve`` process on the team's Redis (for SIGKILL)."""
    serve = Serve(tmp_path, upstream.url, key)
    (tmp_path / "openclaw.yaml").write_text(json.dumps({"plugins": [{"id": "clawrouter", "config": {
        "payment": {"rpcUrl": "http://127.0.0.1:9/"},
        "state": {"backend": "redis", "redisUrl": redis_url}}}]}))
    return serve


async def _send(url: str, body: dict) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session:
        async with session.post(url + CHAT_PATH, json=body) as resp:
            return resp.status, await resp.json(content_type=None)


@pytest.mark.parametrize("signed", [True, False])
async def test_a_dedup_leader_killed_mid_request_is_not_paid_twice(
        start, redis_url, x402_upstream, funded_wallet_key, payer, tmp_path, signed):
    """Proxy A (a real process) leads an identical request and is killed with SIGKILL;
    proxy B was waiting for A's answer. If A had signed (and the upstream settled): B does
    not pay again but answers 503 identical_request_pending. If A died before signing: B
    takes over and pays, once."""
    body = ask("one question, two proxies")
    stalled = asyncio.Event()
    if signed:  # A's paid call settles, then stalls
        async def settle_then_stall(call):
            if not stalled.is_set():
                stalled.set()
                await call.settle()
                await asyncio.sleep(60)
            return await h.chat_handler(call)

        x402_upstream.set_handler(CHAT_PATH, settle_then_stall)
    else:  # A's first, unpaid call stalls before the 402 that would let it sign
        serve = x402_upstream._serve

        async def stall_first_unpaid(call, header):
            if header is None and not stalled.is_set():
                stalled.set()
                await asyncio.sleep(60)
            return await serve(call, header)

        x402_upstream._serve = stall_first_unpaid
    (tmp_path / "a").mkdir()
    leader = _team_serve(tmp_path / "a", x402_upstream, funded_wallet_key, redis_url)
    await leader.start()
    waiter = await start(data_dir=tmp_path / "b", state={"backend": "redis",
                                                          "redisUrl": redis_url})
    led = asyncio.ensure_future(_send(leader.base_url, body))
    try:
        await asyncio.wait_for(stalled.wait(), 20)
        assert len(x402_upstream.ledger.settlements) == (1 if signed else 0)
        follower = asyncio.ensure_future(_send(waiter.base_url, body))
        await asyncio.sleep(0.5)
        assert not follower.done()  # waiting for the leader's answer
        await leader.kill()
        code, answer = await asyncio.wait_for(follower, 30)
    finally:
        led.cancel()
        await asyncio.gather(led, return_exceptions=True)
        if leader.proc is not None and leader.proc.returncode is None:
            await leader.kill()
    if signed:
        assert code == 503 and answer["error"]["code"] == "identical_request_pending"
        assert "may still settle" in answer["error"]["message"]
        assert len(x402_upstream.ledger.settlements) == 1
        assert x402_upstream.count(path=CHAT_PATH, paid=True) == 1
    else:
        assert code == 200 and answer["choices"][0]["message"]["content"]
        assert len(x402_upstream.ledger.settlements) == 1
        assert x402_upstream.ledger.total_paid(payer) == 1000
