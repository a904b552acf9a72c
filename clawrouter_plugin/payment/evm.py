"""The few EVM primitives payments need: keccak-256, EIP-55 addresses, secp256k1 keys.

Built on coincurve (libsecp256k1) and pycryptodome's keccak directly: eth-keys and eth-utils
would do the same but take ~0.12 s to import, an eighth of the proxy's 1 s start-up budget.
Every signature is checked against eth-account and the official x402 SDK in the tests.
"""

from __future__ import annotations

from functools import lru_cache

import coincurve
from Crypto.Hash import keccak as _keccak


def keccak256(data: bytes) -> bytes:
    """Ethereum's keccak-256 (not the standardised SHA3-256)."""
    return _keccak.new(digest_bits=256, data=data).digest()


@lru_cache(maxsize=256)  # payTo and asset addresses repeat on every payment
def checksum_address(address: str) -> str:
    """``address`` (``0x`` + 40 hex digits, any case) in EIP-55 mixed-case form."""
    digits = address[2:].lower() if address[:2] in ("0x", "0X") else ""
    if len(digits) != 40 or digits.strip("0123456789abcdef"):
        raise ValueError(f"not an EVM address: {address!r}")
    hashed = keccak256(digits.encode("ascii")).hex()
    return "0x" + "".join(c.upper() if h in "89abcdef" else c for c, h in zip(digits, hashed))


class PrivateKey:
    """A secp256k1 private key: its address, and recoverable signatures of digests."""

    __slots__ = ("_key", "address")

    def __init__(self, secret: bytes) -> None:
        self._key = coincurve.PrivateKey(secret)
        public = self._key.public_key.format(compressed=False)[1:]  # 64 bytes, no 0x04 prefix
        self.address = checksum_address("0x" + keccak256(public)[-20:].hex())

    def sign_digest(self, digest: bytes) -> bytes:
        """65-byte ``r || s || v`` signature (v = 27/28, low s) of a 32-byte digest."""
        if len(digest) != 32:
            raise ValueError("a digest is 32 bytes")
        signature = self._key.sign_recoverable(digest, hasher=None)
        return signature[:64] + bytes([signature[64] + 27])

    def secret(self) -> bytes:
        return self._key.secret

    def __repr__(self) -> str:
        return f"PrivateKey(address={self.address})"
