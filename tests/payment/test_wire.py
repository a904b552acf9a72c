"""Wire helpers: header codec, failure reasons, insufficient-funds recognition."""

from __future__ import annotations

import json

import pytest

from clawrouter_plugin.payment import is_insufficient_funds
from clawrouter_plugin.payment.wire import (
    WireError,
    decode_header,
    encode_header,
    failure_reason,
    parse_settlement,
)


def test_header_round_trip_and_urlsafe_unpadded():
    value = {"x402Version": 2, "a": "é/+?"}
    encoded = encode_header(value)
    assert decode_header(encoded, "H") == value
    urlsafe = encoded.replace("+", "-").replace("/", "_").rstrip("=")
    assert decode_header(urlsafe, "H") == value


@pytest.mark.parametrize("bad", ["", "x" * 70000, "@@@@"])
def test_bad_headers(bad):
    with pytest.raises(WireError):
        decode_header(bad, "H")


def test_settlement_header():
    ok = {"success": True, "transaction": "0xabc", "network": "eip155:8453"}
    assert parse_settlement({"PAYMENT-RESPONSE": encode_header(ok)}) == ok
    assert parse_settlement({"X-PAYMENT-RESPONSE": encode_header(ok)}) == ok
    assert parse_settlement({"PAYMENT-RESPONSE": "garbage!"}) is None
    assert parse_settlement({}) is None


BLOCKRUN_UNFUNDED = json.dumps({
    "error": "Payment verification failed",
    "details": 'Verification failed: {"isValid":false,"invalidReason":"insufficient_funds",'
               '"invalidMessage":"insufficient balance: 0 < 1000"}\n'}).encode()


@pytest.mark.parametrize("headers, body, insufficient", [
    ({}, BLOCKRUN_UNFUNDED, True),
    ({"PAYMENT-REQUIRED": encode_header(
        {"x402Version": 2, "error": "invalid_exact_evm_insufficient_balance", "accepts": []})},
     b"{}", True),
    ({"PAYMENT-RESPONSE": encode_header(
        {"success": False, "errorReason": "invalid_exact_evm_insufficient_balance"})}, b"", True),
    ({}, b'{"error": "Payment verification failed", "details": "invalid_payload"}', False),
    ({"PAYMENT-REQUIRED": encode_header(
        {"x402Version": 2, "error": "invalid_exact_evm_payload_signature"})}, b"{}", False),
    ({}, b"plain text failure", False),
])
def test_failure_reasons(headers, body, insufficient):
    reason = failure_reason(headers, body)
    assert reason
    assert is_insufficient_funds(reason) is insufficient
