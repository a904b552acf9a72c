"""The test upstream itself, driven by the official SDK's own client (no clawrouter code)."""

from __future__ import annotations

import aiohttp
from eth_account import Account
from x402 import x402Client
from x402.http.utils import (
    decode_payment_required_header,
    decode_payment_response_header,
    encode_payment_signature_header,
)
from x402.mechanisms.evm.exact.register import register_exact_evm_client

from tests.support import handlers
from tests.support.x402_upstream import CHAT_PATH

BODY = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


async def _sdk_paid_post(session, upstream, key, path=CHAT_PATH, body=BODY):
    url = upstream.url + path
    async with session.post(url, json=body) as first:
        assert first.status == 402
        required = decode_payment_required_header(first.headers["PAYMENT-REQUIRED"])
    client = register_exact_evm_client(x402Client(), Account.from_key(key))
    payload = await client.create_payment_payload(required)
    headers = {"PAYMENT-SIGNATURE": encode_payment_signature_header(payload)}
    async with session.post(url, json=body, headers=headers) as second:
        return second.status, dict(second.headers), await second.read()


async def test_sdk_client_pays_once(x402_upstream, funded_wallet_key):
    payer = Account.from_key(funded_wallet_key).address
    async with aiohttp.ClientSession() as session:
        status, headers, body = await _sdk_paid_post(session, x402_upstream, funded_wallet_key)
    assert status == 200, body
    assert b"Echo from openai/gpt-4o-mini" in body
    settled = decode_payment_response_header(headers["PAYMENT-RESPONSE"])
    assert settled.success and settled.payer == payer
    assert x402_upstream.ledger.total_paid(payer) == 1000
    assert len(x402_upstream.ledger.settlements) == 1
    assert x402_upstream.ledger.settlements[0].path == CHAT_PATH


async def test_unfunded_payer_is_rejected_blockrun_style(x402_upstream):
    key = "0x" + "11" * 32
    async with aiohttp.ClientSession() as session:
        status, headers, body = await _sdk_paid_post(session, x402_upstream, key)
    assert status == 402
    assert b"Payment verification failed" in body and b"insufficient_funds" in body
    assert x402_upstream.ledger.settlements == []


async def test_handler_error_is_not_charged(x402_upstream, funded_wallet_key):
    x402_upstream.set_handler(CHAT_PATH, handlers.status(503))
    async with aiohttp.ClientSession() as session:
        status, _, _ = await _sdk_paid_post(session, x402_upstream, funded_wallet_key)
    assert status == 503
    assert x402_upstream.ledger.settlements == []


async def test_replayed_payment_is_refused_by_sdk(x402_upstream, funded_wallet_key):
    url = x402_upstream.url + CHAT_PATH
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json=BODY) as first:
            required = decode_payment_required_header(first.headers["PAYMENT-REQUIRED"])
        client = register_exact_evm_client(x402Client(), Account.from_key(funded_wallet_key))
        headers = {"PAYMENT-SIGNATURE": encode_payment_signature_header(
            await client.create_payment_payload(required))}
        async with session.post(url, json=BODY, headers=headers) as ok:
            assert ok.status == 200
        async with session.post(url, json=BODY, headers=headers) as replay:
            assert replay.status == 402
    assert len(x402_upstream.ledger.settlements) == 1
    assert x402_upstream.requests[-1].rejection == "invalid_exact_evm_nonce_already_used"


async def test_streaming_chat_is_settled_before_first_chunk(x402_upstream, funded_wallet_key):
    body = dict(BODY, stream=True)
    async with aiohttp.ClientSession() as session:
        status, headers, raw = await _sdk_paid_post(
            session, x402_upstream, funded_wallet_key, body=body)
    assert status == 200 and headers["Content-Type"].startswith("text/event-stream")
    assert "PAYMENT-RESPONSE" in headers
    assert raw.rstrip().endswith(b"data: [DONE]")
    assert len(x402_upstream.ledger.settlements) == 1
