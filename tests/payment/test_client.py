"""X402Client against the official x402 SDK server side (tests/support/x402_upstream.py)."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from eth_account import Account

from clawrouter_plugin.errors import (
    InsufficientFunds,
    PaymentFailed,
    PaymentUnconfirmed,
    UpstreamError,
    UpstreamTimeout,
)
from clawrouter_plugin.payment import Wallet, X402Client
from tests.support import handlers
from tests.support.x402_upstream import X402TestUpstream

from .helpers import CHAT, chat_body, client_for, policy


async def test_paid_request_settles_exactly_once(x402_upstream, funded_wallet_key):
    payments: list = []
    payer = Account.from_key(funded_wallet_key).address
    async with client_for(x402_upstream, funded_wallet_key, payments=payments) as client:
        response, data = await client.request("POST", CHAT, body=chat_body("m/one"))
    assert response.status == 200
    assert json.loads(data)["choices"][0]["message"]["content"].startswith("Echo from m/one")
    [settled] = x402_upstream.ledger.settlements
    assert settled.payer == payer and settled.amount == 1000 and settled.path == CHAT
    assert response.payment is not None and response.payment.settled
    assert response.payment.transaction == settled.transaction
    assert response.payment.amount_atomic == 1000 and response.payment.amount_usd == 0.001
    assert response.payment.payer == payer
    assert payments == [response.payment]
    # one unpaid request answered 402, one paid request answered 200
    assert [(r.paid, r.status) for r in x402_upstream.requests] == [(False, 402), (True, 200)]


async def test_preauth_skips_the_402_on_same_price_repeats(x402_upstream, funded_wallet_key):
    async with client_for(x402_upstream, funded_wallet_key) as client:
        for _ in range(4):
            response, _ = await client.request("POST", CHAT, body=chat_body(), price_key="m")
            assert response.status == 200 and response.payment is not None
    assert len(x402_upstream.requests) == 5  # 2 round trips, then 1 per request
    assert x402_upstream.count(status=402) == 1
    assert len(x402_upstream.ledger.settlements) == 4
    assert len({s.nonce for s in x402_upstream.ledger.settlements}) == 4


async def test_without_preauth_every_request_costs_two_round_trips(x402_upstream,
                                                                   funded_wallet_key):
    async with client_for(x402_upstream, funded_wallet_key, preauth=False) as client:
        for _ in range(3):
            await client.request("POST", CHAT, body=chat_body())
    assert len(x402_upstream.requests) == 6
    assert len(x402_upstream.ledger.settlements) == 3


async def test_changed_price_renegotiates_without_double_payment(x402_upstream,
                                                                 funded_wallet_key):
    payments: list = []
    async with client_for(x402_upstream, funded_wallet_key, payments=payments) as client:
        await client.request("POST", CHAT, body=chat_body(), price_key="m")
        x402_upstream.set_price(CHAT, "0.002")
        response, _ = await client.request("POST", CHAT, body=chat_body(), price_key="m")
        assert response.status == 200 and response.payment.amount_atomic == 2000
        again, _ = await client.request("POST", CHAT, body=chat_body(), price_key="m")
    assert again.payment.amount_atomic == 2000
    assert [s.amount for s in x402_upstream.ledger.settlements] == [1000, 2000, 2000]
    assert [p.amount_atomic for p in payments] == [1000, 2000, 2000]
    # the stale pre-signed payment was refused (not settled) by the SDK, then one new signature
    assert [(r.paid, r.status) for r in x402_upstream.requests] == [
        (False, 402), (True, 200), (True, 402), (True, 200), (True, 200)]
    assert x402_upstream.requests[2].rejection is not None


async def test_a_new_price_key_negotiates_first(x402_upstream, funded_wallet_key):
    x402_upstream.set_price(CHAT, lambda call: "0.003" if b"big" in call.body else "0.001")
    async with client_for(x402_upstream, funded_wallet_key) as client:
        await client.request("POST", CHAT, body=chat_body("small"), price_key="small")
        big, _ = await client.request("POST", CHAT, body=chat_body("big"), price_key="big")
    assert big.payment.amount_atomic == 3000
    assert [r.paid for r in x402_upstream.requests] == [False, True, False, True]
    assert x402_upstream.ledger.total_paid() == 4000


async def test_concurrent_paid_requests_each_pay_once(x402_upstream, funded_wallet_key):
    async with client_for(x402_upstream, funded_wallet_key) as client:
        await client.request("POST", CHAT, body=chat_body(), price_key="m")
        results = await asyncio.gather(*[
            client.request("POST", CHAT, body=chat_body(text=str(i)), price_key="m")
            for i in range(8)])
    assert all(r.status == 200 and r.payment.settled for r, _ in results)
    assert len(x402_upstream.ledger.settlements) == 9
    assert x402_upstream.ledger.total_paid() == 9000
    assert len({s.nonce for s in x402_upstream.ledger.settlements}) == 9


async def test_streaming_response_is_paid_before_the_body(x402_upstream, funded_wallet_key):
    async with client_for(x402_upstream, funded_wallet_key) as client:
        async with client.open("POST", CHAT, body=chat_body("m/s", stream=True)) as response:
            assert response.status == 200 and response.payment.settled
            lines = [line async for line in response.content]
    assert lines[-2].strip() == b"data: [DONE]"
    assert len(x402_upstream.ledger.settlements) == 1


async def test_upstream_error_after_payment_is_not_charged(x402_upstream, funded_wallet_key):
    payments: list = []
    x402_upstream.set_handler(CHAT, handlers.status(503))
    async with client_for(x402_upstream, funded_wallet_key, payments=payments) as client:
        response, _ = await client.request("POST", CHAT, body=chat_body())
    assert response.status == 503 and response.payment is None
    assert payments == [] and x402_upstream.ledger.settlements == []


async def test_v1_peer_is_paid_with_x_payment(funded_wallet_key):
    async with X402TestUpstream(protocol=1) as upstream:
        payer = Account.from_key(funded_wallet_key).address
        upstream.ledger.fund(payer, 1)
        async with client_for(upstream, funded_wallet_key) as client:
            response, _ = await client.request("POST", CHAT, body=chat_body())
        assert response.status == 200 and response.payment.settled
        assert response.payment.network == "eip155:8453"
        assert "X-PAYMENT" in upstream.requests[1].headers
        assert upstream.ledger.total_paid(payer) == 1000


@pytest.mark.parametrize("failure_body", ["blockrun", "sdk"])
async def test_unfunded_wallet_raises_insufficient_funds(failure_body):
    async with X402TestUpstream(failure_body=failure_body) as upstream:
        async with client_for(upstream, "0x" + "42" * 32) as client:
            with pytest.raises(InsufficientFunds) as caught:
                await client.request("POST", CHAT, body=chat_body())
    assert "$0.001000" in caught.value.message
    assert upstream.ledger.settlements == []


async def test_presigned_payment_refused_for_funds_does_not_pay_twice(x402_upstream):
    key = "0x" + "43" * 32
    x402_upstream.ledger.fund(Account.from_key(key).address, 0.001)  # exactly one request
    async with client_for(x402_upstream, key) as client:
        await client.request("POST", CHAT, body=chat_body())
        with pytest.raises(InsufficientFunds):
            await client.request("POST", CHAT, body=chat_body())
    assert len(x402_upstream.ledger.settlements) == 1
    assert x402_upstream.count(paid=True) == 2  # no third signature after the refusal


async def test_tampered_signature_is_rejected_by_the_sdk(x402_upstream, funded_wallet_key,
                                                         monkeypatch):
    original = Wallet.sign_digest

    def tampered(self, digest):
        signature = bytearray(original(self, digest))
        signature[10] ^= 0x01
        return bytes(signature)

    monkeypatch.setattr(Wallet, "sign_digest", tampered)
    async with client_for(x402_upstream, funded_wallet_key) as client:
        with pytest.raises(PaymentFailed) as caught:
            await client.request("POST", CHAT, body=chat_body())
    assert not isinstance(caught.value, InsufficientFunds)
    assert x402_upstream.requests[-1].rejection == "invalid_exact_evm_payload_signature"
    assert x402_upstream.ledger.settlements == []


async def test_redirects_are_not_followed_with_a_payment(x402_upstream, funded_wallet_key):
    x402_upstream.set_handler(CHAT, handlers.raw(307, headers={"Location": "/api/elsewhere"}))
    async with client_for(x402_upstream, funded_wallet_key) as client:
        response, _ = await client.request("POST", CHAT, body=chat_body())
    assert response.status == 307
    assert [r.path for r in x402_upstream.requests] == [CHAT, CHAT]


async def test_connection_refused_is_an_upstream_error(unused_tcp_port, funded_wallet_key):
    wallet = Wallet.from_private_key(funded_wallet_key)
    async with aiohttp.ClientSession() as session:
        client = X402Client(session, wallet, policy(),
                            api_base=f"http://127.0.0.1:{unused_tcp_port}/api")
        with pytest.raises(UpstreamError) as caught:
            await client.request("POST", CHAT, body=chat_body())
    assert not isinstance(caught.value, UpstreamTimeout)
    assert f"cannot reach upstream 127.0.0.1:{unused_tcp_port}" in caught.value.message


async def test_slow_upstream_is_a_timeout(x402_upstream, funded_wallet_key):
    """A timeout after a payment was sent says the payment may still be settled."""
    x402_upstream.set_handler(CHAT, handlers.delayed(3))
    async with client_for(x402_upstream, funded_wallet_key) as client:
        with pytest.raises(PaymentUnconfirmed) as caught:
            await client.request("POST", CHAT, body=chat_body(),
                                 timeout=aiohttp.ClientTimeout(total=0.5))
        assert caught.value.status == 504 and "did not answer in time" in caught.value.message
        x402_upstream.set_price(CHAT, None)
        with pytest.raises(UpstreamTimeout):  # nothing was paid
            await client.request("POST", CHAT, body=chat_body(),
                                 timeout=aiohttp.ClientTimeout(total=0.5))
    assert x402_upstream.ledger.settlements == []


async def test_free_routes_pass_through_unpaid(x402_upstream, funded_wallet_key):
    async with client_for(x402_upstream, funded_wallet_key) as client:
        response, _ = await client.request("GET", "/v1/models")
        assert await response.json() == {"ok": True, "method": "GET", "path": "/v1/models",
                                         "json": None}
    assert response.payment is None and x402_upstream.count(paid=True) == 0
