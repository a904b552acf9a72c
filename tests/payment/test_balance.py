"""BalanceMonitor against a local JSON-RPC server."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from clawrouter_plugin.balance import BalanceMonitor
from clawrouter_plugin.config import BASE_USDC
from tests.support.jsonrpc import JsonRpcTestServer

ADDRESS = "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"


@pytest.fixture
async def rpc():
    async with JsonRpcTestServer() as server:
        yield server


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as s:
        yield s


def _monitor(session, url, **kwargs) -> BalanceMonitor:
    return BalanceMonitor(session, rpc_url=url, address=ADDRESS, **kwargs)


async def test_reads_balance_of_through_eth_call(rpc, session):
    rpc.ledger.fund(ADDRESS, 12.345678)
    info = await _monitor(session, rpc.url).get()
    assert info.usd == pytest.approx(12.345678) and not info.low and not info.empty
    assert info.error is None and info.text == "$12.35"
    [body] = rpc.bodies
    assert body["method"] == "eth_call" and body["params"][1] == "latest"
    call = body["params"][0]
    assert call["to"] == BASE_USDC
    assert call["data"] == "0x70a08231" + "0" * 24 + ADDRESS[2:].lower()


async def test_cached_and_reduced_by_local_spend(rpc, session):
    rpc.ledger.fund(ADDRESS, 2)
    monitor = _monitor(session, rpc.url, cache_seconds=60, low_usd=1.5)
    assert (await monitor.get()).usd == 2
    monitor.record_spend(0.75)
    info = await monitor.get()
    assert info.usd == pytest.approx(1.25) and info.low and not info.empty
    assert rpc.calls == 1


async def test_cache_expiry_reads_again(rpc, session):
    rpc.ledger.fund(ADDRESS, 1)
    monitor = _monitor(session, rpc.url, cache_seconds=0)
    await monitor.get()
    rpc.ledger.fund(ADDRESS, 1)
    assert (await monitor.get()).usd == 2 and rpc.calls == 2


async def test_empty_and_mark_empty(rpc, session):
    monitor = _monitor(session, rpc.url)
    info = await monitor.get()
    assert info.usd == 0 and info.empty and info.low
    rpc.ledger.fund(ADDRESS, 5)
    funded = _monitor(session, rpc.url)
    assert not (await funded.get()).empty
    funded.mark_empty()
    assert (await funded.get()).empty and rpc.calls == 2  # trusted without a new read


async def test_concurrent_gets_share_one_rpc_call(rpc, session):
    monitor = _monitor(session, rpc.url)
    infos = await asyncio.gather(*[monitor.get() for _ in range(10)])
    assert rpc.calls == 1 and all(i.usd == 0 for i in infos)


@pytest.mark.parametrize("mode, expect", [
    ("error", "RPC error: header not found"),
    ("http500", "HTTP 500"),
    ("garbage", ""),
])
async def test_rpc_failures_mean_unknown(rpc, session, mode, expect):
    rpc.mode = mode
    monitor = _monitor(session, rpc.url)
    info = await monitor.get()
    assert info.usd is None and not info.empty and not info.low and info.text == "unknown"
    assert info.error and expect in info.error
    await monitor.get()
    assert rpc.calls == 1  # the failure is remembered briefly


async def test_unreachable_rpc_is_unknown_quickly(session, unused_tcp_port):
    started = time.monotonic()
    info = await _monitor(session, f"http://127.0.0.1:{unused_tcp_port}/",
                          timeout_seconds=1).get()
    assert info.usd is None and info.error
    assert time.monotonic() - started < 1.5


async def test_slow_rpc_times_out(rpc, session):
    rpc.mode = "slow"
    started = time.monotonic()
    info = await _monitor(session, rpc.url, timeout_seconds=0.3).get()
    assert info.usd is None and info.error == "timed out"
    assert time.monotonic() - started < 2


async def test_bad_address_is_refused(session):
    with pytest.raises(ValueError):
        BalanceMonitor(session, rpc_url="http://127.0.0.1:1/", address="0x123")
