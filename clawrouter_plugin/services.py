"""Everything a running clawrouter shares: one object built once, used by both doors."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import aiohttp

from . import USER_AGENT
from .balance import BalanceMonitor
from .catalog import Catalog, load_catalog
from .config import PluginConfig
from .images import ImageService, ImageStore
from .keys.store import KeyStore, open_key_store
from .outbound import OutboundPolicy
from .paths import open_data_dir
from .payment import PaymentPolicy, Wallet, X402Client, load_or_create_wallet
from .payment.journal import PaymentJournal
from .payment.wallet import env_wallet
from .router import Router
from .state.backends import open_stores
from .state.redis_conn import RedisLink, open_link
from .state.request_state import RequestStates
from .state.spend import Spend
from .state.stores import CacheStore, ModelExclusions, SessionPins
from .state.usage_stats import LocalUsageStats, open_usage_stats
from .usage import UsageLog


@dataclass
class Services:
    """The shared state and clients of one clawrouter instance."""

    config: PluginConfig
    catalog: Catalog
    data_dir: Path
    router: Router
    wallet: Wallet
    http: aiohttp.ClientSession
    client: X402Client
    balance: BalanceMonitor
    cache: CacheStore
    sessions: SessionPins
    spend: Spend
    exclusions: ModelExclusions
    usage: UsageLog
    journal: PaymentJournal
    images: ImageService
    keys: KeyStore  # API keys of a shared proxy (checked when server.keysRequired)
    stats: LocalUsageStats  # what /stats answers: this process's log, or the team's totals
    requests: RequestStates  # each request's reads and writes (picked in state/backends.py)
    redis: RedisLink | None = None  # the process's one Redis link (state.backend: redis)
    recorder: Any = None
    pipeline: Any = None
    public_url: str = "http://localhost:8402"
    on_routed: Callable[[Any], None] | None = None
    on_low_balance: Callable[[Any], None] | None = None
    commands: Any = None  # the entry point's CommandRunner, for the command endpoint
    extras: dict[str, Any] = field(default_factory=dict)

    async def aclose(self) -> None:
        """Close network sessions and files. Safe to call twice."""
        if not self.http.closed:
            await self.http.close()
        await self.cache.aclose()
        await self.stats.aclose()  # the team's totals get the last records
        self.usage.close()  # its last lines complete their journal entries
        self.journal.close()
        if self.redis is not None:
            await self.redis.aclose()


async def build_services(
    config: PluginConfig,
    *,
    wallet_key: str | None = None,
    on_routed: Callable[[Any], None] | None = None,
    on_payment: Callable[[Any], None] | None = None,
    on_low_balance: Callable[[Any], None] | None = None,
) -> Services:
    """Create every service for ``config`` (wallet, clients, stores, pipeline)."""
    from .proxy.pipeline import Pipeline
    from .proxy.recorder import UsageRecorder

    env = dict(os.environ)
    if wallet_key:
        env["BLOCKRUN_WALLET_KEY"] = wallet_key
    if not os.path.lexists(config.data_path):  # no saved wallet: refuse a bad key before mkdir
        env_wallet(env)
    data_dir = open_data_dir(config.data_path)
    catalog = load_catalog()
    wallet = load_or_create_wallet(data_dir, env=env)
    # Everything that reads the data directory (and may refuse it) comes before the HTTP
    # session, so a refusal leaves no unclosed session behind.
    redis = open_link(config.state) if config.state.backend == "redis" else None
    try:
        stores = open_stores(config, data_dir, catalog, redis)
    except BaseException:
        if redis is not None:
            await redis.aclose()
        raise
    usage = UsageLog(data_dir / "logs")
    journal = PaymentJournal.open(data_dir)
    stats = open_usage_stats(usage, redis)  # before the replay: its records count for the team
    journal.replay(usage)  # payments signed before the last stop that have no record yet
    usage.on_written = journal.done
    http = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=100, ttl_dns_cache=300),
        headers={"user-agent": USER_AGENT},
        cookie_jar=aiohttp.DummyCookieJar(),  # the wallet signature is the only credential
    )
    payment = config.payment
    client = X402Client(
        http, wallet, PaymentPolicy.from_config(payment), api_base=config.api_base,
        preauth=stores.preauth, on_payment=on_payment, user_agent=USER_AGENT,
        journal=journal,
    )
    balance = BalanceMonitor(
        http, rpc_url=payment.rpc_url, address=wallet.address,
        asset=payment.allowed_assets[0].asset if payment.allowed_assets else None,
        cache_seconds=payment.balance_cache_seconds, low_usd=payment.low_balance_usd,
    )
    services = Services(
        config=config, catalog=catalog, data_dir=data_dir,
        router=Router(config.routing, catalog, config.output_caps()), wallet=wallet, http=http, client=client,
        balance=balance, cache=stores.cache,
        sessions=stores.sessions, spend=stores.spend, exclusions=stores.exclusions,
        requests=stores.requests,
        usage=usage,
        journal=journal,
        images=None,  # type: ignore[arg-type]  # set below: it needs the public URL holder
        keys=open_key_store(config.state, data_dir, redis), stats=stats, redis=redis,
        on_routed=on_routed, on_low_balance=on_low_balance,
    )
    store = ImageStore(data_dir / "images", lambda: services.public_url)
    outbound = OutboundPolicy(allow_private=config.images.allow_private_urls,
                              own_url=lambda: services.public_url, trusted=(config.api_base,))
    services.images = ImageService(client, catalog, store, config.images, outbound, usage,
                                   services.spend)
    services.recorder = UsageRecorder(usage, catalog)
    services.pipeline = Pipeline(services)
    return services
