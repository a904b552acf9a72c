"""Money safety of the x402 client: what may be signed, how often, and what never leaks.

Payments are checked by the official ``x402`` SDK (the test upstream verifies and settles them;
hand-made 402s are checked with the SDK's EIP-712 hashing), never by our own verifier.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import traceback

import aiohttp
import pytest
from eth_account import Account
from eth_keys import keys
from x402.mechanisms.evm.eip712 import hash_eip3009_authorization
from x402.mechanisms.evm.types import ExactEIP3009Authorization

from clawrouter_plugin.config import StateConfig
from clawrouter_plugin.errors import (
    BudgetExceeded,
    PaymentRefused,
    PaymentUnconfirmed,
    UpstreamError,
    WalletError,
)
from clawrouter_plugin.payment import Wallet, X402Client, load_or_create_wallet, recover_wallet
from clawrouter_plugin.state.redis_conn import open_link
from clawrouter_plugin.state.redis_spend import RedisSpend
from clawrouter_plugin.state.spend import SpendTracker
from tests.support import handlers
from tests.support.x402_upstream import BASE_USDC

from .helpers import CHAT, chat_body, client_for, policy
from .test_refusals import OTHER, PAY_TO, _b64, _entry, _required

PINNED = "0x2222222222222222222222222222222222222222"


def _signed(record) -> dict:
    """The decoded payment header a recorded request carried."""
    header = record.headers.get("PAYMENT-SIGNATURE") or record.headers.get("X-PAYMENT")
    return json.loads(base64.b64decode(header))


def _sdk_signer(auth: dict, signature: str, chain: int, token: str) -> str:
    """The address that signed ``auth`` under the domain (chain, token), per the x402 SDK."""
    digest = hash_eip3009_authorization(
        ExactEIP3009Authorization(
            from_address=auth["from"], to=auth["to"], value=auth["value"],
            valid_after=auth["validAfter"], valid_before=auth["validBefore"],
            nonce=auth["nonce"]),
        chain, token, "USD Coin", "2")
    raw = bytes.fromhex(signature[2:])
    recid = raw[64] - 27 if raw[64] >= 27 else raw[64]
    sig = keys.Signature(vrs=(recid, int.from_bytes(raw[:32], "big"),
                              int.from_bytes(raw[32:64], "big")))
    return sig.recover_public_key_from_msg_hash(digest).to_checksum_address()


def _answer_402_then_chat(required_headers: dict, body: bytes = b""):
    """A handler: the unpaid request gets this hand-made 402, a paid one a chat answer."""
    async def handler(call):
        if call.record.paid:
            return await handlers.chat_handler(call)
        return await handlers.raw(402, headers=required_headers, body=body)(call)
    return handler


# --- odd 402s: nothing is signed ------------------------------------------------------------

V1_ENTRY = {"scheme": "exact", "network": "base", "maxAmountRequired": "1000", "resource": "r",
            "payTo": PAY_TO, "maxTimeoutSeconds": 60, "asset": BASE_USDC,
            "extra": {"name": "USD Coin", "version": "2"}}

ODD = {
    "full-width digits": ({"PAYMENT-REQUIRED": _b64(_required(_entry(amount="１０００")))}, b""),
    "arabic-indic digits": ({"PAYMENT-REQUIRED": _b64(_required(_entry(amount="١٠٠٠")))}, b""),
    "float amount": ({"PAYMENT-REQUIRED": _b64(_required(_entry(amount=1000.0)))}, b""),
    "boolean amount": ({"PAYMENT-REQUIRED": _b64(_required(_entry(amount=True)))}, b""),
    "exponent amount": ({"PAYMENT-REQUIRED": _b64(_required(_entry(amount="1e3")))}, b""),
    "underscored amount": ({"PAYMENT-REQUIRED": _b64(_required(_entry(amount="1_000")))}, b""),
    "signed amount": ({"PAYMENT-REQUIRED": _b64(_required(_entry(amount="+1000")))}, b""),
    "amount with newline": ({"PAYMENT-REQUIRED": _b64(_required(_entry(amount="1000\n")))}, b""),
    "one unit above the cap": (
        {"PAYMENT-REQUIRED": _b64(_required(_entry(amount="1000001")))}, b""),
    "negative window": ({"PAYMENT-REQUIRED": _b64(_required(_entry(maxTimeoutSeconds=-60)))},
                        b""),
    "float window": ({"PAYMENT-REQUIRED": _b64(_required(_entry(maxTimeoutSeconds=60.0)))}, b""),
    "boolean window": ({"PAYMENT-REQUIRED": _b64(_required(_entry(maxTimeoutSeconds=True)))},
                       b""),
    "window one second too long": (
        {"PAYMENT-REQUIRED": _b64(_required(_entry(maxTimeoutSeconds=3601)))}, b""),
    "full-width chain id": (
        {"PAYMENT-REQUIRED": _b64(_required(_entry(network="eip155:８４５３")))}, b""),
    "v1 entry in a v2 header": ({"PAYMENT-REQUIRED": _b64(_required(V1_ENTRY))}, b""),
    "v2 entry in a v1 body": ({}, json.dumps(_required(_entry(), version=1)).encode()),
    "x402Version 2.0": ({"PAYMENT-REQUIRED": _b64(_required(_entry(), version=2.0))}, b""),
    "x402Version true in a v1 body": (
        {}, json.dumps(_required(V1_ENTRY, version=True)).encode()),
    "x402Version 1.0 in a v1 body": ({}, json.dumps(_required(V1_ENTRY, version=1.0)).encode()),
    "x402Version '2'": ({"PAYMENT-REQUIRED": _b64(_required(_entry(), version="2"))}, b""),
}


@pytest.mark.parametrize("case", sorted(ODD))
async def test_odd_402_is_refused_without_signing(case, x402_upstream, funded_wallet_key):
    headers, body = ODD[case]
    x402_upstream.set_price(CHAT, None)
    x402_upstream.set_handler(CHAT, _answer_402_then_chat(headers, body))
    async with client_for(x402_upstream, funded_wallet_key) as client:
        with pytest.raises(PaymentRefused) as caught:
            await client.request("POST", CHAT, body=chat_body())
    assert "nothing was signed" in caught.value.message
    assert x402_upstream.count(paid=True) == 0 and len(x402_upstream.requests) == 1


async def test_402_cannot_choose_the_domain_chain_or_window(x402_upstream, funded_wallet_key):
    """``extra`` naming another chainId, contract or window changes nothing that is signed:
    the authorization is for Base USDC only, valid from (about) now for maxTimeoutSeconds."""
    entry = _entry(maxTimeoutSeconds=120, extra={
        "name": "USD Coin", "version": "2", "chainId": 1, "verifyingContract": OTHER,
        "validAfter": "0", "validBefore": str(2**255)})
    x402_upstream.set_price(CHAT, None)
    x402_upstream.set_handler(CHAT, _answer_402_then_chat(
        {"PAYMENT-REQUIRED": _b64(_required(entry))}))
    before = int(time.time())
    async with client_for(x402_upstream, funded_wallet_key) as client:
        response, _ = await client.request("POST", CHAT, body=chat_body())
    after = int(time.time())
    assert response.status == 200
    [paid] = [r for r in x402_upstream.requests if r.paid]
    payload = _signed(paid)["payload"]
    auth, signature = payload["authorization"], payload["signature"]
    payer = Account.from_key(funded_wallet_key).address
    assert _sdk_signer(auth, signature, 8453, BASE_USDC) == payer
    assert _sdk_signer(auth, signature, 1, BASE_USDC) != payer
    assert _sdk_signer(auth, signature, 8453, OTHER) != payer
    assert before - 600 <= int(auth["validAfter"]) <= after
    assert before + 120 <= int(auth["validBefore"]) <= after + 120
    assert auth["to"].lower() == PAY_TO.lower() and auth["value"] == "1000"


async def test_conflicting_offers_pay_only_the_pinned_payee(x402_upstream, funded_wallet_key):
    """A cheaper offer to another address does not win over the pinned ``payTo``."""
    required = _required(_entry(payTo=OTHER, amount="10"), _entry(payTo=PINNED, amount="2000"),
                         _entry(payTo=OTHER, amount="10"))
    x402_upstream.set_price(CHAT, None)
    x402_upstream.set_handler(CHAT, _answer_402_then_chat({"PAYMENT-REQUIRED": _b64(required)}))
    async with client_for(x402_upstream, funded_wallet_key, pol=policy(pay_to=PINNED)) as client:
        response, _ = await client.request("POST", CHAT, body=chat_body())
    assert response.status == 200
    [paid] = [r for r in x402_upstream.requests if r.paid]
    payload = _signed(paid)["payload"]
    assert payload["authorization"]["to"].lower() == PINNED.lower()
    assert payload["authorization"]["value"] == "2000"
    assert _sdk_signer(payload["authorization"], payload["signature"], 8453, BASE_USDC) == \
        Account.from_key(funded_wallet_key).address


# --- the session budget is claimed at signing time -------------------------------------------

@pytest.fixture
async def budget_in(request):
    """``budget_in(backend, limit)``: a local tracker, or one in the shared test Redis."""
    links = []

    def make(backend: str, limit: float):
        if backend == "local":
            return SpendTracker(limit)
        link = open_link(StateConfig(backend="redis",
                                     redis_url=request.getfixturevalue("redis_url")))
        links.append(link)
        return RedisSpend(link, limit)

    yield make
    for link in links:
        await link.aclose()


@pytest.mark.parametrize("backend", ["local", "redis"])
@pytest.mark.parametrize("presigned", [False, True])
async def test_concurrent_payments_cannot_overspend_one_budget(presigned, backend, budget_in,
                                                               x402_upstream,
                                                               funded_wallet_key):
    """Each request holds only a small estimate; the payment itself must fit the budget when
    it is signed, so four concurrent $0.001 requests under $0.0025 pay twice, not four times
    (also with the budget in a real Redis, as in team mode)."""
    x402_upstream.set_handler(CHAT, handlers.delayed(0.2))
    tracker = budget_in(backend, 0.0025 + (0.001 if presigned else 0))
    outcomes: list = []

    async def one(client, index: int) -> None:
        reservation = await tracker.reserve("s", 0.00001)
        paid = 0.0
        try:
            response, _ = await client.request(
                "POST", CHAT, body=chat_body(text=str(index)), price_key="m",
                claim=reservation.claim)
            paid = response.payment.amount_usd
            outcomes.append(response.status)
        except BudgetExceeded:
            outcomes.append(429)
        finally:
            await reservation.commit(paid)

    async with client_for(x402_upstream, funded_wallet_key) as client:
        if presigned:  # the next requests go out with a pre-signed payment
            await one(client, -1)
            outcomes.clear()
        await asyncio.wait_for(asyncio.gather(*(one(client, i) for i in range(4))), 10)
    settled = len(x402_upstream.ledger.settlements)
    assert sorted(outcomes) == [200, 200, 429, 429]
    assert settled == 2 + presigned
    assert await tracker.spent("s") == pytest.approx(settled * 0.001)
    assert await tracker.spent("s") <= tracker.limit and await tracker.remaining("s") < 0.001
    assert x402_upstream.count(paid=True) == settled  # the refused ones were never signed


# --- a payment whose fate is unknown is never followed by another ----------------------------

async def test_connection_lost_after_paying_is_unconfirmed(x402_upstream, funded_wallet_key):
    """Not an UpstreamError (which callers retry with a new payment): PaymentUnconfirmed,
    saying how much may have been paid."""
    x402_upstream.set_handler(CHAT, handlers.settle_then_drop())
    async with client_for(x402_upstream, funded_wallet_key) as client:
        with pytest.raises(PaymentUnconfirmed) as caught:
            await client.request("POST", CHAT, body=chat_body())
    assert not isinstance(caught.value, UpstreamError)
    assert caught.value.amount_usd == pytest.approx(0.001)
    assert "$0.001000" in caught.value.message and "may have been settled" in caught.value.message
    assert [r.paid for r in x402_upstream.requests] == [False, True]  # signed once, sent once
    assert x402_upstream.ledger.total_paid() == 1000


async def test_unreachable_upstream_with_a_presigned_payment_is_a_plain_error(
        x402_upstream, funded_wallet_key):
    """A payment that never left (no connection) is not 'unconfirmed': retrying is safe."""
    wallet = Wallet.from_private_key(funded_wallet_key)
    connector = aiohttp.TCPConnector(force_close=True)  # every request needs a new connection
    async with aiohttp.ClientSession(connector=connector) as session:
        client = X402Client(session, wallet, policy(), api_base=x402_upstream.url)
        await client.request("POST", CHAT, body=chat_body(), price_key="m")
        await x402_upstream.close()
        with pytest.raises(UpstreamError) as caught:
            await client.request("POST", CHAT, body=chat_body(), price_key="m")
    assert not isinstance(caught.value, PaymentUnconfirmed)
    assert len(x402_upstream.ledger.settlements) == 1


# --- secrets never ride along in exception chains --------------------------------------------

PHRASE = "legal winner thank year wave sausage worth useful legal winner thank yellow"


def _secret_free(exc: BaseException, *needles: str) -> None:
    """No exception chained to ``exc`` (suppressed or not) holds a needle: not in its message
    or args, not in the bytes it was decoding, not in the locals of its frames (``exc``'s own
    frames hold the caller's arguments anyway, so only the chained ones are searched)."""
    parts = [repr(exc), repr(exc.args)]
    inner = exc.__cause__ or exc.__context__
    while inner is not None:
        parts += [repr(inner), repr(inner.args), repr(getattr(inner, "object", "")),
                  *traceback.TracebackException.from_exception(
                      inner, capture_locals=True).format(chain=False)]
        inner = inner.__cause__ or inner.__context__
    text = "".join(parts)
    for needle in needles:
        assert needle not in text


def test_bad_recovery_phrase_error_does_not_carry_the_phrase(tmp_path):
    bad = PHRASE.replace("yellow", "zoo")  # valid words, wrong checksum
    with pytest.raises(WalletError) as caught:
        recover_wallet(tmp_path, bad)
    assert "not a valid BIP-39 recovery phrase" in caught.value.message
    _secret_free(caught.value, "winner thank", "sausage worth")


def test_non_text_key_file_error_does_not_carry_the_key(tmp_path):
    key = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
    (tmp_path / "wallet.key").write_bytes(b"0x" + key.encode() + b"\xff\n")
    (tmp_path / "wallet.key").chmod(0o600)
    with pytest.raises(WalletError) as caught:
        load_or_create_wallet(tmp_path, env={})
    assert "corrupt (not text)" in caught.value.message
    _secret_free(caught.value, key, key[:32], key[-32:])


# --- settlements reported failed or pending: unconfirmed, never paid again -----------------

@pytest.mark.parametrize("preauth", [True, False])
@pytest.mark.parametrize("status_code", [402, 200])
async def test_a_settlement_reported_failed_is_unconfirmed_and_not_paid_again(
        x402_upstream, funded_wallet_key, preauth, status_code):
    """The upstream settles, then says the settlement failed (pending on chain): the
    payment is unconfirmed, on the tab as spent, and the request is not paid a second time,
    whether its payment was pre-signed or negotiated."""
    from clawrouter_plugin.payment.tab import PaymentTab

    async with client_for(x402_upstream, funded_wallet_key, preauth=preauth) as client:
        await client.request("POST", CHAT, body=chat_body(), price_key="m")  # learns the price
        x402_upstream.set_handler(CHAT, handlers.settle_then_report_failed(
            status_code=status_code))
        tab = PaymentTab("s", "chat", CHAT, model="m")
        signed_before = x402_upstream.count(path=CHAT, paid=True)
        if status_code == 402:
            with pytest.raises(PaymentUnconfirmed, match="may still have been settled"):
                await client.request("POST", CHAT, body=chat_body(), price_key="m", tab=tab)
        else:
            response, _ = await client.request("POST", CHAT, body=chat_body(), price_key="m",
                                               tab=tab)
            assert response.payment.status == "unconfirmed"
    assert x402_upstream.count(path=CHAT, paid=True) - signed_before == 1
    assert len(x402_upstream.ledger.settlements) == 2  # one per request
    [(model, record)] = tab.rest()
    assert (model, record.status, record.amount_usd) == ("m", "unconfirmed", 0.001)
    assert record.nonce == x402_upstream.ledger.settlements[-1].nonce
    assert tab.spent_usd() == 0.001


async def test_payment_statuses_follow_the_answer(x402_upstream, funded_wallet_key):
    """settled (with the ledger's transaction hash), refused when the upstream answered an
    error without settling: each signed payment is on the tab with its nonce."""
    from clawrouter_plugin.payment.tab import PaymentTab

    tab = PaymentTab("s", "forward", "/v1/x")
    async with client_for(x402_upstream, funded_wallet_key, preauth=False) as client:
        await client.request("POST", CHAT, body=chat_body(), tab=tab)
        x402_upstream.set_handler(CHAT, handlers.status(503))
        response, _ = await client.request("POST", CHAT, body=chat_body(), tab=tab)
    assert response.status == 503 and response.payment is None
    [settled] = x402_upstream.ledger.settlements
    (_, first), (_, second) = tab.rest()
    assert (first.status, first.transaction, first.nonce) == \
        ("settled", settled.transaction, settled.nonce)
    assert second.status == "refused" and second.transaction is None
    assert tab.spent_usd() == 0.001
