"""EVM primitives checked against independent code (eth-utils, eth-keys, eth-account)."""

import secrets

import pytest
from eth_account import Account
from eth_keys import keys
from eth_utils import keccak, to_checksum_address

from clawrouter_plugin.payment.evm import PrivateKey, checksum_address, keccak256

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def test_keccak_is_ethereums_not_sha3():
    assert keccak256(b"").hex() == (
        "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")
    for _ in range(20):
        data = secrets.token_bytes(secrets.randbelow(200))
        assert keccak256(data) == keccak(data)


def test_checksum_addresses_match_eip55():
    for _ in range(50):
        address = "0x" + secrets.token_hex(20)
        assert checksum_address(address) == to_checksum_address(address)
        assert checksum_address(address.upper().replace("0X", "0x")) == to_checksum_address(address)


@pytest.mark.parametrize("bad", ["", "0x", "0x123", "0x" + "g" * 40, "12" * 21, "0x" + "a" * 41])
def test_malformed_addresses_are_refused(bad):
    with pytest.raises(ValueError):
        checksum_address(bad)


def test_keys_give_the_same_address_and_recoverable_signatures():
    for _ in range(10):
        secret = secrets.token_bytes(32)
        key = PrivateKey(secret)
        assert key.address == Account.from_key(secret).address
        digest = secrets.token_bytes(32)
        signature = key.sign_digest(digest)
        assert len(signature) == 65 and signature[64] in (27, 28)
        assert int.from_bytes(signature[32:64], "big") <= SECP256K1_N // 2  # low s (EIP-2)
        recovered = keys.Signature(signature[:64] + bytes([signature[64] - 27]))
        assert recovered.recover_public_key_from_msg_hash(digest).to_checksum_address() == key.address
        assert repr(key) == f"PrivateKey(address={key.address})" and secret.hex() not in repr(key)
