"""The payment wallet: load, generate, export and recover. The key never leaves this object.

Files in the data directory (both mode 0600, folder 0700):

- ``wallet.key``: ``0x`` + 64 hex characters (a BIP-39 phrase is accepted too);
- ``mnemonic``: the recovery phrase of a generated or recovered wallet.

Resolution order: ``wallet.key``, else a lone ``mnemonic`` file, else ``$BLOCKRUN_WALLET_KEY``,
else a new 24-word wallet is generated and saved. A corrupt or unreadable file is an error,
never replaced.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import WalletError
from . import keystore
from .evm import PrivateKey

log = logging.getLogger(__name__)

KEY_FILE = "wallet.key"
MNEMONIC_FILE = "mnemonic"
ENV_KEY = "BLOCKRUN_WALLET_KEY"
MNEMONIC_WORDS = 24
_HEX_KEY = re.compile(r"(0x)?[0-9a-fA-F]{64}")
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141



def _hd_account() -> Any:
    """eth-account's ``Account`` with BIP-39 support, imported only when a phrase is used.

    eth-account pulls in heavy modules (about 1 s to import here); loading a hex key does not
    need it, which keeps ``clawrouter serve`` ready in well under a second.
    """
    from eth_account import Account

    Account.enable_unaudited_hdwallet_features()
    return Account


class Wallet:
    """An EVM account that can sign payment digests. ``repr``/``str`` show only the address."""

    __slots__ = ("address", "key_path", "source", "_key")

    def __init__(self, private_key: PrivateKey, *, source: str, key_path: Path | None):
        self._key = private_key
        self.address: str = private_key.address
        self.source = source
        self.key_path = key_path

    @classmethod
    def from_private_key(cls, key: str | bytes, *, source: str = "env",
                         key_path: Path | None = None) -> Wallet:
        """A wallet from a raw or ``0x``-hex key."""
        raw = key if isinstance(key, bytes) else _parse_hex_key(key, "private key")
        return cls(PrivateKey(raw), source=source, key_path=key_path)

    def sign_digest(self, digest: bytes) -> bytes:
        """65-byte ``r || s || v`` signature (v = 27/28) of a 32-byte digest."""
        return self._key.sign_digest(digest)

    def _private_hex(self) -> str:
        return "0x" + self._key.secret().hex()

    def __repr__(self) -> str:
        return f"Wallet(address={self.address}, source={self.source})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("a Wallet cannot be pickled")


def _parse_hex_key(text: str, what: str) -> bytes:
    if not _HEX_KEY.fullmatch(text):
        raise WalletError(f"{what} is not valid: expected 0x followed by 64 hex characters")
    raw = bytes.fromhex(text.removeprefix("0x"))
    if not 0 < int.from_bytes(raw, "big") < _SECP256K1_N:
        raise WalletError(f"{what} is not valid: out of the secp256k1 range")
    return raw


def _normalize_phrase(phrase: str) -> str:
    return " ".join(phrase.lower().split())


def _key_from_phrase(phrase: str, what: str) -> bytes:
    words = _normalize_phrase(phrase)
    try:
        account = _hd_account().from_mnemonic(words)
    except Exception:  # its message quotes the words: raise below, not with it as __context__
        account = None
    if account is None:
        raise WalletError(
            f"{what} is not a valid BIP-39 recovery phrase ({len(words.split())} words); "
            "check the words and their order")
    return bytes(account.key)


def _parse_secret(text: str, path: Path) -> bytes:
    """A private key from file content: hex key or recovery phrase."""
    if _HEX_KEY.fullmatch(text):
        return _parse_hex_key(text, f"the key in {path}")
    if len(text.split()) in (12, 15, 18, 21, 24):
        return _key_from_phrase(text, f"the phrase in {path}")
    raise WalletError(
        f"the wallet file {path} is corrupt: expected 0x + 64 hex characters or a BIP-39 "
        "recovery phrase. It was left untouched; restore it from your backup or move it away "
        "(a new wallet will then be generated)")


def _load_saved(data_dir: Path) -> Wallet | None:
    for name in (KEY_FILE, MNEMONIC_FILE):
        path = data_dir / name
        text = keystore.read_private(path)
        if text is None:
            continue
        if not text:
            raise WalletError(f"the wallet file {path} is empty; it was left untouched")
        return Wallet.from_private_key(_parse_secret(text, path), source="file", key_path=path)
    return None


def env_wallet(env: Mapping[str, str]) -> Wallet | None:
    """The wallet of ``$BLOCKRUN_WALLET_KEY`` in ``env``, None if unset; WalletError if invalid."""
    text = env.get(ENV_KEY, "").strip()
    if not text:
        return None
    return Wallet.from_private_key(_parse_hex_key(text, f"${ENV_KEY}"), source="env")


def load_or_create_wallet(data_dir: Path, *, env: Mapping[str, str] | None = None) -> Wallet:
    """The saved wallet, else ``$BLOCKRUN_WALLET_KEY``, else a newly generated saved wallet."""
    data_dir = Path(data_dir).expanduser()
    env = os.environ if env is None else env
    wallet = _load_saved(data_dir)
    if wallet is None:
        wallet = env_wallet(env)
    if wallet is None:
        wallet = _generate(data_dir)
    log.info("wallet %s (from %s)", wallet.address,
             wallet.key_path if wallet.key_path else wallet.source)
    return wallet


def _generate(data_dir: Path) -> Wallet:
    account, phrase = _hd_account().create_with_mnemonic(num_words=MNEMONIC_WORDS)
    key_path = data_dir / KEY_FILE
    if not keystore.write_private(data_dir / MNEMONIC_FILE, phrase, replace=False):
        existing = _load_saved(data_dir)  # another process just created a wallet
        if existing is not None:
            return existing
    if not keystore.write_private(key_path, "0x" + bytes(account.key).hex(), replace=False):
        existing = _load_saved(data_dir)
        if existing is not None:
            return existing
        # never hand out a wallet that is not saved: funds sent to it would be lost
        raise WalletError(f"could not save a new wallet in {data_dir}: {key_path} is in the way")
    log.warning("generated a new wallet %s; fund it with USDC on Base and back up %s",
                account.address, data_dir / MNEMONIC_FILE)
    return Wallet.from_private_key(bytes(account.key), source="generated", key_path=key_path)


def export_wallet(data_dir: Path) -> dict:
    """The saved wallet's secrets (only for an explicit export request)."""
    data_dir = Path(data_dir).expanduser()
    wallet = _load_saved(data_dir)
    if wallet is None:
        raise WalletError(
            f"no wallet is saved in {data_dir} (a key given through ${ENV_KEY} is not stored; "
            "you already hold it)")
    phrase = keystore.read_private(data_dir / MNEMONIC_FILE)
    mnemonic = None
    if phrase:
        try:
            matches = Wallet.from_private_key(_key_from_phrase(phrase, "")).address
        except WalletError:
            matches = None
        mnemonic = _normalize_phrase(phrase) if matches == wallet.address else None
    return {"address": wallet.address, "private_key": wallet._private_hex(),
            "mnemonic": mnemonic, "key_path": str(wallet.key_path)}


def recover_wallet(data_dir: Path, mnemonic: str, *, force: bool = False) -> Wallet:
    """Save the wallet of a recovery phrase; a different saved wallet needs ``force``.

    With ``force`` the previous files are kept as ``*.bak-<timestamp>``, never deleted.
    """
    data_dir = Path(data_dir).expanduser()
    raw = _key_from_phrase(mnemonic, "the given phrase")
    recovered = Wallet.from_private_key(raw, source="file", key_path=data_dir / KEY_FILE)
    try:
        existing = _load_saved(data_dir)
        problem = None
    except WalletError as exc:
        existing, problem = None, exc.message
    if problem is not None or (existing is not None and existing.address != recovered.address):
        what = problem or f"a different wallet ({existing.address}) is saved in {data_dir}"
        if not force:
            raise WalletError(f"{what}; recovering would replace it. Back it up first "
                              "(clawrouter wallet export), then re-run with --force")
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for name in (KEY_FILE, MNEMONIC_FILE):
            moved = keystore.backup(data_dir / name, stamp)
            if moved is not None:
                log.warning("kept the previous wallet file as %s", moved)
    keystore.write_private(data_dir / MNEMONIC_FILE, _normalize_phrase(mnemonic), replace=True)
    keystore.write_private(data_dir / KEY_FILE, recovered._private_hex(), replace=True)
    log.info("recovered wallet %s into %s", recovered.address, data_dir / KEY_FILE)
    return recovered
