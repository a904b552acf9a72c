"""Time per x402 payment signature (libsecp256k1 through coincurve).

Run: ``.venv/bin/python bench/bench_sign.py [--count N]``. Each iteration builds one complete
``PAYMENT-SIGNATURE`` header (fresh nonce, EIP-712 digest, ECDSA signature, base64 JSON),
exactly what the client does per paid request. The signatures are checked by recovering the
signer with eth-account.
"""

from __future__ import annotations

import argparse
import base64
import json
import secrets
import statistics
import time

from eth_account import Account
from eth_account.messages import encode_typed_data

from clawrouter_plugin.config import BASE_USDC
from clawrouter_plugin.payment import Wallet
from clawrouter_plugin.payment.signer import sign_payment
from clawrouter_plugin.payment.wire import encode_header, parse_payment_required

REQUIRED = {"x402Version": 2, "resource": {"url": "https://blockrun.ai/api/v1/chat/completions"},
            "accepts": [{"scheme": "exact", "network": "eip155:8453", "asset": BASE_USDC,
                         "amount": "1000", "payTo": "0x" + "be" * 20, "maxTimeoutSeconds": 300,
                         "extra": {"name": "USD Coin", "version": "2"}}]}


def _check(wallet: Wallet, header: str) -> None:
    payload = json.loads(base64.b64decode(header))["payload"]
    auth = payload["authorization"]
    typed = {
        "types": {"EIP712Domain": [{"name": "name", "type": "string"},
                                   {"name": "version", "type": "string"},
                                   {"name": "chainId", "type": "uint256"},
                                   {"name": "verifyingContract", "type": "address"}],
                  "TransferWithAuthorization": [
                      {"name": n, "type": t} for n, t in (
                          ("from", "address"), ("to", "address"), ("value", "uint256"),
                          ("validAfter", "uint256"), ("validBefore", "uint256"),
                          ("nonce", "bytes32"))]},
        "primaryType": "TransferWithAuthorization",
        "domain": {"name": "USD Coin", "version": "2", "chainId": 8453,
                   "verifyingContract": BASE_USDC},
        "message": {**auth, "value": int(auth["value"]), "validAfter": int(auth["validAfter"]),
                    "validBefore": int(auth["validBefore"]),
                    "nonce": bytes.fromhex(auth["nonce"][2:])}}
    signer = Account.recover_message(encode_typed_data(full_message=typed),
                                     signature=bytes.fromhex(payload["signature"][2:]))
    assert signer == wallet.address, "bad signature"


def bench(count: int) -> list[float]:
    """Per-signature times in milliseconds."""
    wallet = Wallet.from_private_key("0x" + secrets.token_hex(32))
    required = parse_payment_required({"PAYMENT-REQUIRED": encode_header(REQUIRED)}, b"")
    req = required.accepts[0]
    _check(wallet, sign_payment(wallet, required, req).header_value)
    for _ in range(min(count, 20)):  # warm-up
        sign_payment(wallet, required, req)
    times = []
    for _ in range(count):
        started = time.perf_counter()
        sign_payment(wallet, required, req)
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=2000)
    args = parser.parse_args()
    times = sorted(bench(args.count))
    print(f"n={args.count}  mean {statistics.fmean(times):.3f} ms  "
          f"p50 {times[len(times) // 2]:.3f} ms  p99 {times[int(len(times) * 0.99)]:.3f} ms")


if __name__ == "__main__":
    main()
