"""Money accounting that matches the ledger: every payment the official x402 SDK settled in
the test upstream is in the usage log (and /stats) exactly once, with its amount, status,
transaction hash and nonce; a settlement reported failed or pending counts as spent
(unconfirmed) and is never paid a second time."""

from __future__ import annotations

import json

import pytest

from tests.support import handlers as h
from tests.support.x402_upstream import CHAT_PATH, IMAGE_PATH

from .test_disconnects import usage_records
from .test_limits import post

FREE = "nvidia/gpt-oss-120b"
PAID = "deepseek/deepseek-chat"
SPENT = ("settled", "unconfirmed")


def chat_body(text: str, model: str = "auto", **extra) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


async def stats(handle) -> dict:
    code, _, raw = await post(handle, "/stats", method="GET")
    assert code == 200
    return json.loads(raw)


def assert_reconciled(handle, upstream) -> list[dict]:
    """The usage log and the ledger agree payment by payment (nonce, amount, hash)."""
    records = usage_records(handle)
    spent = {r["nonce"]: r for r in records if r.get("payment") in SPENT}
    settlements = {s.nonce: s for s in upstream.ledger.settlements}
    assert sorted(spent) == sorted(settlements)  # same payments: none missing, none twice
    assert len(spent) == sum(1 for r in records if r.get("payment") in SPENT)
    for nonce, settlement in settlements.items():
        record = spent[nonce]
        assert round(record["paid"] * 1e6) == settlement.amount
        assert record["cost"] == record["paid"]
        if record["payment"] == "settled":
            assert record["transaction"] == settlement.transaction
    return records


async def test_a_settlement_reported_failed_counts_against_a_strict_budget(start,
                                                                          x402_upstream,
                                                                          payer):
    """$0.001 a call, a $0.003 strict budget, an upstream that settles and then reports the
    settlement as failed: eight requests move at most $0.003, and /stats shows it, as
    unconfirmed."""
    proxy = await start(maxCostPerRun=0.003, maxCostPerRunMode="strict")
    x402_upstream.set_handler(CHAT_PATH, h.by_model({PAID: h.settle_then_report_failed()}))
    codes = []
    for index in range(8):
        code, _, _ = await post(proxy, "/v1/chat/completions",
                                json_body=chat_body(f"question {index}", PAID, max_tokens=1000),
                                headers={"x-session-id": "strict"})
        codes.append(code)
    assert codes.count(429) >= 5, codes
    paid = x402_upstream.ledger.total_paid(payer)
    assert 0 < paid <= 3000  # the cap; every payment was claimed before it was signed
    assert await proxy.services.spend.spent("strict") == pytest.approx(paid / 1e6)
    totals = await stats(proxy)
    assert totals["totalCost"] == pytest.approx(paid / 1e6)
    assert totals["unconfirmedCost"] == pytest.approx(paid / 1e6)
    assert totals["payments"]["unconfirmed"]["count"] == len(x402_upstream.ledger.settlements)
    records = assert_reconciled(proxy, x402_upstream)
    assert all(r["payment"] == "unconfirmed" for r in records if r.get("payment"))


@pytest.mark.parametrize("status_code", [402, 200])
async def test_a_pre_signed_payment_reported_failed_is_not_paid_again(start, x402_upstream,
                                                                      payer, status_code):
    """The first request teaches pre-authorisation the price; the second request's
    pre-signed payment is settled but reported failed: the request is not paid again."""
    proxy = await start()
    await post(proxy, "/v1/chat/completions", json_body=chat_body("first", PAID))
    assert len(x402_upstream.ledger.settlements) == 1
    assert len(proxy.services.client._preauth) == 1  # the next one is pre-signed
    x402_upstream.set_handler(CHAT_PATH, h.by_model(
        {PAID: h.settle_then_report_failed(status_code=status_code)}))
    signed_before = x402_upstream.count(path=CHAT_PATH, paid=True)
    await post(proxy, "/v1/chat/completions", json_body=chat_body("second", PAID))
    assert x402_upstream.count(path=CHAT_PATH, paid=True) - signed_before == 1
    assert len(x402_upstream.ledger.settlements) == 2  # one per request, never two
    assert x402_upstream.ledger.total_paid(payer) == 2000
    totals = await stats(proxy)
    assert totals["totalCost"] == pytest.approx(0.002)
    assert totals["unconfirmedCost"] == pytest.approx(0.001)
    assert_reconciled(proxy, x402_upstream)


async def test_stats_equal_the_ledger_after_timeouts_cut_streams_fallbacks_and_forwards(
        start, x402_upstream, payer):
    """Each way a payment can leave without buying the answer, plus a forwarded call and
    an image: /stats counts exactly what the ledger moved, and every record names its
    payment."""
    proxy = await start(upstream={"attemptTimeoutSeconds": 2})
    messages = [{"role": "user", "content": "hello"}]
    chain = proxy.services.router.route({"messages": messages}, "auto").chain
    first = chain[0]
    assert first != FREE and FREE in chain
    # 1. a paid attempt times out after its payment settled: the free model answers
    x402_upstream.set_handler(CHAT_PATH, h.by_model({first: h.settle_then_stall(4)}))
    code, headers, _ = await post(proxy, CHAT_PATH, json_body=chat_body("timeout"))
    assert code == 200 and headers["x-clawrouter-model"] == FREE
    # 2. a paid answer that is garbage: the free model answers, the payment stays counted
    x402_upstream.set_handler(CHAT_PATH, h.by_model({first: h.raw(200, body=b"<html>")}))
    code, headers, _ = await post(proxy, CHAT_PATH, json_body=chat_body("garbage"))
    assert code == 200 and headers["x-clawrouter-model"] == FREE
    # 3. a stream cut after the payment and the first words
    x402_upstream.set_handler(CHAT_PATH, h.by_model({first: h.drop_mid_stream(2)}))
    await post(proxy, CHAT_PATH, json_body=chat_body("stream", stream=True))
    # 4. a settlement reported failed
    x402_upstream.set_handler(CHAT_PATH, h.by_model({first: h.settle_then_report_failed()}))
    await post(proxy, CHAT_PATH, json_body=chat_body("pending"))
    # 5. a paid answer, a forwarded paid call and an image
    x402_upstream.set_handler(CHAT_PATH, h.chat_handler)
    code, _, _ = await post(proxy, CHAT_PATH, json_body=chat_body("fine"))
    assert code == 200
    x402_upstream.set_price("/v1/embeddings", "0.0004")
    code, _, _ = await post(proxy, "/v1/embeddings", json_body={"input": "x", "model": "e"})
    assert code == 200
    code, _, _ = await post(proxy, IMAGE_PATH, json_body={"model": "dall-e-3", "prompt": "kite"})
    assert code == 200

    settlements = x402_upstream.ledger.settlements
    assert len(settlements) == 7  # one per paid attempt above
    totals = await stats(proxy)
    spent_count = totals["payments"]["settled"]["count"] + \
        totals["payments"]["unconfirmed"]["count"]
    assert spent_count == len(settlements)
    assert totals["totalCost"] == pytest.approx(x402_upstream.ledger.total_paid_usd(payer))
    assert totals["unconfirmedCost"] == pytest.approx(0.002)  # the timeout and the pending
    assert totals["byKind"]["forward"] == {"count": 1, "cost": 0.0004}
    assert totals["byKind"]["image"]["cost"] == pytest.approx(0.04)
    records = assert_reconciled(proxy, x402_upstream)
    forward = [r for r in records if r["kind"] == "forward"]
    assert forward[0]["path"] == "/v1/embeddings" and forward[0]["payment"] == "settled"
    by_status = sorted(r["payment"] for r in records if r.get("payment"))
    assert by_status == ["settled"] * 5 + ["unconfirmed"] * 2


async def test_a_refused_payment_is_recorded_but_not_spent(start, x402_upstream, payer):
    """The upstream verifies the payment, then refuses to serve (and so never settles):
    the signed payment has a record, marked refused, that counts nothing."""
    proxy = await start()
    x402_upstream.set_price("/v1/embeddings", "0.0004")
    x402_upstream.set_handler("/v1/embeddings", h.status(503))
    code, _, _ = await post(proxy, "/v1/embeddings", json_body={"input": "x"})
    assert code == 503
    records = usage_records(proxy)
    assert [(r["payment"], r["paid"], r["cost"]) for r in records] == [("refused", 0.0004, 0)]
    totals = await stats(proxy)
    assert totals["totalCost"] == 0 and totals["payments"]["refused"]["count"] == 1
    assert x402_upstream.ledger.total_paid(payer) == 0
