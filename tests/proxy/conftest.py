"""Fixtures: the real proxy on a free loopback port in front of the x402 test upstream."""

from __future__ import annotations

import openai
import pytest
from eth_account import Account

from clawrouter_plugin.config import PluginConfig
from clawrouter_plugin.proxy.server import start_proxy

CLOSED_RPC = "http://127.0.0.1:9/"  # nothing listens on the discard port: balance stays unknown


def make_config(**overrides) -> PluginConfig:
    """A PluginConfig for tests (camelCase keys as in openclaw.yaml)."""
    raw = {"payment": {"rpcUrl": CLOSED_RPC}}
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    return PluginConfig.model_validate(raw)


@pytest.fixture
async def start(x402_upstream, funded_wallet_key, tmp_path):
    """``await start(**config_overrides)`` starts a proxy; all are closed at teardown."""
    handles = []

    async def _start(*, key: str | None = None, data_dir=None, setup=None, **overrides):
        handle = await start_proxy(
            wallet_key=key or funded_wallet_key, port=0, api_base=x402_upstream.url,
            data_dir=data_dir or tmp_path / "data", config=make_config(**overrides), setup=setup,
        )
        handles.append(handle)
        return handle

    yield _start
    for handle in handles:
        await handle.close()


@pytest.fixture
async def proxy(start):
    """A proxy with default settings."""
    return await start()


@pytest.fixture
def payer(funded_wallet_key) -> str:
    return Account.from_key(funded_wallet_key).address


@pytest.fixture(autouse=True)
def _free_model_is_free(x402_upstream):
    """Like BlockRun: the free model asks no payment; everything else costs $0.001."""
    x402_upstream.set_price(
        "/v1/chat/completions",
        lambda call: None if (call.json() or {}).get("model") == "nvidia/gpt-oss-120b" else "0.001",
    )


_CLIENTS: list[openai.AsyncOpenAI] = []


def sdk(handle, **kw) -> openai.AsyncOpenAI:
    """An OpenAI SDK client for the proxy (closed after the test)."""
    kw.setdefault("api_key", "x402")  # what a local proxy gets; a shared one needs a real key
    client = openai.AsyncOpenAI(base_url=handle.base_url + "/v1", max_retries=0, **kw)
    _CLIENTS.append(client)
    return client


@pytest.fixture(autouse=True)
async def _close_clients():
    yield
    while _CLIENTS:
        await _CLIENTS.pop().close()
