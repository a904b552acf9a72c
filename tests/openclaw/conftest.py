"""Fixtures: the real proxy (with ClawRouter's commands installed, as `clawrouter serve` does)
on a free loopback port in front of the x402 test upstream."""

from __future__ import annotations

import aiohttp
import pytest
from eth_account import Account

from clawrouter_plugin.plugin import setup_services
from clawrouter_plugin.proxy.server import start_proxy
from tests.images.conftest import catalog_price, image_handler
from tests.proxy.conftest import make_config
from tests.support.x402_upstream import IMAGE_PATH


@pytest.fixture
async def command_proxy(x402_upstream, funded_wallet_key, tmp_path):
    """A proxy started with the entry point's setup hook; images cost their catalog price."""
    x402_upstream.set_price(IMAGE_PATH, catalog_price)
    x402_upstream.set_handler(IMAGE_PATH, image_handler("b64"))
    handle = await start_proxy(wallet_key=funded_wallet_key, port=0, api_base=x402_upstream.url,
                               data_dir=tmp_path / "data", config=make_config(),
                               setup=setup_services)
    try:
        yield handle
    finally:
        await handle.close()


@pytest.fixture
def payer(funded_wallet_key) -> str:
    return Account.from_key(funded_wallet_key).address


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session
