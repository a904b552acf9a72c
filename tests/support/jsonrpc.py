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
from .local_server import LocalServer

BALANCE_OF = "0x70a08231"


class JsonRpcTestServer(LocalServer):
    """127.0.0.1 JSON-RPC endpoint (random port) for balance checks."""

    def __init__(self, ledger: Ledger | None = None, *, slow_seconds: float = 5.0):
        self.ledger = ledger or Ledger()
        self.mode = "ok"
        self.slow_seconds = slow_seconds
        self.calls = 0
        self.bodies: list[Any] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/rpc"

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/rpc", self._handle)
        return app

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
