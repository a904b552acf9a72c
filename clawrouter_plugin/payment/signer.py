"""EIP-3009 ``TransferWithAuthorization`` signing (EIP-712), one fresh nonce per signature.

The digest is built directly (type hashes and the domain separator are constant per token),
then signed with libsecp256k1 through coincurve (~0.3 ms per signature).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ..errors import PaymentRefused
from .evm import checksum_address as _checksum
from .evm import keccak256 as keccak
from .policy import domain_of
from .wallet import Wallet
from .wire import (
    SIGNATURE_HEADER,
    V1_SIGNATURE_HEADER,
    PaymentRequired,
    Requirement,
    encode_header,
)

VALID_AFTER_SKEW = 600  # validAfter = now - 600, tolerating clock skew (as @x402/evm 2.7.0)
_DOMAIN_TYPEHASH = keccak(
    b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
_TRANSFER_TYPEHASH = keccak(
    b"TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,"
    b"uint256 validBefore,bytes32 nonce)")


@dataclass(frozen=True)
class SignedPayment:
    """A payment for exactly one HTTP request: the header to send and what it pays."""

    header_name: str
    header_value: str
    requirement: Requirement
    nonce: str
    valid_before: int


def chain_id(network: str) -> int:
    """8453 from ``eip155:8453``."""
    prefix, _, number = network.partition(":")
    if prefix != "eip155" or not (number.isascii() and number.isdigit()) or len(number) > 20:
        raise PaymentRefused(f"payment refused: network {network!r} is not an EVM chain")
    return int(number)


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _address_word(address: str) -> bytes:
    return bytes(12) + bytes.fromhex(address[2:])


@lru_cache(maxsize=64)
def domain_separator(name: str, version: str, chain: int, contract: str) -> bytes:
    """keccak of the EIP-712 domain ``{name, version, chainId, verifyingContract}``."""
    return keccak(_DOMAIN_TYPEHASH + keccak(name.encode()) + keccak(version.encode())
                  + _word(chain) + _address_word(contract))


def authorization_digest(separator: bytes, authorization: dict[str, str]) -> bytes:
    """EIP-712 digest of a TransferWithAuthorization message (decimal-string numbers)."""
    struct = keccak(
        _TRANSFER_TYPEHASH + _address_word(authorization["from"])
        + _address_word(authorization["to"]) + _word(int(authorization["value"]))
        + _word(int(authorization["validAfter"])) + _word(int(authorization["validBefore"]))
        + bytes.fromhex(authorization["nonce"][2:]))
    return keccak(b"\x19\x01" + separator + struct)


def valid_before(req: Requirement, now: int) -> int:
    """The validBefore (Unix time) of a payment for ``req`` signed at ``now``: after it, the
    authorization can no longer move money."""
    return now + req.max_timeout_seconds


def sign_payment(wallet: Wallet, required: PaymentRequired, req: Requirement, *,
                 now: int | None = None) -> SignedPayment:
    """Sign ``req`` (already allowed by the policy) with a fresh 32-byte nonce."""
    domain = domain_of(req)
    if domain is None:  # the policy refuses this first; kept as a guard
        raise PaymentRefused("payment refused: unknown EIP-712 domain")
    now = int(time.time()) if now is None else now
    until = valid_before(req, now)
    authorization = {
        "from": wallet.address,
        "to": _checksum(req.pay_to),
        "value": str(req.amount),
        "validAfter": str(max(0, now - VALID_AFTER_SKEW)),
        "validBefore": str(until),
        "nonce": "0x" + secrets.token_bytes(32).hex(),
    }
    separator = domain_separator(domain[0], domain[1], chain_id(req.network),
                                 _checksum(req.asset))
    signature = wallet.sign_digest(authorization_digest(separator, authorization))
    inner = {"authorization": authorization, "signature": "0x" + signature.hex()}
    if required.version == 1:
        payload: dict[str, Any] = {"x402Version": 1, "scheme": req.scheme,
                                   "network": req.wire_network, "payload": inner}
        name = V1_SIGNATURE_HEADER
    else:
        payload = {"x402Version": 2, "payload": inner, "accepted": dict(req.raw)}
        if required.resource is not None:
            payload["resource"] = dict(required.resource)
        if required.extensions:
            payload["extensions"] = dict(required.extensions)
        name = SIGNATURE_HEADER
    return SignedPayment(name, encode_header(payload), req, authorization["nonce"], until)
