"""Fixtures of the team-mode tests: real ``clawrouter serve`` processes sharing a real Redis."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from eth_account import Account

from .harness import CLOSED_RPC, TeamProxy

PAID = "deepseek/deepseek-chat"  # $0.001 a call at the test upstream
FREE = "nvidia/gpt-oss-120b"


def team_config(redis_url: str, **overrides: Any) -> dict[str, Any]:
    """A proxy's plugin config (camelCase, as in openclaw.yaml) on the shared Redis."""
    config: dict[str, Any] = {"payment": {"rpcUrl": CLOSED_RPC},
                              "state": {"backend": "redis", "redisUrl": redis_url}}
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


@pytest.fixture(autouse=True)
def _free_model_is_free(x402_upstream):
    """Like BlockRun: the free model asks no payment; everything else costs $0.001."""
    x402_upstream.set_price(
        "/v1/chat/completions",
        lambda call: None if (call.json() or {}).get("model") == FREE else "0.001")


@pytest.fixture
def payer(funded_wallet_key) -> str:
    """The team wallet's address."""
    return Account.from_key(funded_wallet_key).address


@pytest.fixture
async def team(x402_upstream, funded_wallet_key, redis_url, tmp_path):
    """``await team(count, redis=url, workers=1, shared_data=False, **config)``: that many
    proxies started at once, each with its own config and data directory (as on separate
    machines) unless ``shared_data``; all are stopped at teardown."""
    started: list[TeamProxy] = []

    async def _team(count: int = 3, *, redis: str | None = None, workers: int = 1,
                    shared_data: bool = False, **config: Any) -> list[TeamProxy]:
        first = len(started)
        proxies = [TeamProxy(f"proxy{first + i}", tmp_path, upstream_url=x402_upstream.url,
                             wallet_key=funded_wallet_key,
                             config=team_config(redis or redis_url, **config), workers=workers,
                             data_dir=tmp_path / "shared-data" if shared_data else None)
                   for i in range(count)]
        started.extend(proxies)
        await asyncio.gather(*(proxy.start() for proxy in proxies))
        return proxies

    yield _team
    await asyncio.gather(*(proxy.close() for proxy in started), return_exceptions=True)
