"""The wallet's USDC balance on Base, read with JSON-RPC ``eth_call balanceOf``.

Cached (``payment.balanceCacheSeconds``) and reduced locally by what was just spent. An
unreachable or broken RPC never blocks a request for long: a short timeout, then the balance
is "unknown" (``usd=None``) and the failure is remembered briefly so later requests do not
wait again.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass

import aiohttp

from .config import BASE_USDC

log = logging.getLogger(__name__)

BALANCE_OF = "0x70a08231"  # balanceOf(address)
USDC_UNITS = 1_000_000
EMPTY_BELOW_ATOMIC = 100  # below $0.0001 the wallet counts as empty
RETRY_UNKNOWN_SECONDS = 10.0  # how long an RPC failure or an empty balance is trusted
_HEX = re.compile(r"0x[0-9a-fA-F]{1,64}")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


@dataclass(frozen=True)
class BalanceInfo:
    """USD balance (None when unknown), low/empty flags and the last RPC problem."""

    usd: float | None
    low: bool
    empty: bool
    error: str | None

    @property
    def text(self) -> str:
        """``$12.34`` or ``unknown``."""
        return "unknown" if self.usd is None else f"${self.usd:.2f}"


class BalanceMonitor:
    """Reads and caches one address's token balance."""

    def __init__(self, session: aiohttp.ClientSession, *, rpc_url: str, address: str,
                 asset: str | None = BASE_USDC, cache_seconds: float = 60, low_usd: float = 1.0,
                 timeout_seconds: float = 3.0):
        asset = asset or BASE_USDC
        if not _ADDRESS.fullmatch(address) or not _ADDRESS.fullmatch(asset):
            raise ValueError("address and asset must be 0x + 40 hex characters")
        self._session = session
        self._rpc_url = rpc_url
        self._address = address
        self._asset = asset
        self._cache_seconds = cache_seconds
        self._low_atomic = round(low_usd * USDC_UNITS)
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._atomic: int | None = None  # last known on-chain balance minus local spend
        self._error: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    def peek(self) -> BalanceInfo:
        """The last known state, without any network call."""
        if self._atomic is None:
            return BalanceInfo(None, False, False, self._error)
        atomic = max(self._atomic, 0)
        return BalanceInfo(atomic / USDC_UNITS, atomic < self._low_atomic,
                           atomic < EMPTY_BELOW_ATOMIC, self._error)

    async def get(self) -> BalanceInfo:
        """The balance, read from the RPC when the cached value is stale."""
        if time.monotonic() < self._expires:
            return self.peek()
        async with self._lock:  # concurrent callers share one RPC call
            if time.monotonic() >= self._expires:
                await self._refresh()
        return self.peek()

    def record_spend(self, usd: float) -> None:
        """Subtract a payment just made from the cached balance."""
        if self._atomic is not None and usd > 0:
            self._atomic -= round(usd * USDC_UNITS)

    def mark_empty(self) -> None:
        """The upstream said the wallet lacks funds: trust that for a short while."""
        self._atomic = 0
        self._error = None
        self._expires = time.monotonic() + min(self._cache_seconds, RETRY_UNKNOWN_SECONDS)

    async def _refresh(self) -> None:
        try:
            atomic = await self._fetch()
        except Exception as exc:  # any RPC problem means "unknown", never a failed request
            self._atomic, self._error = None, _describe(exc)
            self._expires = time.monotonic() + min(self._cache_seconds, RETRY_UNKNOWN_SECONDS)
            log.warning("balance check via %s failed: %s", self._rpc_url, self._error)
            return
        self._atomic, self._error = atomic, None
        ttl = self._cache_seconds
        if atomic < EMPTY_BELOW_ATOMIC:  # a funded wallet should show up quickly
            ttl = min(ttl, RETRY_UNKNOWN_SECONDS)
        self._expires = time.monotonic() + ttl

    async def _fetch(self) -> int:
        call = {"to": self._asset,
                "data": BALANCE_OF + self._address[2:].lower().rjust(64, "0")}
        request = {"jsonrpc": "2.0", "id": 1, "method": "eth_call", "params": [call, "latest"]}
        async with self._session.post(self._rpc_url, json=request, timeout=self._timeout) as resp:
            if resp.status != 200:
                raise RuntimeError(f"RPC answered HTTP {resp.status}")
            reply = await resp.json(content_type=None)
        if not isinstance(reply, dict):
            raise RuntimeError("RPC reply is not a JSON object")
        if reply.get("error") is not None:
            error = reply["error"]
            message = error.get("message") if isinstance(error, dict) else error
            raise RuntimeError(f"RPC error: {str(message)[:200]}")
        result = reply.get("result")
        if not isinstance(result, str) or not _HEX.fullmatch(result):
            raise RuntimeError("RPC result is not a hex number")
        return int(result, 16)


def _describe(exc: Exception) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__
