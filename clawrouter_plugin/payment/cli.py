"""``clawrouter wallet [status|export|recover]``."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys

import aiohttp

from ..balance import BalanceInfo, BalanceMonitor
from ..config import BASE_MAINNET, BASE_USDC, PluginConfig, load_config, with_overrides
from ..errors import WalletError
from .wallet import ENV_KEY, export_wallet, load_or_create_wallet, recover_wallet

NETWORK_NAMES = {BASE_MAINNET: "Base", "eip155:84532": "Base Sepolia"}


def wallet_command(args: argparse.Namespace) -> int:
    """Entry point of ``clawrouter wallet``."""
    if args.mnemonic and args.action != "recover":  # never echo it: it may be a real phrase
        raise WalletError(f"'wallet {args.action}' takes no further argument (a recovery "
                          "phrase is only used with 'wallet recover')")
    config = with_overrides(load_config(args.config).plugin, data_dir=args.data_dir)
    if args.action == "export":
        return _export(config)
    if args.action == "recover":
        return _recover(config, args.mnemonic, args.force)
    return _status(config)


def _chain(config: PluginConfig) -> tuple[str, str]:
    first = config.payment.allowed_assets[0] if config.payment.allowed_assets else None
    network = first.network if first else BASE_MAINNET
    asset = first.asset if first else BASE_USDC
    return f"{NETWORK_NAMES.get(network, network)} ({network})", asset


async def _balance(config: PluginConfig, address: str, asset: str) -> BalanceInfo:
    async with aiohttp.ClientSession() as session:
        monitor = BalanceMonitor(session, rpc_url=config.payment.rpc_url, address=address,
                                 asset=asset, low_usd=config.payment.low_balance_usd,
                                 timeout_seconds=5)
        return await monitor.get()


def _status(config: PluginConfig) -> int:
    wallet = load_or_create_wallet(config.data_path)
    chain, asset = _chain(config)
    info = asyncio.run(_balance(config, wallet.address, asset))
    balance = info.text + (f" ({info.error})" if info.error else "")
    if info.empty:
        balance += "  (empty: only the free model can be used)"
    elif info.low:
        balance += "  (low)"
    where = str(wallet.key_path) if wallet.key_path else f"${ENV_KEY} (not saved to disk)"
    print("ClawRouter wallet")
    print(f"  Address:  {wallet.address}")
    print(f"  Chain:    {chain}, token {asset}")
    print(f"  Balance:  {balance}")
    print(f"  Key file: {where}")
    if wallet.source == "generated":
        print("  A new wallet was just created. Back it up: clawrouter wallet export")
    print("  Fund it by sending USDC on Base to the address above.")
    print("  Commands: clawrouter wallet export | clawrouter wallet recover [--force]")
    return 0


def _export(config: PluginConfig) -> int:
    secrets = export_wallet(config.data_path)
    print("WARNING: anyone with these secrets can spend this wallet's funds. "
          "Keep them offline.", file=sys.stderr)
    print(f"Address:     {secrets['address']}")
    print(f"Private key: {secrets['private_key']}")
    if secrets["mnemonic"]:
        words = len(secrets["mnemonic"].split())
        print(f"Recovery phrase ({words} words): {secrets['mnemonic']}")
    print(f"Key file:    {secrets['key_path']}")
    print("Restore on another machine with: clawrouter wallet recover (then type the phrase),")
    print(f"or set {ENV_KEY}=<private key>, or copy the key file (chmod 600).")
    return 0


def _recover(config: PluginConfig, phrase: str | None, force: bool) -> int:
    if not phrase:
        if sys.stdin.isatty():
            phrase = getpass.getpass("Recovery phrase (hidden): ")
        else:
            phrase = sys.stdin.readline()
    if not phrase or not phrase.strip():
        raise WalletError("no recovery phrase given")
    wallet = recover_wallet(config.data_path, phrase, force=force)
    print(f"Recovered wallet {wallet.address}")
    print(f"Saved to {wallet.key_path}")
    return 0
