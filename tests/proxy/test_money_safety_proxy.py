"""Money safety through the real proxy: one session's budget under concurrency, no second
payment for one request after a payment that may have settled, budgets on forwarded routes.

Every payment is verified and settled by the official x402 SDK in the test upstream; the
ledger is the truth about what left the wallet.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.support import handlers as h
from tests.support.x402_upstream import CHAT_PATH, IMAGE_PATH

from .conftest import sdk
from .test_limits import post

FREE = "nvidia/gpt-oss-120b"


def paid_models(upstream) -> list[str]:
    return [r.json()["model"] for r in upstream.requests if r.path == CHAT_PATH and r.paid]


async def test_concurrent_requests_of_one_session_stay_within_its_budget(start, x402_upstream,
                                                                          payer):
    """Each request's estimate is tiny, the upstream charges $0.001: six concurrent requests
    of one session under a $0.0025 budget may pay for two, never more."""
    proxy = await start(maxCostPerRun=0.0025, maxCostPerRunMode="strict")
    x402_upstream.set_handler(CHAT_PATH, h.delayed(0.2))

    async def ask(index: int) -> int:
        body = {"model": "blockrun/deepseek", "max_tokens": 10,
                "messages": [{"role": "user", "content": f"question {index}"}]}
        code, _, _ = await post(proxy, "/v1/chat/completions", json_body=body,
                                headers={"x-session-id": "s"})
        return code

    codes = await asyncio.wait_for(asyncio.gather(*(ask(i) for i in range(6))), 20)
    assert sorted(codes) == [200, 200] + [429] * 4
    assert x402_upstream.ledger.total_paid(payer) == 2000
    assert await proxy.services.spend.spent("s") == pytest.approx(0.002)
    assert x402_upstream.count(path=CHAT_PATH, paid=True) == 2  # nothing else was signed


async def test_concurrent_estimates_below_the_price_do_not_starve_the_budget(
        start, x402_upstream, payer):
    """Estimates ($0.000422) below what the upstream charges at least ($0.001): sixteen
    concurrent requests of one $0.005 session must not hold so many estimates that no
    payment fits any more. Each holds at least the minimum charge, so exactly five are
    admitted, and all five are paid."""
    proxy = await start(maxCostPerRun=0.005, maxCostPerRunMode="strict")
    serve = x402_upstream._serve

    async def slow_402(call, header):  # every request has reserved before the first 402
        if header is None:
            await asyncio.sleep(0.3)
        return await serve(call, header)

    x402_upstream._serve = slow_402

    async def ask(index: int) -> int:
        body = {"model": "deepseek/deepseek-chat", "max_tokens": 1000,
                "messages": [{"role": "user", "content": f"question {index}"}]}
        code, headers, _ = await post(proxy, "/v1/chat/completions", json_body=body,
                                      headers={"x-session-id": "s"})
        assert code != 200 or headers["x-clawrouter-estimate"] == "0.000422"
        return code

    codes = await asyncio.wait_for(asyncio.gather(*(ask(i) for i in range(16))), 20)
    assert sorted(codes) == [200] * 5 + [429] * 11
    assert x402_upstream.ledger.total_paid(payer) == 5000
    assert x402_upstream.count(path=CHAT_PATH, paid=True) == 5


async def test_connection_lost_after_paying_moves_only_to_the_free_model(start, x402_upstream,
                                                                         payer):
    proxy = await start()
    messages = [{"role": "user", "content": "hello"}]
    chain = proxy.services.router.route({"messages": messages}, "auto").chain
    x402_upstream.set_handler(CHAT_PATH, h.by_model({chain[0]: h.settle_then_drop()}))
    raw = await sdk(proxy).chat.completions.with_raw_response.create(
        model="auto", messages=messages, extra_headers={"x-session-id": "s"})
    assert raw.headers["x-clawrouter-model"] == FREE
    assert paid_models(x402_upstream) == [chain[0]]
    assert x402_upstream.ledger.total_paid(payer) == 1000  # paid once, not once per model
    assert await proxy.services.spend.spent("s") == pytest.approx(0.001)  # counted: it may be paid


async def test_charged_answer_that_fails_is_not_paid_again_elsewhere(start, x402_upstream,
                                                                     payer):
    """The first model was paid (receipt and all) but answered garbage: the chain goes on
    with the free model only."""
    proxy = await start()
    messages = [{"role": "user", "content": "hello there"}]
    chain = proxy.services.router.route({"messages": messages}, "auto").chain
    x402_upstream.set_handler(CHAT_PATH, h.by_model({chain[0]: h.raw(200, body=b"<html>")}))
    raw = await sdk(proxy).chat.completions.with_raw_response.create(
        model="auto", messages=messages)
    assert raw.headers["x-clawrouter-model"] == FREE
    assert paid_models(x402_upstream) == [chain[0]]
    assert x402_upstream.ledger.total_paid(payer) == 1000


async def test_without_the_free_model_an_unconfirmed_payment_ends_the_request(start,
                                                                             x402_upstream,
                                                                             payer):
    """A request with tools has no free model to fall back to: three paid models are left,
    none is tried, and the error says the payment may have been settled."""
    proxy = await start()
    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}
    chain = proxy.services.router.route(body, "auto").chain
    assert len(chain) > 1 and FREE not in chain
    x402_upstream.set_handler(CHAT_PATH, h.by_model({chain[0]: h.settle_then_drop()}))
    code, _, raw = await post(proxy, "/v1/chat/completions", json_body=body,
                              headers={"x-session-id": "s"})
    assert code == 502
    error = json.loads(raw)["error"]
    assert error["code"] == "payment_unconfirmed" and "may have been settled" in error["message"]
    assert paid_models(x402_upstream) == [chain[0]]
    assert x402_upstream.ledger.total_paid(payer) == 1000
    assert await proxy.services.spend.spent("s") == pytest.approx(0.001)


async def test_forwarded_routes_are_held_to_the_session_budget(start, x402_upstream, payer):
    proxy = await start(maxCostPerRun=0.001, maxCostPerRunMode="strict")
    x402_upstream.set_price("/v1/embeddings", "0.0004")
    codes = []
    for index in range(4):
        code, headers, _ = await post(proxy, "/v1/embeddings",
                                      json_body={"input": f"text {index}", "model": "e"},
                                      headers={"x-session-id": "s"})
        codes.append(code)
    assert codes == [200, 200, 429, 429]
    assert headers["X-ClawRouter-Cost-Cap-Exceeded"] == "1"
    assert x402_upstream.ledger.total_paid(payer) == 800
    assert await proxy.services.spend.spent("s") == pytest.approx(0.0008)
    # another session has its own budget; the user field names the session too
    code, _, _ = await post(proxy, "/v1/embeddings",
                            json_body={"input": "x", "model": "e", "user": "other"})
    assert code == 200 and await proxy.services.spend.spent("other") == pytest.approx(0.0004)


async def test_forwarded_concurrent_requests_stay_within_the_budget(start, x402_upstream,
                                                                    payer):
    proxy = await start(maxCostPerRun=0.001, maxCostPerRunMode="strict")
    x402_upstream.set_price("/v1/embeddings", "0.0004")
    x402_upstream.set_handler("/v1/embeddings", h.delayed(0.2, h.generic_handler))
    codes = await asyncio.wait_for(asyncio.gather(*(
        post(proxy, "/v1/embeddings", json_body={"input": str(i)}, headers={"x-session-id": "s"})
        for i in range(5))), 20)
    assert sorted(code for code, _, _ in codes) == [200, 200, 429, 429, 429]
    assert x402_upstream.ledger.total_paid(payer) == 800


async def test_an_image_payment_lost_in_transit_counts_against_the_budget(start, x402_upstream,
                                                                          payer):
    """The first image was paid but its answer was lost: a second $0.04 image would take a
    $0.05 session to $0.08, so it is refused."""
    proxy = await start(maxCostPerRun=0.05, maxCostPerRunMode="strict")
    x402_upstream.set_handler(IMAGE_PATH, h.settle_then_drop())
    body = {"model": "dall-e-3", "prompt": "a red kite"}
    code, _, raw = await post(proxy, IMAGE_PATH, json_body=body, headers={"x-session-id": "s"})
    assert code == 502 and json.loads(raw)["error"]["code"] == "payment_unconfirmed"
    x402_upstream.set_handler(IMAGE_PATH, h.image_handler)
    code, _, _ = await post(proxy, IMAGE_PATH, json_body=body, headers={"x-session-id": "s"})
    assert code == 429
    assert x402_upstream.ledger.total_paid(payer) == 40_000
    assert await proxy.services.spend.spent("s") == pytest.approx(0.04)
