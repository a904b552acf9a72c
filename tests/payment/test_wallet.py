"""Wallet files: resolution order, permissions, corrupt files, export and recover."""

from __future__ import annotations

import os
import pickle
import stat
import threading

import pytest
from eth_account import Account

from clawrouter_plugin.errors import WalletError
from clawrouter_plugin.payment import export_wallet, load_or_create_wallet, recover_wallet

# BIP-39 test vectors (public, never funded)
PHRASE = "abandon " * 11 + "about"
PHRASE_ADDRESS = "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"
OTHER_PHRASE = "legal winner thank year wave sausage worth useful legal winner thank yellow"
KEY = "0x" + "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
KEY_ADDRESS = Account.from_key(KEY).address


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_generated_wallet_is_saved_private(tmp_path):
    data_dir = tmp_path / "new" / "blockrun"
    wallet = load_or_create_wallet(data_dir, env={})
    assert wallet.source == "generated" and wallet.key_path == data_dir / "wallet.key"
    assert _mode(data_dir) == 0o700
    assert _mode(data_dir / "wallet.key") == 0o600 and _mode(data_dir / "mnemonic") == 0o600
    phrase = (data_dir / "mnemonic").read_text().strip()
    assert len(phrase.split()) == 24
    assert Account.from_mnemonic(phrase).address == wallet.address
    assert not [p for p in data_dir.iterdir() if p.name.endswith(".tmp")]
    again = load_or_create_wallet(data_dir, env={})
    assert again.address == wallet.address and again.source == "file"


def test_file_wins_over_env_and_env_over_generation(tmp_path):
    env = {"BLOCKRUN_WALLET_KEY": KEY}
    from_env = load_or_create_wallet(tmp_path, env=env)
    assert from_env.source == "env" and from_env.key_path is None
    assert from_env.address == KEY_ADDRESS
    assert not (tmp_path / "wallet.key").exists()
    (tmp_path / "wallet.key").write_text(PHRASE + "\n")
    from_file = load_or_create_wallet(tmp_path, env=env)
    assert from_file.source == "file" and from_file.address == PHRASE_ADDRESS


@pytest.mark.parametrize("content", [KEY, KEY[2:], KEY.upper().replace("0X", "0x"),
                                     "  " + PHRASE.upper() + "  \n"])
def test_key_file_accepts_hex_or_phrase(tmp_path, content):
    (tmp_path / "wallet.key").write_text(content)
    expected = PHRASE_ADDRESS if "ABANDON" in content else KEY_ADDRESS
    assert load_or_create_wallet(tmp_path, env={}).address == expected


def test_lone_mnemonic_file_is_used_not_replaced(tmp_path):
    (tmp_path / "mnemonic").write_text(PHRASE)
    wallet = load_or_create_wallet(tmp_path, env={})
    assert wallet.address == PHRASE_ADDRESS and wallet.source == "file"


@pytest.mark.parametrize("content, expect", [
    (b"0x1234", "is corrupt"),
    (b"not a key at all", "is corrupt"),
    (b"\xff\xfe\x00garbage", "not text"),
    (b"", "is empty"),
    (b"0x" + b"0" * 64, "out of the secp256k1 range"),
    (("abandon " * 12).encode(), "not a valid BIP-39 recovery phrase"),
    (b"x" * 10000, "too large"),
])
def test_corrupt_key_file_is_a_clear_error_and_untouched(tmp_path, content, expect):
    path = tmp_path / "wallet.key"
    path.write_bytes(content)
    before = (path.read_bytes(), os.stat(path).st_mtime_ns)
    with pytest.raises(WalletError) as caught:
        load_or_create_wallet(tmp_path, env={"BLOCKRUN_WALLET_KEY": KEY})
    assert expect in caught.value.message and str(path) in caught.value.message
    assert (path.read_bytes(), os.stat(path).st_mtime_ns) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wallet.key"]


def test_unreadable_key_file_is_an_error(tmp_path):
    (tmp_path / "wallet.key").mkdir()
    with pytest.raises(WalletError, match="not a regular file"):
        load_or_create_wallet(tmp_path, env={})


def test_loose_permissions_are_tightened(tmp_path):
    path = tmp_path / "wallet.key"
    path.write_text(KEY)
    path.chmod(0o644)
    load_or_create_wallet(tmp_path, env={})
    assert _mode(path) == 0o600


def test_bad_env_key_is_an_error_without_the_value(tmp_path):
    secret = "0x" + "ab" * 31
    with pytest.raises(WalletError) as caught:
        load_or_create_wallet(tmp_path, env={"BLOCKRUN_WALLET_KEY": secret})
    assert "BLOCKRUN_WALLET_KEY" in caught.value.message
    assert "ab" * 31 not in caught.value.message
    assert not (tmp_path / "wallet.key").exists()


def test_concurrent_first_runs_end_with_one_wallet(tmp_path):
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(
        load_or_create_wallet(tmp_path, env={}).address)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == 6 and len(set(results)) == 1
    assert load_or_create_wallet(tmp_path, env={}).address == results[0]


def test_repr_and_pickle_never_show_the_key(tmp_path):
    (tmp_path / "wallet.key").write_text(KEY)
    wallet = load_or_create_wallet(tmp_path, env={})
    assert repr(wallet) == str(wallet) == f"Wallet(address={KEY_ADDRESS}, source=file)"
    with pytest.raises(TypeError):
        pickle.dumps(wallet)


def test_export(tmp_path):
    wallet = load_or_create_wallet(tmp_path, env={})
    exported = export_wallet(tmp_path)
    assert exported["address"] == wallet.address
    assert Account.from_key(exported["private_key"]).address == wallet.address
    assert Account.from_mnemonic(exported["mnemonic"]).address == wallet.address
    assert exported["key_path"] == str(tmp_path / "wallet.key")


def test_export_without_matching_phrase_and_without_wallet(tmp_path):
    (tmp_path / "wallet.key").write_text(KEY)
    (tmp_path / "mnemonic").write_text(PHRASE)  # belongs to another wallet
    assert export_wallet(tmp_path)["mnemonic"] is None
    with pytest.raises(WalletError, match="no wallet is saved"):
        export_wallet(tmp_path / "empty")


def test_recover_into_an_empty_folder(tmp_path):
    wallet = recover_wallet(tmp_path / "d", "  " + PHRASE.replace(" ", "   ") + "\n")
    assert wallet.address == PHRASE_ADDRESS
    assert load_or_create_wallet(tmp_path / "d", env={}).address == PHRASE_ADDRESS
    assert (tmp_path / "d" / "mnemonic").read_text().strip() == PHRASE
    assert _mode(tmp_path / "d" / "wallet.key") == 0o600


def test_recover_refuses_a_different_wallet_without_force(tmp_path):
    recover_wallet(tmp_path, PHRASE)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(WalletError) as caught:
        recover_wallet(tmp_path, OTHER_PHRASE)
    assert PHRASE_ADDRESS in caught.value.message and "--force" in caught.value.message
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    recover_wallet(tmp_path, PHRASE)  # the same wallet again is fine


def test_recover_with_force_keeps_backups(tmp_path):
    recover_wallet(tmp_path, PHRASE)
    old_key = (tmp_path / "wallet.key").read_text()
    wallet = recover_wallet(tmp_path, OTHER_PHRASE, force=True)
    assert wallet.address == Account.from_mnemonic(OTHER_PHRASE).address
    backups = sorted(p for p in tmp_path.iterdir() if ".bak-" in p.name)
    assert [p.name.split(".bak-")[0] for p in backups] == ["mnemonic", "wallet.key"]
    assert any(p.read_text() == old_key for p in backups)
    assert all(_mode(p) == 0o600 for p in backups)


def test_recover_over_a_corrupt_file_needs_force(tmp_path):
    (tmp_path / "wallet.key").write_text("garbage")
    with pytest.raises(WalletError, match="is corrupt"):
        recover_wallet(tmp_path, PHRASE)
    assert (tmp_path / "wallet.key").read_text() == "garbage"
    recover_wallet(tmp_path, PHRASE, force=True)
    assert load_or_create_wallet(tmp_path, env={}).address == PHRASE_ADDRESS


def test_invalid_phrase_is_refused_without_echoing_it(tmp_path):
    words = "zebra " * 12
    with pytest.raises(WalletError) as caught:
        recover_wallet(tmp_path, words)
    assert "zebra" not in caught.value.message and "12 words" in caught.value.message
    assert not (tmp_path / "wallet.key").exists()
