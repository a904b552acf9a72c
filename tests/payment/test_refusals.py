"""Every 402 the policy must refuse: PaymentRefused, a clear message, and NO signature sent."""

from __future__ import annotations

import base64
import json

import pytest

from clawrouter_plugin.errors import PaymentRefused
from clawrouter_plugin.payment import PaymentPolicy
from tests.support import handlers
from tests.support.x402_upstream import X402TestUpstream

from .helpers import CHAT, chat_body, client_for, policy

USDC = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"
PAY_TO = "0x000000000000000000000000000000000000bEEF"
OTHER = "0x1111111111111111111111111111111111111111"


async def _refused(upstream, key, *, pol=None, max_amount_usd=None) -> str:
    async with client_for(upstream, key, pol=pol) as client:
        with pytest.raises(PaymentRefused) as caught:
            await client.request("POST", CHAT, body=chat_body(), max_amount_usd=max_amount_usd)
    assert upstream.count(paid=True) == 0, "a payment was sent"
    assert upstream.ledger.settlements == []
    message = caught.value.message
    assert "nothing was signed" in message and "Traceback" not in message
    return message


@pytest.mark.parametrize("setup, expect", [
    ({"network": "eip155:84532"}, "network/asset not allowed"),
    ({"asset": OTHER}, "network/asset not allowed"),
    ({"network": "eip155:1"}, "network/asset not allowed"),
])
async def test_wrong_network_or_asset(setup, expect, funded_wallet_key):
    async with X402TestUpstream(**setup) as upstream:
        message = await _refused(upstream, funded_wallet_key)
    assert expect in message
    assert setup.get("network", "eip155:8453") in message  # says what was asked
    assert setup.get("asset", USDC) in message and PAY_TO in message and "$0.001000" in message


async def test_unexpected_pay_to_when_pinned(x402_upstream, funded_wallet_key):
    message = await _refused(x402_upstream, funded_wallet_key, pol=policy(pay_to=OTHER))
    assert "payTo is not the pinned payment.payTo" in message


async def test_above_per_request_cap(x402_upstream, funded_wallet_key):
    x402_upstream.set_price(CHAT, "1.5")
    message = await _refused(x402_upstream, funded_wallet_key)
    assert "$1.500000" in message and "maxPerRequestUsd" in message


async def test_above_the_callers_limit(x402_upstream, funded_wallet_key):
    message = await _refused(x402_upstream, funded_wallet_key, max_amount_usd=0.0005)
    assert "above this request's limit $0.000500" in message


async def test_exhausted_budget_refuses_everything(x402_upstream, funded_wallet_key):
    message = await _refused(x402_upstream, funded_wallet_key, max_amount_usd=0)
    assert "limit $0.000000" in message


async def test_preauth_is_not_used_beyond_the_callers_limit(x402_upstream, funded_wallet_key):
    async with client_for(x402_upstream, funded_wallet_key) as client:
        await client.request("POST", CHAT, body=chat_body(), price_key="m")
        with pytest.raises(PaymentRefused):
            await client.request("POST", CHAT, body=chat_body(), price_key="m",
                                 max_amount_usd=0.0001)
    assert x402_upstream.count(paid=True) == 1  # the cached requirement was not pre-signed
    assert len(x402_upstream.ledger.settlements) == 1


def _b64(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return base64.b64encode(text.encode()).decode()


def _entry(**changes):
    entry = {"scheme": "exact", "network": "eip155:8453", "asset": USDC, "amount": "1000",
             "payTo": PAY_TO, "maxTimeoutSeconds": 300,
             "extra": {"name": "USD Coin", "version": "2"}}
    entry.update(changes)
    return {k: v for k, v in entry.items() if v is not None}


def _required(*entries, version=2):
    return {"x402Version": version, "error": "Payment required",
            "resource": {"url": "http://x/api/v1/chat/completions"}, "accepts": list(entries)}


MALFORMED = {
    "bad base64": ({"PAYMENT-REQUIRED": "%%%not-base64%%%"}, b"", "not valid base64"),
    "bad json": ({"PAYMENT-REQUIRED": _b64("{nope")}, b"", "not valid JSON"),
    "not an object": ({"PAYMENT-REQUIRED": _b64([1, 2])}, b"", "not a JSON object"),
    "unsupported version": ({"PAYMENT-REQUIRED": _b64(_required(_entry(), version=3))}, b"",
                            "unsupported x402Version 3"),
    "no accepts": ({"PAYMENT-REQUIRED": _b64({"x402Version": 2})}, b"", "no 'accepts' list"),
    "empty accepts": ({"PAYMENT-REQUIRED": _b64(_required())}, b"", "no 'accepts' list"),
    "missing amount": ({"PAYMENT-REQUIRED": _b64(_required(_entry(amount=None)))}, b"",
                       "'amount' is not a whole number"),
    "negative amount": ({"PAYMENT-REQUIRED": _b64(_required(_entry(amount="-5")))}, b"",
                        "'amount' is not a whole number"),
    "decimal amount": ({"PAYMENT-REQUIRED": _b64(_required(_entry(amount="0.5")))}, b"",
                       "'amount' is not a whole number"),
    "absurd amount": ({"PAYMENT-REQUIRED": _b64(_required(_entry(amount="9" * 40)))}, b"",
                      "'amount' is not a whole number"),
    "huge amount": ({"PAYMENT-REQUIRED": _b64(_required(_entry(amount="9" * 25)))}, b"",
                    "maxPerRequestUsd"),
    "zero amount": ({"PAYMENT-REQUIRED": _b64(_required(_entry(amount="0")))}, b"",
                    "amount is zero"),
    "bad payTo": ({"PAYMENT-REQUIRED": _b64(_required(_entry(payTo="bob")))}, b"",
                  "'payTo' is not an EVM address"),
    "missing network": ({"PAYMENT-REQUIRED": _b64(_required(_entry(network=None)))}, b"",
                        "missing or invalid 'network'"),
    "unknown scheme": ({"PAYMENT-REQUIRED": _b64(_required(_entry(scheme="upto")))}, b"",
                       "unsupported scheme 'upto'"),
    "expired window": ({"PAYMENT-REQUIRED": _b64(_required(_entry(maxTimeoutSeconds=0)))}, b"",
                       "invalid validity window"),
    "endless window": ({"PAYMENT-REQUIRED": _b64(_required(_entry(maxTimeoutSeconds=10**7)))},
                       b"", "invalid validity window"),
    "missing window": ({"PAYMENT-REQUIRED": _b64(_required(_entry(maxTimeoutSeconds=None)))},
                       b"", "'maxTimeoutSeconds'"),
    "no requirements at all": ({}, b'{"error": "Payment Required"}',
                               "no PAYMENT-REQUIRED header and no x402 v1 body"),
    "bad v1 body": ({}, json.dumps({"x402Version": 1, "accepts": [{"scheme": "exact"}]}).encode(),
                    "missing or invalid 'network'"),
    "v1 unknown network": ({}, json.dumps(_required(
        {"scheme": "exact", "network": "polygon", "asset": USDC, "maxAmountRequired": "1000",
         "payTo": PAY_TO, "maxTimeoutSeconds": 60, "resource": "x"}, version=1)).encode(),
        "network/asset not allowed"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
async def test_malformed_402_is_refused_without_signing(case, x402_upstream, funded_wallet_key):
    headers, body, expect = MALFORMED[case]
    x402_upstream.set_price(CHAT, None)  # the handler itself answers the 402
    x402_upstream.set_handler(CHAT, handlers.raw(402, headers=headers, body=body))
    message = await _refused(x402_upstream, funded_wallet_key)
    assert expect in message
    assert len(x402_upstream.requests) == 1


async def test_unknown_token_without_domain_is_refused(x402_upstream, funded_wallet_key):
    pol = PaymentPolicy.create([("eip155:8453", USDC), ("eip155:8453", OTHER)])
    x402_upstream.set_price(CHAT, None)
    x402_upstream.set_handler(CHAT, handlers.raw(402, headers={
        "PAYMENT-REQUIRED": _b64(_required(_entry(asset=OTHER, extra=None)))}))
    message = await _refused(x402_upstream, funded_wallet_key, pol=pol)
    assert "missing EIP-712 domain" in message


async def test_first_acceptable_entry_is_chosen_among_bad_ones(x402_upstream,
                                                                funded_wallet_key):
    """A 402 offering a bad option next to a good one pays the good one (and only once)."""
    stack = x402_upstream.stack()
    good = stack.requirements(x402_upstream, 0.001, "http://x")[0].model_dump(by_alias=True)
    x402_upstream.set_price(CHAT, None)
    seen: list = []

    async def two_options(call):
        header = call.request.headers.get("PAYMENT-SIGNATURE")
        if header is None:
            required = _required(_entry(network="eip155:1", amount="10"), {"junk": 1}, good)
            return await handlers.raw(402, headers={"PAYMENT-REQUIRED": _b64(required)})(call)
        seen.append(json.loads(base64.b64decode(header))["accepted"])
        return await handlers.chat_handler(call)

    x402_upstream.set_handler(CHAT, two_options)
    async with client_for(x402_upstream, funded_wallet_key) as client:
        response, _ = await client.request("POST", CHAT, body=chat_body())
    assert response.status == 200
    assert seen == [good]
