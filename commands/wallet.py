"""``/wallet``: the payment wallet's address, balance and key file; export and recover.

``/wallet export`` shows the private key (and recovery phrase) only to the owner at the
terminal; ``/wallet recover <phrase> [--force]`` saves the wallet of a recovery phrase and never
replaces a different saved wallet without ``--force``. Both take effect after a restart.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from clawrouter_plugin.errors import ClawRouterError
from clawrouter_plugin.host.api import CommandContext, CommandResult, CommandSpec

CHAIN = "Base (USDC)"
EXPLORER = "https://basescan.org/address/"
USAGE = ("/wallet                             address, balance, key file, how to fund\n"
         "/wallet export                      show the private key (owner at the terminal only)\n"
         "/wallet recover <phrase> [--force]  restore a wallet from its recovery phrase")
OWNER_ONLY = "⚠️ /wallet {0} is only allowed for the owner, at the terminal."


def _balance_line(info: Any) -> str:
    if info is None or info.usd is None:
        return "unknown (RPC unreachable)"
    if info.empty:
        return f"${info.usd:,.2f} USDC — empty: only the free model works until you fund it"
    return f"${info.usd:,.2f} USDC" + (" — low, top up soon" if info.low else "")


def _key_line(wallet: Any) -> str:
    if wallet.key_path is not None:
        return f"{wallet.key_path} (mode 0600)"
    return "not stored: the key comes from $BLOCKRUN_WALLET_KEY"


async def _status(services: Any) -> str:
    wallet = services.wallet
    try:
        info = await services.balance.get()
    except (TimeoutError, ClawRouterError, OSError):
        info = None
    return "\n".join([
        "ClawRouter wallet",
        f"  Address:  {wallet.address}",
        f"  Chain:    {CHAIN}",
        f"  Balance:  {_balance_line(info)}",
        f"  Key file: {_key_line(wallet)}",
        "",
        f"Fund it: send USDC on Base to {wallet.address}",
        f"  (from an exchange or wallet; check it at {EXPLORER}{wallet.address})",
        "",
        USAGE,
    ])


def _owner(ctx: CommandContext) -> bool:
    return ctx.is_authorized_sender and (ctx.channel == "terminal" or ctx.sender_is_owner)


async def _export(services: Any) -> str:
    from clawrouter_plugin.payment import export_wallet

    secrets = await asyncio.to_thread(export_wallet, services.data_dir)
    lines = [
        "⚠️⚠️ SECRET — anyone who sees this can spend every dollar in this wallet. ⚠️⚠️",
        "Do not paste it into a chat, a ticket or a screenshot. Clear your scrollback after.",
        "",
        f"Address:         {secrets['address']}",
        f"Private key:     {secrets['private_key']}",
    ]
    if secrets.get("mnemonic"):
        lines.append(f"Recovery phrase: {secrets['mnemonic']}")
    lines += [
        "",
        "Restore elsewhere with one of:",
        "  clawrouter wallet recover \"<recovery phrase>\"" if secrets.get("mnemonic") else
        "  export BLOCKRUN_WALLET_KEY=<private key>",
        f"  or copy {secrets['key_path']} (keep it mode 0600)",
    ]
    return "\n".join(lines)


async def _recover(services: Any, words: list[str]) -> CommandResult:
    from clawrouter_plugin.payment import recover_wallet

    force = "--force" in words
    phrase = " ".join(w for w in words if w != "--force")
    if not phrase:
        return CommandResult("Usage: /wallet recover <recovery phrase> [--force]", is_error=True)
    wallet = await asyncio.to_thread(recover_wallet, services.data_dir, phrase, force=force)
    same = wallet.address == services.wallet.address
    text = (f"Recovered wallet {wallet.address}, saved to {wallet.key_path}.\n"
            + ("It is the wallet already in use." if same else
               "Restart ClawRouter (this chat or `clawrouter serve`) to start using it."))
    return CommandResult(text)


def _misuse(action: str, words: list[str]) -> str:
    """What was wrong, never echoing what could be a pasted key or recovery phrase."""
    if action in ("status", "export"):
        return f"/wallet {action} takes no arguments."
    if len(words) == 1 and re.fullmatch(r"[a-z-]{1,20}", action):
        return f"Unknown subcommand: {words[0]}"
    return "Unknown subcommand."


def command(services: Any) -> CommandSpec:
    """The /wallet command; ``services`` is read when the command runs."""

    async def handler(ctx: CommandContext) -> CommandResult:
        words = (ctx.args or "").split()
        action = words[0].lower() if words else "status"
        try:
            if action == "status" and len(words) <= 1:
                return CommandResult(await _status(services))
            if action in ("export", "recover") and not _owner(ctx):
                return CommandResult(OWNER_ONLY.format(action), is_error=True)
            if action == "export" and len(words) == 1:
                return CommandResult(await _export(services))
            if action == "recover":
                return await _recover(services, words[1:])
        except ClawRouterError as exc:
            return CommandResult(f"⚠️ {exc.message}", is_error=True)
        return CommandResult(f"{_misuse(action, words)}\n\nUsage:\n{USAGE}", is_error=True)

    return CommandSpec(name="wallet", description="Payment wallet: address, balance, export, recover",
                       handler=handler, accepts_args=True, usage=USAGE)
