"""``clawrouter wallet`` status, export and recover."""

from __future__ import annotations

import asyncio
import io

import pytest
from eth_account import Account

from clawrouter_plugin.cli import main
from tests.support.jsonrpc import JsonRpcTestServer

PHRASE = "legal winner thank year wave sausage worth useful legal winner thank yellow"
Account.enable_unaudited_hdwallet_features()
ADDRESS = Account.from_mnemonic(PHRASE).address


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("BLOCKRUN_WALLET_KEY", raising=False)
    monkeypatch.delenv("CLAWROUTER_HOME", raising=False)
    monkeypatch.delenv("OPENCLAW_CONFIG", raising=False)
    return tmp_path


def _config(home, rpc_url: str) -> str:
    path = home / "openclaw.yaml"
    path.write_text("plugins:\n  - id: clawrouter\n    config:\n      payment:\n"
                    f"        rpcUrl: {rpc_url}\n")
    return str(path)


async def test_status_shows_address_balance_and_key_file(home, capsys):
    async with JsonRpcTestServer() as rpc:
        rpc.ledger.fund(ADDRESS, 3.5)
        data = home / "data"
        assert main(["wallet", "recover", PHRASE, "--data-dir", str(data)]) == 0
        code = await asyncio.to_thread(main, ["wallet", "--config", _config(home, rpc.url),
                                              "--data-dir", str(data)])
    out = capsys.readouterr().out
    assert code == 0
    assert ADDRESS in out and "$3.50" in out and str(data / "wallet.key") in out
    assert "Base (eip155:8453)" in out


def test_status_with_unreachable_rpc_says_unknown(home, capsys, unused_tcp_port):
    config = _config(home, f"http://127.0.0.1:{unused_tcp_port}/")
    assert main(["wallet", "--config", config, "--data-dir", str(home / "d")]) == 0
    out = capsys.readouterr().out
    assert "Balance:  unknown" in out and "A new wallet was just created" in out
    assert (home / "d" / "wallet.key").exists()
    assert not (home / "home").exists()  # nothing written under ~


def test_export_and_recover_round_trip(home, capsys, monkeypatch):
    assert main(["wallet", "recover", PHRASE, "--data-dir", str(home / "a")]) == 0
    assert main(["wallet", "export", "--data-dir", str(home / "a")]) == 0
    captured = capsys.readouterr()
    assert "WARNING" in captured.err and PHRASE in captured.out and ADDRESS in captured.out
    monkeypatch.setattr("sys.stdin", io.StringIO(PHRASE + "\n"))
    assert main(["wallet", "recover", "--data-dir", str(home / "b")]) == 0
    assert ADDRESS in capsys.readouterr().out


def test_recover_refusal_is_a_clean_error(home, capsys):
    data = str(home / "c")
    assert main(["wallet", "recover", PHRASE, "--data-dir", data]) == 0
    other = "abandon " * 11 + "about"
    assert main(["wallet", "recover", other, "--data-dir", data]) == 2
    err = capsys.readouterr().err
    assert "--force" in err and "Traceback" not in err
    assert main(["wallet", "recover", other, "--force", "--data-dir", data]) == 0


def test_export_without_wallet_is_a_clean_error(home, capsys):
    assert main(["wallet", "export", "--data-dir", str(home / "none")]) == 2
    assert "no wallet is saved" in capsys.readouterr().err
