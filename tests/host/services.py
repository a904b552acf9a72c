"""A services container for command tests: the real catalog, stores, usage log and wallet
files in a temp folder; only the balance lookup is a stand-in (no RPC)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from clawrouter_plugin.balance import BalanceInfo
from clawrouter_plugin.catalog import load_catalog
from clawrouter_plugin.config import PluginConfig
from clawrouter_plugin.host.api import CommandContext
from clawrouter_plugin.payment import load_or_create_wallet
from clawrouter_plugin.state.exclusions import ExclusionStore
from clawrouter_plugin.state.sessions import SessionStore
from clawrouter_plugin.state.usage_stats import LocalUsageStats
from clawrouter_plugin.usage import UsageLog

UNKNOWN = BalanceInfo(usd=None, low=False, empty=False, error="connection refused")


@dataclass
class FixedBalance:
    info: BalanceInfo = UNKNOWN

    async def get(self) -> BalanceInfo:
        return self.info


def make_services(data_dir: Path, **extra) -> SimpleNamespace:
    catalog = load_catalog()
    data_dir.mkdir(parents=True, exist_ok=True)
    usage = UsageLog(data_dir / "logs")
    return SimpleNamespace(
        catalog=catalog, data_dir=data_dir, sessions=SessionStore(), config=PluginConfig(),
        exclusions=ExclusionStore(data_dir / "exclude-models.json", catalog),
        usage=usage, stats=LocalUsageStats(usage),
        wallet=load_or_create_wallet(data_dir, env={}), balance=FixedBalance(), **extra)


def ctx(args: str | None = None, **kw) -> CommandContext:
    kw.setdefault("session_id", "s-1")
    return CommandContext(args=args, command_body="/x" + (f" {args}" if args else ""), **kw)
