"""A local Ethereum JSON-RPC server answering ``eth_call balanceOf`` from a :class:`Ledger`.

Usage::

    async with JsonRpcTestServer(ledger=upstream.ledger) as rpc:   # balances follow payments
        config payment.rpcUrl = rpc.url
        rpc.mode = "error"      # "ok" | "error" | "http500" | "garbage" | "slow"

``rpc.calls`` counts requests; ``rpc.bodies`` keeps the JSON-RPC requests received.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from .ledger import Ledger

BALANCE_OF = "0x70a08231"


class JsonRpcTestServer:
    """127.0.0.1 JSON-RPC endpoint (random port) for balance checks."""

    def __init__(self, ledger: Ledger | None = None, *, slow_seconds: float = 5.0):
        self.ledger = ledger or Ledger()
        self.mode = "ok"
        self.slow_seconds = slow_seconds
        self.calls = 0
        self.bodies: list[Any] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/rpc"

    async def start(self) -> JsonRpcTestServer:
        app = web.Application()
        app.router.add_post("/rpc", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> JsonRpcTestServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.calls += 1
        body = await request.json()
        self.bodies.append(body)
        if self.mode == "slow":
            await asyncio.sleep(self.slow_seconds)
        if self.mode == "http500":
            return web.Response(status=500, text="internal error")
        if self.mode == "garbage":
            return web.Response(text="<html>not json</html>")
        rid = body.get("id")
        if self.mode == "error":
            return web.json_response({"jsonrpc": "2.0", "id": rid,
                                      "error": {"code": -32000, "message": "header not found"}})
        params = body.get("params") or [{}]
        data = str(params[0].get("data", ""))
        if body.get("method") != "eth_call" or not data.startswith(BALANCE_OF):
            return web.json_response({"jsonrpc": "2.0", "id": rid,
                                      "error": {"code": -32601, "message": "unsupported"}})
        address = "0x" + data[len(BALANCE_OF):][-40:]
        balance = self.ledger.balance(address)
        return web.json_response({"jsonrpc": "2.0", "id": rid,
                                  "result": "0x" + balance.to_bytes(32, "big").hex()})
