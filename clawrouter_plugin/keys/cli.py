"""``clawrouter keys create|list|revoke``: the API keys of a shared proxy, in the store of the
configured backend (the data directory, or the team's Redis)."""

from __future__ import annotations

import argparse
import asyncio
import time
from contextlib import asynccontextmanager
from typing import AsyncIterator

from ..config import PluginConfig, load_config, with_overrides
from ..errors import ClawRouterError
from ..paths import open_data_dir
from ..state.redis_conn import open_link
from ..state.usage_stats import LocalUsageStats, TeamUsageStats
from ..usage import UsageLog
from .model import ApiKey
from .store import KeyStore, open_key_store


@asynccontextmanager
async def opened(plugin: PluginConfig) -> AsyncIterator[tuple[KeyStore, LocalUsageStats]]:
    """The key store and the usage statistics of ``plugin``'s backend, closed afterwards."""
    data_dir = open_data_dir(plugin.data_path)
    link = open_link(plugin.state) if plugin.state.backend == "redis" else None
    usage = UsageLog(data_dir / "logs")
    stats = LocalUsageStats(usage) if link is None else TeamUsageStats(usage, link)
    try:
        yield open_key_store(plugin.state, data_dir, link), stats
    finally:
        await stats.aclose()
        usage.close()
        if link is not None:
            await link.aclose()


async def create_key(plugin: PluginConfig, name: str, daily_usd: float | None = None,
                     run_usd: float | None = None) -> tuple[ApiKey, str]:
    """A new key of ``plugin``'s store and its secret (shown once, stored only hashed)."""
    async with opened(plugin) as (store, _):
        return await store.create(name, daily_usd=daily_usd, run_usd=run_usd)


async def revoke_key(plugin: PluginConfig, key_id: str) -> ApiKey:
    """Revoke ``key_id``: every process refuses it within a second."""
    async with opened(plugin) as (store, _):
        return await store.revoke(key_id)


async def list_keys(plugin: PluginConfig) -> tuple[list[ApiKey], dict[str, dict], str | None]:
    """Every key, what each spent today (by id), and why that spend is unknown, if it is."""
    async with opened(plugin) as (store, stats):
        keys = await store.list()
        try:
            spent = await stats.today_by_key()
        except ClawRouterError as exc:
            return keys, {}, exc.message
        return keys, spent, None


def _usd(value: float | None) -> str:
    return "-" if value is None else f"${value:,.2f}"


def _print_keys(keys: list[ApiKey], spent: dict[str, dict], problem: str | None) -> None:
    if not keys:
        print("no API keys yet; create one with `clawrouter keys create --name NAME`")
        return
    rows = [("ID", "NAME", "DAILY", "PER RUN", "CREATED (UTC)", "STATUS", "TODAY")]
    for key in keys:
        today = spent.get(key.id)
        rows.append((key.id, key.name, _usd(key.daily_usd), _usd(key.run_usd),
                     time.strftime("%Y-%m-%d %H:%M", time.gmtime(key.created)),
                     "revoked" if key.revoked else "active",
                     f"${today['cost']:,.4f} ({today['requests']} req)" if today else "$0"))
    widths = [max(len(row[col]) for row in rows) for col in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    if problem:
        print(f"(today's spend is unknown: {problem})")


async def _run(args: argparse.Namespace) -> int:
    plugin = with_overrides(load_config(args.config).plugin, data_dir=args.data_dir)
    action = args.keys_action
    if action == "create":
        key, secret = await create_key(plugin, args.name, args.daily, args.per_run)
        print(f"created API key {key.id} ({key.name}); its secret, shown only this once:")
        print(secret)
        print("clients send it as 'Authorization: Bearer <secret>' (the OpenAI SDKs' api_key)")
    elif action == "revoke":
        key = await revoke_key(plugin, args.id)
        print(f"revoked API key {key.id} ({key.name}); every proxy refuses it within a second")
    else:
        _print_keys(*await list_keys(plugin))
    return 0


def keys_command(args: argparse.Namespace) -> int:
    """Run ``clawrouter keys <action>``; errors are ClawRouterErrors (exit code 2)."""
    return asyncio.run(_run(args))
