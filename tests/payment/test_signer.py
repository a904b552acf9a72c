"""EIP-712 TransferWithAuthorization: our digest/signature against eth-account's own encoder."""

from __future__ import annotations

import base64
import json
import time

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

from clawrouter_plugin.errors import PaymentRefused
from clawrouter_plugin.payment import Wallet
from clawrouter_plugin.payment.signer import chain_id, sign_payment
from clawrouter_plugin.payment.wire import parse_payment_required

from .test_refusals import USDC, _b64, _entry, _required

KEY = "0x" + "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"


def _typed(auth: dict) -> dict:
    return {
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"},
                             {"name": "version", "type": "string"},
                             {"name": "chainId", "type": "uint256"},
                             {"name": "verifyingContract", "type": "address"}],
            "TransferWithAuthorization": [
                {"name": "from", "type": "address"}, {"name": "to", "type": "address"},
                {"name": "value", "type": "uint256"}, {"name": "validAfter", "type": "uint256"},
                {"name": "validBefore", "type": "uint256"}, {"name": "nonce", "type": "bytes32"}],
        },
        "primaryType": "TransferWithAuthorization",
        "domain": {"name": "USD Coin", "version": "2", "chainId": 8453,
                   "verifyingContract": USDC},
        "message": {"from": auth["from"], "to": auth["to"], "value": int(auth["value"]),
                    "validAfter": int(auth["validAfter"]),
                    "validBefore": int(auth["validBefore"]),
                    "nonce": bytes.fromhex(auth["nonce"][2:])},
    }


def _sign(required_json, now=None):
    required = parse_payment_required({"PAYMENT-REQUIRED": _b64(required_json)}, b"")
    signed = sign_payment(Wallet.from_private_key(KEY), required, required.accepts[0], now=now)
    return signed, json.loads(base64.b64decode(signed.header_value))


def test_signature_matches_eth_account_sign_typed_data():
    signed, payload = _sign(_required(_entry()))
    auth = payload["payload"]["authorization"]
    expected = Account.sign_message(encode_typed_data(full_message=_typed(auth)), KEY)
    assert payload["payload"]["signature"] == "0x" + expected.signature.hex()
    recovered = Account.recover_message(encode_typed_data(full_message=_typed(auth)),
                                        signature=bytes.fromhex(payload["payload"]["signature"][2:]))
    assert recovered == Account.from_key(KEY).address == auth["from"]


def test_window_nonce_and_v2_payload_shape():
    now = int(time.time())
    entry = _entry(payTo="0x000000000000000000000000000000000000beef", maxTimeoutSeconds=120)
    required = dict(_required(entry), extensions={"ext": {"info": 1}})
    signed, payload = _sign(required, now=now)
    auth = payload["payload"]["authorization"]
    assert signed.header_name == "PAYMENT-SIGNATURE"
    assert auth["validAfter"] == str(now - 600) and auth["validBefore"] == str(now + 120)
    assert auth["to"] == "0x000000000000000000000000000000000000bEEF"  # checksummed
    assert auth["value"] == "1000" and len(bytes.fromhex(auth["nonce"][2:])) == 32
    assert payload["x402Version"] == 2 and payload["accepted"] == entry  # verbatim
    assert payload["resource"] == required["resource"]
    assert payload["extensions"] == {"ext": {"info": 1}}
    assert len(bytes.fromhex(payload["payload"]["signature"][2:])) == 65


def test_every_signature_has_a_fresh_nonce():
    nonces = {_sign(_required(_entry()))[0].nonce for _ in range(50)}
    assert len(nonces) == 50


def test_v1_payload_shape():
    body = json.dumps({"x402Version": 1, "accepts": [{
        "scheme": "exact", "network": "base", "maxAmountRequired": "2500", "resource": "r",
        "payTo": "0x000000000000000000000000000000000000bEEF", "maxTimeoutSeconds": 60,
        "asset": USDC, "extra": {"name": "USD Coin", "version": "2"}}]}).encode()
    required = parse_payment_required({}, body)
    signed = sign_payment(Wallet.from_private_key(KEY), required, required.accepts[0])
    payload = json.loads(base64.b64decode(signed.header_value))
    assert signed.header_name == "X-PAYMENT"
    assert (payload["x402Version"], payload["scheme"], payload["network"]) == (1, "exact", "base")
    assert payload["payload"]["authorization"]["value"] == "2500"
    assert required.accepts[0].network == "eip155:8453"


@pytest.mark.parametrize("network", ["eip155:²", "eip155:" + "9" * 5000, "solana:1", "eip155:"])
def test_a_network_that_is_no_evm_chain_id_is_refused(network):
    with pytest.raises(PaymentRefused, match="not an EVM chain"):
        chain_id(network)
